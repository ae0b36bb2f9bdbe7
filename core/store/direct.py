"""The hot reads and the pending-request insert, straight on a DB-API connection.

Every Slack request reads an app (and, for a preview, its plan history) and a preview stores one
pending request. Through a Session each of those costs more in SQLAlchemy's bookkeeping (session,
pool checkout, transaction events, result objects) than in the database. Here the same Core
statements are compiled once per dialect, and run on one DB-API connection per thread, kept open,
in autocommit: a read is one statement, the insert is one statement. Values still go through the
columns' own types (UTC datetimes, JSON), so rows read here equal rows read through the ORM.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import AppState
from core.money import RateSegment
from core.store.tables import AccessGrantRow, PendingRequestRow
from core.store.uow import _APP_BY_ID, _APP_BY_NAME, _SEGMENTS, _writer_lock, app_state, segment

__all__ = ["Compiled", "Direct", "pending_values"]

_PENDING: sa.Table = PendingRequestRow.__table__  # type: ignore[attr-defined]
_GRANTS: sa.Table = AccessGrantRow.__table__  # type: ignore[attr-defined]
_ALL_GRANTS = sa.select(_GRANTS).order_by(_GRANTS.c.role, _GRANTS.c.principal_id)
_INSERT_PENDING = sa.insert(_PENDING).values({c.name: sa.bindparam(c.name) for c in _PENDING.c})

Processor = Callable[[Any], Any] | None


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


class _Row:
    """Attribute access to a dict row (the shape `app_state` and `segment` read)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class _GrantReads:
    def __init__(self, direct: Direct) -> None:
        self.all = direct.all_grants


class Direct:
    """Hot statements on a per-thread DB-API connection in autocommit (no Session)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self._app_by_id = Compiled(_APP_BY_ID, dialect)
        self._app_by_name = Compiled(_APP_BY_NAME, dialect)
        self._segments = Compiled(_SEGMENTS, dialect)
        self._grants = Compiled(_ALL_GRANTS, dialect)
        self._insert_pending = Compiled(_INSERT_PENDING, dialect)
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
            if self.engine.dialect.name != "sqlite":
                # Out of the pool for good (closed with its thread), so that no unit of work is
                # ever handed a connection in autocommit, where its row locks would not hold.
                connection.detach()
                connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
            # SQLite's connections are all in autocommit already (BEGIN is issued explicitly).
            self._local.connection = connection
        return connection

    def _run(self, compiled: Compiled, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        connection = self._connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(compiled.sql, compiled.parameters(values))
                return list(cursor.fetchall()) if compiled.names else []
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as err:
            if self.engine.dialect.is_disconnect(err, connection.dbapi_connection, None):
                # A restarted server: drop this connection; the next call opens another.
                self._local.connection = None
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

    def segments(self, app_id: str, *, until: datetime) -> list[RateSegment]:
        """The app's rate segments that started before `until`, oldest first."""
        rows = self._run(self._segments, {"app_id": app_id, "until": until})
        return [segment(_Row(self._segments.row(r))) for r in rows]  # type: ignore[arg-type]

    def all_grants(self) -> list[AccessGrantRow]:
        """Every access grant."""
        return [AccessGrantRow(**self._grants.row(r)) for r in self._run(self._grants, {})]

    # --- the one write -------------------------------------------------------------------

    def insert_pending(self, values: Mapping[str, Any]) -> None:
        """Store a pending request (one statement, its own transaction)."""
        if self._writers is None:
            self._run(self._insert_pending, values)
            return
        self._writers.acquire()
        try:
            self._run(self._insert_pending, values)
        finally:
            self._writers.release()


def pending_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every column of a pending request, defaults filled in."""
    values: dict[str, Any] = {c.name: None for c in _PENDING.c}
    values.update(state="pending", approvals_needed=0, result={}, actor_name="")
    values.update(row)
    return values
