"""How the store's statements reach the database: two runners behind one interface.

- `ConnectionRunner`: a pooled SQLAlchemy connection in one transaction; reads that ask for a
  lock take it (`SELECT ... FOR UPDATE`, `SKIP LOCKED` for the sweep's batches), and on SQLite
  the transaction takes the write lock when it begins. Every statement works here.
- `CompiledRunner`: the hot path. Statements written once as module constants are compiled
  once per dialect and run on one DB-API connection per thread, kept open: through a Session
  each would cost more in SQLAlchemy's bookkeeping than in the database. It is optimistic: a
  read that asks for a lock does not take one; the writes that follow are guarded by what was
  read (`... WHERE version = <read>`), and `StaleWrite` says when a guard failed, at the latest
  when committing. Its transaction begins only when it needs the database's answer (a read that
  must be inside it, such as the audit chain's head, or the commit): the writes before that are
  prepared without holding SQLite's write lock, then sent together; on PostgreSQL they are
  pipelined, so the transaction waits for the server twice, not once per statement.

The repositories (`core.store.sql`) run the same statements on either, so both write the same
rows; which one a unit of work uses is a question of speed, not of policy.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.db import busy_wait, read_only
from core.store.waits import waits_of
from core.store.writers import WriterQueue, writer_queue

__all__ = [
    "Compiled",
    "CompiledRunner",
    "ConnectionRunner",
    "DuplicateName",
    "Runner",
    "StaleWrite",
    "ThreadConnections",
]

Row = Mapping[str, Any]
Lock = bool | str  # False, True (FOR UPDATE), or "skip" (FOR UPDATE SKIP LOCKED)


class StaleWrite(Exception):
    """A guarded write found its row changed since it was read (nothing was committed)."""


class DuplicateName(StaleWrite):
    """An app's name (case ignored) was taken by another transaction meanwhile (nothing was
    committed): deciding again sees the app that took it."""


class Runner(Protocol):
    """Runs the store's statements in one transaction."""

    dialect: str

    def rows(
        self,
        statement: Any,
        values: Mapping[str, Any] | None = None,
        *,
        lock: Lock = False,
        within: bool = False,
    ) -> list[Row]:
        """The rows of a constant statement. `lock`: lock them (or, optimistic, don't: the
        guarded writes that follow check them); `within`: the read belongs inside the write
        transaction (it begins it)."""
        ...

    def query(self, statement: Any, *, lock: Lock = False) -> list[Row]:
        """The rows of a statement built for this call."""
        ...

    def write(self, statement: Any, values: Mapping[str, Any], *, guarded: bool = False) -> None:
        """A write of a constant statement; `guarded`: it must change exactly one row, else
        StaleWrite (raised at the latest when committing)."""
        ...

    def write_many(self, statement: Any, values: Sequence[Mapping[str, Any]]) -> None:
        """The same write once per set of values."""
        ...

    def execute(self, statement: Any) -> list[Row]:
        """A statement built for this call that writes (its RETURNING rows, if any)."""
        ...

    def commit(self) -> None:
        """Commit (once every guard has passed)."""
        ...

    def close(self) -> None:
        """Roll back what was not committed, and give the connection back."""
        ...


# --- a pooled connection ---------------------------------------------------------------------


