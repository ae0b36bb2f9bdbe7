"""The lifecycle sweep: expiry, reminders, purge, monthly statements and expired requests.

`Lifecycle.sweep()` does what is due as of now. It is safe to run as often as you like, and from
several replicas at the same moment:

- State transitions (suspend an expired developer app, purge an app disabled for more than 90
  days, expire a pending request) lock the rows they change (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL, so concurrent sweeps share the work; SQLite has one writer at a time), re-check the
  rule under the lock, and are written through `PlanService.record_change`: app row, plan history,
  audit event and audit messages, in one transaction, exactly once.
- Notices (developer expiry reminders, purge warnings, monthly statements, the update of an
  expired approval card) are outbox entries with a unique `key` (`remind:<app>:<expiry>:7d`),
  inserted with `INSERT ... ON CONFLICT DO NOTHING`: however many sweeps try, one entry is written.

The cost of a sweep grows with what is due, not with the number of apps: it first looks for due
work in one read-only transaction of indexed lookups (`ix_app_dev_due`, `ix_app_purge_due`, the
request expiry; `LIMIT 1` each), and only then opens write transactions, in batches, for what it
found. Reminders and warnings keep a watermark (table `lifecycle_mark`): a sweep looks only at the
apps whose notice moment fell since the last sweep that sent notices of that kind, so one sweep a
minute reads about a minute's worth of apps. The monthly statements are posted team by team within
a time budget per sweep (60 s by default; the next sweep goes on) and then marked done.

Catch-up after downtime: a sweep that was down for a week looks at the whole week, but sends at most
one notice per app and kind that still means something, worded for now: an app whose 7-day
reminder moment passed five days ago and which expires in two days gets one reminder that says "in
2 days"; an app whose 1-day moment also passed gets only the 1-day one; an app that has expired gets
no reminder, only its suspension, which says when the validity ended. A statement posted after the
1st says it is late. A notice moment that passed before the watermark is not looked at again (so an
app imported with 3 days of validity left may get only its 1-day reminder).

Decisions: a team's statement lists its apps that were charged in the month (apps on the developer
plan, on legacy billing, or disabled all month are not); a team with no charge gets no statement.
Apps without an owner channel go to the audit channel's statement. A notice for an app without an
owner channel goes to the audit channel (and nowhere when there is none).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import select

from core import domain, errors
from core.access import ROLE_FOR
from core.domain import PURGE_AFTER, Actor, Operation, Plan, Status
from core.money import Catalog, Statement, bill_month, billing_window, format_money
from core.money import statement as compute_statement
from core.service import FieldChange, PlanService
from core.store.tables import AppRow, LifecycleMarkRow, OutboxRow, PendingRequestRow
from core.store.uow import UnitOfWork, app_state

__all__ = [
    "PURGE_WARNING_DAYS",
    "REMINDER_DAYS",
    "AppCharges",
    "Lifecycle",
    "PlanDays",
    "SweepReport",
    "TeamStatement",
    "plan_days",
    "statement_payload",
    "team_statement",
]

log = logging.getLogger(__name__)

#: days before a developer app's expiry when its owner is reminded
REMINDER_DAYS = (7, 1)
#: days before a disabled app's purge when its owner is warned
PURGE_WARNING_DAYS = (30, 7, 1)
#: at most this many apps are listed in one posted statement (the total covers them all)
STATEMENT_APPS_LISTED = 1000

SWEEPER = Actor("planbot", "planbot")
APP = cast(sa.Table, AppRow.__table__)  # type: ignore[attr-defined]
OUTBOX = cast(sa.Table, OutboxRow.__table__)  # type: ignore[attr-defined]
MARK = cast(sa.Table, LifecycleMarkRow.__table__)  # type: ignore[attr-defined]
REQUEST = cast(sa.Table, PendingRequestRow.__table__)  # type: ignore[attr-defined]
_DAY = timedelta(days=1)
_UNOWNED = "-"  # the team key of apps without an owner channel


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did, by kind; `failed` names the jobs that raised (logged, retried later)."""

    now: datetime
    suspended: int = 0
    purged: int = 0
    reminders: int = 0
    purge_warnings: int = 0
    statements: int = 0
    requests_expired: int = 0
    approval_cards_expired: int = 0
    failed: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """How many things the sweep did."""
        return (
            self.suspended
            + self.purged
            + self.reminders
            + self.purge_warnings
            + self.statements
            + self.requests_expired
            + self.approval_cards_expired
        )

    def summary(self) -> str:
        """One line for a log or a terminal."""
        parts = [
            f"{self.suspended} suspended",
            f"{self.purged} purged",
            f"{self.reminders} expiry reminders",
            f"{self.purge_warnings} purge warnings",
            f"{self.statements} statements",
            f"{self.requests_expired} requests expired",
            f"{self.approval_cards_expired} approval cards updated",
        ]
        failed = f"; FAILED: {', '.join(self.failed)}" if self.failed else ""
        return f"sweep at {self.now.isoformat()}: " + ", ".join(parts) + failed


