"""A Slack outage: rate limits, server errors and connection resets, then recovery.

While the fake Slack Web API fails every call (500, then reset connections, then 429 with a
Retry-After longer than Slack's ack limit), people keep changing a few apps, and granting and
revoking a user group's role (so the group's members must be asked of Slack). The bot acknowledges
every command and click within Slack's 3 seconds throughout; once Slack recovers, every audit
message is delivered exactly once to each destination, in the order of the changes per app.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import partial

import httpx
import pytest

from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    AUDIT,
    TEAM,
    Served,
    button_value,
    card_text,
    start_planbot,
    stop_planbot,
)
from tests.reliability.conftest import (
    applied_events,
    delivered_seqs,
    outbox_counts,
    record,
    wait_outbox_drained,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APPS = ["1400000011", "1400000012", "1400000013", "1400000014"]
#: the changes made to each app during the outage, in order (each one is a new audit message)
CHANGES = [
    "extend {app}",
    "extend {app}",
    "upgrade {app} premium",
    "config {app} edition=standard",
    "disable {app}",
    "enable {app}",
]
#: the outage: each phase fails every Web API call this way for this many seconds
PHASES = [("server_error", 3.0), ("reset", 3.0), ("ratelimited", 3.0)]
#: what the 429s ask for: Slack's own Retry-After is often longer than its 3-second ack limit
RETRY_AFTER = 5
ACK_LIMIT = 3.0
#: a user group holding a grant: who is in it is asked of Slack (and cached for a while)
GROUP, MEMBER = "S0OPS", "UOPS"


@pytest.fixture(scope="module")
def planbot(tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack) -> Iterator[Served]:
    served = start_planbot(tmp_path_factory.mktemp("outage"), slack)
    yield served
    stop_planbot(served)


def run_outage(slack: FakeSlack, over: threading.Event) -> None:
    """Fail Slack's Web API phase after phase, then recover."""
    for mode, seconds in PHASES:
        slack.outage(seconds + 1, mode, retry_after=RETRY_AFTER)  # no gap between phases
        time.sleep(seconds)
    slack.heal()
    over.set()


def test_audit_messages_survive_an_outage_exactly_once_in_order(
    planbot: Served, slack: FakeSlack
) -> None:
    latencies: list[tuple[float, str]] = []

    def timed(what: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        sent = time.monotonic()
        response = send()
        latencies.append((time.monotonic() - sent, what))
        assert response.status_code == 200, (what, response.text)
        return response

    slack.usergroups[GROUP] = [MEMBER]
    grant = f"access grant <!subteam^{GROUP}|@ops> operator"
    assert "now has" in card_text(timed("grant", partial(planbot.command, grant)).json())
    over = threading.Event()
    outage = threading.Thread(target=run_outage, args=(slack, over), daemon=True)
    started = time.monotonic()
    outage.start()
    rounds = len(CHANGES)
    pause = sum(s for _, s in PHASES) / rounds  # spread the changes over the whole outage
    made_during = 0
    for step, change in enumerate(CHANGES):
        round_start = time.monotonic()
        for app in APPS:
            text = change.format(app=app)
            card = timed(text, partial(planbot.command, text)).json()
            request_id = button_value(card, "plan_confirm")
            name = f"out-{app}-{step}"
            timed(
                f"confirm {text}", partial(planbot.click, "plan_confirm", request_id, response=name)
            )
            made_during += not over.is_set()
        # A grant or revoke empties the cache of group members: the next command asks Slack.
        change_access = grant if step % 2 else grant.replace("grant", "revoke", 1)
        timed("access", partial(planbot.command, change_access))
        timed("status", partial(planbot.command, f"status {APPS[0]}", user=MEMBER))
        time.sleep(max(0.0, pause - (time.monotonic() - round_start)))
    outage.join(timeout=30)
    recovered = time.monotonic()
    failures = slack.failures("chat.postMessage")
    slowest, what = max(latencies)
    assert slowest < ACK_LIMIT, f"{what} took {slowest:.2f}s"
    assert made_during >= len(APPS) * (rounds - 1), "the changes happened during the outage"

    for app in APPS:
        for step in range(rounds):
            outcome = card_text(slack.wait_for_response(f"out-{app}-{step}", timeout=10))
            assert "Something went wrong" not in outcome and ":no_entry:" not in outcome, outcome

    wait_outbox_drained(planbot.database_url, timeout=90)
    drained_s = time.monotonic() - recovered
    time.sleep(1)  # a duplicate delivery would show up now
    counts = outbox_counts(planbot.database_url)
    assert set(counts) <= {"delivered"}, counts

    events = applied_events(planbot.database_url)
    expected: dict[str, list[int]] = defaultdict(list)
    for seq, (app_id, _) in sorted(events.items()):
        if app_id in APPS:
            expected[app_id].append(seq)
    assert all(len(expected[app]) == rounds for app in APPS)
    for channel in (AUDIT, TEAM):
        got: dict[str, list[int]] = defaultdict(list)
        for seq in delivered_seqs(slack, channel):
            if seq in events and events[seq][0] in APPS:
                got[events[seq][0]].append(seq)
        for app in APPS:
            assert got[app] == expected[app], (channel, app, "exactly once, in order")

    statuses = [c.status for c in failures]
    assert {500, 0, 429} <= set(statuses), "the outbox met every kind of failure"
    record(
        "Slack outage",
        outage_s=round(recovered - started, 1),
        changes=len(APPS) * rounds,
        apps=len(APPS),
        requests_during=len(latencies),
        ack_max_s=round(slowest, 3),
        ack_p50_s=round(sorted(latencies)[len(latencies) // 2][0], 3),
        failed_calls_429=statuses.count(429),
        failed_calls_500=statuses.count(500),
        failed_calls_reset=statuses.count(0),
        group_lookups_failed=len(slack.failures("usergroups.users.list")),
        audit_messages=2 * len(APPS) * rounds,
        duplicates=0,
        delivered_after_recovery_s=round(drained_s, 1),
    )
