"""SIGKILL at random points during confirmations: after restart nothing is half done or lost.

Each cycle starts `planbot serve`, previews a few changes, fires a burst of confirmations (each
clicked twice, plus re-clicks of requests an earlier kill left unconfirmed) and kills the server
and its delivery worker after a random delay: before, during or after the transactions, or while
the outbox delivers.
Cycles go round two SQLite files and two PostgreSQL databases (when a server is reachable), each
with its own fake Slack. At the end each database is restarted one last time and checked:

- every applied request has exactly one plan history row, one applied audit event, one audit
  outbox entry per destination and one provisioning entry; no app version moved without history;
  `planbot audit verify` passes;
- every click that was answered 200 is durable (its request is no longer pending);
- the outbox drains, every audit message reached the fake Slack, and duplicates are counted: only a
  kill between sending and marking an entry can repeat it, so at most one per destination being
  sent at the kill (the worker sends to at most SENDERS destinations at once; see core/outbox.py).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bot.worker import SENDERS
from fakes.slack import FakeSlack
from tests.e2e.conftest import Served, child_pids, seed_csv
from tests.reliability.conftest import (
    audit_seq,
    audit_verify,
    consistency_problems,
    import_csv,
    kill,
    query,
    ready,
    record,
    spawn,
    stop_all,
    wait_outbox_drained,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KILLS = int(os.environ.get("PLANBOT_RELIABILITY_KILLS", "20"))
#: a crashed delivery's lease runs out this fast, so the restart redelivers within seconds
EXTRA = {"PLANBOT_OUTBOX_LEASE": "2"}
APPS = [f"14000000{n:02d}" for n in range(1, 60)]


@dataclass
class Target:
    """One database under test, with its fake Slack and what the kills left behind."""

    name: str
    url: str
    tmp: Path
    slack: FakeSlack
    kills: int = 0
    requests: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    clicks: int = 0
    next_app: int = 0

    def apps(self, n: int) -> list[str]:
        """The next `n` apps, round robin."""
        picked = [APPS[(self.next_app + i) % len(APPS)] for i in range(n)]
        self.next_app += n
        return picked


def postgres_databases_or_none(request: pytest.FixtureRequest) -> Callable[[], str] | None:
    """Makes PostgreSQL databases; None when the server is unreachable (outside CI)."""
    try:
        return request.getfixturevalue("postgres_databases")  # type: ignore[no-any-return]
    except pytest.skip.Exception:
        return None


@pytest.fixture
def targets(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Target]]:
    """Seeded databases: two SQLite files and, when reachable, two PostgreSQL databases.

    Cycles go round them, so each restart boots while the other databases' cycles run (as a
    supervisor restarts a crashed process): never two processes on one database, and 20 kills
    fit in CI's time.
    """
    found: list[Target] = []
    postgres = postgres_databases_or_none(request)
    backends = ["sqlite", "postgres", "sqlite", "postgres"] if postgres else ["sqlite"] * 3
    try:
        for n, backend in enumerate(backends):
            tmp = tmp_path_factory.mktemp(f"crash-{backend}")
            slack = FakeSlack().start()
            url = postgres() if postgres and backend == "postgres" else None
            url = url or f"sqlite:///{tmp / 'planbot.sqlite3'}"
            name = f"{backend}-{backends[: n + 1].count(backend)}"
            found.append(Target(name, url, tmp, slack))
            import_csv(url, seed_csv())
        yield found
    finally:
        for target in found:
            target.slack.stop()


def burst(served: Served, target: Target, request_ids: list[str]) -> list[threading.Thread]:
    """Click Confirm twice on each request, all at once, from threads; returns them running."""

    def click(request_id: str, n: int) -> None:
        try:
            response = served.click("plan_confirm", request_id, response=f"c-{request_id}-{n}")
        except httpx.HTTPError:
            return  # killed before it answered
        if response.status_code == 200:
            target.acknowledged.add(request_id)

    threads = [
        threading.Thread(target=click, args=(request_id, n), daemon=True)
        for request_id in request_ids
        for n in range(2)
    ]
    target.clicks += len(threads)
    for thread in threads:
        thread.start()
    return threads


def cycle(served: Served, target: Target, rng: random.Random) -> float:
    """Preview, confirm in a burst, SIGKILL after a random delay; returns the delay."""
    fresh = []
    for app in target.apps(5):
        _, request_id = served.preview(f"extend {app}")
        fresh.append(request_id)
    left_over = [r for r in target.requests if r not in target.acknowledged]
    again = rng.sample(left_over, min(2, len(left_over)))
    target.requests.extend(fresh)
    threads = burst(served, target, fresh + again)
    delay = rng.uniform(0.0, 0.6)
    time.sleep(delay)
    worker = child_pids(served.process.pid)  # the delivery worker dies with it
    served.process.kill()
    for pid in worker:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    served.process.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=10)
    kill(served)  # already dead: closes its client
    target.kills += 1
    return delay


def check(target: Target, verified: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """Check the database and the deliveries once the last restart has drained the outbox."""
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert consistency_problems(target.url) == []

    states = {r.id: r.state for r in query(target.url, "SELECT id, state FROM pending_request")}
    lost = sorted(r for r in target.acknowledged if states[r] == "pending")
    assert lost == [], "a click answered 200 must be durable"

    expected: set[tuple[str, int]] = set()
    for row in query(target.url, "SELECT destination, payload FROM outbox WHERE kind = 'message'"):
        payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
        if payload.get("audit_seq") is not None:
            expected.add((row.destination, int(payload["audit_seq"])))
    delivered: Counter[tuple[str, int]] = Counter()
    for call in target.slack.calls("chat.postMessage"):
        seq = audit_seq(call.body)
        if seq is not None:
            delivered[(call.body["channel"], seq)] += 1
    assert set(delivered) == expected, "every audit message is delivered, and only those"
    duplicates = sum(n - 1 for n in delivered.values())
    assert duplicates <= target.kills * SENDERS, "at most one repeat per entry being sent"

    applied = sum(1 for s in states.values() if s == "applied")
    return {
        "kills": target.kills,
        "clicks": target.clicks,
        "requests": len(target.requests),
        "applied": applied,
        "acknowledged": len(target.acknowledged),
        "audit_messages": len(expected),
        "duplicates": duplicates,
    }


def test_sigkill_during_confirmations_leaves_a_consistent_database(
    targets: list[Target],
) -> None:
    seed = int(os.environ.get("PLANBOT_RELIABILITY_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    start = time.monotonic()
    delays = []
    starting = {t.name: spawn(t.tmp, t.slack, t.url, extra=EXTRA) for t in targets}
    try:
        for n in range(KILLS):
            target = targets[n % len(targets)]
            delays.append(cycle(ready(starting[target.name]), target, rng))
            starting[target.name] = spawn(target.tmp, target.slack, target.url, extra=EXTRA)
        cycles_s = time.monotonic() - start
        assert sum(t.kills for t in targets) >= KILLS
        last = [ready(starting[t.name]) for t in targets]
        for target in targets:
            wait_outbox_drained(target.url, timeout=60)
        time.sleep(0.5)  # a duplicate delivery would show up now
        stop_all(*last)
    finally:  # whatever failed, no server outlives the test
        for leftover in starting.values():
            if leftover.process.poll() is None:
                leftover.process.kill()
                leftover.process.wait()
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
        verified = list(pool.map(lambda t: audit_verify(t.slack, t.url, t.tmp), targets))
    totals: Counter[str] = Counter()
    for target, verdict in zip(targets, verified, strict=True):
        figures = check(target, verdict)
        totals.update({k: v for k, v in figures.items() if isinstance(v, int)})
        record("crash, per database", **{target.name: figures["duplicates"]})
    record(
        "crash",
        seed=seed,
        databases="+".join(t.name for t in targets),
        **totals,
        kill_delay_s=f"{min(delays):.2f}-{max(delays):.2f}",
        cycles_s=round(cycles_s, 1),
    )
