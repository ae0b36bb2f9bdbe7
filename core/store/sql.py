"""The store on a database: the repositories, written once over a runner, and the unit of work.

A unit of work runs either on a pooled connection that locks what it reads for a change
(`fast=False`), or on compiled statements that don't and guard their writes instead
(`fast=True`, see `core.store.runners`). The repositories are the same code on both, so both
write the same rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.access import Grant
from core.audit import AuditRecord, chained
from core.domain import AppState, HistoryEntry, Status, name_key
from core.money import RateSegment
from core.provider.model import DailyUsage, Drift, ReconciliationLine
from core.requests import Approval, Request
from core.store import mapping
from core.store import statements as S
from core.store.failures import translated
from core.store.ports import (
    HEALTH_WAIT,
    MIN_FREE_BYTES,
    HomeViewer,
    OutboxEntry,
    Person,
    StoreUnwritable,
)
from core.store.runners import (
    CompiledRunner,
    ConnectionRunner,
    Runner,
    StaleWrite,
    ThreadConnections,
)
from core.store.waits import REQUEST_WAITS, Waits, allowed, answering_within, waited, waits_of

__all__ = ["HEALTH_MARK", "SqlStore", "SqlUnitOfWork"]

#: the mark the health check writes (its last success)
HEALTH_MARK = "health_probe"

log = logging.getLogger(__name__)


class SqlApps:
    """Apps (see `core.store.ports.Apps`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def get(self, app_id: str, *, lock: bool = False) -> AppState | None:
        rows = self.run.rows(S.APP_BY_ID, {"app_id": app_id}, lock=lock)
        return mapping.app_state(rows[0]) if rows else None

    def by_name(self, name: str) -> list[AppState]:
        rows = self.run.rows(S.APP_BY_NAME, {"name_key": name_key(name)})
        return [mapping.app_state(r) for r in rows]

    def names_taken(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        return {r["name_key"] for r in self.run.query(S.APP_NAMES_TAKEN.params(keys=list(keys)))}

    def with_segments(
        self, app_id: str, *, until: datetime, lock: bool = False
    ) -> tuple[AppState, list[RateSegment]] | None:
        rows = self.run.rows(S.APP_WITH_SEGMENTS, {"app_id": app_id, "until": until}, lock=lock)
        if not rows:
            return None
        segments = [
            mapping.segment({name: row[f"segment_{name}"] for name in S.SEGMENT_COLUMNS})
            for row in rows
            if row["segment_effective_at"] is not None
        ]
        return mapping.app_state(rows[0]), segments

    def names_starting(
        self,
        prefix: str,
        *,
        teams: Sequence[str] | None = None,
        lengths: tuple[int, int] | None = None,
        limit: int,
    ) -> list[str]:
        query = S.names_starting(prefix, teams=teams, lengths=lengths, limit=limit)
        return [r["name"] for r in self.run.query(query)]

    def add(self, state: AppState, now: datetime) -> None:
        self.run.write(S.APP_INSERT, mapping.app_row(state, now))

    def add_many(self, states: Sequence[AppState], now: datetime) -> None:
        self.run.write_many(S.APP_INSERT, [mapping.app_row(s, now) for s in states])

    def save(self, before: AppState, after: AppState, now: datetime) -> None:
        values = mapping.app_row(after, now)
        values.update(key=after.app_id, read_version=before.version)
        self.run.write(S.APP_SAVE, values, guarded=True)

    def page(
        self, *, contains: str | None, channels: Sequence[str] | None, offset: int, limit: int
    ) -> tuple[list[AppState], int]:
        query, count = S.apps_page(contains=contains, channels=channels)
        total = int(next(iter(self.run.query(count)[0].values())))
        rows = self.run.query(query.offset(offset).limit(limit))
        return [mapping.app_state(r) for r in rows], total

    def ids(self) -> set[str]:
        return {r["app_id"] for r in self.run.query(S.APP_IDS)}

    def owner_channels(self) -> list[str]:
        return [str(r["owner_channel"]) for r in self.run.query(S.OWNER_CHANNELS)]

    def _due(self, what: str, now: datetime) -> tuple[sa.ColumnElement[bool], Any]:
        if what == "suspend":
            return S.suspension_due(now), S.APP.c.dev_expires_at
        if what == "purge":
            return S.purge_due(now), S.APP.c.disabled_at
        raise ValueError(f"nothing called {what!r} is due")

    def any_due(self, what: str, now: datetime) -> bool:
        condition, column = self._due(what, now)
        # Ordered by the due date, so that the planner walks the index from the end that
        # matters: without it PostgreSQL may bet on a sequential scan finding a row early.
        return bool(self.run.query(sa.select(column).where(condition).order_by(column).limit(1)))

    def due(self, what: str, now: datetime, *, limit: int) -> list[AppState]:
        condition, column = self._due(what, now)
        query = sa.select(S.APP).where(condition).order_by(column).limit(limit)
        return [mapping.app_state(r) for r in self.run.query(query, lock="skip")]

    def in_window(
        self,
        status: Status,
        column: str,
        low: datetime,
        high: datetime,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[AppState]:
        due = S.APP.c[column]
        query = sa.select(S.APP).where(S.notice_window(status, column, low, high))
        if after is not None:
            query = query.where(
                sa.or_(due > after[0], sa.and_(due == after[0], S.APP.c.app_id > after[1]))
            )
        query = query.order_by(due, S.APP.c.app_id).limit(limit)
        return [mapping.app_state(r) for r in self.run.query(query)]

    def any_in_window(self, status: Status, column: str, low: datetime, high: datetime) -> bool:
        """Whether any app is in the window (an index range, first row only)."""
        due = S.APP.c[column]
        query = sa.select(due).where(S.notice_window(status, column, low, high))
        return bool(self.run.query(query.order_by(due).limit(1)))

    def billed_teams(self, start: datetime, end: datetime) -> list[str | None]:
        query = sa.select(S.APP.c.owner_channel).where(S.billed_in(start, end)).distinct()
        return [r["owner_channel"] for r in self.run.query(query)]

    def billed(self, start: datetime, end: datetime, teams: Sequence[str | None]) -> list[AppState]:
        query = (
            sa.select(S.APP)
            .where(S.billed_in(start, end), S.of_teams(teams))
            .order_by(S.APP.c.owner_channel, S.APP.c.name, S.APP.c.app_id)
        )
        return [mapping.app_state(r) for r in self.run.query(query)]

    def many(self, app_ids: Sequence[str]) -> list[AppState]:
        found: list[AppState] = []
        ids = list(dict.fromkeys(app_ids))
        for start in range(0, len(ids), 500):
            rows = self.run.query(S.apps_with_ids(ids[start : start + 500]))
            found.extend(mapping.app_state(r) for r in rows)
        return found

    def search(self, text: str, *, channels: Sequence[str] | None, limit: int) -> list[AppState]:
        if channels is not None and not channels:
            return []
        dialect = self.run.dialect
        needle = S.search_text(dialect, text)
        values = S.search_values(needle, limit)
        # PostgreSQL weighs a team filter against the indexes itself (it keeps statistics);
        # SQLite has none: how many apps the teams own decides the plan here
        postgres = dialect == "postgresql"
        few = channels is not None and not postgres and self._few(channels)

        def rows(query: Any) -> list[Any]:
            if channels is None:
                return self.run.rows(query, values)
            return self.run.query(S.of_channels(query, channels, values, few=few or postgres))

        found: dict[str, AppState] = {}
        prefixes = [S.APPS_BY_NAME] if needle else [S.APPS_FIRST]
        if needle.isascii() and needle.isdigit():
            prefixes.insert(0, S.APPS_BY_ID)
        for query in prefixes:
            for row in rows(query):
                found.setdefault(row["app_id"], mapping.app_state(row))
        if len(found) >= limit or len(needle) < 3:
            return list(found.values())[:limit]
        values["limit"] = limit + len(found)  # those found already may come again
        if few:
            assert channels is not None
            ids = self.run.query(S.ids_containing(channels, needle, values["limit"]))
            found_ids = [r["app_id"] for r in ids]
            contained = self.run.query(S.apps_with_ids(found_ids)) if ids else []
        elif postgres:
            query = S.apps_containing_trigram(values["pattern"], values["limit"])
            if channels is not None:
                query = S.of_channels(query, channels, {}, few=True)
            contained = self.run.query(query)
        else:
            try:
                contained = rows(S.APPS_CONTAINING_FTS)
            except (sa.exc.OperationalError, sqlite3.OperationalError):  # an older SQLite
                contained = rows(S.APPS_CONTAINING_SCAN)  # made no trigram table: scan
        contained.sort(key=lambda r: (r["name"].lower(), r["app_id"]))
        for row in contained:
            if row["app_id"] not in found:
                found[row["app_id"]] = mapping.app_state(row)
        return list(found.values())[:limit]

    def _few(self, channels: Sequence[str]) -> bool:
        """Whether the teams own few enough apps to scan them all."""
        return not self.run.query(S.more_visible_than(channels, S.FEW_VISIBLE))

    def team_page(
        self, *, channels: Sequence[str] | None, team: str | None, offset: int, limit: int
    ) -> list[AppState]:
        query = S.team_page(channels, team, offset, limit)
        return [mapping.app_state(r) for r in self.run.query(query)]

    def count(self, *, channels: Sequence[str] | None, team: str | None, cap: int) -> int:
        rows = self.run.query(S.team_count(channels, team, cap))
        return int(next(iter(rows[0].values())))

    def teams(self, *, limit: int) -> list[str]:
        return [r["team"] for r in self.run.query(S.owner_teams(limit))]

    def upcoming(
        self,
        status: Status,
        column: str,
        low: datetime,
        high: datetime,
        *,
        channels: Sequence[str] | None,
        limit: int,
    ) -> list[AppState]:
        query = S.apps_upcoming(status, column, low, high, channels, limit)
        return [mapping.app_state(r) for r in self.run.query(query)]


class SqlHistory:
    """Plan history (see `core.store.ports.History`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def add(self, entry: HistoryEntry) -> None:
        self.run.write(S.HISTORY_INSERT, mapping.history_row(entry))

    def add_many(self, entries: Sequence[HistoryEntry]) -> None:
        self.run.write_many(S.HISTORY_INSERT, [mapping.history_row(e) for e in entries])

    def of(self, app_id: str, *, limit: int) -> list[HistoryEntry]:
        rows = self.run.rows(S.HISTORY_OF_APP, {"app_id": app_id, "limit": limit})
        return [mapping.history_entry(r) for r in rows]

    def segments(self, app_id: str, *, until: datetime) -> list[RateSegment]:
        rows = self.run.rows(S.SEGMENTS, {"app_id": app_id, "until": until})
        return [mapping.segment(r) for r in rows]

    def segments_of(
        self, app_ids: Iterable[str], *, until: datetime
    ) -> dict[str, list[RateSegment]]:
        ids = list(app_ids)
        found: dict[str, list[RateSegment]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            for row in self.run.query(S.segments_of(ids[start : start + 500], until)):
                found[row["app_id"]].append(mapping.segment(row))
        return found


class SqlRequests:
    """Requests (see `core.store.ports.Requests`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def get(self, request_id: str, *, lock: bool = False) -> Request | None:
        rows = self.run.rows(S.REQUEST_BY_ID, {"id": request_id}, lock=lock)
        if not rows:
            return None
        approvals: list[Any] = []
        if rows[0]["approvals_needed"]:
            approvals = self.run.rows(S.APPROVALS_OF, {"request_id": request_id})
        return mapping.request(rows[0], approvals)

    def add(self, request: Request) -> None:
        self.run.write(S.REQUEST_INSERT, mapping.request_row(request))

    def decide(self, before: Request, after: Request) -> None:
        values = mapping.request_decided(after)
        values.update(key=after.id, read_state=before.state.value)
        self.run.write(S.REQUEST_DECIDE, values, guarded=True)

    def add_approval(self, request_id: str, approval: Approval) -> None:
        self.run.write(S.APPROVAL_INSERT, mapping.approval_row(request_id, approval))

    def any_expired(self, now: datetime) -> bool:
        query = sa.select(S.REQUEST.c.expires_at).where(S.request_expiry_due(now))
        return bool(self.run.query(query.order_by(S.REQUEST.c.expires_at).limit(1)))

    def expired(self, now: datetime, *, limit: int) -> list[Request]:
        rows = self.run.query(S.requests_where(S.request_expiry_due(now)).limit(limit), lock="skip")
        found = []
        for row in rows:
            approvals = (
                self.run.rows(S.APPROVALS_OF, {"request_id": row["id"]})
                if row["approvals_needed"]
                else []
            )
            found.append(mapping.request(row, approvals))
        return found

    def awaiting_approval(self, now: datetime, *, limit: int) -> list[Request]:
        rows = self.run.rows(S.REQUESTS_AWAITING, {"now": now, "limit": limit})
        if not rows:
            return []
        approvals: dict[str, list[Any]] = {}
        for approval in self.run.query(S.approvals_of_many([r["id"] for r in rows])):
            approvals.setdefault(approval["request_id"], []).append(approval)
        return [mapping.request(r, approvals.get(r["id"], [])) for r in rows]


class SqlAudit:
    """The audit log (see `core.store.ports.Audit`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def append(self, record: AuditRecord) -> int:
        asked = time.perf_counter()
        heads = self.run.rows(S.HEAD_LOCKED, within=True)
        if self.run.dialect != "sqlite":  # SQLite's writers waited in their queue already
            waited("audit_chain_head", time.perf_counter() - asked)
        head = (heads[0]["seq"], heads[0]["hash"]) if heads else None
        row = chained(record, head)
        self.run.write(S.AUDIT_INSERT, row)
        values = {"seq": row["seq"], "hash": row["hash"]}
        if head is None:
            self.run.write(S.HEAD_INSERT, {"id": 1, **values})
        else:
            self.run.write(S.HEAD_ADVANCE, values)
        return int(row["seq"])

    def head(self) -> tuple[int, str]:
        heads = self.run.rows(S.HEAD_READ)
        return (heads[0]["seq"], heads[0]["hash"]) if heads else (0, "0" * 64)

    def records(self, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            rows = self.run.rows(S.AUDIT_AFTER, {"after": last, "limit": batch})
            if not rows:
                return
            for row in rows:
                yield dict(row)
            last = rows[-1]["seq"]


def outbox_row(entry: OutboxEntry) -> dict[str, Any]:
    """Every column of a new outbox entry (but its id)."""
    return {
        "key": entry.key,
        "kind": entry.kind,
        "topic": entry.topic,
        "destination": entry.destination,
        "app_id": entry.app_id,
        "payload": dict(entry.payload),
        "created_at": entry.created_at,
        "status": "delivered" if entry.delivered else "pending",
        "attempts": 0,
        "next_attempt_at": entry.created_at,
        "lease_until": None,
        "delivered_at": entry.created_at if entry.delivered else None,
        "last_error": None,
        "receipt": {},
    }


def outbox_entry(row: Any) -> OutboxEntry:
    """The entry of an outbox row."""
    return OutboxEntry(
        id=row["id"],
        key=row["key"],
        kind=row["kind"],
        topic=row["topic"],
        destination=row["destination"],
        app_id=row["app_id"],
        payload=row["payload"] or {},
        created_at=row["created_at"],
        status=row["status"],
        attempts=row["attempts"],
        receipt=row["receipt"] or {},
    )


class SqlOutbox:
    """The outbox (see `core.store.ports.Outbox`), and what its dispatcher needs."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def add(self, entry: OutboxEntry) -> None:
        self.run.write(S.OUTBOX_INSERT, outbox_row(entry))

    def add_once(self, entries: Sequence[OutboxEntry]) -> list[str]:
        # In key order, so concurrent sweeps inserting the same keys wait on each other
        # instead of deadlocking.
        rows = sorted((outbox_row(e) for e in entries), key=lambda r: r["key"])
        inserted: list[str] = []
        for start in range(0, len(rows), 500):
            statement = S.insert_ignoring(
                self.run.dialect, S.OUTBOX, rows[start : start + 500], "key"
            )
            inserted.extend(r["key"] for r in self.run.execute(statement))
        return inserted

    def by_key(self, key: str) -> OutboxEntry | None:
        rows = self.run.rows(S.OUTBOX_BY_KEY, {"key": key})
        return outbox_entry(rows[0]) if rows else None

    def get(self, entry_id: int, *, lock: bool = False) -> OutboxEntry | None:
        """The entry with that id."""
        rows = self.run.rows(S.OUTBOX_BY_ID, {"id": entry_id}, lock=lock)
        return outbox_entry(rows[0]) if rows else None

    def keys_in(self, keys: Sequence[str]) -> set[str]:
        return {r["key"] for r in self.run.query(S.outbox_keys_in(keys))} if keys else set()

    def any_due(self, now: datetime) -> bool:
        """Whether any entry is due and not leased (a cheap read before claiming)."""
        return bool(self.run.rows(S.OUTBOX_DUE, {"now": now}))

    def claim(self, now: datetime, lease_until: datetime, *, limit: int) -> list[OutboxEntry]:
        """Lease the oldest due entries, at most one per app and destination, in order."""
        if self.run.dialect == "postgresql":
            # a lease lost in a crash only runs out: this commit need not wait for the disk
            self.run.execute(sa.text("SET LOCAL synchronous_commit = off"))
        rows = self.run.query(S.outbox_claimable(now, limit), lock="skip")
        claimed = []
        for row in rows:
            entry = outbox_entry(row)
            self.update(entry.id or 0, {"lease_until": lease_until, "attempts": entry.attempts + 1})
            claimed.append(dataclasses.replace(entry, attempts=entry.attempts + 1))
        return claimed

    def update(self, entry_id: int, values: dict[str, Any]) -> None:
        """Set these columns of one entry."""
        self.run.write(S.outbox_update(tuple(sorted(values))), {**values, "key_": entry_id})

    def update_many(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Set the same columns of several entries."""
        if len(rows) == 1:
            self.update(*rows[0])
        elif rows:
            statement = S.outbox_update(tuple(sorted(rows[0][1])))
            self.run.write_many(statement, [{**values, "key_": key} for key, values in rows])

    def counts(self, statuses: Sequence[str] | None = None) -> dict[str, int]:
        """How many entries are in each status (of `statuses` only, when given)."""
        statement = S.OUTBOX_COUNTS if statuses is None else S.outbox_counts_of(statuses)
        return {r["status"]: int(r["count"]) for r in self.run.query(statement)}

    def oldest_pending(self) -> datetime | None:
        """When the oldest entry still waiting was written."""
        rows = self.run.query(S.OUTBOX_OLDEST_PENDING)
        return next(iter(rows[0].values())) if rows else None

    def waiting(self, destinations: Sequence[str], now: datetime) -> set[str]:
        """Which of these destinations have an entry pending that no one has leased."""
        if not destinations:
            return set()
        if len(destinations) == 1:
            values = {"destination": destinations[0], "now": now}
            return {r["destination"] for r in self.run.rows(S.OUTBOX_WAITING_ONE, values)}
        return {r["destination"] for r in self.run.query(S.outbox_waiting(destinations, now))}


class SqlGrants:
    """Grants (see `core.store.ports.Grants`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def all(self) -> list[tuple[Grant, str]]:
        return [mapping.grant(r) for r in self.run.rows(S.GRANTS_ALL)]

    def add(self, grant: Grant, *, label: str, by: str, at: datetime) -> bool:
        if any(g == grant for g, _ in self.all()):
            return False
        self.run.write(
            S.GRANT_INSERT,
            {
                "principal_kind": grant.principal_kind,
                "principal_id": grant.principal_id,
                "principal_label": label,
                "role": grant.role.label,
                "team": grant.team or "",
                "granted_by": by,
                "granted_at": at,
            },
        )
        return True

    def remove(self, grant: Grant) -> str | None:
        label = next((label for g, label in self.all() if g == grant), None)
        if label is None:
            return None
        self.run.write(
            S.GRANT_DELETE,
            {
                "principal_kind": grant.principal_kind,
                "principal_id": grant.principal_id,
                "role": grant.role.label,
                "team": grant.team or "",
            },
        )
        return label


class SqlMarks:
    """Lifecycle marks (see `core.store.ports.Marks`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def get(self, names: Sequence[str]) -> dict[str, datetime]:
        return {r["name"]: r["at"] for r in self.run.query(S.marks_named(names))}

    def advance(self, name: str, at: datetime) -> None:
        self.run.execute(S.advance_mark(self.run.dialect, name, at))


def _viewer(row: Any) -> HomeViewer:
    return HomeViewer(
        user_id=row["user_id"],
        name=row["name"] or "",
        groups=frozenset(row["groups"] or ()),
        team=row["team"] or None,
        page=row["page"] or 1,
        opened_at=row["opened_at"],
    )


class SqlHomes:
    """Home tab viewers (see `core.store.ports.Homes`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def opened(self, viewer: HomeViewer) -> None:
        row = {
            "user_id": viewer.user_id,
            "name": viewer.name,
            "groups": sorted(viewer.groups),
            "team": viewer.team or "",
            "page": viewer.page,
            "opened_at": viewer.opened_at,
        }
        self.run.write(S.VIEWER_OPENED[self.run.dialect], row)

    def get(self, user_id: str) -> HomeViewer | None:
        rows = self.run.rows(S.VIEWER_GET, {"user_id": user_id})
        return _viewer(rows[0]) if rows else None

    def browse(self, user_id: str, *, team: str | None, page: int) -> None:
        self.run.write(S.VIEWER_BROWSE, {"key": user_id, "team": team or "", "page": page})

    def recent(self, since: datetime, *, limit: int) -> list[HomeViewer]:
        rows = self.run.rows(S.VIEWERS_RECENT, {"since": since, "limit": limit})
        return [_viewer(r) for r in rows]


def _inserted_once(run: Runner, insert: dict[str, Any], row: dict[str, Any]) -> bool:
    """Insert `row` unless its key was seen before (`insert`: an insert-or-ignore by dialect);
    whether it was new. Guarded: the insert must add the row, and adds none for a key seen."""
    try:
        run.write(insert[run.dialect], row, guarded=True)
    except StaleWrite:
        return False
    return True


class SqlReplays:
    """Signatures of state-changing requests (see `core.store.ports.Replays`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def first(self, signature: str, at: datetime) -> bool:
        row = {"signature": signature, "received_at": at}
        return _inserted_once(self.run, S.RECEIVED_FIRST, row)

    def any_before(self, before: datetime) -> bool:
        return bool(self.run.rows(S.RECEIVED_ANY_BEFORE, {"before": before}))

    def forget(self, before: datetime) -> int:
        deleted = S.received_before(before).returning(S.RECEIVED.c.signature)
        return len(self.run.execute(deleted))


def _person(row: Any) -> Person:
    return Person(
        user_id=row["user_id"],
        locale=row["locale"] or None,
        locale_read_at=row["locale_read_at"],
        language=row["language"] or None,
    )


class SqlPeople:
    """People and their languages (see `core.store.ports.People`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def get(self, user_id: str) -> Person | None:
        rows = self.run.rows(S.PERSON_GET, {"user_id": user_id})
        return _person(rows[0]) if rows else None

    def all(self, *, limit: int) -> list[Person]:
        return [_person(r) for r in self.run.rows(S.PEOPLE_ALL, {"limit": limit})]

    def read_locale(self, user_id: str, locale: str | None, at: datetime) -> None:
        row = {"user_id": user_id, "locale": locale or "", "locale_read_at": at, "updated_at": at}
        self.run.write(S.PERSON_LOCALE[self.run.dialect], row)

    def choose(self, user_id: str, language: str | None, at: datetime) -> None:
        row = {"user_id": user_id, "language": language or "", "updated_at": at}
        self.run.write(S.PERSON_LANGUAGE[self.run.dialect], row)


class SqlEvents:
    """Inbound event ids (see `core.store.ports.Events`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def first(self, event_id: str, at: datetime) -> bool:
        row = {"event_id": event_id, "received_at": at}
        return _inserted_once(self.run, S.EVENT_FIRST, row)

    def forget(self, before: datetime) -> int:
        return len(self.run.execute(S.events_before(before).returning(S.EVENT.c.event_id)))


class SqlProvider:
    """The provider connector's records (see `core.store.ports.Provider`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def statuses(self) -> dict[str, Status]:
        return {r["app_id"]: Status(r["status"]) for r in self.run.query(S.APP_STATUSES)}

    def live_apps(self, app_ids: Sequence[str] | None = None) -> list[AppState]:
        if app_ids is not None and not app_ids:
            return []
        return [mapping.app_state(r) for r in self.run.query(S.live_apps(app_ids))]

    def apps_in(self, start: datetime, end: datetime) -> list[AppState]:
        return [mapping.app_state(r) for r in self.run.query(S.apps_in(start, end))]

    def store_usage(self, days: Sequence[DailyUsage], now: datetime) -> int:
        latest = {(d.app_id, d.day): d for d in days}  # the last of a day given twice
        new = 0
        for app_id in sorted({a for a, _ in latest}):
            wanted = [day for a, day in latest if a == app_id]
            stored = {r["day"] for r in self.run.query(S.usage_days_of(app_id, wanted))}
            new += len(set(wanted) - stored)
        rows = [mapping.usage_row(d, now) for _, d in sorted(latest.items())]
        for start in range(0, len(rows), 500):
            self.run.execute(S.upsert_usage(self.run.dialect, rows[start : start + 500]))
        return new

    def usage(self, app_id: str, *, first: date, last: date) -> list[DailyUsage]:
        rows = self.run.rows(S.USAGE_BETWEEN, {"app_id": app_id, "first": first, "last": last})
        return [mapping.daily_usage(r) for r in rows]

    def drift(self) -> Drift:
        rows = self.run.rows(S.DRIFT_ALL)
        return Drift.of(
            unknown=[r["app_id"] for r in rows if r["kind"] == "unknown"],
            missing=[r["app_id"] for r in rows if r["kind"] == "missing"],
        )

    def save_drift(self, drift: Drift, now: datetime) -> None:
        wanted = drift.kinds()
        existing = {r["app_id"]: r["kind"] for r in self.run.rows(S.DRIFT_ALL)}
        gone = sorted(a for a, kind in existing.items() if wanted.get(a) != kind)
        if gone:
            self.run.execute(S.drift_delete(gone))
        new = [
            {"app_id": a, "kind": k, "since": now}
            for a, k in sorted(wanted.items())
            if existing.get(a) != k
        ]
        self.run.write_many(S.DRIFT_INSERT, new)

    def save_reconciliation(
        self, month: str, lines: Sequence[ReconciliationLine], now: datetime
    ) -> None:
        self.run.write(S.RECONCILED_DELETE, {"month": month})
        rows = [mapping.reconciliation_row(month, line, now) for line in lines]
        self.run.write_many(S.RECONCILED_INSERT, rows)

    def reconciliation(self, month: str) -> list[ReconciliationLine]:
        rows = self.run.rows(S.RECONCILED_OF, {"month": month})
        return [mapping.reconciliation_line(r) for r in rows]

    def marks(self, names: Sequence[str]) -> dict[str, tuple[datetime, str]]:
        rows = self.run.query(S.provider_marks_named(names))
        return {r["name"]: (r["at"], r["note"]) for r in rows}

    def set_mark(self, name: str, at: datetime, note: str = "") -> None:
        self.run.execute(S.set_provider_mark(self.run.dialect, name, at, note))


class SqlUnitOfWork:
    """One transaction on a runner, with the repositories (see `core.store.ports`).

    A driver's failure leaves it as core's own when core has a word for it
    (`core.store.failures`): `DatabaseBusy`, `DuplicateName`.
    """

    def __init__(self, make_runner: Callable[[], Runner], waits: Waits = REQUEST_WAITS) -> None:
        self._make_runner = make_runner
        self._waits = waits
        self._after_commit: list[Callable[[], None]] = []

    def __enter__(self) -> Self:
        try:
            self.run = run = self._make_runner()
        except Exception as err:
            better = translated(err, allowed(self._waits.lock))
            if better is not None:
                raise better from err
            raise
        self.dialect = run.dialect
        self.apps = SqlApps(run)
        self.history = SqlHistory(run)
        self.requests = SqlRequests(run)
        self.audit = SqlAudit(run)
        self.outbox = SqlOutbox(run)
        self.grants = SqlGrants(run)
        self.marks = SqlMarks(run)
        self.homes = SqlHomes(run)
        self.events = SqlEvents(run)
        self.replays = SqlReplays(run)
        self.people = SqlPeople(run)
        self.provider = SqlProvider(run)
        return self

    def __exit__(self, *exc: object) -> None:
        err = exc[1] if len(exc) > 1 else None
        try:
            self.run.close()
        except Exception as closing:
            if err is None:
                raise
            log.debug("closing after a failure failed too: %s", closing)
        if isinstance(err, Exception):
            better = translated(err, allowed(self._waits.lock))
            if better is not None:
                raise better from err

    def commit(self) -> None:
        """Commit, then run the after-commit callbacks."""
        self.run.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed."""
        self._after_commit.append(callback)


class SqlStore:
    """Units of work on one database (see `core.store.ports.Store`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.waits = waits_of(engine)
        self._durable = ThreadConnections(engine)
        # a preview's request, a reply to a refused click, delivery marks: commits that need
        # not wait for the disk (PostgreSQL), since losing the last of them is harmless
        self._nowait = ThreadConnections(engine, durable=False)

    def unit_of_work(
        self, *, fast: bool = False, durable: bool = True, write: bool = True
    ) -> SqlUnitOfWork:
        """A unit of work (see `core.store.ports.Store.unit_of_work`)."""
        if fast:
            connections = self._durable if durable else self._nowait
            return SqlUnitOfWork(functools.partial(CompiledRunner, connections), self.waits)
        return SqlUnitOfWork(
            functools.partial(ConnectionRunner, self.engine, write=write, durable=durable),
            self.waits,
        )

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Whether this process may run job `name` (a PostgreSQL advisory lock; SQLite: yes,
        its single writer serialises the job's writes)."""
        if self.dialect != "postgresql":
            yield True
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as connection:
            got = bool(
                connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            )
            connection.commit()
            try:
                yield got
            finally:
                if got:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()

    def ping(self, *, timeout: float = HEALTH_WAIT, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        """Return when the database takes a write within `timeout` seconds (see
        `core.store.ports.Store.ping`): a mark written and committed, so a lock held too long,
        a database that cannot be written or does not answer all fail it; on SQLite, also a
        disk with less than `min_free_bytes` free beside the database."""
        with answering_within(timeout):
            database = self.engine.url.database
            if self.dialect == "sqlite" and database and database != ":memory:":
                folder = os.path.dirname(os.path.abspath(database))
                stat = os.statvfs(folder)
                free = stat.f_bavail * stat.f_frsize
                if free < min_free_bytes:
                    raise StoreUnwritable(f"{free} bytes free on the database's disk")
            with self.unit_of_work() as uow:
                uow.marks.advance(HEALTH_MARK, datetime.now(UTC))
                uow.commit()

    def close(self) -> None:
        """Give this thread's connections back and dispose of the pool."""
        self._durable.close()
        self._nowait.close()
        self.engine.dispose()
