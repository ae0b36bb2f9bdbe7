"""The unit of work and its repositories: one transaction, committed explicitly."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: threads still queue, processes poll
    fcntl = None  # type: ignore[assignment]

from core.audit import GENESIS, chain_hash
from core.domain import AppState, BillingMode, Plan, Status
from core.money import RateSegment
from core.store.db import read_only
from core.store.tables import (
    AccessGrantRow,
    ApprovalRow,
    AppRow,
    AuditEventRow,
    AuditHeadRow,
    OutboxRow,
    PendingRequestRow,
    PlanHistoryRow,
)

__all__ = ["UnitOfWork", "app_state", "apply_state"]


def app_state(row: AppRow) -> AppState:
    """The domain value of an app row."""
    return AppState(
        app_id=row.app_id,
        name=row.name,
        plan=Plan(row.plan),
        billing_mode=BillingMode(row.billing_mode),
        status=Status(row.status),
        created_at=row.created_at,
        owner_channel=row.owner_channel,
        dev_expires_at=row.dev_expires_at,
        disabled_at=row.disabled_at,
        config_changed_at=row.config_changed_at,
        config=dict(row.config or {}),
        version=row.version,
    )


def apply_state(row: AppRow, state: AppState, now: datetime) -> None:
    """Write a domain value back onto its row."""
    row.name = state.name
    row.owner_channel = state.owner_channel
    row.plan = state.plan.value
    row.billing_mode = state.billing_mode.value
    row.status = state.status.value
    row.dev_expires_at = state.dev_expires_at
    row.disabled_at = state.disabled_at
    row.config_changed_at = state.config_changed_at
    row.config = dict(state.config)
    row.version = state.version
    row.updated_at = now


# The hot reads and the pending-request insert go through SQLAlchemy Core with statements built
# once: on every Slack request they cost a fraction of the ORM's per-object bookkeeping.
_APP: sa.Table = AppRow.__table__  # type: ignore[attr-defined]
_HISTORY: sa.Table = PlanHistoryRow.__table__  # type: ignore[attr-defined]
_PENDING: sa.Table = PendingRequestRow.__table__  # type: ignore[attr-defined]
_AUDIT: sa.Table = AuditEventRow.__table__  # type: ignore[attr-defined]
_HEAD: sa.Table = AuditHeadRow.__table__  # type: ignore[attr-defined]
_OUTBOX: sa.Table = OutboxRow.__table__  # type: ignore[attr-defined]
_HEAD_LOCKED = sa.select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_HEAD_ADVANCE = (
    sa.update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=sa.bindparam("seq"), hash=sa.bindparam("hash"))
)
_OUTBOX_DUE = (
    sa.select(_OUTBOX.c.id)
    .where(
        _OUTBOX.c.status == "pending",
        _OUTBOX.c.next_attempt_at <= sa.bindparam("now"),
        sa.or_(_OUTBOX.c.lease_until.is_(None), _OUTBOX.c.lease_until <= sa.bindparam("now")),
    )
    .limit(1)
)
_APP_BY_ID = sa.select(_APP).where(_APP.c.app_id == sa.bindparam("app_id"))
_APP_BY_NAME = sa.select(_APP).where(_APP.c.name == sa.bindparam("name")).limit(5)
_SEGMENTS = (
    sa.select(
        _HISTORY.c.effective_at,
        _HISTORY.c.plan,
        _HISTORY.c.status,
        _HISTORY.c.billing_mode,
        _HISTORY.c.monthly_price,
        _HISTORY.c.config,
    )
    .where(
        _HISTORY.c.app_id == sa.bindparam("app_id"), _HISTORY.c.effective_at < sa.bindparam("until")
    )
    .order_by(_HISTORY.c.effective_at, _HISTORY.c.id)
)


class Apps:
    """Apps by id or name."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, app_id: str, *, lock: bool = False) -> AppRow | None:
        """The app, row-locked for the transaction when `lock`."""
        query = select(AppRow).where(AppRow.app_id == app_id)
        if lock:
            query = query.with_for_update()
        return self.session.exec(query).first()

    def state(self, app_id: str) -> AppState | None:
        """The app's state, read without loading an ORM object."""
        row = self.session.connection().execute(_APP_BY_ID, {"app_id": app_id}).first()
        return app_state(row) if row is not None else None  # type: ignore[arg-type]

    def states_by_name(self, name: str) -> list[AppState]:
        """The states of the apps with exactly that name (at most 5)."""
        rows = self.session.connection().execute(_APP_BY_NAME, {"name": name}).all()
        return [app_state(r) for r in rows]  # type: ignore[arg-type]

    def by_name(self, name: str) -> Sequence[AppRow]:
        """Apps with exactly that name."""
        return self.session.exec(select(AppRow).where(AppRow.name == name).limit(5)).all()

    def add(self, row: AppRow) -> None:
        """Stage a new app."""
        self.session.add(row)

    def save(self, before: AppState | None, after: AppState, now: datetime) -> None:
        """Write an app's new state (a new app when `before` is None)."""
        if before is None:
            row = AppRow(
                app_id=after.app_id,
                name=after.name,
                plan=after.plan.value,
                billing_mode=after.billing_mode.value,
                status=after.status.value,
                created_at=after.created_at,
                updated_at=now,
            )
            apply_state(row, after, now)
            self.session.add(row)
            return
        # already loaded (and locked) by the caller: the identity map answers, no query
        loaded = self.session.identity_map.get(identity_key(AppRow, after.app_id))
        found = loaded if loaded is not None else self.get(after.app_id, lock=True)
        assert found is not None
        apply_state(found, after, now)
        self.session.add(found)

    def page(
        self, *, contains: str | None, channels: Sequence[str] | None, offset: int, limit: int
    ) -> tuple[Sequence[AppRow], int]:
        """A page of apps (optionally filtered) and the count of all matching."""
        query = select(AppRow)
        if contains:
            literal = contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = f"%{literal}%"
            query = query.where(
                sa.or_(
                    sa.func.lower(AppRow.name).like(like, escape="\\"),
                    col(AppRow.app_id).like(like, escape="\\"),
                    col(AppRow.plan) == contains.lower(),
                    col(AppRow.status) == contains.lower(),
                )
            )
        if channels is not None:
            query = query.where(col(AppRow.owner_channel).in_(channels))
        total = self.session.exec(select(sa.func.count()).select_from(query.subquery())).one()
        rows = self.session.exec(
            query.order_by(AppRow.name, AppRow.app_id).offset(offset).limit(limit)
        ).all()
        return rows, int(total)

    def ids(self) -> set[str]:
        """Every app id (for imports)."""
        return set(self.session.exec(select(AppRow.app_id)).all())


