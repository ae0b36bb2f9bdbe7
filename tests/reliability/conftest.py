"""What the reliability tests share: servers on an existing database, and the database's own account.

The server, the fake Slack and the signed requests come from `tests/e2e/conftest.py`. This adds what
those tests don't need: `serve` (or `spawn`, then `ready`) starts `planbot serve` on a database
that is already seeded (a second replica, or a restart after SIGKILL); `import_csv` seeds one in
this process; `consistency_problems` and friends read the tables to prove that nothing was lost or
done twice; `record` keeps each test's figures (counts, durations, duplicates), printed at the end
of the run as "reliability figures" for the README (and appended as JSON lines to the file that
PLANBOT_RELIABILITY_FIGURES names, if set).

PostgreSQL tests get a database `planbot_rel_<random>` per module, created and dropped through an
autocommit connection to PLANBOT_TEST_POSTGRES_URL (default: the local server's `test` database).
When the server is unreachable they are skipped with the reason, except in CI (CI=true): a failure.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from core import (
    Actor,
    SqlStore,
    load_catalog,
    make_engine,
    normalize_url,
    upgrade_schema,
    utcnow,
)
from core.importer import Imports
from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    AUDIT,
    PLANBOT,
    TEAM,
    Served,
    card_text,
    free_port,
    planbot_env,
)
from tests.support.postgres import scratch_databases

#: figures per test, printed at the end of the session
FIGURES: dict[str, dict[str, Any]] = {}

AUDIT_SEQ = re.compile(r"audit #(\d+)")


def record(test: str, **figures: Any) -> None:
    """Keep figures of a test for the end-of-run summary (and PLANBOT_RELIABILITY_FIGURES)."""
    FIGURES.setdefault(test, {}).update(figures)
    path = os.environ.get("PLANBOT_RELIABILITY_FIGURES")
    if path:  # a JSON line per record, also under pytest-xdist (whose workers print no summary)
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"test": test, **figures}, default=str) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures the reliability tests recorded."""
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for test, figures in FIGURES.items():
        shown = ", ".join(f"{k}={v}" for k, v in figures.items())
        terminalreporter.write_line(f"{test}: {shown}")


# --- processes -------------------------------------------------------------------------------


@dataclass
class Starting:
    """A `planbot serve` process on its way up."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    slack: FakeSlack
    database_url: str


def spawn(
    tmp: Path,
    slack: FakeSlack,
    database_url: str,
    *,
    extra: dict[str, str] | None = None,
    log: str = "server.log",
) -> Starting:
    """Launch `planbot serve` on an already seeded database (no import); don't wait for it."""
    port = free_port()
    log_path = tmp / log
    process = subprocess.Popen(
        [PLANBOT, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=planbot_env(slack, database_url, extra),
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "ab"),  # noqa: SIM115  (kept open for the process)
    )
    return Starting(process, f"http://127.0.0.1:{port}", log_path, slack, database_url)


