"""`GET /metrics` of the real `planbot serve`, and its JSON log lines.

The figures are read as Prometheus reads them (the text format, parsed by prometheus-client's own
parser): a command is counted once it is answered, the outbox's backlog grows while Slack is down
and drains when it is back, and several server processes with their delivery worker report one
set of figures, whichever of them answers the scrape.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.observe import KINDS, OUTCOMES
from fakes.signing import (
    block_suggestion_body,
    event_body,
    shortcut_body,
    signed_headers,
    signed_json_headers,
)
from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    ADMIN,
    AUDIT,
    SECRET,
    TEAM,
    Served,
    child_pids,
    start_planbot,
    stop_planbot,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e]

TOKEN = "e2e-metrics-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DESTINATIONS = {
    "audit_channel",
    "approvals_channel",
    "channel",
    "person",
    "home",
    "response_url",
    "provisioner",
}
RESULTS = {"delivered", "retry", "dead"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(served: Served, *, fresh: bool = False) -> Samples:
    """Every sample of /metrics, keyed by name and labels (`fresh`: on a new connection)."""
    if fresh:
        with httpx.Client(timeout=10) as http:
            response = http.get(f"{served.url}/metrics", headers=AUTH)
    else:
        response = served.http.get(f"{served.url}/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when it is not there yet, as for a counter never incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def planbot(tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack) -> Iterator[Served]:
    served = start_planbot(
        tmp_path_factory.mktemp("metrics"), slack, extra={"PLANBOT_METRICS_TOKEN": TOKEN}
    )
    yield served
    stop_planbot(served)


def test_metrics_need_the_bearer_token(planbot: Served) -> None:
    url = f"{planbot.url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = planbot.http.get(url, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "planbot_" not in refused.text
    answered = planbot.http.get(url, headers=AUTH)
    assert answered.status_code == 200
    assert answered.headers["content-type"].startswith("text/plain")
    assert "planbot_outbox_pending" in answered.text


def test_a_command_is_counted_once_it_is_answered(planbot: Served) -> None:
    before = scrape(planbot)
    assert planbot.command("status 1400000101").status_code == 200
    after = scrape(planbot)
    ok = {"kind": "command:status", "outcome": "ok"}
    assert (
        value(after, "planbot_requests_total", **ok)
        == value(before, "planbot_requests_total", **ok) + 1
    )
    count = ("planbot_ack_seconds_count", {"kind": "command:status"})
    assert value(after, count[0], **count[1]) == value(before, count[0], **count[1]) + 1
    fast = {"kind": "command:status", "le": "3.0"}
    assert (
        value(after, "planbot_ack_seconds_bucket", **fast)
        == value(before, "planbot_ack_seconds_bucket", **fast) + 1
    )

    assert planbot.command("status no-such-app").status_code == 200
    assert planbot.command("statsu 1400000101").status_code == 200
    forged = planbot.command("status 1400000101", secret="not-the-secret")
    assert forged.status_code == 401
    later = scrape(planbot)
    for labels in (
        {"kind": "command:status", "outcome": "refused"},
        {"kind": "command:invalid", "outcome": "refused"},
        {"kind": "other", "outcome": "unsigned"},
    ):
        assert (
            value(later, "planbot_requests_total", **labels)
            == value(after, "planbot_requests_total", **labels) + 1
        ), labels


def test_a_click_is_counted_by_what_it_did(planbot: Served, slack: FakeSlack) -> None:
    _, request_id = planbot.preview("extend 1400000022", response="m-click")
    before = scrape(planbot)
    assert planbot.click("plan_confirm", request_id, response="m-click").status_code == 200
    assert planbot.click("plan_confirm", request_id, response="m-click").status_code == 200
    after = scrape(planbot)
    for outcome in ("ok", "already_done"):
        labels = {"kind": "action:confirm", "outcome": outcome}
        assert (
            value(after, "planbot_requests_total", **labels)
            == value(before, "planbot_requests_total", **labels) + 1
        )
    # the delivery worker's figures are in the server's /metrics
    eventually(
        lambda: (
            value(
                scrape(planbot),
                "planbot_deliveries_total",
                destination="response_url",
                result="delivered",
            )
            >= 2
        ),
        what="the card replacement and the reply counted as delivered",
    )
    samples = scrape(planbot)
    assert value(samples, "planbot_processes", role="server") == 1
    assert value(samples, "planbot_processes", role="deliver") == 1
    assert value(samples, "planbot_database_up") == 1
    # the confirmation's write waited its turn among SQLite's writers (and was counted)
    assert value(samples, "planbot_db_wait_seconds_count", what="writer_queue") >= 1
    assert value(samples, "planbot_db_wait_seconds_count", what="audit_chain_head") == 0


def test_the_home_tab_the_shortcut_and_the_picker_are_counted_by_kind(planbot: Served) -> None:
    before = scrape(planbot)
    opened = event_body({"type": "app_home_opened", "user": ADMIN, "tab": "home"})
    shortcut = shortcut_body("plan_shortcut", ADMIN)
    typed = block_suggestion_body("plan_pick_app", "e2e-std", ADMIN)
    for body, headers in (
        (opened, signed_json_headers(opened, SECRET)),
        (shortcut, signed_headers(shortcut, SECRET)),
        (typed, signed_headers(typed, SECRET)),
    ):
        answered = planbot.http.post(f"{planbot.url}/slack/events", content=body, headers=headers)
        assert answered.status_code == 200, answered.text
    after = scrape(planbot)
    for kind in ("event:app_home_opened", "shortcut:plan", "options:app"):
        labels = {"kind": kind, "outcome": "ok"}
        assert (
            value(after, "planbot_requests_total", **labels)
            == value(before, "planbot_requests_total", **labels) + 1
        ), kind
    # the tab is drawn by the delivery worker, and counted as a delivery to a home tab
    home = {"destination": "home", "result": "delivered"}
    eventually(
        lambda: (
            value(scrape(planbot), "planbot_deliveries_total", **home)
            > value(before, "planbot_deliveries_total", **home)
        ),
        what="the home tab drawn",
    )


def test_the_outbox_fills_while_slack_is_down_and_drains_after(
    planbot: Served, slack: FakeSlack
) -> None:
    apps = ["1400000023", "1400000024", "1400000025"]
    before = scrape(planbot)
    slack.outage(120, "server_error", methods=["chat.postMessage", "response_url"])
    try:
        for app in apps:
            _, request_id = planbot.preview(f"extend {app}", response=f"m-out-{app}")
            assert planbot.click("plan_confirm", request_id, response=f"m-out-{app}").is_success
        # each change leaves an audit message, its owner channel's copy and the card replacement
        filling = eventually(
            lambda: (
                (s := scrape(planbot))
                and value(s, "planbot_outbox_pending") >= 3 * len(apps)
                and value(
                    s, "planbot_deliveries_total", destination="audit_channel", result="retry"
                )
                > value(
                    before, "planbot_deliveries_total", destination="audit_channel", result="retry"
                )
                and s
            ),
            what="the outbox to fill and the worker to retry",
        )
        assert value(filling, "planbot_outbox_oldest_seconds") > 0
        time.sleep(1.0)
        older = scrape(planbot)
        assert value(older, "planbot_outbox_oldest_seconds") > value(
            filling, "planbot_outbox_oldest_seconds"
        )
        assert value(older, "planbot_outbox_pending") >= 3 * len(apps)
    finally:
        slack.heal()
    drained = eventually(
        lambda: (s := scrape(planbot)) and value(s, "planbot_outbox_pending") == 0 and s,
        timeout=40,
        what="the outbox to drain",
    )
    assert value(drained, "planbot_outbox_oldest_seconds") == 0
    assert value(drained, "planbot_outbox_dead") == 0
    delivered = (
        "planbot_deliveries_total",
        {"destination": "audit_channel", "result": "delivered"},
    )
    assert value(drained, delivered[0], **delivered[1]) >= value(
        before, delivered[0], **delivered[1]
    ) + len(apps)
    for app in apps:
        assert len([m for m in slack.messages(AUDIT) if app in str(m)]) == 1, app


def test_labels_carry_no_user_data(planbot: Served) -> None:
    planbot.command('create "<@U0SECRET> & friends"', user="U0SOMEONE")
    planbot.command("status 1400000026")
    text = planbot.http.get(f"{planbot.url}/metrics", headers=AUTH).text
    for secret in (ADMIN, "U0SOMEONE", "U0SECRET", "1400000026", "1400000101", TEAM, AUDIT):
        assert secret not in text, secret
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            assert labels.get("kind", "other") in KINDS, labels
            assert labels.get("outcome", "ok") in OUTCOMES, labels
            assert labels.get("destination", "channel") in DESTINATIONS, labels
            assert labels.get("result", "retry") in RESULTS | {"ok", "failed"}, labels


def test_several_server_processes_and_their_worker_report_one_set_and_log_json(
    tmp_path: Path, slack: FakeSlack
) -> None:
    served = start_planbot(
        tmp_path,
        slack,
        args=["--workers", "2"],
        extra={
            "PLANBOT_METRICS_TOKEN": TOKEN,
            "PLANBOT_LOG_FORMAT": "json",
            "PLANBOT_LOG_LEVEL": "INFO",
        },
    )
    try:
        statuses = []
        for _ in range(24):  # a connection each, so the kernel spreads them over both processes
            with httpx.Client(timeout=10) as http:
                served.http = http
                statuses.append(served.command("status no-such-app").status_code)
        served.http = httpx.Client(timeout=10)
        assert statuses == [200] * 24
        refused = {"kind": "command:status", "outcome": "refused"}
        for _ in range(6):  # whichever process answers the scrape, it sees them all
            samples = scrape(served, fresh=True)
            assert value(samples, "planbot_requests_total", **refused) == 24
            assert value(samples, "planbot_processes", role="server") == 2
        eventually(
            lambda: value(scrape(served, fresh=True), "planbot_processes", role="deliver") == 1,
            what="the delivery worker to count itself",
        )

        # One server process dies and is started again: it counts once, and what it had
        # answered is still counted.
        supervisor_children = child_pids(served.process.pid)
        assert len(supervisor_children) == 3  # two server processes, one delivery worker
        servers = [
            pid
            for pid in supervisor_children
            if "serve" in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        ]
        assert len(servers) == 2
        os.kill(servers[0], signal.SIGKILL)
        eventually(
            lambda: (
                len(
                    [
                        pid
                        for pid in child_pids(served.process.pid)
                        if pid not in supervisor_children
                    ]
                )
                == 1
            ),
            what="the server process to be started again",
        )
        samples = eventually(
            lambda: (
                (s := scrape(served, fresh=True))
                and value(s, "planbot_processes", role="server") == 2
                and s
            ),
            what="the new server process to count itself (and the dead one no more)",
        )
        assert value(samples, "planbot_requests_total", **refused) == 24
    finally:
        stop_planbot(served)

    lines = (tmp_path / "server.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    requests = [e for e in entries if e["logger"] == "planbot.requests"]
    assert len(requests) == 24
    for entry in requests:
        assert entry["kind"] == "command:status" and entry["outcome"] == "refused"
        assert entry["user"] == ADMIN and entry["app"] == "no-such-app"
        assert isinstance(entry["duration_ms"], float | int) and entry["duration_ms"] >= 0
    processes = {e["request_id"].split("-")[0] for e in requests}
    assert len(processes) == 2, "both server processes answered"
    assert any(e["logger"] == "bot.worker" for e in entries)  # the worker's lines too
    assert any(e["logger"].startswith("uvicorn") for e in entries)
