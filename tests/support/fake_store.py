"""The store's port in memory: rules and permissions tested without a database.

It keeps rows as the database would (through `core.store.mapping`, the same mapping the SQL
store uses), so what the fake writes can be compared with what a database holds. A unit of work
works on a copy of the tables and swaps it in on commit; writers take turns, as SQLite's do.
Guarded writes raise `StaleWrite` as the SQL store's do.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Self

from core.access import Grant
from core.audit import GENESIS, AuditRecord, chained
from core.domain import PURGE_AFTER, AppState, HistoryEntry, Plan, Status, name_key
from core.money import RateSegment
from core.provider.model import DailyUsage, Drift, ReconciliationLine
from core.requests import Approval, Request, RequestState
from core.store import mapping
from core.store.ports import HomeViewer, OutboxEntry, Person
from core.store.runners import DuplicateName, StaleWrite

__all__ = ["FakeStore", "FakeUnitOfWork"]


@dataclass
class Tables:
    """Every table, as rows of columns."""

    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    head: tuple[int, str] = (0, GENESIS)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    grants: list[tuple[Grant, str]] = field(default_factory=list)
    marks: dict[str, datetime] = field(default_factory=dict)
    viewers: dict[str, HomeViewer] = field(default_factory=dict)
    events: dict[str, datetime] = field(default_factory=dict)
    received: dict[str, datetime] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    usage: dict[tuple[str, date], dict[str, Any]] = field(default_factory=dict)
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)
    reconciled: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    provider_marks: dict[str, tuple[datetime, str]] = field(default_factory=dict)


class FakeStore:
    """Units of work on tables in memory."""

    dialect = "memory"

    def __init__(self) -> None:
        self.tables = Tables()
        self._writers = threading.RLock()

    def unit_of_work(
        self, *, fast: bool = False, durable: bool = True, write: bool = True
    ) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, write=write)

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        yield True

    def ping(self, *, timeout: float = 1.5, min_free_bytes: int = 0) -> None:
        """Memory always answers."""


class FakeUnitOfWork:
    """One transaction on a copy of the tables."""

    def __init__(self, store: FakeStore, *, write: bool) -> None:
        self.store = store
        self.write = write
        self._after: list[Callable[[], None]] = []

    def __enter__(self) -> Self:
        if self.write:
            self.store._writers.acquire()
        self.tables = _copy(self.store.tables)
        self.apps = _Apps(self.tables)
        self.history = _History(self.tables)
        self.requests = _Requests(self.tables)
        self.audit = _Audit(self.tables)
        self.outbox = _Outbox(self.tables)
        self.grants = _Grants(self.tables)
        self.marks = _Marks(self.tables)
        self.homes = _Homes(self.tables)
        self.events = _Events(self.tables)
        self.replays = _Replays(self.tables)
        self.people = _People(self.tables)
        self.provider = _Provider(self.tables)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.write:
            self.store._writers.release()

    def commit(self) -> None:
        if self.write:
            self.store.tables = self.tables
            self.tables = _copy(self.tables)
            self.__dict__.update(
                apps=_Apps(self.tables),
                history=_History(self.tables),
                requests=_Requests(self.tables),
                audit=_Audit(self.tables),
                outbox=_Outbox(self.tables),
                grants=_Grants(self.tables),
                marks=_Marks(self.tables),
                homes=_Homes(self.tables),
                events=_Events(self.tables),
                replays=_Replays(self.tables),
                provider=_Provider(self.tables),
            )
        callbacks, self._after = self._after, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after.append(callback)


def _copy(tables: Tables) -> Tables:
    """The tables to change in a transaction: containers copied, rows shared (every write
    replaces a row rather than changing it)."""
    return Tables(
        apps=dict(tables.apps),
        history=list(tables.history),
        requests=dict(tables.requests),
        approvals=list(tables.approvals),
        audit=list(tables.audit),
        head=tables.head,
        outbox=list(tables.outbox),
        grants=list(tables.grants),
        marks=dict(tables.marks),
        viewers=dict(tables.viewers),
        events=dict(tables.events),
        received=dict(tables.received),
        people=dict(tables.people),
        usage=dict(tables.usage),
        drift=dict(tables.drift),
        reconciled=dict(tables.reconciled),
        provider_marks=dict(tables.provider_marks),
    )


class _Apps:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def get(self, app_id: str, *, lock: bool = False) -> AppState | None:
        row = self.t.apps.get(app_id)
        return mapping.app_state(row) if row else None

    def by_name(self, name: str) -> list[AppState]:
        key = name_key(name)
        found = [r for r in self.t.apps.values() if r["name_key"] == key]
        return [mapping.app_state(r) for r in found[:5]]

    def names_taken(self, keys: Sequence[str]) -> set[str]:
        wanted = set(keys)
        return {r["name_key"] for r in self.t.apps.values() if r["name_key"] in wanted}

    def with_segments(
        self, app_id: str, *, until: datetime, lock: bool = False
    ) -> tuple[AppState, list[RateSegment]] | None:
        state = self.get(app_id)
        if state is None:
            return None
        return state, _History(self.t).segments(app_id, until=until)

    def names_starting(
        self,
        prefix: str,
        *,
        teams: Sequence[str] | None = None,
        lengths: tuple[int, int] | None = None,
        limit: int,
    ) -> list[str]:
        rows = [
            r
            for r in self.t.apps.values()
            if r["name"].lower().startswith(prefix.lower())
            and (teams is None or r["owner_channel"] in teams)
            and (lengths is None or lengths[0] <= len(r["name"]) <= lengths[1])
        ]
        return [r["name"] for r in sorted(rows, key=lambda r: r["name"].lower())[:limit]]

    def add(self, state: AppState, now: datetime) -> None:
        if state.app_id in self.t.apps:
            raise ValueError(f"app {state.app_id} exists")
        if self.names_taken([name_key(state.name)]):
            raise DuplicateName("app")
        self.t.apps[state.app_id] = mapping.app_row(state, now)

    def add_many(self, states: Sequence[AppState], now: datetime) -> None:
        for state in states:
            self.add(state, now)

    def save(self, before: AppState, after: AppState, now: datetime) -> None:
        row = self.t.apps.get(after.app_id)
        if row is None or row["version"] != before.version:
            raise StaleWrite("app")
        self.t.apps[after.app_id] = {
            **mapping.app_row(after, now),
            "created_at": row["created_at"],
            "known_since": row.get("known_since"),
        }

    def page(
        self, *, contains: str | None, channels: Sequence[str] | None, offset: int, limit: int
    ) -> tuple[list[AppState], int]:
        rows = sorted(self.t.apps.values(), key=lambda r: (r["name"], r["app_id"]))
        if contains:
            needle = contains.lower()
            rows = [
                r
                for r in rows
                if needle in r["name"].lower()
                or needle in r["app_id"]
                or needle in (r["plan"], r["status"])
            ]
        if channels is not None:
            rows = [r for r in rows if r["owner_channel"] in channels]
        return [mapping.app_state(r) for r in rows[offset : offset + limit]], len(rows)

    def ids(self) -> set[str]:
        return set(self.t.apps)

    def owner_channels(self) -> list[str]:
        return sorted(
            {
                r["owner_channel"]
                for r in self.t.apps.values()
                if r["owner_channel"] is not None and r["status"] != Status.PURGED.value
            }
        )

    def _due(self, what: str, now: datetime) -> list[AppState]:
        states = [mapping.app_state(r) for r in self.t.apps.values()]
        if what == "suspend":
            due = [
                s
                for s in states
                if s.status is Status.ACTIVE
                and s.plan is Plan.DEVELOPER
                and s.dev_expires_at is not None
                and s.dev_expires_at <= now
            ]
            return sorted(due, key=lambda s: s.dev_expires_at or now)
        due = [
            s
            for s in states
            if s.status is Status.DISABLED and s.disabled_at and s.disabled_at < now - PURGE_AFTER
        ]
        return sorted(due, key=lambda s: s.disabled_at or now)

    def any_due(self, what: str, now: datetime) -> bool:
        return bool(self._due(what, now))

    def due(self, what: str, now: datetime, *, limit: int) -> list[AppState]:
        return self._due(what, now)[:limit]

    def _window(self, status: Status, column: str, low: datetime, high: datetime) -> list[Any]:
        found = [
            r
            for r in self.t.apps.values()
            if r["status"] == status.value and r[column] is not None and low < r[column] <= high
        ]
        return sorted(found, key=lambda r: (r[column], r["app_id"]))

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
        rows = self._window(status, column, low, high)
        if after is not None:
            rows = [r for r in rows if (r[column], r["app_id"]) > after]
        return [mapping.app_state(r) for r in rows[:limit]]

    def any_in_window(self, status: Status, column: str, low: datetime, high: datetime) -> bool:
        return bool(self._window(status, column, low, high))

    def _billed(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [
            r
            for r in self.t.apps.values()
            if r["plan"] in ("standard", "premium")
            and r["billing_mode"] == "current"
            and r["created_at"] < end
            and (r.get("known_since") or r["created_at"]) < end
            and (r["status"] != "purged" or r["updated_at"] >= start)
        ]

    def billed_teams(self, start: datetime, end: datetime) -> list[str | None]:
        return list({r["owner_channel"] for r in self._billed(start, end)})

    def billed(self, start: datetime, end: datetime, teams: Sequence[str | None]) -> list[AppState]:
        rows = [r for r in self._billed(start, end) if r["owner_channel"] in teams]
        rows.sort(key=lambda r: (r["owner_channel"] or "", r["name"], r["app_id"]))
        return [mapping.app_state(r) for r in rows]

    def many(self, app_ids: Sequence[str]) -> list[AppState]:
        return [
            mapping.app_state(self.t.apps[i]) for i in dict.fromkeys(app_ids) if i in self.t.apps
        ]

    def _visible(self, channels: Sequence[str] | None) -> list[dict[str, Any]]:
        rows = list(self.t.apps.values())
        return rows if channels is None else [r for r in rows if r["owner_channel"] in channels]

    def search(self, text: str, *, channels: Sequence[str] | None, limit: int) -> list[AppState]:
        needle = "".join(ch for ch in text if ch.isprintable()).strip().lower()
        rows = self._visible(channels)
        by_name = sorted(rows, key=lambda r: (r["name"].lower(), r["app_id"]))
        found: dict[str, dict[str, Any]] = {}
        if needle.isdigit():
            for row in sorted(rows, key=lambda r: r["app_id"]):
                if row["app_id"].startswith(needle):
                    found.setdefault(row["app_id"], row)
        for row in by_name:
            if row["name"].lower().startswith(needle):
                found.setdefault(row["app_id"], row)
        if len(needle) >= 3:
            for row in by_name:
                if needle in row["name"].lower() or needle in row["app_id"]:
                    found.setdefault(row["app_id"], row)
        return [mapping.app_state(r) for r in list(found.values())[:limit]]

    def _of_team(self, channels: Sequence[str] | None, team: str | None) -> list[dict[str, Any]]:
        rows = self._visible(channels)
        if team is not None:
            rows = [r for r in rows if r["owner_channel"] == team]
        return sorted(
            rows,
            key=lambda r: (
                r["owner_channel"] is not None,
                r["owner_channel"] or "",
                r["name"].lower(),
                r["app_id"],
            ),
        )

    def team_page(
        self, *, channels: Sequence[str] | None, team: str | None, offset: int, limit: int
    ) -> list[AppState]:
        rows = self._of_team(channels, team)[offset : offset + limit]
        return [mapping.app_state(r) for r in rows]

    def count(self, *, channels: Sequence[str] | None, team: str | None, cap: int) -> int:
        return min(cap, len(self._of_team(channels, team)))

    def teams(self, *, limit: int) -> list[str]:
        found = {r["owner_channel"] for r in self.t.apps.values() if r["owner_channel"]}
        return sorted(found)[:limit]

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
        rows = self._window(status, column, low, high)
        if channels is not None:
            rows = [r for r in rows if r["owner_channel"] in channels]
        return [mapping.app_state(r) for r in rows[:limit]]


class _History:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def add(self, entry: HistoryEntry) -> None:
        self.t.history.append({"id": len(self.t.history) + 1, **mapping.history_row(entry)})

    def add_many(self, entries: Sequence[HistoryEntry]) -> None:
        for entry in entries:
            self.add(entry)

    def of(self, app_id: str, *, limit: int) -> list[HistoryEntry]:
        rows = [r for r in self.t.history if r["app_id"] == app_id]
        rows.sort(key=lambda r: (r["effective_at"], r["id"]), reverse=True)
        return [mapping.history_entry(r) for r in rows[:limit]]

    def segments(self, app_id: str, *, until: datetime) -> list[RateSegment]:
        rows = [r for r in self.t.history if r["app_id"] == app_id and r["effective_at"] < until]
        rows.sort(key=lambda r: (r["effective_at"], r["id"]))
        return [mapping.segment(r) for r in rows]

    def segments_of(
        self, app_ids: Iterable[str], *, until: datetime
    ) -> dict[str, list[RateSegment]]:
        return {i: self.segments(i, until=until) for i in app_ids}


class _Requests:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def get(self, request_id: str, *, lock: bool = False) -> Request | None:
        row = self.t.requests.get(request_id)
        if row is None:
            return None
        approvals = [a for a in self.t.approvals if a["request_id"] == request_id]
        return mapping.request(row, approvals)

    def add(self, request: Request) -> None:
        if request.id in self.t.requests:
            raise ValueError(f"request {request.id} exists")
        self.t.requests[request.id] = mapping.request_row(request)

    def decide(self, before: Request, after: Request) -> None:
        row = self.t.requests.get(after.id)
        if row is None or row["state"] != before.state.value:
            raise StaleWrite("pending_request")
        self.t.requests[after.id] = {**row, **mapping.request_decided(after)}

    def add_approval(self, request_id: str, approval: Approval) -> None:
        row = mapping.approval_row(request_id, approval)
        if any(
            (a["request_id"], a["approver_id"]) == (request_id, row["approver_id"])
            for a in self.t.approvals
        ):
            raise StaleWrite("approval")
        self.t.approvals.append({"id": len(self.t.approvals) + 1, **row})

    def _expired(self, now: datetime) -> list[Request]:
        found = [
            self.get(r["id"])
            for r in self.t.requests.values()
            if r["state"] == RequestState.PENDING.value and r["expires_at"] <= now
        ]
        return sorted((r for r in found if r), key=lambda r: (r.created_at, r.id))

    def any_expired(self, now: datetime) -> bool:
        return bool(self._expired(now))

    def expired(self, now: datetime, *, limit: int) -> list[Request]:
        return self._expired(now)[:limit]

    def awaiting_approval(self, now: datetime, *, limit: int) -> list[Request]:
        found = [
            self.get(r["id"])
            for r in self.t.requests.values()
            if r["state"] == RequestState.PENDING.value
            and r["approvals_needed"]
            and r["expires_at"] > now
        ]
        return sorted((r for r in found if r), key=lambda r: (r.created_at, r.id))[:limit]


class _Audit:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def append(self, record: AuditRecord) -> int:
        row = chained(record, self.t.head if self.t.head[0] else None)
        self.t.audit.append(row)
        self.t.head = (row["seq"], row["hash"])
        return int(row["seq"])

    def head(self) -> tuple[int, str]:
        return self.t.head

    def records(self, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
        yield from (dict(r) for r in self.t.audit)


class _Outbox:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def _row(self, entry: OutboxEntry) -> dict[str, Any]:
        return {
            "id": len(self.t.outbox) + 1,
            "key": entry.key,
            "kind": entry.kind,
            "topic": entry.topic,
            "destination": entry.destination,
            "app_id": entry.app_id,
            "payload": dict(entry.payload),
            "created_at": entry.created_at,
            "status": "delivered" if entry.delivered else "pending",
            "attempts": 0,
            "receipt": {},
        }

    def add(self, entry: OutboxEntry) -> None:
        if entry.key is not None and self.by_key(entry.key) is not None:
            raise ValueError(f"outbox key {entry.key} exists")
        self.t.outbox.append(self._row(entry))

    def add_once(self, entries: Sequence[OutboxEntry]) -> list[str]:
        added = []
        for entry in sorted(entries, key=lambda e: e.key or ""):
            if entry.key is not None and self.by_key(entry.key) is None:
                self.t.outbox.append(self._row(entry))
                added.append(entry.key)
        return added

    def by_key(self, key: str) -> OutboxEntry | None:
        for row in self.t.outbox:
            if row["key"] == key:
                return _entry(row)
        return None

    def keys_in(self, keys: Sequence[str]) -> set[str]:
        return {r["key"] for r in self.t.outbox if r["key"] in keys}

    def get(self, entry_id: int, *, lock: bool = False) -> OutboxEntry | None:
        row = next((r for r in self.t.outbox if r["id"] == entry_id), None)
        return _entry(row) if row else None

    def any_due(self, now: datetime) -> bool:
        return any(self._due(now))

    def _due(self, now: datetime) -> list[dict[str, Any]]:
        heads: dict[tuple[str, Any], dict[str, Any]] = {}
        for row in self.t.outbox:
            if row["status"] != "pending":
                continue
            queue = (row["destination"], row["app_id"] if row["app_id"] is not None else row["id"])
            heads.setdefault(queue, row)
        return [
            r
            for r in heads.values()
            if r.get("next_attempt_at", r["created_at"]) <= now
            and (r.get("lease_until") is None or r["lease_until"] <= now)
        ]

    def claim(self, now: datetime, lease_until: datetime, *, limit: int) -> list[OutboxEntry]:
        claimed = []
        for row in sorted(self._due(now), key=lambda r: r["id"])[:limit]:
            self.update(row["id"], {"lease_until": lease_until, "attempts": row["attempts"] + 1})
            claimed.append(_entry(next(r for r in self.t.outbox if r["id"] == row["id"])))
        return claimed

    def update(self, entry_id: int, values: dict[str, Any]) -> None:
        self.t.outbox = [{**r, **values} if r["id"] == entry_id else r for r in self.t.outbox]

    def update_many(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        for entry_id, values in rows:
            self.update(entry_id, values)

    def counts(self, statuses: Sequence[str] | None = None) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self.t.outbox:
            if statuses is None or row["status"] in statuses:
                found[row["status"]] = found.get(row["status"], 0) + 1
        return found

    def oldest_pending(self) -> datetime | None:
        return min(
            (r["created_at"] for r in self.t.outbox if r["status"] == "pending"), default=None
        )

    def waiting(self, destinations: Sequence[str], now: datetime) -> set[str]:
        return {
            r["destination"]
            for r in self.t.outbox
            if r["destination"] in destinations
            and r["status"] == "pending"
            and (r.get("lease_until") is None or r["lease_until"] <= now)
        }


def _entry(row: dict[str, Any]) -> OutboxEntry:
    fields = ("id", "key", "kind", "topic", "destination", "app_id", "payload", "created_at")
    return OutboxEntry(
        **{k: row[k] for k in fields},
        status=row["status"],
        attempts=row["attempts"],
        receipt=row.get("receipt") or {},
    )


class _Grants:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def all(self) -> list[tuple[Grant, str]]:
        return sorted(self.t.grants, key=lambda g: (g[0].role.label, g[0].principal_id))

    def add(self, grant: Grant, *, label: str, by: str, at: datetime) -> bool:
        if any(g == grant for g, _ in self.t.grants):
            return False
        self.t.grants.append((grant, label))
        return True

    def remove(self, grant: Grant) -> str | None:
        for index, (found, label) in enumerate(self.t.grants):
            if found == grant:
                del self.t.grants[index]
                return label
        return None


class _Marks:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def get(self, names: Sequence[str]) -> dict[str, datetime]:
        return {n: self.t.marks[n] for n in names if n in self.t.marks}

    def advance(self, name: str, at: datetime) -> None:
        self.t.marks[name] = max(at, self.t.marks.get(name, at))


class _Homes:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def opened(self, viewer: HomeViewer) -> None:
        known = self.t.viewers.get(viewer.user_id)
        if known is not None:
            viewer = replace(viewer, team=known.team, page=known.page)
        self.t.viewers[viewer.user_id] = viewer

    def get(self, user_id: str) -> HomeViewer | None:
        return self.t.viewers.get(user_id)

    def browse(self, user_id: str, *, team: str | None, page: int) -> None:
        known = self.t.viewers.get(user_id)
        if known is not None:
            self.t.viewers[user_id] = replace(known, team=team, page=page)

    def recent(self, since: datetime, *, limit: int) -> list[HomeViewer]:
        found = [v for v in self.t.viewers.values() if v.opened_at > since]
        return sorted(found, key=lambda v: v.opened_at, reverse=True)[:limit]


class _Replays:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def first(self, signature: str, at: datetime) -> bool:
        if signature in self.t.received:
            return False
        self.t.received[signature] = at
        return True

    def any_before(self, before: datetime) -> bool:
        return any(at < before for at in self.t.received.values())

    def forget(self, before: datetime) -> int:
        old = [s for s, at in self.t.received.items() if at < before]
        for signature in old:
            del self.t.received[signature]
        return len(old)


class _Events:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def first(self, event_id: str, at: datetime) -> bool:
        if event_id in self.t.events:
            return False
        self.t.events[event_id] = at
        return True

    def forget(self, before: datetime) -> int:
        old = [e for e, at in self.t.events.items() if at < before]
        for event_id in old:
            del self.t.events[event_id]
        return len(old)


class _People:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def get(self, user_id: str) -> Person | None:
        return self.t.people.get(user_id)

    def all(self, *, limit: int) -> list[Person]:
        return [self.t.people[u] for u in sorted(self.t.people)][:limit]

    def read_locale(self, user_id: str, locale: str | None, at: datetime) -> None:
        known = self.t.people.get(user_id) or Person(user_id=user_id)
        self.t.people[user_id] = replace(known, locale=locale or None, locale_read_at=at)

    def choose(self, user_id: str, language: str | None, at: datetime) -> None:
        known = self.t.people.get(user_id) or Person(user_id=user_id)
        self.t.people[user_id] = replace(known, language=language or None)


def _by_id(app_id: str) -> tuple[int, str]:
    return len(app_id), app_id


class _Provider:
    def __init__(self, t: Tables) -> None:
        self.t = t

    def statuses(self) -> dict[str, Status]:
        return {a: Status(r["status"]) for a, r in self.t.apps.items()}

    def live_apps(self, app_ids: Sequence[str] | None = None) -> list[AppState]:
        rows = [
            r
            for r in self.t.apps.values()
            if r["status"] != Status.PURGED.value and (app_ids is None or r["app_id"] in app_ids)
        ]
        rows.sort(key=lambda r: _by_id(r["app_id"]))
        return [mapping.app_state(r) for r in rows]

    def apps_in(self, start: datetime, end: datetime) -> list[AppState]:
        rows = [
            r
            for r in self.t.apps.values()
            if r["created_at"] < end and (r["status"] != "purged" or r["updated_at"] >= start)
        ]
        rows.sort(key=lambda r: _by_id(r["app_id"]))
        return [mapping.app_state(r) for r in rows]

    def store_usage(self, days: Sequence[DailyUsage], now: datetime) -> int:
        latest = {(d.app_id, d.day): d for d in days}
        new = len([k for k in latest if k not in self.t.usage])
        for key, usage in latest.items():
            self.t.usage[key] = mapping.usage_row(usage, now)
        return new

    def usage(self, app_id: str, *, first: date, last: date) -> list[DailyUsage]:
        found = [r for (a, day), r in self.t.usage.items() if a == app_id and first <= day <= last]
        return [mapping.daily_usage(r) for r in sorted(found, key=lambda r: r["day"])]

    def drift(self) -> Drift:
        return Drift.of(
            unknown=[a for a, r in self.t.drift.items() if r["kind"] == "unknown"],
            missing=[a for a, r in self.t.drift.items() if r["kind"] == "missing"],
        )

    def save_drift(self, drift: Drift, now: datetime) -> None:
        wanted = drift.kinds()
        kept = {a: r for a, r in self.t.drift.items() if wanted.get(a) == r["kind"]}
        for app_id, kind in wanted.items():
            kept.setdefault(app_id, {"app_id": app_id, "kind": kind, "since": now})
        self.t.drift = kept

    def save_reconciliation(
        self, month: str, lines: Sequence[ReconciliationLine], now: datetime
    ) -> None:
        for key in [k for k in self.t.reconciled if k[0] == month]:
            del self.t.reconciled[key]
        for line in lines:
            self.t.reconciled[(month, line.app_id)] = mapping.reconciliation_row(month, line, now)

    def reconciliation(self, month: str) -> list[ReconciliationLine]:
        rows = [r for (m, _), r in self.t.reconciled.items() if m == month]
        rows.sort(key=lambda r: _by_id(r["app_id"]))
        names = {a: r["name"] for a, r in self.t.apps.items()}
        return [mapping.reconciliation_line({**r, "name": names.get(r["app_id"])}) for r in rows]

    def marks(self, names: Sequence[str]) -> dict[str, tuple[datetime, str]]:
        return {n: self.t.provider_marks[n] for n in names if n in self.t.provider_marks}

    def set_mark(self, name: str, at: datetime, note: str = "") -> None:
        self.t.provider_marks[name] = (at, note)
