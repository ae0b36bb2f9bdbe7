"""Benchmark of the lifecycle sweep: its cost follows what is due, not the number of apps.

For each backend (a SQLite file; PostgreSQL when reachable) and each size N, it bulk-inserts N apps
and their plan history (executemany in large batches) in a steady state where nothing is due:

- 40% developer apps active, expiring 8 to 30 days from now (no reminder due yet);
- 40% standard/premium apps active; 10% developer apps suspended; 10% paid apps disabled 1 to 59
  days ago (no purge warning due yet);
- 1,000 owner teams; the previous sweep ran a minute ago and last month's statements are posted.

It times one sweep with nothing due, then makes about 1% of the apps due (a quarter each: expired
developer apps, 7-day reminders, purges, 30-day purge warnings), times one sweep again (each of
those is audited, written with its history and outbox entries), and prints a table. With
`--statements MAX_APPS` it also times, for sizes up to MAX_APPS, the sweep on the 1st of a month,
which posts every team's statement (here 40% of the apps are charged, and the disabled ones for
part of the month).

    .venv/bin/python -m bench.sweep                          # 10k, 100k, 1M on SQLite + PostgreSQL
    .venv/bin/python -m bench.sweep --sizes 10000,100000 --postgres off
    .venv/bin/python -m bench.sweep --statements 100000   # and the 1st of the month, up to 100k

PostgreSQL comes from PLANBOT_BENCH_POSTGRES_URL (default the local server's `test` database): a
scratch database is created there and dropped afterwards. After the bulk insert it runs ANALYZE
(as autovacuum would shortly after such a load), so the planner knows the table's size.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from core import CoreConfig, Lifecycle, PlanService, load_catalog, make_engine, upgrade_schema
from core.store.db import normalize_url
from core.store.tables import AppRow, LifecycleMarkRow, PlanHistoryRow

APP = cast(sa.Table, AppRow.__table__)  # type: ignore[attr-defined]
HISTORY = cast(sa.Table, PlanHistoryRow.__table__)  # type: ignore[attr-defined]
MARK = cast(sa.Table, LifecycleMarkRow.__table__)  # type: ignore[attr-defined]

NOW = datetime(2028, 6, 15, 4, 0, tzinfo=UTC)  # noon on 15 June in UTC+8
TZ = ZoneInfo("Asia/Shanghai")
BATCH = 50_000
TEAMS = 1000
PRICES = {"developer": "0", "standard": "399", "premium": "699"}
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Result:
    """One backend and size: what was measured, in seconds."""

    backend: str
    apps: int
    insert_s: float = 0.0
    idle_s: list[float] = field(default_factory=list)
    due_s: float = 0.0
    due_report: str = ""
    statements_s: float | None = None
    statements_posted: int = 0


def kind_of(i: int) -> str:
    """The app's steady state, by its index: dev, paid, suspended, disabled."""
    slot = i % 10
    return "dev" if slot < 4 else "paid" if slot < 8 else "suspended" if slot == 8 else "disabled"


def app_rows(start: int, stop: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[Any]]:
    apps, history = [], []
    created = datetime(2027, 1, 1, tzinfo=UTC)
    for i in range(start, stop):
        kind = kind_of(i)
        plan = "developer" if kind in ("dev", "suspended") else ("standard", "premium")[i % 2]
        expires = disabled = None
        if kind == "dev":
            expires = NOW + timedelta(days=8) + timedelta(seconds=rng.uniform(0, 22 * 86400))
        elif kind == "suspended":
            expires = NOW - timedelta(days=rng.uniform(1, 200))
        elif kind == "disabled":
            disabled = NOW - timedelta(days=1) - timedelta(seconds=rng.uniform(0, 58 * 86400))
        status = {"dev": "active", "paid": "active"}.get(kind, kind)
        app_id = f"1{i:09d}"
        apps.append(
            {
                "app_id": app_id,
                "name": f"app-{i}",
                "owner_channel": f"C{i % TEAMS:04d}",
                "plan": plan,
                "billing_mode": "current",
                "status": status,
                "created_at": created,
                "dev_expires_at": expires,
                "disabled_at": disabled,
                "config_changed_at": None,
                "config": {},
                "version": 1,
                "updated_at": created,
            }
        )
        history.append(
            {
                "app_id": app_id,
                "effective_at": created,
                "operation": "create",
                "plan": plan,
                "billing_mode": "current",
                "status": "active",
                "config": {},
                "monthly_price": PRICES[plan],
                "actor_id": "bench",
                "actor_name": "bench",
                "request_id": None,
            }
        )
    return apps, history


def bulk_insert(engine: Engine, count: int) -> float:
    rng = random.Random(count)
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        apps, history = app_rows(start, min(start + BATCH, count), rng)
        with engine.begin() as connection:
            connection.execute(APP.insert(), apps)
            connection.execute(HISTORY.insert(), history)
    with engine.begin() as connection:
        minute_ago = NOW - timedelta(minutes=1)
        connection.execute(
            MARK.insert(),
            [
                {"name": "dev_reminders", "at": minute_ago},
                {"name": "purge_warnings", "at": minute_ago},
                {"name": "statements:2028-05", "at": minute_ago},
            ],
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("ANALYZE"))
    return time.perf_counter() - started