@dataclass(frozen=True)
class PlanDays:
    """A run of consecutive days of one app's statement billed the same way (one line)."""

    label: str
    first: date
    last: date
    days: int
    daily_rate: Decimal
    amount: Decimal
    #: the add-ons billed with the plan, as the catalog describes them (none when at default)
    addons: tuple[str, ...] = ()
    #: whether these days are still to come (a projection)
    projected: bool = False


@dataclass(frozen=True)
class AppCharges:
    """One app's lines in a team statement."""

    app_id: str
    name: str
    plan: Plan
    status: Status
    periods: tuple[PlanDays, ...]
    #: the app's bill for the month (the same as `PlanService.statement` gives)
    total: Decimal
    #: the charges up to and including today
    to_date: Decimal
    #: whether some days are a projection (the month is not over)
    projected: bool = False

    @classmethod
    def of(
        cls, *, app_id: str, name: str, plan: Plan, status: Status, statement: Statement
    ) -> AppCharges:
        """The lines of one app's statement."""
        return cls(
            app_id=app_id,
            name=name,
            plan=plan,
            status=status,
            periods=plan_days(statement),
            total=statement.total,
            to_date=statement.to_date,
            projected=statement.projected,
        )


@dataclass(frozen=True)
class TeamStatement:
    """An owner team's statement for a month: its paid apps and the total."""

    team: str | None
    year: int
    month: int
    currency: str
    apps: tuple[AppCharges, ...]

    @property
    def total(self) -> Decimal:
        """The sum of the apps' bills."""
        return sum((a.total for a in self.apps), Decimal("0.00"))

    @property
    def to_date(self) -> Decimal:
        """The charges up to and including today."""
        return sum((a.to_date for a in self.apps), Decimal("0.00"))

    @property
    def projected(self) -> bool:
        """Whether the month is not over (some days are a projection)."""
        return any(a.projected for a in self.apps)


# --- statements (shared by the posted statement and `/plan bill`) ------------------------------


def plan_days(statement: Statement) -> tuple[PlanDays, ...]:
    """The statement's lines: runs of consecutive days billed the same way, whose amounts add
    up to the month's total exactly (the same runs `/plan bill` shows)."""
    return tuple(
        PlanDays(
            label=run.label,
            first=run.first,
            last=run.last,
            days=run.days,
            daily_rate=run.rate,
            amount=run.amount,
            addons=run.addons,
            projected=run.projected,
        )
        for run in statement.runs
    )


