"""Benchmark of the app picker's search (what the options handler runs at each keystroke).

For each backend (a SQLite file; PostgreSQL when reachable) and each size N, it bulk-inserts N
apps named as the ack benchmark names them (`bench-app-<i>`, ids `14<i:08d>`, a fifth of them
owned by one of 50 teams), then times `PlanService.forms.apps(text, actor=...)`, the core call
behind the options handler, for the keystrokes of someone typing (the menu opened empty, a
growing name prefix, an id prefix, substrings common and rare, a miss), as three people: one who
sees every app, one who sees one team's (about 400 apps: scanned), one who sees forty teams'
(about 16,000: searched through the trigram index). Each query runs `--rounds` times, one after
another, then all of them again from `--threads` threads at once; it prints p50, p99 and max.

    .venv/bin/python -m bench.search                        # 10k and 100k apps, both backends
    .venv/bin/python -m bench.search --sizes 100000 --postgres off
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.sweep import APP, DEFAULT_POSTGRES_URL, postgres_reachable, postgres_url, sqlite_url
from core import (
    AccessPolicy,
    Actor,
    CoreConfig,
    Grant,
    PlanService,
    Role,
    load_catalog,
    make_engine,
    upgrade_schema,
)

NOW = datetime(2028, 6, 15, 4, 0, tzinfo=UTC)
TEAMS = 50
#: what the picker is asked, as someone types
KEYSTROKES = (
    "",
    "b",
    "be",
    "ben",
    "bench-app-4",
    "bench-app-42",
    "bench-app-4242",
    "1400042",
    "app-99",
    "pp-12345",
    "4242",
    "zzz",
)
ADMIN = Actor("U_ADMIN", "admin")
ONE_TEAM = Actor("U_ONE", "one team")
MANY_TEAMS = Actor("U_MANY", "forty teams")


def insert(engine: sa.Engine, count: int) -> float:
    """`count` apps as the ack benchmark makes them; the seconds it took."""
    started = time.perf_counter()
    created = NOW - timedelta(days=10)
    for start in range(0, count, 20_000):
        rows: list[dict[str, Any]] = []
        for i in range(start, min(start + 20_000, count)):
            rows.append(
                {
                    "app_id": f"14{i:08d}",
                    "name": f"bench-app-{i}",
                    "owner_channel": f"C_OWNER{i % TEAMS:02d}" if i % 5 == 0 else None,
                    "plan": "developer",
                    "billing_mode": "current",
                    "status": "active",
                    "created_at": created,
                    "dev_expires_at": created + timedelta(days=30),
                    "disabled_at": None,
                    "config_changed_at": None,
                    "config": {},
                    "version": 1,
                    "updated_at": created,
                }
            )
        with engine.begin() as connection:
            connection.execute(APP.insert(), rows)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("ANALYZE app"))
    return time.perf_counter() - started


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(backend: str, url: str, count: int, rounds: int, threads: int) -> list[str]:
    engine = make_engine(url, pool_size=threads)
    upgrade_schema(engine)
    inserted = insert(engine, count)
    config = CoreConfig(
        catalog=load_catalog(),
        access=AccessPolicy(admins=frozenset({ADMIN.user_id}), default_role=Role.NOBODY),
    )
    service = PlanService(engine=engine, config=config, clock=lambda: NOW)
    service.grant(Grant("user", ONE_TEAM.user_id, Role.VIEWER, "C_OWNER05"), label="", actor=ADMIN)
    for team in range(40):
        grant = Grant("user", MANY_TEAMS.user_id, Role.VIEWER, f"C_OWNER{team:02d}")
        service.grant(grant, label="", actor=ADMIN)
    lines = []
    for actor in (ADMIN, ONE_TEAM, MANY_TEAMS):
        for text in KEYSTROKES:  # warm the caches (and the plans) once
            service.forms.apps(text, actor=actor)
        timings: dict[str, list[float]] = {}
        for _ in range(rounds):
            for text in KEYSTROKES:
                started = time.perf_counter()
                service.forms.apps(text, actor=actor)
                timings.setdefault(text, []).append(time.perf_counter() - started)
        every = [t for ts in timings.values() for t in ts]
        slowest = max(timings, key=lambda k: percentile(timings[k], 0.99))

        def timed(text: str, who: Actor = actor) -> float:
            started = time.perf_counter()
            service.forms.apps(text, actor=who)
            return time.perf_counter() - started

        with ThreadPoolExecutor(threads) as pool:
            started = time.perf_counter()
            together = list(pool.map(timed, [k for _ in range(rounds) for k in KEYSTROKES]))
            elapsed = time.perf_counter() - started
        lines.append(
            f"| {backend} | {count:,} | {actor.name} | {ms(percentile(every, 0.5))} | "
            f"{ms(percentile(every, 0.99))} | {ms(max(every))} | `{slowest or '(empty)'}` "
            f"{ms(percentile(timings[slowest], 0.99))} | {ms(percentile(together, 0.5))} | "
            f"{ms(percentile(together, 0.99))} | {len(together) / elapsed:,.0f} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    print(f"{backend} {count:,}: inserted in {inserted:.1f} s", file=sys.stderr)
    service.close()
    engine.dispose()
    return lines


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--postgres", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)
    base = os.environ.get("PLANBOT_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    use_postgres = args.postgres == "on" or (args.postgres == "auto" and postgres_reachable(base))
    rows = [
        f"| backend | apps | who | p50 ms | p99 ms | max ms | slowest keystroke, p99 ms | "
        f"p50 ms ({args.threads} threads) | p99 ms ({args.threads} threads) | searches/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count in (int(s) for s in args.sizes.split(",")):
        with sqlite_url() as url:
            rows += measure("sqlite", url, count, args.rounds, args.threads)
        if use_postgres:
            with postgres_url(base) as url:
                rows += measure("postgresql", url, count, args.rounds, args.threads)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
