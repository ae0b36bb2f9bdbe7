"""The store's port: a unit of work and its repositories, as the services see them.

`core.store.sql` implements it on a database (on either runner); tests implement it in memory
(`tests/support/fake_store.py`). The services know nothing else of storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, Self

from core.access import Grant
from core.audit import AuditRecord
from core.domain import AppState, HistoryEntry, Status
from core.money import RateSegment
from core.provider.model import DailyUsage, Drift, ReconciliationLine
from core.requests import Approval, Request

__all__ = [
    "HEALTH_WAIT",
    "MIN_FREE_BYTES",
    "Apps",
    "Audit",
    "Events",
    "Grants",
    "History",
    "HomeViewer",
    "Homes",
    "Marks",
    "Outbox",
    "OutboxEntry",
    "People",
    "Person",
    "Provider",
    "Requests",
    "Store",
    "StoreUnwritable",
    "UnitOfWork",
]

#: how long the health check waits for the database to take its write, at most (seconds)
HEALTH_WAIT = 1.5
#: the free space under which the health check says the store cannot be written (SQLite's
#: disk; a PostgreSQL server's disk is its own, seen only when it refuses the write)
MIN_FREE_BYTES = 16 << 20


class StoreUnwritable(Exception):
    """The store can't take writes (its disk is full, or nearly)."""


@dataclass(frozen=True, kw_only=True)
class OutboxEntry:
    """Something to deliver after the transaction that wrote it.

    `kind`: "message" (to a channel or a person), "reply" (to a response_url), or "provision";
    `topic` says what it is about (for metrics and logs); `key`, when set, makes the entry
    unique (a second entry with the same key is not written); an entry is delivered in order
    after the earlier entries of the same app and destination.
    """

    kind: str
    topic: str
    destination: str
    app_id: str | None
    payload: Mapping[str, Any]
    created_at: datetime
    key: str | None = None
    delivered: bool = False  # written as delivered (a record, nothing to send)
    id: int | None = None
    status: str = "pending"
    attempts: int = 0
    receipt: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Person:
    """Someone planbot talks to: the locale of their chat account (None until read, and when
    read it is the moment `locale_read_at`) and the language they chose (None: follow the
    locale)."""

    user_id: str
    locale: str | None = None
    locale_read_at: datetime | None = None
    language: str | None = None


@dataclass(frozen=True, kw_only=True)
class HomeViewer:
    """Someone who opened the home tab: the groups they had then, and what they last looked at
    (`team`: the owner team their app list is filtered to, None for every team)."""

    user_id: str
    name: str = ""
    groups: frozenset[str] = frozenset()
    team: str | None = None
    page: int = 1
    opened_at: datetime