class History:
    """The plan history of apps."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def insert(self, **values: Any) -> None:
        """Write a history entry now, in the caller's transaction (one Core statement)."""
        self.session.connection().execute(sa.insert(_HISTORY), values)

    def for_app(self, app_id: str, *, limit: int | None = None) -> Sequence[PlanHistoryRow]:
        """The app's history, newest first."""
        query = (
            select(PlanHistoryRow)
            .where(PlanHistoryRow.app_id == app_id)
            .order_by(col(PlanHistoryRow.effective_at).desc(), col(PlanHistoryRow.id).desc())
        )
        if limit:
            query = query.limit(limit)
        return self.session.exec(query).all()

    def segments(self, app_id: str, *, until: datetime) -> list[RateSegment]:
        """The app's rate segments that started before `until`, oldest first."""
        rows = self.session.connection().execute(_SEGMENTS, {"app_id": app_id, "until": until})
        return [segment(row) for row in rows]  # type: ignore[arg-type]

    def segments_for(
        self, app_ids: Iterable[str], *, until: datetime
    ) -> dict[str, list[RateSegment]]:
        """Rate segments for several apps at once."""
        ids = list(app_ids)
        result: dict[str, list[RateSegment]] = {i: [] for i in ids}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            rows = self.session.exec(
                select(PlanHistoryRow)
                .where(col(PlanHistoryRow.app_id).in_(chunk), PlanHistoryRow.effective_at < until)
                .order_by(col(PlanHistoryRow.effective_at), col(PlanHistoryRow.id))
            ).all()
            for row in rows:
                result[row.app_id].append(segment(row))
        return result


def segment(row: PlanHistoryRow) -> RateSegment:
    """The rate segment a history entry starts."""
    return RateSegment(
        start=row.effective_at,
        plan=Plan(row.plan),
        status=Status(row.status),
        billing_mode=BillingMode(row.billing_mode),
        monthly=Decimal(row.monthly_price),
        config=tuple(sorted((row.config or {}).items())),
    )


