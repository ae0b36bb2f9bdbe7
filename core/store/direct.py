"""The hot reads and single-row inserts, straight on a DB-API connection.

Every Slack request reads an app (and, for a preview, its plan history) and a preview stores one
pending request. Through a Session each of those costs more in SQLAlchemy's bookkeeping (session,
pool checkout, transaction events, result objects) than in the database. Here the same Core
statements are compiled once per dialect, and run on one DB-API connection per thread, kept open,
in autocommit: a read is one statement, the insert is one statement. Values still go through the
columns' own types (UTC datetimes, JSON), so rows read here equal rows read through the ORM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import AppState
from core.money import RateSegment
from core.store.tables import (
    AccessGrantRow,
    AppRow,
    AuditEventRow,
    AuditHeadRow,
    OutboxRow,
    PendingRequestRow,
    PlanHistoryRow,
)
from core.store.uow import (
    _APP_BY_ID,
    _APP_BY_NAME,
    _HEAD_ADVANCE,
    _HEAD_LOCKED,
    _SEGMENTS,
    _writer_lock,
    app_state,
    audit_record,
    outbox_values,
    segment,
)

__all__ = [
    "Compiled",
    "Direct",
    "DirectTransaction",
    "RequestRecord",
    "StaleWrite",
    "pending_values",
]

_PENDING: sa.Table = PendingRequestRow.__table__  # type: ignore[attr-defined]
_GRANTS: sa.Table = AccessGrantRow.__table__  # type: ignore[attr-defined]
_ALL_GRANTS = sa.select(_GRANTS).order_by(_GRANTS.c.role, _GRANTS.c.principal_id)
_OUTBOX: sa.Table = OutboxRow.__table__  # type: ignore[attr-defined]

_APP: sa.Table = AppRow.__table__  # type: ignore[attr-defined]
_HISTORY: sa.Table = PlanHistoryRow.__table__  # type: ignore[attr-defined]
_AUDIT: sa.Table = AuditEventRow.__table__  # type: ignore[attr-defined]
_HEAD: sa.Table = AuditHeadRow.__table__  # type: ignore[attr-defined]
_REQUEST_BY_ID = sa.select(_PENDING).where(_PENDING.c.id == sa.bindparam("id"))
_SEGMENT_COLUMNS = ("effective_at", "plan", "status", "billing_mode", "monthly_price", "config")
_APP_WITH_SEGMENTS = (  # the app's row once per segment (or once, with NULLs, if none)
    sa.select(_APP, *(_HISTORY.c[name].label(f"segment_{name}") for name in _SEGMENT_COLUMNS))
    .select_from(
        _APP.outerjoin(
            _HISTORY,
            sa.and_(
                _HISTORY.c.app_id == _APP.c.app_id,
                _HISTORY.c.effective_at < sa.bindparam("until"),
            ),
        )
    )
    .where(_APP.c.app_id == sa.bindparam("app_id"))
    .order_by(_HISTORY.c.effective_at, _HISTORY.c.id)
)
_STATE_COLUMNS = (
    "name",
    "owner_channel",
    "plan",
    "billing_mode",
    "status",
    "dev_expires_at",
    "disabled_at",
    "config_changed_at",
    "config",
    "version",
    "updated_at",
)
_SAVE_APP = (  # only over the version it was read at
    sa.update(_APP)
    .where(_APP.c.app_id == sa.bindparam("key"), _APP.c.version == sa.bindparam("read_version"))
    .values({name: sa.bindparam(name, type_=_APP.c[name].type) for name in _STATE_COLUMNS})
)
_DECIDED = ("state", "decided_by", "decided_by_name", "decided_at", "result")
_DECIDE = (  # only a request still pending
    sa.update(_PENDING)
    .where(_PENDING.c.id == sa.bindparam("key"), _PENDING.c.state == "pending")
    .values({name: sa.bindparam(name, type_=_PENDING.c[name].type) for name in _DECIDED})
)

Processor = Callable[[Any], Any] | None


class StaleWrite(Exception):
    """A guarded write found its row changed since it was read (the transaction is rolled back)."""


class Compiled:
    """A Core statement compiled for one dialect, with the type conversions of its columns."""

    def __init__(self, statement: sa.Executable, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
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


@dataclass(frozen=True)
class RequestRecord:
    """A pending request as read in a direct transaction (what confirming it needs)."""

    id: str
    operation: str
    app_id: str | None
    params: dict[str, Any]
    actor_id: str
    actor_name: str
    app_version: int | None
    approvals_needed: int
    state: str
    expires_at: datetime


_REQUEST_FIELDS = [f.name for f in dataclasses.fields(RequestRecord)]


class _Row:
    """Attribute access to a dict row (the shape `app_state` and `segment` read)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class _GrantReads:
    def __init__(self, direct: Direct) -> None:
        self.all = direct.all_grants