class Apps(Protocol):
    """Apps by id or name, and the ones something is due for."""

    def get(self, app_id: str, *, lock: bool = False) -> AppState | None:
        """The app (locked for this unit of work when `lock`)."""
        ...

    def by_name(self, name: str) -> list[AppState]:
        """The apps with that name, case-insensitively (at most 5)."""
        ...

    def with_segments(
        self, app_id: str, *, until: datetime, lock: bool = False
    ) -> tuple[AppState, list[RateSegment]] | None:
        """The app and its rate segments that started before `until` (one read)."""
        ...

    def names_starting(
        self,
        prefix: str,
        *,
        teams: Sequence[str] | None = None,
        lengths: tuple[int, int] | None = None,
        limit: int,
    ) -> list[str]:
        """Names starting with `prefix`, case-insensitively (apps of `teams` when given, names
        of `lengths` (min, max) characters when given), alphabetical, at most `limit`."""
        ...

    def add(self, state: AppState, now: datetime) -> None:
        """A new app."""
        ...

    def add_many(self, states: Sequence[AppState], now: datetime) -> None:
        """New apps, in one batch."""
        ...

    def save(self, before: AppState, after: AppState, now: datetime) -> None:
        """The app's new state, over `before` (StaleWrite if it is no longer at its version)."""
        ...

    def page(
        self, *, contains: str | None, channels: Sequence[str] | None, offset: int, limit: int
    ) -> tuple[list[AppState], int]:
        """A page of apps (optionally filtered) and the count of all matching."""
        ...

    def ids(self) -> set[str]:
        """Every app id."""
        ...

    def names_taken(self, keys: Sequence[str]) -> set[str]:
        """Which of these name keys (`core.domain.name_key`) an app already has."""
        ...

    def owner_channels(self) -> list[str]:
        """The channels that own apps not purged, each once, sorted."""
        ...

    def any_due(self, what: str, now: datetime) -> bool:
        """Whether any app is due for `what` ("suspend" or "purge") as of `now`."""
        ...

    def due(self, what: str, now: datetime, *, limit: int) -> list[AppState]:
        """The next apps due for `what`, locked (others' locks skipped)."""
        ...

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
        """Apps in `status` whose `column` is in (low, high], after the key (moment, app id)."""
        ...

    def any_in_window(self, status: Status, column: str, low: datetime, high: datetime) -> bool:
        """Whether any app is in that window."""
        ...

    def billed_teams(self, start: datetime, end: datetime) -> list[str | None]:
        """The owner teams of the apps that may have charges in [start, end), among the apps
        planbot knew before `end` (no statement for a month planbot never saw)."""
        ...

    def billed(self, start: datetime, end: datetime, teams: Sequence[str | None]) -> list[AppState]:
        """The apps of `teams` that may have charges in [start, end) and that planbot knew
        before `end`."""
        ...

    def many(self, app_ids: Sequence[str]) -> list[AppState]:
        """The apps with these ids (those that exist)."""
        ...

    def search(self, text: str, *, channels: Sequence[str] | None, limit: int) -> list[AppState]:
        """Apps whose name or id starts with `text` (in name order), then, for three characters
        or more, apps whose name or id contains it; case-insensitive; of `channels` only (None:
        every app). An empty `text`: the first apps in name order."""
        ...

    def team_page(
        self, *, channels: Sequence[str] | None, team: str | None, offset: int, limit: int
    ) -> list[AppState]:
        """A page of apps by owner team (apps of no team first), then name; of `channels` only
        (None: every app), and of `team` only when given."""
        ...

    def count(self, *, channels: Sequence[str] | None, team: str | None, cap: int) -> int:
        """How many apps `team_page` pages through, counted up to `cap`."""
        ...

    def teams(self, *, limit: int) -> list[str]:
        """The owner teams of apps, in order (at most `limit`)."""
        ...

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
        """Apps in `status` whose `column` is in (low, high], soonest first, of `channels` only
        (None: every app)."""
        ...


class History(Protocol):
    """The plan history of apps."""

    def add(self, entry: HistoryEntry) -> None:
        """An entry."""
        ...

    def add_many(self, entries: Sequence[HistoryEntry]) -> None:
        """Entries, in one batch."""
        ...

    def of(self, app_id: str, *, limit: int) -> list[HistoryEntry]:
        """The app's history, newest first."""
        ...

    def segments(self, app_id: str, *, until: datetime) -> list[RateSegment]:
        """The app's rate segments that started before `until`, oldest first."""
        ...

    def segments_of(
        self, app_ids: Iterable[str], *, until: datetime
    ) -> dict[str, list[RateSegment]]:
        """Rate segments of several apps."""
        ...


class Requests(Protocol):
    """Pending requests and their approvals."""

    def get(self, request_id: str, *, lock: bool = False) -> Request | None:
        """The request with its approvals (locked when `lock`)."""
        ...

    def add(self, request: Request) -> None:
        """A new request."""
        ...

    def decide(self, before: Request, after: Request) -> None:
        """How the request ended (StaleWrite if it is no longer in `before`'s state)."""
        ...

    def add_approval(self, request_id: str, approval: Approval) -> None:
        """A peer's decision."""
        ...

    def any_expired(self, now: datetime) -> bool:
        """Whether a pending request is past its expiry."""
        ...

    def expired(self, now: datetime, *, limit: int) -> list[Request]:
        """Pending requests past their expiry, locked (others' locks skipped)."""
        ...

    def awaiting_approval(self, now: datetime, *, limit: int) -> list[Request]:
        """Pending requests that wait for peers and have not expired, oldest first."""
        ...


