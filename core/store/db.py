"""The engine: SQLite (one file, one writer at a time) or PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

__all__ = ["make_engine", "normalize_url", "read_only"]


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL, with `postgres://` and `postgresql://` mapped to psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine configured for this service's transactions on either backend."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True
    )


def read_only(engine: Engine) -> Engine:
    """The same engine, but its transactions start deferred (SQLite readers don't queue)."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if not database or database == ":memory:":
        kwargs["poolclass"] = sa.pool.StaticPool
    else:
        kwargs["pool_size"] = 16
        kwargs["max_overflow"] = 32
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself, so writers can take the lock first.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE) so two confirmations never
        # both read and then deadlock upgrading their locks; readers start deferred.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode != "NONE":  # NONE: single-statement reads, each its own implicit transaction
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