def ready(starting: Starting, *, timeout: float = 60) -> Served:
    """Wait until the process answers /healthz."""
    http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=200))
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http.get(f"{starting.url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if starting.process.poll() is not None or time.monotonic() > deadline:
            starting.process.kill()
            http.close()
            log = starting.log.read_text()[-4000:]
            raise RuntimeError(f"planbot serve did not start:\n{log}")
        time.sleep(0.05)
    return Served(starting.url, starting.slack, starting.database_url, http, starting.process)


def serve(
    tmp: Path,
    slack: FakeSlack,
    database_url: str,
    *,
    extra: dict[str, str] | None = None,
    log: str = "server.log",
) -> Served:
    """Start `planbot serve` on an already seeded database (no import) and wait for /healthz."""
    return ready(spawn(tmp, slack, database_url, extra=extra, log=log))


def stop_all(*servers: Served) -> None:
    """SIGTERM every server at once, then wait for each (a stuck one is killed)."""
    for served in servers:
        served.http.close()
        served.process.terminate()
    for served in servers:
        try:
            served.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait()


def kill(served: Served) -> None:
    """SIGKILL: no shutdown, no cleanup, whatever it was doing."""
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(timeout=10)
    served.http.close()


def cli(
    args: list[str], slack: FakeSlack, database_url: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run a `planbot` command against the database."""
    return subprocess.run(
        [PLANBOT, *args],
        env=planbot_env(slack, database_url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def developer_csv(first_id: int, count: int, *, owner: str = TEAM) -> str:
    """`count` active developer apps from `first_id` on, owned by `owner`, valid for 20 days."""
    created = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 5 * 86400))
    expires = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 20 * 86400))
    rows = ["app_id,name,plan,created_at,billing_mode,status,owner_channel,dev_expires_at"]
    for app_id in range(first_id, first_id + count):
        rows.append(f"{app_id},rel-dev-{app_id},developer,{created},,active,{owner},{expires}")
    return "\n".join(rows) + "\n"


def import_csv(database_url: str, text: str) -> int:
    """Import apps from CSV, as `planbot apps import` does (migrating first), in this process."""
    engine = make_engine(database_url)
    try:
        upgrade_schema(engine)
        imports = Imports(
            store=SqlStore(engine),
            catalog=load_catalog(),
            tz=ZoneInfo("Asia/Shanghai"),
            clock=utcnow,
        )
        return imports.from_csv(text, actor=Actor("cli", "planbot CLI")).imported
    finally:
        engine.dispose()


def audit_verify(
    slack: FakeSlack, database_url: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`planbot audit verify` (exit 0 when the hash chain is intact)."""
    return cli(["audit", "verify"], slack, database_url, cwd)


# --- the database's own account ---------------------------------------------------------------


def query(database_url: str, sql: str, **params: Any) -> list[sa.Row[Any]]:
    """Rows of a read-only query (a plain engine: it never takes SQLite's write lock)."""
    engine = sa.create_engine(normalize_url(database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def app_snapshot(database_url: str) -> dict[str, tuple[Any, ...]]:
    """Every app's plan state and version, plus the plan history size, keyed by app id."""
    apps = {
        r.app_id: (r.name, r.plan, r.status, r.billing_mode, r.version, str(_json(r.config)))
        for r in query(
            database_url,
            "SELECT app_id, name, plan, status, billing_mode, version, config FROM app",
        )
    }
    (history,) = query(database_url, "SELECT count(*) AS n FROM plan_history")
    apps["<plan_history rows>"] = (history.n,)
    return apps


def outbox_counts(database_url: str) -> dict[str, int]:
    """Outbox entries per status."""
    return {
        r.status: int(r.n)
        for r in query(database_url, "SELECT status, count(*) AS n FROM outbox GROUP BY status")
    }


def wait_outbox_drained(database_url: str, timeout: float) -> float:
    """Wait until no outbox entry is pending; returns the seconds it took (fails on timeout)."""
    start = time.monotonic()
    while True:
        counts = outbox_counts(database_url)
        if not counts.get("pending"):
            assert not counts.get("dead"), f"outbox entries given up: {counts}"
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            pending = query(
                database_url,
                "SELECT id, destination, attempts, next_attempt_at, lease_until, last_error "
                "FROM outbox WHERE status = 'pending' ORDER BY id",
            )
            raise AssertionError(f"outbox still pending after {timeout}s: {pending[:20]}")
        time.sleep(0.2)


def audit_seq(message: dict[str, Any]) -> int | None:
    """The audit sequence number an audit message carries in its context ("audit #12")."""
    found = AUDIT_SEQ.search(card_text(message))
    return int(found.group(1)) if found else None


def delivered_seqs(slack: FakeSlack, channel: str) -> list[int]:
    """The audit numbers of the audit messages delivered to a channel, in delivery order."""
    seqs = (audit_seq(m) for m in slack.messages(channel))
    return [s for s in seqs if s is not None]


def applied_events(database_url: str) -> dict[int, tuple[str | None, str | None]]:
    """Applied audit events with a request: seq -> (app id, request id)."""
    return {
        r.seq: (r.app_id, r.request_id)
        for r in query(
            database_url,
            "SELECT seq, app_id, request_id FROM audit_event "
            "WHERE outcome = 'applied' AND request_id IS NOT NULL ORDER BY seq",
        )
    }


def consistency_problems(database_url: str) -> list[str]:
    """What contradicts "each applied change has its history, audit event and outbox entries"."""
    problems: list[str] = []
    applied = {
        r.id: r
        for r in query(
            database_url,
            "SELECT id, app_id, operation FROM pending_request WHERE state = 'applied'",
        )
    }
    history: dict[str, int] = {}
    for r in query(
        database_url, "SELECT request_id FROM plan_history WHERE request_id IS NOT NULL"
    ):
        history[r.request_id] = history.get(r.request_id, 0) + 1
    events: dict[str, int] = {}
    for r in query(
        database_url,
        "SELECT request_id FROM audit_event WHERE outcome = 'applied' AND request_id IS NOT NULL",
    ):
        events[r.request_id] = events.get(r.request_id, 0) + 1
    messages: dict[str, set[str]] = {}
    provisions: dict[str, int] = {}
    for r in query(database_url, "SELECT kind, destination, payload FROM outbox"):
        payload = _json(r.payload)
        if r.kind == "provision":
            key = str(payload.get("idempotency_key"))
            provisions[key] = provisions.get(key, 0) + 1
        elif payload.get("kind") == "change_applied" and payload.get("request_id"):
            messages.setdefault(payload["request_id"], set()).add(r.destination)
    owners = {
        r.app_id: r.owner_channel
        for r in query(database_url, "SELECT app_id, owner_channel FROM app")
    }
    for request_id, request in applied.items():
        if history.get(request_id) != 1:
            problems.append(f"request {request_id}: {history.get(request_id, 0)} history rows")
        if events.get(request_id) != 1:
            problems.append(f"request {request_id}: {events.get(request_id, 0)} applied events")
        expected = {AUDIT, owners.get(request.app_id) or AUDIT}
        if messages.get(request_id) != expected:
            problems.append(f"request {request_id}: audit messages to {messages.get(request_id)}")
        if provisions.get(request_id) != 1:
            problems.append(f"request {request_id}: {provisions.get(request_id, 0)} provisions")
    for request_id in (set(history) | set(events) | set(messages)) - set(applied):
        problems.append(f"request {request_id} left records but is not applied")
    for r in query(
        database_url,
        "SELECT a.app_id, a.version, "
        "(SELECT count(*) FROM plan_history h WHERE h.app_id = a.app_id "
        " AND h.operation <> 'import') AS changes FROM app a",
    ):
        if r.version != 1 + r.changes:
            problems.append(f"app {r.app_id}: version {r.version} but {r.changes} changes")
    return problems


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API on loopback, for the module."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Makes fresh, empty PostgreSQL databases for the module; all are dropped afterwards."""
    with scratch_databases("planbot_rel") as create:
        yield create


@pytest.fixture(scope="module")
def postgres_url(postgres_databases: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database for the module, dropped afterwards."""
    return postgres_databases()