class Direct:
    """Hot statements on a per-thread DB-API connection in autocommit (no Session).

    `durable=False` (PostgreSQL): commits do not wait for the disk, for writes whose loss in a
    crash of the database is harmless (a preview's request, a refusal's reply, the outbox's
    delivery marks); confirmed changes stay durable.
    """

    def __init__(self, engine: Engine, *, durable: bool = True) -> None:
        self.engine = engine
        self.durable = durable
        dialect = engine.dialect
        self._app_by_id = Compiled(_APP_BY_ID, dialect)
        self._app_by_name = Compiled(_APP_BY_NAME, dialect)
        self._segments = Compiled(_SEGMENTS, dialect)
        self._app_with_segments = Compiled(_APP_WITH_SEGMENTS, dialect)
        self._grants = Compiled(_ALL_GRANTS, dialect)
        self._request = Compiled(_REQUEST_BY_ID, dialect)
        self._save_app = Compiled(_SAVE_APP, dialect)
        self._decide = Compiled(_DECIDE, dialect)
        self._head_locked = Compiled(_HEAD_LOCKED, dialect)
        self._head_advance = Compiled(_HEAD_ADVANCE, dialect)
        self._by_columns: dict[tuple[str, str, tuple[str, ...]], Compiled] = {}
        self._local = threading.local()
        self._writers = _writer_lock(engine)
        # read like a unit of work: direct.apps.state(...), direct.grants.all(), and so on
        self.apps = self
        self.history = self
        self.grants = _GrantReads(self)

    # --- the connection ------------------------------------------------------------------

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.engine.raw_connection()
            if not isinstance(self.engine.pool, sa.pool.StaticPool):  # not one in-memory database
                # Out of the pool for good (closed with its thread): the pool stays free for the
                # units of work, and none is ever handed a connection set to autocommit here.
                connection.detach()
            if self.engine.dialect.name != "sqlite":
                connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
                if not self.durable:  # bookkeeping a crash may lose: no wait for the disk
                    connection.dbapi_connection.execute("SET synchronous_commit = off")  # type: ignore[union-attr]
            # SQLite's connections are all in autocommit already (BEGIN is issued explicitly).
            self._local.connection = connection
        return connection

    def _run(
        self, compiled: Compiled, values: Mapping[str, Any], connection: Any = None
    ) -> list[Sequence[Any]]:
        """Run the statement; its rows (for a select)."""
        return self._execute(compiled, values, connection)[0]

    def _execute(
        self, compiled: Compiled, values: Mapping[str, Any], connection: Any = None
    ) -> tuple[list[Sequence[Any]], int]:
        """Run the statement; its rows (for a select) and the count of rows it changed."""
        connection = connection or self._connection()
        with self._cursor(connection) as cursor:
            cursor.execute(compiled.sql, compiled.parameters(values))
            rows = list(cursor.fetchall()) if compiled.names else []
            return rows, cursor.rowcount

    @contextlib.contextmanager
    def _cursor(self, connection: Any, *, keep: bool = False) -> Iterator[Any]:
        """A cursor of `connection` (closed after, unless `keep`); a connection found broken
        is dropped, and the next statement opens another."""
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

    def close(self) -> None:
        """Give this thread's connection back."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    # --- reads ---------------------------------------------------------------------------

    def state(self, app_id: str) -> AppState | None:
        """The app's state, or None."""
        rows = self._run(self._app_by_id, {"app_id": app_id})
        return self._state(rows[0]) if rows else None

    def states_by_name(self, name: str) -> list[AppState]:
        """The states of the apps with exactly that name (at most 5)."""
        return [self._state(r) for r in self._run(self._app_by_name, {"name": name})]

    def _state(self, raw: Sequence[Any]) -> AppState:
        return app_state(_Row(self._app_by_id.row(raw)))  # type: ignore[arg-type]

    def state_and_segments(
        self, app_id: str, *, until: datetime
    ) -> tuple[AppState, list[RateSegment]] | None:
        """The app's state and its rate segments that started before `until` (one statement),
        or None."""
        compiled = self._app_with_segments
        rows = [compiled.row(r) for r in self._run(compiled, {"app_id": app_id, "until": until})]
        if not rows:
            return None
        segments = [
            segment(_Row({name: row[f"segment_{name}"] for name in _SEGMENT_COLUMNS}))  # type: ignore[arg-type]
            for row in rows
            if row["segment_effective_at"] is not None
        ]
        return app_state(_Row(rows[0])), segments  # type: ignore[arg-type]

    def request(self, request_id: str) -> RequestRecord | None:
        """A request as stored (no lock: a write guarded by its state follows)."""
        rows = self._run(self._request, {"id": request_id})
        if not rows:
            return None
        values = self._request.row(rows[0])
        return RequestRecord(**{name: values[name] for name in _REQUEST_FIELDS})

    def segments(self, app_id: str, *, until: datetime) -> list[RateSegment]:
        """The app's rate segments that started before `until`, oldest first."""
        rows = self._run(self._segments, {"app_id": app_id, "until": until})
        return [segment(_Row(self._segments.row(r))) for r in rows]  # type: ignore[arg-type]

    def all_grants(self) -> list[AccessGrantRow]:
        """Every access grant."""
        return [AccessGrantRow(**self._grants.row(r)) for r in self._run(self._grants, {})]

    # --- single-statement writes ---------------------------------------------------------

    def insert_pending(self, values: Mapping[str, Any]) -> None:
        """Store a pending request (one statement, its own transaction)."""
        self.insert(_PENDING, values)

    def insert_outbox(self, values: Mapping[str, Any]) -> None:
        """Queue an outbox entry that belongs to no other change (one statement)."""
        self.insert(_OUTBOX, outbox_values(values))

    def insert(self, table: sa.Table, values: Mapping[str, Any]) -> None:
        """Insert one row of `table` with these columns (one statement, committed)."""
        self._write(self._compiled("insert", table, tuple(sorted(values))), values)

    def update(self, table: sa.Table, key: Any, values: Mapping[str, Any]) -> None:
        """Set these columns of the row whose primary key is `key` (one statement, committed)."""
        self._write(self._compiled("update", table, tuple(sorted(values))), {**values, "key_": key})

    def update_many(self, table: sa.Table, rows: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
        """Set columns of several rows by primary key, in one transaction (`rows`: key, values;
        the same columns in each)."""
        if len(rows) == 1:
            self.update(table, *rows[0])
            return
        compiled = self._compiled("update", table, tuple(sorted(rows[0][1])))
        parameters = [compiled.parameters({**values, "key_": key}) for key, values in rows]
        with self.transaction() as transaction:
            transaction.write_many(compiled, parameters)
            transaction.commit()

    def _compiled(self, verb: str, table: sa.Table, names: tuple[str, ...]) -> Compiled:
        """An insert of these columns, or an update of them by primary key (compiled once)."""
        compiled = self._by_columns.get((verb, table.name, names))
        if compiled is None:
            columns = {name: sa.bindparam(name, type_=table.c[name].type) for name in names}
            if verb == "insert":
                statement: sa.Executable = sa.insert(table).values(columns)
            else:
                (primary,) = table.primary_key.columns
                statement = sa.update(table).where(primary == sa.bindparam("key_")).values(columns)
            compiled = self._by_columns[(verb, table.name, names)] = Compiled(
                statement, self.engine.dialect
            )
        return compiled

    @contextlib.contextmanager
    def transaction(self) -> Iterator[DirectTransaction]:
        """A write transaction on this thread's connection; rolled back unless committed.

        It begins when it first needs the database's answer (the audit chain's head, or the
        commit): writes before that are prepared (their values converted) without holding
        the writers' turn, and sent together then. On PostgreSQL its statements are pipelined,
        so it waits for the server at those two points rather than once per statement.
        """
        transaction = DirectTransaction(self)
        with transaction.resources:  # left after the rollback: the pipeline, the writers' turn
            try:
                yield transaction
            finally:
                transaction.roll_back_unless_committed()

    def _write(self, compiled: Compiled, values: Mapping[str, Any]) -> None:
        if self._writers is not None:
            self._writers.acquire()
        try:
            self._run(compiled, values)
        finally:
            if self._writers is not None:
                self._writers.release()


def pending_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every column of a pending request, defaults filled in."""
    values: dict[str, Any] = {c.name: None for c in _PENDING.c}
    values.update(state="pending", approvals_needed=0, result={}, actor_name="")
    values.update(row)
    return values


class DirectTransaction:
    """One write transaction of `Direct`: the writes of a confirmation, and its commit.

    It offers what `PlanService.record_change` writes through (`apps.save`, `history.insert`,
    `audit.append`, `outbox.insert`, `after_commit`), like a unit of work does. Nothing is read
    under its lock but the head of the audit chain: the request and the app were read before,
    and their writes are guarded by what was read (StaleWrite when it no longer holds, at the
    latest when committing).
    """

    def __init__(self, direct: Direct) -> None:
        self.direct = direct
        self.connection: Any = None  # until begun
        self.committed = False
        self.resources = contextlib.ExitStack()
        self._after_commit: list[Callable[[], None]] = []
        self.apps = self
        self.history = _TableWriter(self, _HISTORY)
        self.outbox = _TableWriter(self, _OUTBOX)
        self.audit = self
        # writes before the start: the statement, its converted values, whether it is guarded
        self._prepared: list[tuple[Compiled, Any, bool]] = []
        # pipelined (PostgreSQL): the cursors of writes sent but not yet answered, with the
        # guard each must pass (None: any row count will do)
        self._pipeline: Any = None
        self._unanswered: list[tuple[Any, Compiled | None]] = []

    def _begin(self) -> None:
        """Take the writers' turn, begin, and send the writes prepared so far."""
        if self.connection is not None:
            return
        direct = self.direct
        if direct._writers is not None:
            direct._writers.acquire()
            self.resources.callback(direct._writers.release)
        connection = direct._connection()
        raw = connection.dbapi_connection
        if direct.engine.dialect.name == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        else:
            self._pipeline = self.resources.enter_context(raw.pipeline())
            raw.execute("BEGIN")
        self.connection = connection
        prepared, self._prepared = self._prepared, []
        for compiled, parameters, guarded in prepared:
            self._send(compiled, parameters, guarded)

    def save(self, before: AppState | None, after: AppState, now: datetime) -> None:
        """Write the app's new state over `before` (an existing app only); StaleWrite if the
        app is no longer at `before`'s version."""
        if before is None:
            raise ValueError("a new app is written through a unit of work")
        values: dict[str, Any] = {
            "key": after.app_id,
            "name": after.name,
            "owner_channel": after.owner_channel,
            "plan": after.plan.value,
            "billing_mode": after.billing_mode.value,
            "status": after.status.value,
            "dev_expires_at": after.dev_expires_at,
            "disabled_at": after.disabled_at,
            "config_changed_at": after.config_changed_at,
            "config": dict(after.config),
            "version": after.version,
            "updated_at": now,
            "read_version": before.version,
        }
        self._write(self.direct._save_app, values, guarded=True)

    def append(self, **fields: Any) -> int:
        """Append an audit record after the locked head of the chain; returns its seq."""
        self._begin()
        head_locked = self.direct._head_locked
        if self._pipeline is not None:
            with self.direct._cursor(self.connection) as cursor:
                cursor.execute(head_locked.sql, head_locked.parameters({}))
                self._answers()  # the writes so far, and the head, in one round trip
                heads = cursor.fetchall()
        else:
            heads = self.direct._run(head_locked, {}, self.connection)
        head = _Row(head_locked.row(heads[0])) if heads else None
        record = audit_record(head, fields)
        self.insert(_AUDIT, record)
        head_values = {"seq": record["seq"], "hash": record["hash"]}
        if head is None:
            self.insert(_HEAD, {"id": 1, **head_values})
        else:
            self._write(self.direct._head_advance, head_values)
        return int(record["seq"])

    def decide(self, request_id: str, values: Mapping[str, Any]) -> None:
        """Record how the pending request ended (state, by whom, when, result); StaleWrite if
        it is no longer pending."""
        self._write(self.direct._decide, {"key": request_id, **values}, guarded=True)

    def insert(self, table: sa.Table, values: Mapping[str, Any]) -> None:
        """Insert one row of `table` with these columns."""
        self._write(self.direct._compiled("insert", table, tuple(sorted(values))), values)

    def write_many(self, compiled: Compiled, parameters: Sequence[Any]) -> None:
        """Run a write once per set of (converted) values."""
        self._begin()
        with self.direct._cursor(self.connection) as cursor:
            cursor.executemany(compiled.sql, parameters)

    def _write(
        self, compiled: Compiled, values: Mapping[str, Any], *, guarded: bool = False
    ) -> None:
        """A write; `guarded`: it must change exactly one row (else StaleWrite, when its answer
        comes). Prepared until the transaction begins."""
        parameters = compiled.parameters(values)
        if self.connection is None:
            self._prepared.append((compiled, parameters, guarded))
        else:
            self._send(compiled, parameters, guarded)

    def _send(self, compiled: Compiled, parameters: Any, guarded: bool) -> None:
        pipelined = self._pipeline is not None
        with self.direct._cursor(self.connection, keep=pipelined) as cursor:
            cursor.execute(compiled.sql, parameters)
            if pipelined:
                self._unanswered.append((cursor, compiled if guarded else None))
            elif guarded and cursor.rowcount != 1:
                raise StaleWrite(compiled.sql.split(None, 2)[1])

    def _answers(self) -> None:
        """Wait for the server's answers to the writes sent; StaleWrite if a guard failed."""
        if self._pipeline is None:
            return
        self._pipeline.sync()
        unanswered, self._unanswered = self._unanswered, []
        stale = [c for cursor, c in unanswered if c is not None and cursor.rowcount != 1]
        for cursor, _ in unanswered:
            cursor.close()
        if stale:
            raise StaleWrite(stale[0].sql.split(None, 2)[1])

    def roll_back_unless_committed(self) -> None:
        """Undo what was sent, if this transaction began and did not commit."""
        for cursor, _ in self._unanswered:
            cursor.close()
        self._unanswered = []
        connection = self.connection
        began = connection is not None and not self.committed
        if began and self.direct._local.connection is connection:  # (not dropped as broken)
            connection.dbapi_connection.execute("ROLLBACK")

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed."""
        self._after_commit.append(callback)

    def commit(self) -> None:
        """Commit (once every guard has passed), then run the after-commit callbacks."""
        self._begin()
        self._answers()
        self.connection.dbapi_connection.execute("COMMIT")
        if self._pipeline is not None:
            self._pipeline.sync()
        self.committed = True
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


class _TableWriter:
    def __init__(self, transaction: DirectTransaction, table: sa.Table) -> None:
        self.transaction = transaction
        self.table = table

    def insert(self, **values: Any) -> None:
        """Insert one row in the transaction."""
        row = outbox_values(values) if self.table is _OUTBOX else values
        self.transaction.insert(self.table, row)