class ConnectionRunner:
    """Statements on a pooled SQLAlchemy connection, in one transaction (see the module)."""

    def __init__(self, engine: Engine, *, write: bool = True, durable: bool = True) -> None:
        self.dialect = engine.dialect.name
        self._writers: WriterQueue | None = writer_queue(engine) if write else None
        if self._writers is not None:
            self._writers.acquire()
        try:
            self.connection = (engine if write else read_only(engine)).connect()
            self.connection.begin()
            if not durable and self.dialect == "postgresql":
                # bookkeeping a crash of the database may lose: no wait for the disk
                self.connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
        except BaseException:
            if self._writers is not None:
                self._writers.release()
            raise

    def rows(
        self,
        statement: Any,
        values: Mapping[str, Any] | None = None,
        *,
        lock: Lock = False,
        within: bool = False,
    ) -> list[Row]:
        """The rows of a statement, locked when asked."""
        if lock and self.dialect == "postgresql":
            froms = statement.get_final_froms()
            table = froms[0].left if isinstance(froms[0], sa.Join) else froms[0]
            statement = statement.with_for_update(of=table, skip_locked=lock == "skip")
        result = self.connection.execute(statement, dict(values or {}))
        return cast(list[Row], list(result.mappings())) if result.returns_rows else []

    def query(self, statement: Any, *, lock: Lock = False) -> list[Row]:
        """The rows of a statement built for this call."""
        return self.rows(statement, lock=lock)

    def write(self, statement: Any, values: Mapping[str, Any], *, guarded: bool = False) -> None:
        """Run a write; StaleWrite when `guarded` and it changed no row."""
        result = self.connection.execute(statement, dict(values))
        if guarded and result.rowcount != 1:
            raise StaleWrite(statement.table.name)

    def write_many(self, statement: Any, values: Sequence[Mapping[str, Any]]) -> None:
        """Run a write once per set of values (one batch)."""
        if values:
            self.connection.execute(statement, [dict(v) for v in values])

    def execute(self, statement: Any) -> list[Row]:
        """Run a statement built for this call; its RETURNING rows."""
        result = self.connection.execute(statement)
        return cast(list[Row], list(result.mappings())) if result.returns_rows else []

    def commit(self) -> None:
        """Commit."""
        self.connection.commit()

    def close(self) -> None:
        """Roll back what is left, and give the connection back."""
        try:
            self.connection.close()
        finally:
            if self._writers is not None:
                self._writers.release()
                self._writers = None


# --- compiled statements on a per-thread DB-API connection -----------------------------------

Processor = Callable[[Any], Any] | None