class Requests:
    """Pending requests and their approvals."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, request_id: str, *, lock: bool = False) -> PendingRequestRow | None:
        """The request, row-locked for the transaction when `lock`."""
        query = select(PendingRequestRow).where(PendingRequestRow.id == request_id)
        if lock:
            query = query.with_for_update()
        return self.session.exec(query).first()

    def add(self, row: PendingRequestRow) -> None:
        """Stage a new request."""
        self.session.add(row)

    def insert(self, row: PendingRequestRow) -> None:
        """Insert a new request now (one Core statement, no ORM bookkeeping)."""
        values = {c.name: getattr(row, c.name) for c in _PENDING.columns}
        self.session.connection().execute(sa.insert(_PENDING), values)

    def approvals(self, request_id: str) -> Sequence[ApprovalRow]:
        """The approvals given so far."""
        return self.session.exec(
            select(ApprovalRow)
            .where(ApprovalRow.request_id == request_id)
            .order_by(col(ApprovalRow.id))
        ).all()

    def add_approval(self, row: ApprovalRow) -> None:
        """Stage an approval."""
        self.session.add(row)

    def expired(self, now: datetime, *, limit: int) -> Sequence[PendingRequestRow]:
        """Requests still pending past their expiry."""
        return self.session.exec(
            select(PendingRequestRow)
            .where(PendingRequestRow.state == "pending", PendingRequestRow.expires_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()


def audit_record(head: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Every column of the record that follows `head` (None: the first), its hash included."""
    seq, prev_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    record: dict[str, Any] = {
        "before": {},
        "after": {},
        "detail": "",
        "actor_name": "",
        "app_id": None,
        "request_id": None,
        "cost": None,
        **fields,
        "seq": seq + 1,
    }
    record["prev_hash"] = prev_hash
    record["hash"] = chain_hash(prev_hash, record)
    return record


class Audit:
    """The append-only, hash-chained audit log."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, **fields: Any) -> int:
        """Append one record; the head row lock orders concurrent writers. Returns its seq."""
        connection = self.session.connection()
        head = connection.execute(_HEAD_LOCKED).first()
        record = audit_record(head, fields)
        connection.execute(sa.insert(_AUDIT), record)
        if head is None:
            connection.execute(
                sa.insert(_HEAD), {"id": 1, "seq": record["seq"], "hash": record["hash"]}
            )
        else:
            connection.execute(_HEAD_ADVANCE, {"seq": record["seq"], "hash": record["hash"]})
        return int(record["seq"])

    def head(self) -> AuditHeadRow:
        """The stored head of the chain."""
        return self.session.get(AuditHeadRow, 1) or AuditHeadRow(id=1, seq=0)

    def iterate(self, *, batch: int = 5000) -> Iterable[AuditEventRow]:
        """Every record in order, in batches."""
        last = 0
        while True:
            rows = self.session.exec(
                select(AuditEventRow)
                .where(AuditEventRow.seq > last)
                .order_by(col(AuditEventRow.seq))
                .limit(batch)
            ).all()
            if not rows:
                return
            yield from rows
            last = rows[-1].seq


def outbox_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every column of a new outbox entry (but its id), defaults filled in."""
    row: dict[str, Any] = {c.name: None for c in _OUTBOX.c if c.name != "id"}
    row.update(status="pending", attempts=0, receipt={}, payload={}, destination="")
    row.update(values)
    return row