def make_due(engine: Engine, count: int) -> None:
    """About 1% of the apps due: expiries, 7-day reminders, purges and 30-day warnings."""
    rng = random.Random(-count)
    quarter = max(1, count // 400)
    dev = [i for i in range(count) if kind_of(i) == "dev"]
    disabled = [i for i in range(count) if kind_of(i) == "disabled"]
    dev_picks = rng.sample(dev, min(len(dev), 2 * quarter))
    off_picks = rng.sample(disabled, min(len(disabled), 2 * quarter))
    expire, remind = dev_picks[:quarter], dev_picks[quarter:]
    purge, warn = off_picks[:quarter], off_picks[quarter:]
    seconds = rng.uniform

    def ids(indexes: list[int], moment: Callable[[], datetime], column: str) -> list[Any]:
        return [{"id": f"1{i:09d}", column: moment()} for i in indexes]

    dev_update = (
        sa.update(APP)
        .where(APP.c.app_id == sa.bindparam("id"))
        .values(dev_expires_at=sa.bindparam("expires"))
    )
    off_update = (
        sa.update(APP)
        .where(APP.c.app_id == sa.bindparam("id"))
        .values(disabled_at=sa.bindparam("disabled"))
    )
    with engine.begin() as connection:
        rows = ids(expire, lambda: NOW - timedelta(seconds=seconds(0, 6 * 3600)), "expires")
        rows += ids(remind, lambda: NOW + timedelta(days=7, seconds=-seconds(0, 50)), "expires")
        connection.execute(dev_update, rows)
        rows = ids(
            purge, lambda: NOW - timedelta(days=90, seconds=seconds(1, 6 * 3600)), "disabled"
        )
        rows += ids(warn, lambda: NOW - timedelta(days=60, seconds=seconds(0, 50)), "disabled")
        connection.execute(off_update, rows)


def measure(backend: str, url: str, count: int, *, statements: bool) -> Result:
    result = Result(backend, count)
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
        result.insert_s = bulk_insert(engine, count)
        config = CoreConfig(catalog=load_catalog(), billing_tz=TZ, audit_channel="CAUDIT")
        service = PlanService(engine=engine, config=config)
        # the whole statement run in one sweep, to time it (a sweep posts for 60 s by default)
        lifecycle = Lifecycle(
            store=service.store,
            config=config,
            roles=service.roles,
            clock=service.clock,
            statement_budget=timedelta(hours=2),
        )
        for i in range(3):
            started = time.perf_counter()
            report = lifecycle.sweep(NOW + timedelta(seconds=i))
            result.idle_s.append(time.perf_counter() - started)
            assert report.total == 0 and not report.failed, report.summary()
        make_due(engine, count)
        started = time.perf_counter()
        report = lifecycle.sweep(NOW + timedelta(seconds=5))
        result.due_s = time.perf_counter() - started
        assert not report.failed, report.summary()
        result.due_report = (
            f"{report.suspended} suspended, {report.reminders} reminded, "
            f"{report.purged} purged, {report.purge_warnings} warned"
        )
        if statements:  # as on the 1st: May's statements not posted yet
            with engine.begin() as connection:
                connection.execute(MARK.delete().where(MARK.c.name == "statements:2028-05"))
            started = time.perf_counter()
            report = lifecycle.sweep(NOW + timedelta(seconds=10))
            result.statements_s = time.perf_counter() - started
            result.statements_posted = report.statements
            assert report.total == report.statements and not report.failed, report.summary()
    finally:
        engine.dispose()
    return result


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="planbot-sweep-") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.sqlite3'}"


@contextmanager
def postgres_url(base: str) -> Iterator[str]:
    admin_url = make_url(normalize_url(base))
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"planbot_sweep_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_reachable(base: str) -> bool:
    engine = sa.create_engine(
        make_url(normalize_url(base)),
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 3},
    )
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def table(results: list[Result]) -> str:
    header = (
        "| backend | apps | bulk insert | sweep, nothing due (median of 3) | sweep, ~1% due | "
        "done in that sweep | statement day |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---|---:|"]
    for r in results:
        day = (
            f"{r.statements_s:.2f} s ({r.statements_posted} teams)"
            if r.statements_s is not None
            else "-"
        )
        lines.append(
            f"| {r.backend} | {r.apps:,} | {r.insert_s:.1f} s | "
            f"{statistics.median(r.idle_s) * 1000:.1f} ms | {r.due_s:.2f} s | "
            f"{r.due_report} | {day} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--postgres", choices=("auto", "on", "off"), default="auto")
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="MAX_APPS",
        help="also time the 1st of the month, for sizes up to MAX_APPS",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    base = os.environ.get("PLANBOT_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    use_postgres = args.postgres == "on" or (args.postgres == "auto" and postgres_reachable(base))
    results = []
    for count in sizes:
        with sqlite_url() as url:
            results.append(measure("sqlite", url, count, statements=count <= args.statements))
            print("measured:", table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        if use_postgres:
            with postgres_url(base) as url:
                results.append(
                    measure("postgresql", url, count, statements=count <= args.statements)
                )
                print(
                    "measured:", table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True
                )
    if not use_postgres:
        print("PostgreSQL not reachable (or --postgres off): SQLite only.", file=sys.stderr)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
