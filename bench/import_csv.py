"""How long `core.import_apps` takes for an N-row CSV on a fresh SQLite file (and PostgreSQL).

    .venv/bin/python -m bench.import_csv [--rows 10000] [--postgres URL | --no-postgres]

PostgreSQL is tried at PLANBOT_TEST_POSTGRES_URL (default: the local `test` database): a
throwaway database is created, migrated, used and dropped. Prints the elapsed seconds of the
import itself (parse, check, insert, commit) and of the whole run including the schema upgrade.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import make_url

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

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HEADER = "app_id,name,plan,created_at,billing_mode,status,owner_channel,dev_expires_at,disabled_at"


def generate(rows: int) -> str:
    """A valid CSV of `rows` apps: every plan, both billing modes, some disabled apps."""
    plans = ("developer", "standard", "premium")
    lines = [HEADER]
    for n in range(rows):
        plan = plans[n % 3]
        disabled = plan != "developer" and n % 7 == 0
        created = f"{2020 + n % 6}-{1 + n % 12:02d}-{1 + n % 28:02d}"
        lines.append(
            f"{1500000000 + n},app-{n},{plan},{created},,"
            f"{'disabled' if disabled else 'active'},C{n % 50:04d},,"
            f"{'2026-01-15T08:00:00Z' if disabled else ''}"
        )
    return "\n".join(lines) + "\n"


def run(url: str, text: str) -> tuple[float, float, int]:
    """(import seconds, total seconds, apps imported) on a migrated, empty database."""
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
        begun = time.perf_counter()
        imports = Imports(
            store=SqlStore(engine),
            catalog=load_catalog(),
            tz=ZoneInfo("Asia/Shanghai"),
            clock=utcnow,
        )
        result = imports.from_csv(text, actor=Actor("bench", "bench"))
        done = time.perf_counter()
    finally:
        engine.dispose()
    return done - begun, done - started, result.imported


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str | None]:
    """A fresh database on the server (None when unreachable); dropped afterwards."""
    url = make_url(normalize_url(admin_url))
    admin = sa.create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 3},
    )
    name = f"planbot_bench_{secrets.token_hex(4)}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as err:
        print(f"postgresql: skipped, not reachable ({str(err).splitlines()[0]})")
        admin.dispose()
        yield None
        return
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PLANBOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="admin URL of a PostgreSQL server (a database is created on it)",
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)

    text = generate(args.rows)
    print(f"{args.rows} rows, {len(text) / 1e6:.1f} MB of CSV")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.sqlite3"
        seconds, total, imported = run(f"sqlite:///{path}", text)
    print(
        f"sqlite:     imported {imported} apps in {seconds:.2f} s ({total:.2f} s with the schema)"
    )
    if not args.no_postgres:
        with postgres_database(args.postgres) as url:
            if url is not None:
                seconds, total, imported = run(url, text)
                print(
                    f"postgresql: imported {imported} apps in {seconds:.2f} s "
                    f"({total:.2f} s with the schema)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