def _billed_apps(start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    """The condition for apps that may have charges in [start, end)."""
    return sa.and_(
        APP.c.plan.in_([Plan.STANDARD.value, Plan.PREMIUM.value]),
        APP.c.billing_mode == "current",
        APP.c.created_at < end,
        sa.or_(APP.c.status != Status.PURGED.value, APP.c.updated_at >= start),
    )


def _team_condition(teams: Sequence[str | None]) -> sa.ColumnElement[bool]:
    named = [t for t in teams if t is not None]
    parts = []
    if named:
        parts.append(APP.c.owner_channel.in_(named))
    if len(named) < len(teams):
        parts.append(APP.c.owner_channel.is_(None))
    return sa.or_(*parts)


def _team_statements(
    uow: UnitOfWork,
    *,
    teams: Sequence[str | None],
    year: int,
    month: int,
    tz: ZoneInfo,
    now: datetime,
    currency: str,
    catalog: Catalog | None = None,
) -> dict[str | None, TeamStatement]:
    start, end = domain.month_bounds(year, month, tz)
    rows = (
        uow.session.connection()
        .execute(
            sa.select(APP.c.app_id, APP.c.name, APP.c.owner_channel, APP.c.plan, APP.c.status)
            .where(_billed_apps(start, end), _team_condition(teams))
            .order_by(APP.c.owner_channel, APP.c.name, APP.c.app_id)
        )
        .all()
    )
    segments = uow.history.segments_for([r[0] for r in rows], until=end)
    by_team: dict[str | None, list[AppCharges]] = {t: [] for t in teams}
    for app_id, name, team, plan, status in rows:
        statement = compute_statement(
            segments[app_id],
            year=year,
            month=month,
            tz=tz,
            now=now,
            currency=currency,
            catalog=catalog,
        )
        if statement.total == 0:  # never charged this month: nothing to bill
            continue
        by_team.setdefault(team, []).append(
            AppCharges.of(
                app_id=app_id,
                name=name,
                plan=Plan(plan),
                status=Status(status),
                statement=statement,
            )
        )
    return {
        team: TeamStatement(team, year, month, currency, tuple(apps))
        for team, apps in by_team.items()
    }


def team_statement(
    uow: UnitOfWork,
    *,
    team: str | None,
    year: int,
    month: int,
    tz: ZoneInfo,
    now: datetime,
    currency: str = "USD",
    catalog: Catalog | None = None,
) -> TeamStatement:
    """The team's statement for a month (team None: the apps without an owner channel).

    Each app's numbers are those `PlanService.statement` gives for that app and month.
    """
    found = _team_statements(
        uow,
        teams=[team],
        year=year,
        month=month,
        tz=tz,
        now=now,
        currency=currency,
        catalog=catalog,
    )
    return found[team]


def statement_payload(
    statement: TeamStatement,
    *,
    now: datetime,
    tz: ZoneInfo,
    listed: int = STATEMENT_APPS_LISTED,
) -> dict[str, Any]:
    """The outbox message (type "statement") of a team statement; `bot.notices` draws it."""
    currency = statement.currency
    first, last = billing_window(statement.year, statement.month)
    today = now.astimezone(tz).date()
    apps = [
        {
            "app_id": a.app_id,
            "name": a.name,
            "plan": a.plan.value,
            "status": a.status.value,
            "total": str(a.total),
            "total_text": format_money(a.total, currency),
            "periods": [
                {
                    "label": p.label,
                    "first": p.first.isoformat(),
                    "last": p.last.isoformat(),
                    "days": p.days,
                    "addons": list(p.addons),
                    "projected": p.projected,
                    "amount": str(p.amount),
                    "amount_text": format_money(p.amount, currency),
                }
                for p in a.periods
            ],
        }
        for a in statement.apps[:listed]
    ]
    return {
        "type": "statement",
        "team": statement.team,
        "year": statement.year,
        "month": statement.month,
        "period": f"{statement.year:04d}-{statement.month:02d}",
        "month_name": date(statement.year, statement.month, 1).strftime("%B %Y"),
        "currency": currency,
        "apps": apps,
        "app_count": len(statement.apps),
        "apps_omitted": max(0, len(statement.apps) - listed),
        "total": str(statement.total),
        "total_text": format_money(statement.total, currency),
        "projected": statement.projected,
        "to_date_text": format_money(statement.to_date, currency),
        "bill_window": [first.isoformat(), last.isoformat()],
        "due_on": first.isoformat(),
        "issued_on": today.isoformat(),
        "late": today > first,
        "tz": str(tz),
    }


# --- the sweep ---------------------------------------------------------------------------------


def _suspension_due(now: datetime) -> sa.ColumnElement[bool]:
    """Active developer apps whose validity has ended (range on ix_app_dev_due)."""
    return sa.and_(
        APP.c.status == Status.ACTIVE.value,
        APP.c.dev_expires_at <= now,
        APP.c.plan == Plan.DEVELOPER.value,
    )


def _purge_due(now: datetime) -> sa.ColumnElement[bool]:
    """Apps disabled for more than 90 days (range on ix_app_purge_due)."""
    return sa.and_(APP.c.status == Status.DISABLED.value, APP.c.disabled_at < now - PURGE_AFTER)


def _request_expiry_due(now: datetime) -> sa.ColumnElement[bool]:
    """Pending requests past their expiry."""
    return sa.and_(REQUEST.c.state == "pending", REQUEST.c.expires_at <= now)


@dataclass(frozen=True)
class _Window:
    """Apps whose due column is in (low, high] get the notice of `days` days."""

    days: int
    low: datetime
    high: datetime


@dataclass(frozen=True)
class _Notices:
    """One kind of advance notice: sent `days` before a moment (the due column + `offset`)."""

    mark: str
    counter: str
    days: tuple[int, ...]
    status: Status
    column: sa.Column[Any]
    offset: timedelta
    entry: Callable[[Any, int, datetime], dict[str, Any] | None]

    def windows(self, since: datetime | None, now: datetime) -> list[_Window]:
        """The ranges to look at: moments whose notice fell in (since, now].

        The notice of `t` days is due when the moment is `t` days away or less, and more than
        the next smaller notice's days away (else that one supersedes it).
        """
        found = []
        for index, days in enumerate(self.days):
            nearer = self.days[index + 1] if index + 1 < len(self.days) else 0
            low = now + timedelta(days=nearer)
            if since is not None:
                low = max(low, since + timedelta(days=days))
            high = now + timedelta(days=days)
            if low < high:
                found.append(_Window(days, low - self.offset, high - self.offset))
        return found

    def condition(self, window: _Window) -> sa.ColumnElement[bool]:
        """The apps in a window (a range on the status and due-date index)."""
        return sa.and_(
            APP.c.status == self.status.value, self.column > window.low, self.column <= window.high
        )


class Lifecycle:
    """The time-driven part of the plan service: one `sweep()` does what is due as of now."""

    def __init__(
        self,
        *,
        engine: Engine,
        service: PlanService,
        clock: Callable[[], datetime] | None = None,
        batch_size: int = 200,
        reminder_days: Sequence[int] = REMINDER_DAYS,
        purge_warning_days: Sequence[int] = PURGE_WARNING_DAYS,
        statement_budget: timedelta = timedelta(seconds=60),
    ) -> None:
        self.engine = engine
        self.service = service
        self.clock = clock or service.clock
        self.batch_size = batch_size
        self.statement_budget = statement_budget
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reminders = _Notices(
            mark="dev_reminders",
            counter="reminders",
            days=tuple(sorted(set(reminder_days), reverse=True)),
            status=Status.ACTIVE,
            column=APP.c.dev_expires_at,
            offset=timedelta(0),
            entry=self._reminder_entry,
        )
        self._warnings = _Notices(
            mark="purge_warnings",
            counter="purge_warnings",
            days=tuple(sorted(set(purge_warning_days), reverse=True)),
            status=Status.DISABLED,
            column=APP.c.disabled_at,
            offset=PURGE_AFTER,
            entry=self._purge_warning_entry,
        )

    @property
    def tz(self) -> ZoneInfo:
        """The billing time zone."""
        return self.service.config.billing_tz

    def sweep(self, now: datetime | None = None) -> SweepReport:
        """Do everything due as of `now` (the clock by default); each thing once, ever."""
        now = now or self.clock()
        try:
            jobs = self._due_jobs(now)
        except Exception:  # the database may be briefly unreachable: the next sweep retries
            log.exception("lifecycle sweep could not look for due work")
            return SweepReport(now=now, failed=("lookup",))
        counts: dict[str, int] = {}
        failed: list[str] = []
        for name, job in jobs:
            try:
                counts.update(job())
            except Exception:  # one failing job must not stop the others; the next sweep retries
                log.exception("lifecycle job %s failed", name)
                failed.append(name)
        return SweepReport(now=now, failed=tuple(failed), **counts)

    # --- on a timer ------------------------------------------------------------------------------

    def start(self, interval: float = 60.0) -> None:
        """Sweep every `interval` seconds in a background thread (first sweep at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="lifecycle", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread (waiting up to `timeout` for a sweep in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            report = self.sweep()
            if report.total or report.failed:
                log.info("%s", report.summary())
            self._stop.wait(interval)

    def team_statement(
        self,
        team: str | None,
        *,
        year: int | None = None,
        month: int | None = None,
        actor: Actor | None = None,
    ) -> TeamStatement:
        """A team's statement for a month (this month by default), checked for `actor` if given."""
        now = self.clock()
        year, month = bill_month(year, month, now=now, tz=self.tz)
        if actor is not None:
            needed = ROLE_FOR["view"]
            if self.service.role_of(actor, team=team) < needed:
                raise errors.PermissionDenied(
                    "see this team's bill",
                    needed.label,
                    sorted(self.service.config.access.admins)[:5],
                )
        with UnitOfWork(self.engine, write=False) as uow:
            return team_statement(
                uow,
                team=team,
                year=year,
                month=month,
                tz=self.tz,
                now=now,
                currency=self.service.config.catalog.currency,
                catalog=self.service.config.catalog,
            )

    # --- transitions -------------------------------------------------------------------------

    def _due_jobs(self, now: datetime) -> list[tuple[str, Callable[[], dict[str, int]]]]:
        """What is due as of `now`, found in one read-only transaction of indexed lookups."""
        statements = self._statement_month(now)[2]
        jobs: list[tuple[str, Callable[[], dict[str, int]]]] = []
        with UnitOfWork(self.engine, write=False) as uow:
            connection = uow.session.connection()

            def exists(condition: sa.ColumnElement[bool], due: sa.Column[Any]) -> bool:
                # Ordered by the due date, so that the planner walks the index from the end
                # that matters: without it PostgreSQL may bet on a sequential scan finding a
                # row early, and read the whole table when none is due.
                query = sa.select(due).where(condition).order_by(due).limit(1)
                return connection.execute(query).first() is not None

            names = [self._reminders.mark, self._warnings.mark, statements]
            marks: dict[str, datetime] = {
                name: at
                for name, at in connection.execute(
                    sa.select(MARK.c.name, MARK.c.at).where(MARK.c.name.in_(names))
                )
            }
            if exists(_suspension_due(now), APP.c.dev_expires_at):
                jobs.append(("suspend", partial(self._suspend_expired, now)))
            if exists(_purge_due(now), APP.c.disabled_at):
                jobs.append(("purge", partial(self._purge_disabled, now)))
            for notices in (self._reminders, self._warnings):
                since = marks.get(notices.mark)
                windows = [
                    w
                    for w in notices.windows(since, now)
                    if exists(notices.condition(w), notices.column)
                ]
                if windows or since is None:
                    jobs.append((notices.mark, partial(self._notify, now, notices, windows)))
            if statements not in marks:
                jobs.append(("statements", partial(self._post_statements, now)))
            if exists(_request_expiry_due(now), REQUEST.c.expires_at):
                jobs.append(("requests", partial(self._expire_requests, now)))
        return jobs

    # --- transitions -------------------------------------------------------------------------

    def _suspend_expired(self, now: datetime) -> dict[str, int]:
        def detail(state: domain.AppState) -> str:
            assert state.dev_expires_at is not None
            return (
                f"The developer validity ended on {self._local(state.dev_expires_at)}, so the "
                f"app is suspended. Extend it (`/plan extend {state.app_id}`) to reactivate it, "
                "or upgrade it to a paid plan."
            )

        done = self._transition(
            now,
            _suspension_due(now),
            APP.c.dev_expires_at,
            domain.suspend,
            Operation.SUSPEND,
            detail,
        )
        return {"suspended": done}

    def _purge_disabled(self, now: datetime) -> dict[str, int]:
        def detail(state: domain.AppState) -> str:
            assert state.disabled_at is not None
            return (
                f"Disabled on {self._local(state.disabled_at)} and not re-enabled within 90 days "
                f"(until {self._local(domain.purge_at(state.disabled_at))}): its data and "
                "services are purged and can no longer be recovered."
            )

        done = self._transition(
            now, _purge_due(now), APP.c.disabled_at, domain.purge, Operation.PURGE, detail
        )
        return {"purged": done}

    def _transition(
        self,
        now: datetime,
        due: sa.ColumnElement[bool],
        due_column: sa.Column[Any],
        rule: Callable[[domain.AppState, datetime], domain.AppState | None],
        op: Operation,
        detail: Callable[[domain.AppState], str],
    ) -> int:
        """Apply `rule` to every app matching `due`, in locked batches, each change audited.

        A changed app no longer matches `due`, so each batch is simply the next one (in the
        index's order); a batch that changes nothing ends the job.
        """
        done = 0
        while True:
            with UnitOfWork(self.engine) as uow:
                rows = uow.session.exec(
                    select(AppRow)
                    .where(due)
                    .order_by(due_column)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                ).all()
                changed = 0
                for row in rows:
                    before = app_state(row)
                    after = rule(before, now)  # re-checked under the row lock
                    if after is None:
                        continue
                    writes = self.service.change_writes(
                        before,
                        after,
                        op,
                        actor=SWEEPER,
                        now=now,
                        changes=[FieldChange("Status", before.status.value, after.status.value)],
                        detail=detail(before),
                    )
                    self.service.record_change(uow, writes)
                    changed += 1
                uow.commit()
            done += changed
            if not changed:
                return done

    # --- notices -----------------------------------------------------------------------------

    def _notify(self, now: datetime, notices: _Notices, windows: list[_Window]) -> dict[str, int]:
        """Enqueue the notices due in `windows`, then move the kind's watermark to `now`."""
        sent = sum(self._notify_window(now, notices, window) for window in windows)
        self._set_mark(notices.mark, now)
        return {notices.counter: sent}

    def _notify_window(self, now: datetime, notices: _Notices, window: _Window) -> int:
        sent = 0
        after_key: tuple[datetime, str] | None = None
        columns = [
            APP.c[name]
            for name in (
                "app_id",
                "name",
                "owner_channel",
                "plan",
                "billing_mode",
                "dev_expires_at",
                "disabled_at",
            )
        ]
        while True:
            with UnitOfWork(self.engine) as uow:
                query = sa.select(*columns).where(notices.condition(window))
                if after_key is not None:
                    query = query.where(_after(notices.column, after_key))
                rows = (
                    uow.session.connection()
                    .execute(
                        query.order_by(notices.column, APP.c.app_id).limit(self.batch_size * 5)
                    )
                    .all()
                )
                if not rows:
                    return sent
                last = rows[-1]
                after_key = (getattr(last, notices.column.key), last.app_id)
                entries = [notices.entry(row, window.days, now) for row in rows]
                sent += len(self._insert_once(uow, entries))
                uow.commit()

    def _reminder_entry(self, row: Any, days: int, now: datetime) -> dict[str, Any] | None:
        if row.plan != Plan.DEVELOPER.value or row.dev_expires_at is None:
            return None
        expires = row.dev_expires_at
        left = expires - now
        payload = {
            "type": "dev_expiry_reminder",
            "app_id": row.app_id,
            "app_name": row.name,
            "billing_mode": row.billing_mode,
            "reminder": f"{days}d",
            "expires_at": expires.isoformat(),
            "expires_local": self._local(expires),
            "days_left": left // _DAY,
            "hours_left": left // timedelta(hours=1),
            "tz": str(self.tz),
            "at": now.isoformat(),
        }
        key = f"remind:{row.app_id}:{_stamp(expires)}:{days}d"
        return self._entry(key, "notice", row.owner_channel, row.app_id, payload, now)

    def _purge_warning_entry(self, row: Any, days: int, now: datetime) -> dict[str, Any] | None:
        if row.disabled_at is None:
            return None
        purge_at = domain.purge_at(row.disabled_at)
        left = purge_at - now
        payload = {
            "type": "purge_warning",
            "app_id": row.app_id,
            "app_name": row.name,
            "plan": row.plan,
            "warning": f"{days}d",
            "disabled_at": row.disabled_at.isoformat(),
            "disabled_local": self._local(row.disabled_at),
            "purge_at": purge_at.isoformat(),
            "purge_local": self._local(purge_at),
            "days_left": left // _DAY,
            "hours_left": left // timedelta(hours=1),
            "tz": str(self.tz),
            "at": now.isoformat(),
        }
        key = f"purge-warning:{row.app_id}:{_stamp(row.disabled_at)}:{days}d"
        return self._entry(key, "notice", row.owner_channel, row.app_id, payload, now)

    # --- statements --------------------------------------------------------------------------

    def _statement_month(self, now: datetime) -> tuple[int, int, str]:
        """The month whose statements are due (the one before now's, in the billing zone)."""
        local = now.astimezone(self.tz)
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        return year, month, f"statements:{year:04d}-{month:02d}"

    def _post_statements(self, now: datetime) -> dict[str, int]:
        year, month, mark = self._statement_month(now)
        with self._exclusive(mark) as mine:
            if not mine or self._mark(mark) is not None:  # another replica is on it, or done
                return {"statements": 0}
            posted, complete = self._post_month(now, year, month)
            if complete:  # else the next sweep goes on where this one stopped
                self._set_mark(mark, now)
        return {"statements": posted}

    def _post_month(self, now: datetime, year: int, month: int) -> tuple[int, bool]:
        """Post the month's statements, team by team, within the time budget; whether done."""
        deadline = time.monotonic() + self.statement_budget.total_seconds()
        config = self.service.config
        start, end = domain.month_bounds(year, month, self.tz)
        with UnitOfWork(self.engine, write=False) as uow:
            found = (
                uow.session.connection()
                .execute(sa.select(APP.c.owner_channel).where(_billed_apps(start, end)).distinct())
                .scalars()
                .all()
            )
        teams: list[str | None] = sorted(
            (t for t in found if t is not None or config.audit_channel),
            key=lambda t: (t is None, t or ""),
        )
        period = f"{year:04d}-{month:02d}"
        posted = 0
        for chunk_start in range(0, len(teams), 20):
            if time.monotonic() > deadline:
                return posted, False
            chunk = teams[chunk_start : chunk_start + 20]
            keys = {t: f"statement:{t or _UNOWNED}:{period}" for t in chunk}
            with UnitOfWork(self.engine, write=False) as uow:
                done = set(
                    uow.session.connection()
                    .execute(sa.select(OUTBOX.c.key).where(OUTBOX.c.key.in_(keys.values())))
                    .scalars()
                )
                todo = [t for t in chunk if keys[t] not in done]
                if not todo:
                    continue
                statements = _team_statements(
                    uow,
                    teams=todo,
                    year=year,
                    month=month,
                    tz=self.tz,
                    now=now,
                    currency=config.catalog.currency,
                    catalog=config.catalog,
                )
            entries = []
            for team, statement in statements.items():
                destination = team or config.audit_channel
                if not statement.apps or destination is None:
                    continue
                payload = statement_payload(statement, now=now, tz=self.tz)
                entries.append(self._entry(keys[team], "notice", destination, None, payload, now))
            with UnitOfWork(self.engine) as uow:
                posted += len(self._insert_once(uow, entries))
                uow.commit()
        return posted, True

    # --- pending requests --------------------------------------------------------------------

    def _expire_requests(self, now: datetime) -> dict[str, int]:
        expired = cards = 0
        while True:
            with UnitOfWork(self.engine) as uow:
                rows = uow.requests.expired(now, limit=self.batch_size)
                rows = [r for r in rows if r.state == "pending"]  # re-checked under the lock
                if not rows:
                    return {"requests_expired": expired, "approval_cards_expired": cards}
                entries = []
                for row in rows:
                    row.state = "expired"
                    row.decided_at = now
                    uow.requests.add(row)
                    if row.approvals_needed:
                        entry = self._approval_expired_entry(uow, row, now)
                        if entry is not None:
                            entries.append(entry)
                uow.flush()
                cards += len(self._insert_once(uow, entries))
                expired += len(rows)
                uow.commit()

    def _approval_expired_entry(
        self, uow: UnitOfWork, row: PendingRequestRow, now: datetime
    ) -> dict[str, Any] | None:
        card = uow.session.exec(
            select(OutboxRow).where(OUTBOX.c.key == f"approval:{row.id}")
        ).first()
        if card is None or card.status == "dead":
            return None
        posted = card.payload
        payload = {
            "type": "approval_expired",
            "update_of": card.id,
            "request_id": row.id,
            "operation": row.operation,
            "app_id": row.app_id,
            "app_name": posted.get("app_name") or row.params.get("app_name"),
            "summary": posted.get("summary") or "",
            "requester_id": row.actor_id,
            "requester_name": row.actor_name,
            "expired_at": row.expires_at.isoformat(),
            "expired_local": self._local(row.expires_at),
            "at": now.isoformat(),
        }
        return self._entry(
            f"approval-expired:{row.id}", "approval", card.destination, card.app_id, payload, now
        )

    # --- plumbing ----------------------------------------------------------------------------

    def _local(self, moment: datetime) -> str:
        local = moment.astimezone(self.tz)
        return f"{local:%Y-%m-%d %H:%M} ({self.tz.key})"

    def _entry(
        self,
        key: str,
        topic: str,
        destination: str | None,
        app_id: str | None,
        payload: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any] | None:
        destination = destination or self.service.config.audit_channel
        if not destination:
            return None
        return {
            "key": key,
            "kind": "message",
            "topic": topic,
            "destination": destination,
            "app_id": app_id,
            "payload": payload,
            "created_at": now,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
            "delivered_at": None,
            "last_error": None,
            "receipt": {},
        }

    def _insert(self, uow: UnitOfWork) -> Callable[[Any], Any]:
        name = uow.session.get_bind().dialect.name
        return postgresql.insert if name == "postgresql" else sqlite.insert

    def _insert_once(self, uow: UnitOfWork, entries: Sequence[dict[str, Any] | None]) -> list[str]:
        """Insert outbox entries whose key is new; the keys inserted (in key order, so
        concurrent sweeps inserting the same keys wait on each other instead of deadlocking)."""
        rows = sorted((e for e in entries if e is not None), key=lambda e: e["key"])
        if not rows:
            return []
        table = OUTBOX
        insert = self._insert(uow)
        inserted: list[str] = []
        for start in range(0, len(rows), 500):
            statement = (
                insert(table)
                .values(rows[start : start + 500])
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(table.c.key)
            )
            inserted.extend(uow.session.connection().execute(statement).scalars())
        if inserted and self.service.on_outbox is not None:
            uow.after_commit(self.service.on_outbox)
        return inserted

    def _mark(self, name: str) -> datetime | None:
        with UnitOfWork(self.engine, write=False) as uow:
            row = uow.session.get(LifecycleMarkRow, name)
            return row.at if row is not None else None

    def _set_mark(self, name: str, at: datetime) -> None:
        """Move the mark forward to `at` (never back: concurrent sweeps keep the latest)."""
        table = MARK
        with UnitOfWork(self.engine) as uow:
            statement = self._insert(uow)(table).values(name=name, at=at)
            newer = sa.case(
                (statement.excluded.at > table.c.at, statement.excluded.at), else_=table.c.at
            )
            uow.session.connection().execute(
                statement.on_conflict_do_update(index_elements=["name"], set_={"at": newer})
            )
            uow.commit()

    @contextmanager
    def _exclusive(self, name: str) -> Iterator[bool]:
        """Whether this sweep may run job `name` (a PostgreSQL advisory lock; SQLite: yes)."""
        if self.engine.dialect.name != "postgresql":
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


def _after(column: sa.Column[Any], key: tuple[datetime, str]) -> sa.ColumnElement[bool]:
    """Keyset pagination: rows after (due date, app id) `key`."""
    return sa.or_(column > key[0], sa.and_(column == key[0], APP.c.app_id > key[1]))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