class Audit(Protocol):
    """The append-only, hash-chained audit log."""

    def append(self, record: AuditRecord) -> int:
        """Append one record after the locked head of the chain; its seq."""
        ...

    def head(self) -> tuple[int, str]:
        """The stored head of the chain (seq, hash)."""
        ...

    def records(self, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """Every record in order, as its columns."""
        ...


class Outbox(Protocol):
    """What waits for delivery."""

    def add(self, entry: OutboxEntry) -> None:
        """An entry (not written if its key exists, when it has one and the store allows)."""
        ...

    def add_once(self, entries: Sequence[OutboxEntry]) -> list[str]:
        """Entries whose key is new; the keys written."""
        ...

    def by_key(self, key: str) -> OutboxEntry | None:
        """The entry with that key."""
        ...

    def keys_in(self, keys: Sequence[str]) -> set[str]:
        """Which of these keys have an entry."""
        ...

    def get(self, entry_id: int, *, lock: bool = False) -> OutboxEntry | None:
        """The entry with that id."""
        ...

    def any_due(self, now: datetime) -> bool:
        """Whether any entry is due and not leased."""
        ...

    def claim(self, now: datetime, lease_until: datetime, *, limit: int) -> list[OutboxEntry]:
        """Lease the oldest due entries, at most one per app and destination, in order."""
        ...

    def update(self, entry_id: int, values: dict[str, Any]) -> None:
        """Set columns of one entry (status, lease, attempts, receipt, errors)."""
        ...

    def update_many(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Set the same columns of several entries."""
        ...

    def counts(self, statuses: Sequence[str] | None = None) -> dict[str, int]:
        """How many entries are in each status (of `statuses` only, when given: a status
        with none is left out)."""
        ...

    def oldest_pending(self) -> datetime | None:
        """When the oldest entry still waiting was written."""
        ...

    def waiting(self, destinations: Sequence[str], now: datetime) -> set[str]:
        """Which of these destinations have an entry pending that no one has leased."""
        ...


class Grants(Protocol):
    """Roles given to users and groups."""

    def all(self) -> list[tuple[Grant, str]]:
        """Every grant with its label."""
        ...

    def add(self, grant: Grant, *, label: str, by: str, at: datetime) -> bool:
        """Give a role; False when it was already given."""
        ...

    def remove(self, grant: Grant) -> str | None:
        """Take a role back; its label, or None when there was no such grant."""
        ...


class Marks(Protocol):
    """How far lifecycle jobs have got (watermarks, and months done)."""

    def get(self, names: Sequence[str]) -> dict[str, datetime]:
        """The marks with these names."""
        ...

    def advance(self, name: str, at: datetime) -> None:
        """Move a mark forward to `at` (never back)."""
        ...


class Homes(Protocol):
    """The people who opened the home tab."""

    def opened(self, viewer: HomeViewer) -> None:
        """They opened it now (their name and groups as given; their filter kept)."""
        ...

    def get(self, user_id: str) -> HomeViewer | None:
        """The viewer with that id."""
        ...

    def browse(self, user_id: str, *, team: str | None, page: int) -> None:
        """What they look at now (the team filter and the page of their app list)."""
        ...

    def recent(self, since: datetime, *, limit: int) -> list[HomeViewer]:
        """Who opened it since `since`, latest first."""
        ...


class People(Protocol):
    """The people planbot talks to, and the language each reads."""

    def get(self, user_id: str) -> Person | None:
        """The person with that id."""
        ...

    def all(self, *, limit: int) -> list[Person]:
        """Everyone known (at most `limit`)."""
        ...

    def read_locale(self, user_id: str, locale: str | None, at: datetime) -> None:
        """Note the locale read for the person at `at` (None: their account has none)."""
        ...

    def choose(self, user_id: str, language: str | None, at: datetime) -> None:
        """Note the language the person chose (None: follow their locale)."""
        ...


class Events(Protocol):
    """The ids of the events received."""

    def first(self, event_id: str, at: datetime) -> bool:
        """Record the event; whether it is the first time it arrived."""
        ...

    def forget(self, before: datetime) -> int:
        """Forget the events received before `before`; how many."""
        ...


class Replays(Protocol):
    """The signatures of the state-changing requests received (so that a replay changes
    nothing)."""

    def first(self, signature: str, at: datetime) -> bool:
        """Record the request; whether it is the first time it arrived."""
        ...

    def any_before(self, before: datetime) -> bool:
        """Whether any request received before `before` is still recorded."""
        ...

    def forget(self, before: datetime) -> int:
        """Forget the requests received before `before`; how many."""
        ...


class Provider(Protocol):
    """What the provider connector keeps beside planbot's records, and reads of them."""

    def statuses(self) -> dict[str, Status]:
        """Every app's status, by id (what the account's ids are compared with)."""
        ...

    def live_apps(self, app_ids: Sequence[str] | None = None) -> list[AppState]:
        """The apps not purged (only those of `app_ids` when given), in id order."""
        ...

    def apps_in(self, start: datetime, end: datetime) -> list[AppState]:
        """The apps that existed in [start, end) (created before its end, not purged before
        it), in id order."""
        ...

    def store_usage(self, days: Sequence[DailyUsage], now: datetime) -> int:
        """Store days of usage, one row per app and day (a day stored again takes the newer
        figures); how many of them were not stored before."""
        ...

    def usage(self, app_id: str, *, first: date, last: date) -> list[DailyUsage]:
        """The app's stored days from `first` to `last`, oldest first."""
        ...

    def drift(self) -> Drift:
        """The last drift stored."""
        ...

    def save_drift(self, drift: Drift, now: datetime) -> None:
        """Replace the stored drift (an id that stays keeps the moment it first drifted)."""
        ...

    def save_reconciliation(
        self, month: str, lines: Sequence[ReconciliationLine], now: datetime
    ) -> None:
        """Replace the stored reconciliation of a month (YYYY-MM)."""
        ...

    def reconciliation(self, month: str) -> list[ReconciliationLine]:
        """The stored reconciliation of a month, in id order."""
        ...

    def marks(self, names: Sequence[str]) -> dict[str, tuple[datetime, str]]:
        """The connector's marks with these names: when, and a note (where a job stopped)."""
        ...

    def set_mark(self, name: str, at: datetime, note: str = "") -> None:
        """Set a mark (its moment and note replace the stored ones)."""
        ...


class UnitOfWork(Protocol):
    """One transaction with the repositories; committed explicitly, else rolled back."""

    @property
    def apps(self) -> Apps: ...

    @property
    def history(self) -> History: ...

    @property
    def requests(self) -> Requests: ...

    @property
    def audit(self) -> Audit: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def grants(self) -> Grants: ...

    @property
    def marks(self) -> Marks: ...

    @property
    def homes(self) -> Homes: ...

    @property
    def events(self) -> Events: ...

    @property
    def replays(self) -> Replays: ...

    @property
    def people(self) -> People: ...

    @property
    def provider(self) -> Provider: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None:
        """Commit, then run the after-commit callbacks."""
        ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed."""
        ...


class Store(Protocol):
    """Where units of work come from."""

    @property
    def dialect(self) -> str: ...

    def unit_of_work(
        self, *, fast: bool = False, durable: bool = True, write: bool = True
    ) -> UnitOfWork:
        """A unit of work: `fast` (compiled, optimistic: StaleWrite when a guard fails) or
        locking; `durable=False` when losing its commit in a database crash is harmless."""
        ...

    def exclusive(self, name: str) -> AbstractContextManager[bool]:
        """Whether this process may run job `name` now (one at a time across replicas)."""
        ...

    def ping(self, *, timeout: float = HEALTH_WAIT, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        """Return when the database takes a small write (committed) within `timeout` seconds;
        otherwise raise: `DatabaseBusy` (locked or not answering in time), `StoreUnwritable`
        (on a disk the store can see, less than `min_free_bytes` free), or the driver's error
        (a database that refuses the write). Waits for nobody longer than `timeout`."""
        ...