class Outbox:
    """Messages and provisioning calls waiting for delivery."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: OutboxRow) -> None:
        """Stage an entry (written in the caller's transaction)."""
        self.session.add(row)

    def insert(self, **values: Any) -> None:
        """Write an entry now, in the caller's transaction (one Core statement)."""
        self.session.connection().execute(sa.insert(_OUTBOX), outbox_values(values))

    def claim_due(self, now: datetime, lease_until: datetime, *, limit: int) -> list[OutboxRow]:
        """Lease the oldest due entries, at most one per app and destination, in order."""
        if self.session.get_bind().dialect.name == "postgresql":
            # a lease lost in a crash only runs out: this commit need not wait for the disk
            self.session.execute(sa.text("SET LOCAL synchronous_commit = off"))
        # The head of each app and destination's queue is its oldest pending entry (an entry
        # about no app is a queue of its own). One pass over the pending entries finds them all;
        # a "no earlier pending entry" test per entry would cost the square of the backlog.
        heads = (
            select(sa.func.min(OutboxRow.id))
            .where(OutboxRow.status == "pending")
            .group_by(
                col(OutboxRow.destination),
                col(OutboxRow.app_id),
                sa.case((col(OutboxRow.app_id).is_(None), OutboxRow.id), else_=None),
            )
        )
        rows = self.session.exec(
            select(OutboxRow)
            .where(
                col(OutboxRow.id).in_(heads),
                OutboxRow.next_attempt_at <= now,
                sa.or_(col(OutboxRow.lease_until).is_(None), col(OutboxRow.lease_until) <= now),
            )
            .order_by(col(OutboxRow.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            row.lease_until = lease_until
            row.attempts += 1
            self.session.add(row)
        return list(rows)

    def any_due(self, now: datetime) -> bool:
        """Whether any entry is due and not leased (a cheap read before claiming)."""
        row = self.session.connection().execute(_OUTBOX_DUE, {"now": now}).first()
        return row is not None

    def get(self, entry_id: int, *, lock: bool = False) -> OutboxRow | None:
        """One entry by id, row-locked for the transaction when `lock`."""
        return self.session.get(OutboxRow, entry_id, with_for_update=True if lock else None)

    def counts(self) -> dict[str, int]:
        """How many entries are in each status."""
        rows = self.session.exec(
            select(OutboxRow.status, sa.func.count()).group_by(OutboxRow.status)
        ).all()
        return {status: int(count) for status, count in rows}


class Grants:
    """Access grants."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def all(self) -> Sequence[AccessGrantRow]:
        """Every grant."""
        return self.session.exec(
            select(AccessGrantRow).order_by(AccessGrantRow.role, AccessGrantRow.principal_id)
        ).all()

    def find(self, kind: str, principal_id: str, role: str, team: str) -> AccessGrantRow | None:
        """One exact grant."""
        return self.session.exec(
            select(AccessGrantRow).where(
                AccessGrantRow.principal_kind == kind,
                AccessGrantRow.principal_id == principal_id,
                AccessGrantRow.role == role,
                AccessGrantRow.team == team,
            )
        ).first()

    def add(self, row: AccessGrantRow) -> None:
        """Stage a grant."""
        self.session.add(row)

    def delete(self, row: AccessGrantRow) -> None:
        """Stage a revocation."""
        self.session.delete(row)


class WriterQueue:
    """The queue SQLite's writers wait in: a lock per process, and a file lock across them.

    SQLite admits one writer at a time and makes the others poll with sleeps of up to 100 ms;
    under a burst that convoy turns milliseconds of work into seconds of latency, and a server
    answering on its event loop would stall meanwhile. Writers queue here instead and start the
    moment the writer before them commits: threads of one process on a lock, processes (the
    server, its delivery worker, replicas) on an advisory lock of a file beside the database,
    which the kernel hands over without polling. Other programs still meet SQLite's own lock.
    """

    def __init__(self, database: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        if database and database != ":memory:" and fcntl is not None:
            self._fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        """Wait for the turn of this thread (re-entrant within a thread)."""
        self._lock.acquire()
        self._depth += 1
        if self._depth == 1 and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._lock.release()
                raise

    def release(self) -> None:
        """Let the next writer in."""
        if self._depth == 1 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._depth -= 1
        self._lock.release()


_WRITER_QUEUES: weakref.WeakKeyDictionary[Any, WriterQueue] = weakref.WeakKeyDictionary()
_WRITER_QUEUES_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> WriterQueue | None:
    """On SQLite, the queue its writers wait in (None on other databases)."""
    if engine.dialect.name != "sqlite":
        return None
    with _WRITER_QUEUES_GUARD:
        queue = _WRITER_QUEUES.get(engine.pool)
        if queue is None:
            queue = _WRITER_QUEUES[engine.pool] = WriterQueue(engine.url.database)
        return queue


class UnitOfWork:
    """One database transaction with the repositories; commit explicitly or it rolls back."""

    def __init__(self, engine: Engine, *, write: bool = True) -> None:
        self.engine = engine if write else read_only(engine)
        self._after_commit: list[Callable[[], None]] = []
        self._lock = _writer_lock(engine) if write else None

    def __enter__(self) -> Self:
        if self._lock is not None:
            self._lock.acquire()
        self.session = Session(self.engine, expire_on_commit=False, autoflush=True)
        self.apps = Apps(self.session)
        self.history = History(self.session)
        self.requests = Requests(self.session)
        self.audit = Audit(self.session)
        self.outbox = Outbox(self.session)
        self.grants = Grants(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # Detach what was loaded first, so rows handed out stay readable after the unit of
            # work (a rollback would expire them, and a detached row can't reload).
            self.session.expunge_all()
            self.session.rollback()
        finally:
            self.session.close()
            if self._lock is not None:
                self._lock.release()

    def flush(self) -> None:
        """Send staged changes to the database without committing."""
        self.session.flush()

    def commit(self) -> None:
        """Commit, then run the after-commit callbacks."""
        self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed."""
        self._after_commit.append(callback)
