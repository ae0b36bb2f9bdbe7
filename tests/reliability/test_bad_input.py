"""Bad input, fuzzed with hypothesis against the running server, correctly signed.

`/plan` text: any Unicode, huge, near-misses of real commands, mrkdwn and HTML, mentions. Every one
is answered 200 with a clear ephemeral message within Block Kit's limits, never an internal error,
and user text never becomes a live @channel mention.

Interaction payloads: malformed JSON in `payload=`, JSON of the wrong shape, block actions with
missing or wrong-typed fields, unknown action ids, huge values, and slash commands missing fields.
None is answered with a 5xx or a stack trace, neither in the HTTP answer nor in what is posted to
the `response_url`.

Nothing in the database changes: the apps and their plan history are the same before and after.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.signing import signed_headers, slash_command_body
from fakes.slack import FakeSlack
from tests.e2e.conftest import ADMIN, SECRET, TEAM, Served, card_text, start_planbot, stop_planbot
from tests.reliability.conftest import app_snapshot, record

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LEAKS = ("Traceback", 'File "', "Exception", "Error:", "sqlalchemy", "psycopg", "NoneType")
MENTIONS = ("<!channel>", "<!here>", "<!everyone>")

SUBCOMMANDS = [
    "help",
    "list",
    "status",
    "upgrade",
    "config",
    "extend",
    "disable",
    "enable",
    "migrate",
    "create",
    "history",
    "bill",
    "access",
]
NASTY = [
    "<!channel>",
    "<!here|here>",
    "<@UADMIN>",
    "<#CTEAM>",
    "<script>alert(1)</script>",
    "*bold*",
    "_it_",
    "~strike~",
    "`code`",
    "```block```",
    "<http://evil.example|click me>",
    "&amp;&lt;&gt;",
    "> quote",
    "\u202eevil",
    "\x00",
    "\ud7ff",
    "👩‍💻",
    "앱",
    "edition=premium",
    "history_retention=90d",
    "=",
    "1400000001",
    "1400000900",
    "e2e-dev-1",
    "premium",
    "standard",
    "developer",
    "2025-13",
    "9" * 40,
    '"',
    "'",
    "\\",
    "--",
    "%",
    "_",
    "payload",
    "payload=",
]

word = st.one_of(st.sampled_from(SUBCOMMANDS + NASTY), st.text(max_size=30))
command_text = st.one_of(
    st.text(max_size=300),
    st.lists(word, max_size=8).map(" ".join),
    st.tuples(st.sampled_from(SUBCOMMANDS), st.lists(word, max_size=5)).map(
        lambda t: " ".join([t[0], *t[1]])
    ),
    st.text(min_size=1, max_size=3).map(lambda s: s * 1500),  # far beyond /plan's 2000
)

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
ACTION_IDS = [
    "plan_confirm",
    "plan_cancel",
    "plan_approve",
    "plan_reject",
    "plan_start_extend",
    "plan_start_enable",
]


@st.composite
def block_action(draw: st.DrawFn) -> dict[str, Any]:
    """A block_actions payload with any of its fields missing, mistyped or absurd."""
    action: dict[str, Any] = {
        "action_id": draw(st.one_of(st.sampled_from(ACTION_IDS), st.text(max_size=40))),
        "block_id": "actions",
        "type": "button",
        "value": draw(
            st.one_of(
                st.text(max_size=60),
                st.sampled_from(NASTY),
                st.text(min_size=1, max_size=2).map(lambda s: s * 3000),
                json_value,
            )
        ),
    }
    payload: dict[str, Any] = {
        "type": draw(st.sampled_from(["block_actions", "block_actions", "view_submission", "x"])),
        "user": draw(
            st.one_of(
                st.just({"id": ADMIN, "name": "admin"}),
                st.builds(lambda i, n: {"id": i, "name": n}, st.text(max_size=20), json_value),
                json_value,
            )
        ),
        "team": {"id": "T1"},
        "channel": draw(st.one_of(st.just({"id": TEAM}), json_value)),
        "container": {"type": "message", "is_ephemeral": True},
        "response_url": "",  # set by the test
        "actions": draw(st.one_of(st.just([action]), st.lists(json_value, max_size=2))),
    }
    for key in draw(st.sets(st.sampled_from(sorted(payload)), max_size=3)):
        del payload[key]
    return payload


interaction_body = st.one_of(
    st.text(max_size=200).map(lambda s: {"payload": s}),  # malformed JSON
    json_value.map(lambda v: {"payload": json.dumps(v)}),  # JSON of the wrong shape
    block_action().map(lambda p: {"payload": p}),
    st.dictionaries(
        st.sampled_from(["command", "text", "user_id", "channel_id", "response_url", "team_id"]),
        st.text(max_size=40),
    ).map(lambda d: {"command": "/plan", **d}),  # a slash command missing fields
)


@pytest.fixture(scope="module")
def planbot(tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack) -> Iterator[Served]:
    served = start_planbot(tmp_path_factory.mktemp("fuzz"), slack)
    yield served
    stop_planbot(served)


@pytest.fixture(scope="module")
def before(planbot: Served) -> dict[str, tuple[Any, ...]]:
    """The apps before any fuzzing."""
    return app_snapshot(planbot.database_url)


def post_signed(planbot: Served, body: bytes) -> Any:
    return planbot.http.post(
        f"{planbot.url}/slack/events", content=body, headers=signed_headers(body, SECRET)
    )


def mrkdwn_texts(node: Any) -> Iterator[str]:
    """Every text Slack parses for markup and mentions (plain_text, like headers, is not)."""
    if isinstance(node, dict):
        if node.get("type") == "plain_text":
            return
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from mrkdwn_texts(item)


def leaks(text: str, sent: str) -> list[str]:
    """Internals in an answer (unless the sender typed them, and the answer quotes them)."""
    return [leak for leak in LEAKS if leak in text and leak not in sent]


def check_message(message: dict[str, Any], sent: str) -> None:
    """A clear message Slack would accept, with no internals and no live mass mention."""
    text = card_text(message)
    assert text.strip(), message
    assert not leaks(text, sent), text[:500]
    assert "Something went wrong" not in text, "a command must get a clear message, not an error"
    marked_up = "\n".join(mrkdwn_texts(message))
    assert not any(m in marked_up for m in MENTIONS), marked_up[:500]
    blocks = message.get("blocks", [])
    assert len(blocks) <= 50
    for block in blocks:
        if block.get("type") == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        if block.get("type") == "header":
            assert len(block["text"]["text"]) <= 150


def test_fuzzed_plan_text_gets_a_clear_message(
    planbot: Served, slack: FakeSlack, before: dict[str, tuple[Any, ...]]
) -> None:
    seen: list[str] = []

    @FUZZ
    @given(text=command_text)
    def fuzz(text: str) -> None:
        seen.append(text)
        response = planbot.command(text, response="fuzz-command")
        assert response.status_code == 200, (text, response.status_code, response.text[:300])
        if not text.strip():  # `/plan` alone opens the modal: an empty ack
            assert response.text == "", (text, response.text[:300])
            return
        check_message(response.json(), text)

    start = time.monotonic()
    fuzz()
    elapsed = time.monotonic() - start
    # Bolt mistakes a form body containing the word "payload" for an interaction (a 404).
    card, _ = planbot.preview("create payload-api", response="payload")
    assert "payload-api" in card_text(card)
    time.sleep(0.5)
    for posted in slack.responses("fuzz-command"):
        check_message(posted, "")
    assert app_snapshot(planbot.database_url) == before
    record(
        "bad input: /plan text",
        examples=len(seen),
        longest=max(map(len, seen)),
        server_errors=0,
        apps_changed=0,
        seconds=round(elapsed, 1),
    )


def test_fuzzed_interaction_payloads_never_fail_or_leak(
    planbot: Served, slack: FakeSlack, before: dict[str, tuple[Any, ...]]
) -> None:
    statuses: list[int] = []
    response_url = slack.response_url("fuzz-payload")
    sent = ""  # everything sent, so quoted input is not mistaken for a leak

    @FUZZ
    @given(fields=interaction_body)
    def fuzz(fields: dict[str, Any]) -> None:
        if isinstance(fields.get("payload"), dict):
            payload = dict(fields["payload"])
            if "response_url" in payload:
                payload["response_url"] = response_url
            fields = {"payload": json.dumps(payload)}
        elif "command" in fields and "response_url" in fields:
            fields = {**fields, "response_url": response_url}
        nonlocal sent
        body = urlencode(fields).encode()
        sent += json.dumps(fields)
        response = post_signed(planbot, body)
        statuses.append(response.status_code)
        assert response.status_code < 500, (fields, response.status_code, response.text[:300])
        assert not leaks(response.text, body.decode()), response.text[:500]

    start = time.monotonic()
    fuzz()
    # a few deliberate ones on top of what hypothesis drew
    for fields in (
        {"payload": "{not json"},
        {"payload": "[]"},
        {"payload": "null"},
        {"payload": json.dumps({"type": "block_actions", "actions": [{}]})},
        {"payload": json.dumps({"type": "block_actions", "user": "x", "actions": "y"})},
    ):
        response = post_signed(planbot, urlencode(fields).encode())
        statuses.append(response.status_code)
        assert response.status_code < 500, (fields, response.text[:300])
    elapsed = time.monotonic() - start
    body = slash_command_body("help", ADMIN, TEAM, response_url)
    assert post_signed(planbot, body).status_code == 200, "still serving"
    time.sleep(1)
    posts = slack.responses("fuzz-payload")
    for posted in posts:
        assert not leaks(card_text(posted), sent), card_text(posted)[:500]
    assert app_snapshot(planbot.database_url) == before
    record(
        "bad input: interaction payloads",
        examples=len(statuses),
        answered={str(s): statuses.count(s) for s in sorted(set(statuses))},
        response_url_posts=len(posts),
        server_errors=0,
        apps_changed=0,
        seconds=round(elapsed, 1),
    )
