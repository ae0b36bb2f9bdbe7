"""The engine: SQLite (one file, one writer at a time) or PostgreSQL through psycopg 3."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from core.store.waits import (
    REQUEST_WAITS,
    Waits,
    allowed,
    answer_timeout,
    hurried,
    set_waits,
)

log = logging.getLogger(__name__)

__all__ = [
    "Checkpointer",
    "TimedConnection",
    "busy_wait",
    "checkpoint",
    "make_engine",
    "normalize_url",
    "read_only",
]

#: SQLite: a commit that finds the write-ahead log this long (in 4 KiB pages) copies it back
#: into the database first. A backstop: the delivery worker checkpoints far more often
#: (`checkpoint`), so that no ack pays for it; SQLite's default is 1,000 pages.
WAL_BACKSTOP_PAGES = 20_000
#: SQLite: the write-ahead log's file is cut back to this size once checkpointed
WAL_SIZE_LIMIT = 64 << 20


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL, with `postgres://` and `postgresql://` mapped to psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 10, waits: Waits = REQUEST_WAITS) -> Engine:
    """An engine configured for this service's transactions on either backend, that waits for
    the database no longer than `waits` says (see `core.store.waits`)."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed.database, waits)
    else:
        engine = _postgresql_engine(url, pool_size, waits)
    set_waits(engine, waits)
    return engine


class TimedConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits for the server's answers no longer than its `waits`
    allow (the server's own statement_timeout cannot help when it never hears the statement:
    a network that drops everything). On the timeout the connection is closed: it is in an
    unknown state; the pool then opens another."""

    waits: Waits = REQUEST_WAITS

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """psycopg's wait, with the answer timeout of `waits` when none is given."""
        if timeout is None:
            timeout = answer_timeout(self.waits)
        try:
            return super().wait(gen, interval=interval, timeout=timeout)
        except psycopg.errors._WaitTimeout:
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {timeout:.1f} s"
            ) from None


def _postgresql_engine(url: str, pool_size: int, waits: Waits) -> Engine:
    """PostgreSQL through psycopg 3: connect_timeout, statement_timeout and lock_timeout on
    every connection, a pool that hands out a connection within `waits.lock`."""
    options = [f"-c lock_timeout={int(waits.lock * 1000)}"]
    if waits.statement is not None:
        options.append(f"-c statement_timeout={int(waits.statement * 1000)}")
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=waits.pre_ping,
        pool_timeout=waits.lock,
        connect_args={"connect_timeout": max(2, waits.connect), "options": " ".join(options)},
    )

    class _Timed(TimedConnection):
        pass

    _Timed.waits = waits

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        if hurried():
            # a request whose budget is spent, or behind one that waited in vain: connecting
            # would take up to connect_timeout more
            raise psycopg.OperationalError("no time left to connect to the database")
        return _Timed.connect(*cargs, **cparams)

    return engine


def busy_wait(connection: Any, waits: Waits) -> None:
    """Before an SQLite write transaction begins: wait for the lock no longer than `waits`
    allow now (what is left of a request's budget)."""
    connection.execute(f"PRAGMA busy_timeout={int(allowed(waits.lock) * 1000)}")


def checkpoint(engine: Engine) -> None:
    """Copy SQLite's write-ahead log back into the database, without waiting for anyone.

    A commit otherwise does it every 1,000 pages of log, under the write lock: a confirmation
    that commits in a tenth of a millisecond then takes ten, and every writer waits behind it.
    PASSIVE copies what no reader still needs, blocks no writer, and is cheap when there is
    nothing to copy. Nothing to do on PostgreSQL.
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return
    connection = engine.raw_connection()
    try:
        connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
    finally:
        connection.close()


class Checkpointer:
    """`checkpoint` on a timer, in a thread of the process that delivers (SQLite only)."""

    def __init__(self, engine: Engine, *, every: float = 0.5) -> None:
        self.engine = engine
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Checkpoint every `every` seconds until `stop` (nothing on PostgreSQL)."""
        if self._thread is not None or self.engine.dialect.name != "sqlite":
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                checkpoint(self.engine)
            except Exception:  # the database may be briefly unreachable: keep going
                log.exception("checkpoint failed")


def read_only(engine: Engine) -> Engine:
    """The same engine, but its transactions start deferred (SQLite readers don't queue)."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def _sqlite_engine(url: str, database: str | None, waits: Waits) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": waits.lock}}
    if not database or database == ":memory:":
        kwargs["poolclass"] = sa.pool.StaticPool
    else:
        kwargs["pool_size"] = 16
        kwargs["max_overflow"] = 32
        kwargs["pool_timeout"] = waits.lock
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself, so writers can take the lock first.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(waits.lock * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE) so two confirmations never
        # both read and then deadlock upgrading their locks; readers start deferred.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode == "IMMEDIATE":
            busy_wait(connection.connection.dbapi_connection, waits)
        if mode != "NONE":  # NONE: single-statement reads, each its own implicit transaction
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