class Compiled:
    """A Core statement compiled for one dialect, with the type conversions of its columns."""

    def __init__(self, statement: Any, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.order: list[str] | None = list(compiled.positiontup) if compiled.positional else None
        self.binds: dict[str, tuple[Processor, Any]] = {
            name: (bind.type.dialect_impl(dialect).bind_processor(dialect), bind.value)
            for name, bind in compiled.binds.items()
        }
        columns = getattr(statement, "selected_columns", ())
        self.names = [c.name for c in columns]
        self.results: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]
        table = getattr(statement, "table", None)
        self.table = table.name if table is not None else "?"

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The DB-API parameters for `values` (converted, in the dialect's style)."""
        converted: dict[str, Any] = {}
        for name, (process, default) in self.binds.items():
            value = values.get(name, default)
            converted[name] = process(value) if process is not None else value
        if self.order is not None:
            return [converted[name] for name in self.order]
        return converted

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        """A result row as a dict, each value converted by its column's type."""
        return {
            name: process(value) if process is not None else value
            for name, process, value in zip(self.names, self.results, raw, strict=True)
        }


class ThreadConnections:
    """One DB-API connection per thread (autocommit), and the statements compiled for it.

    `durable=False` (PostgreSQL): commits do not wait for the disk, for writes whose loss in a
    crash of the database is harmless (a preview's request, a reply to a refused click, the
    delivery worker's marks); confirmed changes stay durable.
    """

    def __init__(self, engine: Engine, *, durable: bool = True) -> None:
        self.engine = engine
        self.durable = durable
        self.dialect = engine.dialect.name
        self.writers = writer_queue(engine)
        self.waits = waits_of(engine)
        self._compiled: dict[int, tuple[Any, Compiled]] = {}
        self._local = threading.local()

    def compiled(self, statement: Any) -> Compiled:
        """The statement compiled for this dialect (once: statements are module constants)."""
        found = self._compiled.get(id(statement))
        if found is None or found[0] is not statement:
            found = (statement, Compiled(statement, self.engine.dialect))
            self._compiled[id(statement)] = found
        return found[1]

    def get(self) -> Any:
        """This thread's connection (opened on first use)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.engine.raw_connection()
            if not isinstance(self.engine.pool, sa.pool.StaticPool):  # not one in-memory database
                # Out of the pool for good (closed with its thread): the pool stays free for the
                # pooled runner, and none is ever handed a connection set to autocommit here.
                connection.detach()
            if self.dialect != "sqlite":
                connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
                if not self.durable:
                    connection.dbapi_connection.execute(  # type: ignore[union-attr]
                        "SET synchronous_commit = off"
                    )
            # SQLite's connections are all in autocommit already (BEGIN is issued explicitly).
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def cursor(self, connection: Any, *, keep: bool = False) -> Iterator[Any]:
        """A cursor of `connection` (closed after, unless `keep`); a connection found broken is
        dropped, and the next statement opens another."""
        try:
            cursor = connection.cursor()
            try:
                yield cursor
            except BaseException:
                cursor.close()
                raise
            if not keep:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as err:
            if self.engine.dialect.is_disconnect(err, connection.dbapi_connection, None):
                self._local.connection = None  # a restarted server
                connection.invalidate()
            raise

    def is_current(self, connection: Any) -> bool:
        """Whether `connection` is still this thread's (not dropped as broken)."""
        return getattr(self._local, "connection", None) is connection

    def drop(self, connection: Any) -> None:
        """Stop using `connection` (in an unknown state): closed, and this thread's next
        statement opens another."""
        if self.is_current(connection):
            self._local.connection = None
        with contextlib.suppress(Exception):
            connection.invalidate()

    def close(self) -> None:
        """Give this thread's connection back."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()


class CompiledRunner:
    """Compiled statements on this thread's connection, optimistic (see the module)."""

    def __init__(self, connections: ThreadConnections) -> None:
        self.connections = connections
        self.dialect = connections.dialect
        self.connection: Any = None  # until the transaction begins
        self.committed = False
        self._resources = contextlib.ExitStack()
        # writes before the transaction began: the statement, its converted values, guarded
        self._prepared: list[tuple[Compiled, Any, bool]] = []
        # pipelined (PostgreSQL): cursors of writes sent and not yet answered, with their guard
        self._pipeline: Any = None
        self._unanswered: list[tuple[Any, Compiled | None]] = []

    # --- reads ---------------------------------------------------------------------------

    def rows(
        self,
        statement: Any,
        values: Mapping[str, Any] | None = None,
        *,
        lock: Lock = False,
        within: bool = False,
    ) -> list[Row]:
        """The rows of a constant statement: in the transaction when it has begun (or `within`
        asks to begin it), else as a statement of its own. `lock` is not taken (optimistic)."""
        compiled = self.connections.compiled(statement)
        if within:
            self._begin()
        connection = self.connection or self.connections.get()
        if self._pipeline is not None:
            with self.connections.cursor(connection) as cursor:
                cursor.execute(compiled.sql, compiled.parameters(values or {}))
                self._answers()  # the writes so far, and this read, in one round trip
                raw = cursor.fetchall()
        else:
            with self.connections.cursor(connection) as cursor:
                cursor.execute(compiled.sql, compiled.parameters(values or {}))
                raw = cursor.fetchall()
        return [compiled.row(r) for r in raw]

    def query(self, statement: Any, *, lock: Lock = False) -> list[Row]:
        """A statement built for this call: read on a pooled connection of its own (only
        before this transaction begins; a hot path needs none)."""
        if self.connection is not None:
            raise RuntimeError("a statement built per call can't join a compiled transaction")
        with self.connections.engine.connect() as connection:
            return cast(list[Row], list(connection.execute(statement).mappings()))

    # --- writes --------------------------------------------------------------------------

    def write(self, statement: Any, values: Mapping[str, Any], *, guarded: bool = False) -> None:
        """A write, prepared until the transaction begins."""
        compiled = self.connections.compiled(statement)
        parameters = compiled.parameters(values)
        if self.connection is None:
            self._prepared.append((compiled, parameters, guarded))
        else:
            self._send(compiled, parameters, guarded)

    def write_many(self, statement: Any, values: Sequence[Mapping[str, Any]]) -> None:
        """The same write once per set of values."""
        compiled = self.connections.compiled(statement)
        self._begin()
        with self.connections.cursor(self.connection) as cursor:
            cursor.executemany(compiled.sql, [compiled.parameters(v) for v in values])

    def execute(self, statement: Any) -> list[Row]:
        """Not on this runner: writes built per call belong to the pooled runner."""
        raise RuntimeError("a statement built per call can't run on the compiled runner")

    # --- the transaction -----------------------------------------------------------------

    def _begin(self) -> None:
        """Take the writers' turn, begin, and send the writes prepared so far."""
        if self.connection is not None:
            return
        writers = self.connections.writers
        if writers is not None:
            writers.acquire()
            self._resources.callback(writers.release)
        connection = self.connections.get()
        raw = connection.dbapi_connection
        if self.dialect == "sqlite":
            busy_wait(raw, self.connections.waits)
            raw.execute("BEGIN IMMEDIATE")
        else:
            self._pipeline = self._resources.enter_context(raw.pipeline())
            raw.execute("BEGIN")
        self.connection = connection
        prepared, self._prepared = self._prepared, []
        for compiled, parameters, guarded in prepared:
            self._send(compiled, parameters, guarded)

    def _send(self, compiled: Compiled, parameters: Any, guarded: bool) -> None:
        pipelined = self._pipeline is not None
        with self.connections.cursor(self.connection, keep=pipelined) as cursor:
            cursor.execute(compiled.sql, parameters)
            if pipelined:
                self._unanswered.append((cursor, compiled if guarded else None))
            elif guarded and cursor.rowcount != 1:
                raise StaleWrite(compiled.table)

    def _answers(self) -> None:
        """Wait for the answers to the writes sent; StaleWrite if a guard failed."""
        if self._pipeline is None:
            return
        self._pipeline.sync()
        unanswered, self._unanswered = self._unanswered, []
        stale = [c for cursor, c in unanswered if c is not None and cursor.rowcount != 1]
        for cursor, _ in unanswered:
            cursor.close()
        if stale:
            raise StaleWrite(stale[0].table)

    def commit(self) -> None:
        """Commit (once every guard has passed); nothing to do when nothing was written.

        A transaction of one write that never began is that one statement, in autocommit.
        """
        if self.connection is None and len(self._prepared) <= 1:
            if self._prepared:
                self._write_alone(*self._prepared[0])
            self.committed = True
            return
        self._begin()
        self._answers()
        self.connection.dbapi_connection.execute("COMMIT")
        if self._pipeline is not None:
            self._pipeline.sync()
        self.committed = True

    def _write_alone(self, compiled: Compiled, parameters: Any, guarded: bool) -> None:
        writers = self.connections.writers
        if writers is not None:
            writers.acquire()
        try:
            connection = self.connections.get()
            if self.dialect == "sqlite":
                busy_wait(connection.dbapi_connection, self.connections.waits)
            with self.connections.cursor(connection) as cursor:
                cursor.execute(compiled.sql, parameters)
                if guarded and cursor.rowcount != 1:
                    raise StaleWrite(compiled.table)
        finally:
            if writers is not None:
                writers.release()
        self._prepared = []

    def close(self) -> None:
        """Undo what was sent if the transaction began and did not commit.

        On PostgreSQL a failed statement's error may have been read before the pipeline's sync
        (psycopg reads the answers that have arrived at each statement it sends): the server
        then skips whatever follows until a sync, a ROLLBACK too. So the pipeline is synced
        first (its error was raised already). Should the rollback still fail, the thread's
        connection is dropped: the next unit of work opens another rather than finding this
        transaction aborted, or worse, open.
        """
        connection = self.connection
        began = connection is not None and not self.committed
        try:
            for cursor, _ in self._unanswered:
                cursor.close()
            self._unanswered = []
            if began and self.connections.is_current(connection):
                if self._pipeline is not None:
                    with contextlib.suppress(self.connections.engine.dialect.loaded_dbapi.Error):
                        self._pipeline.sync()
                connection.dbapi_connection.execute("ROLLBACK")
            self._resources.close()
        except BaseException:
            if began:
                self.connections.drop(connection)
            with contextlib.suppress(Exception):
                self._resources.close()
            raise
