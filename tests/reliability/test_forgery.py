"""Forged and misdirected requests: refused, logged, and never applied.

Bad signatures, stale timestamps and replayed bodies get 401 before anything reads them, and the
server's log says so. Well-signed clicks that carry someone else's request id, or an id that never
existed, reach the core, which refuses them with a clear message and writes a refused audit event.
Throughout, the targeted app and the pending request stay as they were; the owner's own click
still works afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from fakes.signing import block_action_body, signed_headers, slash_command_body
from fakes.slack import FakeSlack
from tests.e2e.conftest import ADMIN, SECRET, TEAM, Served, card_text, start_planbot, stop_planbot
from tests.reliability.conftest import query, record

pytestmark = [pytest.mark.e2e]

APP = "1400000021"
OTHER_ADMIN = "UBOB"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server runs and writes `server.log`."""
    return tmp_path_factory.mktemp("forgery")


@pytest.fixture(scope="module")
def planbot(workdir: Path, slack: FakeSlack) -> Iterator[Served]:
    served = start_planbot(
        workdir,
        slack,
        extra={"PLANBOT_ADMINS": f"{ADMIN},{OTHER_ADMIN}", "PLANBOT_LOG_LEVEL": "WARNING"},
    )
    yield served
    stop_planbot(served)


def post(planbot: Served, body: bytes, headers: Mapping[str, str | bytes]) -> int:
    response = planbot.http.post(f"{planbot.url}/slack/events", content=body, headers=headers)
    assert "Traceback" not in response.text
    return response.status_code


def test_forged_stale_and_replayed_requests_are_refused_logged_and_not_applied(
    planbot: Served, slack: FakeSlack, workdir: Path
) -> None:
    _, request_id = planbot.preview(f"upgrade {APP} premium")
    before = planbot.app(APP)
    now = int(time.time())
    url = slack.response_url("forged")
    command = slash_command_body(f"upgrade {APP} standard", ADMIN, TEAM, url)
    click = block_action_body("plan_confirm", request_id, ADMIN, TEAM, url)
    old = signed_headers(click, SECRET, now - 60)
    attempts = {
        "command, wrong secret": (command, signed_headers(command, "not-the-secret")),
        "click, wrong secret": (click, signed_headers(click, "not-the-secret")),
        "command, 6 minutes old": (command, signed_headers(command, SECRET, now - 360)),
        "click, 6 minutes old": (click, signed_headers(click, SECRET, now - 360)),
        "click, timestamp from the future": (click, signed_headers(click, SECRET, now + 360)),
        "click replayed with a new timestamp": (
            click,
            {**old, "X-Slack-Request-Timestamp": str(now)},
        ),
        "click, body changed after signing": (
            click.replace(b"plan_confirm", b"plan_cancel"),
            signed_headers(click, SECRET),
        ),
        "click, no signature": (click, {"Content-Type": "application/x-www-form-urlencoded"}),
        "click, garbage signature": (
            click,
            {**signed_headers(click, SECRET), "X-Slack-Signature": "v0=" + "0" * 64},
        ),
        "click, bad timestamp": (
            click,
            {**signed_headers(click, SECRET), "X-Slack-Request-Timestamp": "soon"},
        ),
        "click, non-ASCII signature": (
            click,
            {**signed_headers(click, SECRET), "X-Slack-Signature": "v0=\xe9".encode("latin-1")},
        ),
    }
    statuses = {what: post(planbot, body, headers) for what, (body, headers) in attempts.items()}
    assert statuses == dict.fromkeys(attempts, 401)

    # Well signed, but not theirs to press, or about nothing that exists: refused by the core.
    planbot.click("plan_confirm", request_id, user=OTHER_ADMIN, response="not-yours")
    planbot.click("plan_cancel", request_id, user="UEVE", response="not-yours-cancel")
    planbot.click("plan_confirm", "never-existed-42", response="ghost")
    assert "belongs to" in card_text(slack.wait_for_response("not-yours"))
    assert "belongs to" in card_text(slack.wait_for_response("not-yours-cancel"))
    assert "doesn't exist" in card_text(slack.wait_for_response("ghost"))
    time.sleep(0.5)
    assert slack.responses("forged") == [], "a forged request is never answered"

    after = planbot.app(APP)
    assert (after.plan, after.version) == (before.plan, before.version) == ("developer", 1)
    (pending,) = query(
        planbot.database_url, "SELECT state FROM pending_request WHERE id = :r", r=request_id
    )
    assert pending.state == "pending"

    # Logged: the refused signatures in the server's log, the refused clicks in the audit log.
    log = (workdir / "server.log").read_text()
    logged = log.lower().count("signature")
    assert logged >= len(attempts), log[-3000:]
    refused = query(
        planbot.database_url,
        "SELECT actor_id, request_id FROM audit_event WHERE outcome = 'refused' ORDER BY seq",
    )
    assert [(r.actor_id, r.request_id) for r in refused] == [
        (OTHER_ADMIN, request_id),
        ("UEVE", request_id),
        (ADMIN, "never-existed-42"),
    ]

    # The owner's click still works: nothing above consumed the request.
    planbot.click("plan_confirm", request_id, response="owner")
    assert "upgraded" in card_text(slack.wait_for_response("owner"))
    assert planbot.app(APP).version == 2

    # Replaying the owner's genuine, fresh click changes nothing a second time.
    planbot.click("plan_confirm", request_id, response="owner-replay")
    assert "already done" in card_text(slack.wait_for_response("owner-replay"))
    assert planbot.app(APP).version == 2
    record(
        "forgery",
        refused_401=len(attempts),
        logged_401=logged,
        refused_clicks_audited=len(refused),
        applied=0,
    )
