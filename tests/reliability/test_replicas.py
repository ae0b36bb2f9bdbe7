"""Two `planbot serve` replicas on one PostgreSQL database, with no balancer in front.

Clicks are split between the replicas by hand. Whatever arrives where, a request is confirmed
once: one change, one applied audit event, one audit message per destination.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakes.slack import FakeSlack
from tests.e2e.conftest import AUDIT, TEAM, Served, card_text, start_planbot
from tests.reliability.conftest import (
    applied_events,
    audit_verify,
    consistency_problems,
    delivered_seqs,
    developer_csv,
    import_csv,
    query,
    record,
    serve,
    stop_all,
    wait_outbox_drained,
)
from tests.support.waiting import eventually, settled

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

#: developer apps imported beside the seed's 59, so 200 requests need 200 different apps
EXTRA_FIRST, EXTRA_COUNT = 1400100001, 142
SEED_DEVELOPER_APPS = [f"14000000{n:02d}" for n in range(2, 60)]  # 1400000001 is for the race
BULK_APPS = SEED_DEVELOPER_APPS + [str(EXTRA_FIRST + i) for i in range(EXTRA_COUNT)]
#: requests in flight at once (8 per replica): more only queues on a 2-core CI machine
CONCURRENCY = 16


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack, postgres_url: str
) -> Iterator[tuple[Served, Served]]:
    """Replica A (which imported the seed) and replica B, on one database."""
    tmp = tmp_path_factory.mktemp("replicas")
    import_csv(postgres_url, developer_csv(EXTRA_FIRST, EXTRA_COUNT))
    extra = {"PLANBOT_SWEEP_INTERVAL": "2"}  # both replicas sweep, and deliver, all along
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # B starts while A imports the seed: the schema is already there, the apps need not be.
        starting = pool.submit(serve, tmp, slack, postgres_url, extra=extra, log="replica-b.log")
        first = start_planbot(tmp, slack, database_url=postgres_url, extra=extra)
        second = starting.result()
    first.http.close()  # a longer timeout: on a loaded CI machine, slow is not failed
    first.http = httpx.Client(timeout=60)
    yield first, second
    stop_all(first, second)


def wait_for_replies(slack: FakeSlack, names: list[str], timeout: float) -> dict[str, list[dict]]:
    """The response_url posts under each name, once every name has at least one."""
    return eventually(
        lambda: {name: slack.responses(name) for name in names},
        timeout,
        "a reply under every name",
        until=lambda replies: all(replies.values()),
        every=0.1,
    )


def test_fifty_clicks_on_one_confirm_across_two_replicas_change_once(
    replicas: tuple[Served, Served], slack: FakeSlack
) -> None:
    first, second = replicas
    _, request_id = first.preview("upgrade 1400000001 premium")
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        statuses = list(
            pool.map(
                lambda i: (
                    (first if i % 2 else second)
                    .click("plan_confirm", request_id, response="race")
                    .status_code
                ),
                range(50),
            )
        )
    clicks_s = time.monotonic() - start
    assert statuses == [200] * 50

    settled(lambda: slack.responses("race"), 20, until=lambda r: len(r) >= 50)
    replies = [card_text(r) for r in slack.responses("race")]
    assert len(replies) == 50
    assert sum("upgraded" in r for r in replies) == 1, replies
    assert sum("already done" in r for r in replies) == 49, replies

    app = first.app("1400000001")
    assert (app.plan, app.version) == ("premium", 2)
    events = query(
        first.database_url,
        "SELECT outcome FROM audit_event WHERE request_id = :r",
        r=request_id,
    )
    assert [e.outcome for e in events] == ["applied"], "a repeated click is not audited again"
    history = query(
        first.database_url, "SELECT id FROM plan_history WHERE request_id = :r", r=request_id
    )
    assert len(history) == 1

    wait_outbox_drained(first.database_url, timeout=30)
    time.sleep(1)  # a duplicate delivery would show up now
    (seq,) = [s for s, (_, rid) in applied_events(first.database_url).items() if rid == request_id]
    for channel in (AUDIT, TEAM):
        assert delivered_seqs(slack, channel).count(seq) == 1, channel
    record(
        "replicas: 50 clicks on one Confirm",
        clicks=50,
        changes=1,
        already_done=49,
        applied_events=1,
        audit_messages_per_channel=1,
        seconds=round(clicks_s, 2),
    )


def test_two_hundred_requests_confirmed_across_two_replicas_apply_once_each(
    replicas: tuple[Served, Served], slack: FakeSlack, tmp_path: Path
) -> None:
    first, second = replicas
    plans = {app: ("standard", "premium")[i % 2] for i, app in enumerate(BULK_APPS)}
    assert len(plans) == 200

    def preview(i_app: tuple[int, str]) -> tuple[str, str]:
        i, app = i_app
        replica = first if i % 2 else second
        _, request_id = replica.preview(f"upgrade {app} {plans[app]}")
        return app, request_id

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        requests = dict(pool.map(preview, enumerate(BULK_APPS)))
    previews_s = time.monotonic() - start
    assert len(set(requests.values())) == 200

    def confirm(i_app: tuple[int, str]) -> float:
        i, app = i_app
        replica = second if i % 2 else first  # the other replica than the preview's
        sent = time.monotonic()
        response = replica.click("plan_confirm", requests[app], response=f"bulk-{app}")
        assert response.status_code == 200
        return time.monotonic() - sent

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        latencies = sorted(pool.map(confirm, enumerate(BULK_APPS)))
    confirms_s = time.monotonic() - start

    replies = wait_for_replies(slack, [f"bulk-{app}" for app in BULK_APPS], timeout=30)
    for app in BULK_APPS:
        texts = [card_text(r) for r in replies[f"bulk-{app}"]]
        assert len(texts) == 1 and "upgraded" in texts[0], (app, texts)

    url = first.database_url
    versions = {
        r.app_id: (r.plan, r.version)
        for r in query(url, "SELECT app_id, plan, version FROM app WHERE version > 1")
    }
    for app in BULK_APPS:
        assert versions[app] == (plans[app], 2), app
    events = applied_events(url)
    per_request = Counter(rid for _, rid in events.values())
    assert all(per_request[rid] == 1 for rid in requests.values())

    drained_s = wait_outbox_drained(url, timeout=60)
    time.sleep(1)  # a duplicate delivery would show up now
    seqs = {seq for seq, (_, rid) in events.items() if rid in set(requests.values())}
    for channel in (AUDIT, TEAM):
        delivered = Counter(delivered_seqs(slack, channel))
        assert all(delivered[seq] == 1 for seq in seqs), channel
    assert consistency_problems(url) == []
    verified = audit_verify(slack, url, tmp_path)
    assert verified.returncode == 0, verified.stderr
    record(
        "replicas: 200 requests",
        requests=200,
        in_flight=CONCURRENCY,
        applied=len(seqs),
        audit_messages=2 * len(seqs),
        duplicates=0,
        previews_s=round(previews_s, 2),
        confirms_s=round(confirms_s, 2),
        confirm_p50_s=round(latencies[100], 3),
        confirm_max_s=round(latencies[-1], 3),
        outbox_drained_after_s=round(drained_s, 2),
        audit_chain=verified.stdout.strip(),
    )
