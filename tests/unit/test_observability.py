"""Request context, JSON log lines, metric labels, the metrics token and the metrics directory."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from bot import blocks, grammar, home, metricsdir, observe
from bot import modals as bot_modals
from bot.listeners import actions
from bot.metrics import Exporter, _ObservedNotifier, authorized
from bot.observe import JsonFormatter, configure_logging
from core import utcnow
from core.store.ports import OutboxEntry
from tests.support.fake_store import FakeStore


def concrete_commands() -> list[type]:
    found: list[type] = []
    pending = [grammar.Command]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            if not sub.__name__.startswith("_"):
                found.append(sub)
    return found


def test_every_command_and_button_has_a_kind_of_its_own() -> None:
    commands = concrete_commands()
    assert len(commands) >= 15
    for command in commands:
        kind = observe.command_kind(command.__new__(command))
        assert kind in observe.KINDS and kind != "command:other", command
    registered = registered_ids()
    action_ids = registered["action"] | set(actions.CLICKS) | set(home.HOME_ACTIONS)
    assert len(action_ids) == 17
    for action_id in action_ids:
        kind = observe.action_kind(action_id)
        assert kind in observe.KINDS and kind != "action:other", action_id
    assert len(set(map(observe.action_kind, action_ids))) == len(action_ids)  # each its own
    assert observe.action_kind("something_else") == "action:other"


def registered_ids() -> dict[str, set[str]]:
    """The ids the listeners register, by what they listen to (literal or a module constant)."""
    found: dict[str, set[str]] = {}
    names = {"blocks": blocks, "home": home, "modals": bot_modals}
    for path in sorted(Path(actions.__file__).parent.glob("*.py")):
        source = path.read_text()
        for what, argument in re.findall(
            r"app\.(action|view|view_closed|shortcut|options|event)\(([^()]*)\)", source
        ):
            if argument.startswith('"'):
                found.setdefault(what, set()).add(argument.strip('"'))
            elif "." in argument:
                module, name = argument.split(".")
                found.setdefault(what, set()).add(getattr(names[module], name))
    return found


def payload(kind: str, key: str) -> dict[str, Any]:
    """The smallest body of a Slack payload of that type with that id."""
    if kind == "block_actions":
        return {"type": kind, "actions": [{"action_id": key}]}
    if kind in ("view_submission", "view_closed"):
        return {"type": kind, "view": {"callback_id": key}}
    if kind == "block_suggestion":
        return {"type": kind, "action_id": key}
    if kind == "event_callback":
        return {"type": kind, "event": {"type": key}}
    return {"type": kind, "callback_id": key}


def test_every_view_shortcut_picker_and_event_has_a_kind_of_its_own() -> None:
    registered = registered_ids()
    assert registered["view"] == {bot_modals.FORM_VIEW, bot_modals.CONFIRM_VIEW}
    expected = {
        ("view_submission", bot_modals.FORM_VIEW): "view:form",
        ("view_submission", bot_modals.CONFIRM_VIEW): "view:confirm",
        ("view_closed", bot_modals.CONFIRM_VIEW): "view_closed:confirm",
        ("shortcut", bot_modals.SHORTCUT): "shortcut:plan",
        ("block_suggestion", bot_modals.PICK_APP): "options:app",
        ("event_callback", "app_home_opened"): "event:app_home_opened",
    }
    assert {key for _, key in expected} == set().union(
        *(registered[w] for w in ("view", "view_closed", "shortcut", "options", "event"))
    )
    for (kind, key), word in expected.items():
        assert observe.payload_kind(payload(kind, key)) == word
        assert word in observe.KINDS
    assert observe.payload_kind(payload("block_actions", home.HOME_APPROVE)) == (
        "action:home_approve"
    )
    assert observe.payload_kind({"command": "/plan", "text": "status x"}) is None  # its listener
    # what no listener asked for, or a body of another shape, still gets a fixed word
    for body in (
        payload("view_submission", "someone_elses_view"),
        payload("event_callback", "member_joined_channel"),
        {"type": "block_actions", "actions": "not a list"},
        {"type": "interactive_message", "callback_id": "<@U0SECRET>"},
        {},
    ):
        kind = observe.payload_kind(body)
        assert kind in observe.KINDS and "SECRET" not in str(kind), body


def test_an_outcome_comes_from_the_listeners_unless_the_status_says_otherwise() -> None:
    info, token = observe.begin()
    observe.end(token)
    assert info.finish(200) == "ok"
    refused, token = observe.begin()
    observe.note(outcome="refused")
    observe.end(token)
    assert refused.finish(200) == "refused"
    for status, outcome in (
        (401, "unsigned"),
        (400, "malformed"),
        (413, "too_large"),
        (500, "error"),
    ):
        info, token = observe.begin()
        observe.end(token)
        assert info.finish(status) == outcome
        assert outcome in observe.OUTCOMES


def test_notes_outside_a_request_go_nowhere_and_requests_do_not_share_them() -> None:
    observe.note(kind="command:status", user="U1")  # no request: nothing to record, no error
    assert observe.current() is None
    first, token = observe.begin()
    observe.note(kind="command:status", user="U1", app="1400000001")
    observe.end(token)
    second, token = observe.begin()
    observe.end(token)
    assert (first.kind, first.user, first.app) == ("command:status", "U1", "1400000001")
    assert (second.kind, second.user, second.app) == ("other", None, None)
    assert first.id != second.id


def emit(logger: logging.Logger, *args: object, **kwargs: object) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(*args, **kwargs)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def test_a_json_line_outside_a_request_has_time_level_logger_and_message() -> None:
    line = emit(logging.getLogger("test.json.plain"), "hello %s", "world", extra={"n": 3})
    assert line["message"] == "hello world"
    assert (line["level"], line["logger"], line["n"]) == ("WARNING", "test.json.plain", 3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(line["time"]))
    assert "request_id" not in line


def test_a_json_line_written_while_answering_carries_the_request() -> None:
    info, token = observe.begin()
    try:
        observe.note(kind="action:confirm", user="U0ADA", app="1400000001", outcome="refused")
        line = emit(logging.getLogger("test.json.request"), "refused: %s", "expired")
    finally:
        observe.end(token)
    assert line["request_id"] == info.id
    assert (line["kind"], line["user"], line["app"], line["outcome"]) == (
        "action:confirm",
        "U0ADA",
        "1400000001",
        "refused",
    )


def test_a_json_line_keeps_the_traceback_and_drops_uvicorns_colored_copy() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        line = emit(
            logging.getLogger("test.json.error"),
            "failed",
            exc_info=True,
            extra={"color_message": "\x1b[31mfailed\x1b[0m"},
        )
    assert "RuntimeError: boom" in str(line["exception"])
    assert "color_message" not in line


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_configured_json_logging_writes_every_logger_as_json_at_the_level(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "json")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("bot.server").debug("not at INFO")
    logging.getLogger("planbot.requests").warning("request x: refused")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("uvicorn.error", "Started server process [42]"),
        ("planbot.requests", "request x: refused"),
    ]


def test_plain_text_stays_the_default(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "text")
    logging.getLogger("bot.server").info("plain")
    err = capsys.readouterr().err
    assert err.rstrip().endswith("INFO bot.server: plain")
    with pytest.raises(ValueError):
        json.loads(err)


def test_the_metrics_token_is_a_bearer_token_compared_whole() -> None:
    assert authorized(None, None) and authorized("anything", "")
    assert authorized("Bearer s3cret", "s3cret")
    assert authorized("bearer s3cret", "s3cret")  # the scheme's case does not matter
    for header in (None, "", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"):
        assert not authorized(header, "s3cret"), header
    assert not authorized("Bearer sécret", "s3cret")


class _Unreachable(FakeStore):
    """A store whose database does not answer."""

    def unit_of_work(self, **_: Any) -> Any:
        raise ConnectionRefusedError("connection to 10.0.0.5:5432 refused")


def scrape(store: FakeStore) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(Exporter(store).render().decode())}


def test_a_scrape_says_the_database_is_down_rather_than_failing() -> None:
    families = scrape(_Unreachable())
    assert families["planbot_database_up"].samples[0].value == 0
    assert "planbot_outbox_pending" not in families


def test_a_scrape_shows_what_waits_in_the_outbox_and_since_when() -> None:
    store = FakeStore()
    written = utcnow() - timedelta(minutes=2)
    with store.unit_of_work() as uow:
        for destination in ("C1", "C2", "C3", "C4"):
            uow.outbox.add(
                OutboxEntry(
                    kind="message",
                    topic="audit",
                    destination=destination,
                    app_id=None,
                    payload={},
                    created_at=written,
                )
            )
        uow.outbox.update(3, {"status": "dead"})  # given up
        uow.outbox.update(4, {"status": "delivered"})
        uow.commit()
    families = scrape(store)
    assert families["planbot_database_up"].samples[0].value == 1
    assert families["planbot_outbox_pending"].samples[0].value == 2
    assert families["planbot_outbox_dead"].samples[0].value == 1
    assert 120 <= families["planbot_outbox_oldest_seconds"].samples[0].value < 600


def test_a_run_without_a_metrics_directory_gets_one_and_removes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(metricsdir.VARIABLE, raising=False)
    clean_up = metricsdir.prepare(starts_run=True)
    made = Path(os.environ[metricsdir.VARIABLE])
    assert made.is_dir() and made.name.startswith("planbot-metrics-")
    (made / "counter_123.db").write_bytes(b"x")
    clean_up()
    assert not made.exists()


def test_a_named_metrics_directory_is_emptied_of_its_counts_when_a_run_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(metricsdir.VARIABLE, str(tmp_path / "metrics"))
    metricsdir.prepare(starts_run=False)  # created, nothing removed
    directory = tmp_path / "metrics"
    for name in ("counter_1.db", "gauge_livesum_1.db", "histogram_1.db", "notes.txt"):
        (directory / name).write_bytes(b"x")
    metricsdir.prepare(starts_run=False)  # one of a run's processes: leaves them
    assert len(list(directory.iterdir())) == 4
    clean_up = metricsdir.prepare(starts_run=True)
    clean_up()  # the operator's directory stays
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]


def test_a_scrape_adds_up_every_process_even_while_one_creates_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(metricsdir.VARIABLE, str(tmp_path))
    for pid, count in ((101, 2.0), (102, 3.0)):
        counts = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        counts.write_value(
            mmap_key(
                "planbot_requests",
                "planbot_requests_total",
                ["kind", "outcome"],
                ["command:status", "ok"],
                "Slack requests answered",
            ),
            count,
            0.0,
        )
        counts.close()
    # a third process is creating its file: it exists, still empty
    (tmp_path / "counter_103.db").touch()
    families = scrape(FakeStore())
    (sample,) = [
        s for s in families["planbot_requests"].samples if s.name == "planbot_requests_total"
    ]
    assert sample.labels == {"kind": "command:status", "outcome": "ok"}
    assert sample.value == 5.0
    assert families["planbot_database_up"].samples[0].value == 1


class _Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, destination: str, payload: Any, **options: Any) -> dict[str, Any]:
        self.sent.append((destination, options))
        return {"ts": "1.0"}


def delivered(destination: str) -> float:
    labels = {"destination": destination, "result": "delivered"}
    return REGISTRY.get_sample_value("planbot_deliveries_total", labels) or 0.0


def test_deliveries_are_counted_by_the_kind_of_destination_never_its_id() -> None:
    sender = _Sender()
    notifier = _ObservedNotifier(sender, {"C0AUDIT": "audit_channel"})
    kinds = ("audit_channel", "channel", "person", "home")
    before = {kind: delivered(kind) for kind in kinds}
    for destination in ("C0AUDIT", "C0TEAM", "home:U0REQUESTER", "U0REQUESTER"):
        notifier.send(destination, {"text": "x"}, replaces={"ts": "0.5"})
    assert {kind: delivered(kind) - before[kind] for kind in kinds} == dict.fromkeys(kinds, 1.0)
    # what the dispatcher asked for reaches Slack's notifier unchanged
    assert sender.sent[-1] == ("U0REQUESTER", {"replaces": {"ts": "0.5"}})
