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

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from core import approvals, domain
from core.audit import AuditRecord
from core.config import CoreConfig
from core.domain import PURGE_AFTER, Actor, AppState, Operation, Plan, Status
from core.facts import Field, FieldChange, Outcome
from core.grants import REPLAYS_KEPT
from core.home import home_changed
from core.messages import (
    DevExpiryReminder,
    Message,
    PurgeWarning,
    RequestEvent,
    StatementIssued,
    person,
)
from core.money import bill_month
from core.money import statement as compute_statement
from core.records import enqueue, message_entry, record_change
from core.requests import Request, RequestState
from core.roles import Roles
from core.statements import AppCharges, TeamStatement
from core.store.ports import OutboxEntry, Store, UnitOfWork

__all__ = [
    "PURGE_WARNING_DAYS",
    "REMINDER_DAYS",
    "Lifecycle",
    "SweepReport",
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
    #: one line per thing the sweep's other work (`Lifecycle.also`) did
    notes: tuple[str, ...] = ()

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
        notes = "".join(f"; {note}" for note in self.notes)
        return f"sweep at {self.now.isoformat()}: " + ", ".join(parts) + notes + failed


# --- statements ------------------------------------------------------------------------------


def team_statements(
    uow: UnitOfWork,
    *,
    teams: Sequence[str | None],
    year: int,
    month: int,
    config: CoreConfig,
    now: datetime,
) -> dict[str | None, TeamStatement]:
    """The statements of these teams for a month (None: the apps without an owner channel).

    Each app's numbers are those `/plan bill` gives for that app and month.
    """
    tz, currency = config.billing_tz, config.catalog.currency
    start, end = domain.month_bounds(year, month, tz)
    apps = uow.apps.billed(start, end, teams)
    segments = uow.history.segments_of([a.app_id for a in apps], until=end)
    by_team: dict[str | None, list[AppCharges]] = {t: [] for t in teams}
    for app in apps:
        statement = compute_statement(
            segments[app.app_id],
            year=year,
            month=month,
            tz=tz,
            now=now,
            currency=currency,
            catalog=config.catalog,
        )
        if statement.total == 0:  # never charged this month: nothing to bill
            continue
        by_team.setdefault(app.owner_channel, []).append(
            AppCharges.of(
                app_id=app.app_id,
                name=app.name,
                plan=app.plan,
                status=app.status,
                statement=statement,
            )
        )
    return {
        team: TeamStatement(team, year, month, currency, tuple(charges))
        for team, charges in by_team.items()
    }


def team_statement(
    uow: UnitOfWork,
    *,
    team: str | None,
    year: int,
    month: int,
    config: CoreConfig,
    now: datetime,
) -> TeamStatement:
    """One team's statement for a month."""
    found = team_statements(uow, teams=[team], year=year, month=month, config=config, now=now)
    return found[team]


# --- advance notices -------------------------------------------------------------------------


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
    column: str
    offset: timedelta
    entry: Callable[[AppState, int, datetime], OutboxEntry | None]

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


# --- the sweep ---------------------------------------------------------------------------------


class Lifecycle:
    """The time-driven part of the plan service: one `sweep()` does what is due as of now."""

    def __init__(
        self,
        *,
        store: Store,
        config: CoreConfig,
        roles: Roles,
        clock: Callable[[], datetime],
        wake: Callable[[], None] | None = None,
        batch_size: int = 200,
        reminder_days: Sequence[int] = REMINDER_DAYS,
        purge_warning_days: Sequence[int] = PURGE_WARNING_DAYS,
        statement_budget: timedelta = timedelta(seconds=60),
    ) -> None:
        self.store = store
        self.config = config
        self.roles = roles
        self.clock = clock
        self.wake = wake or (lambda: None)
        self.batch_size = batch_size
        self.statement_budget = statement_budget
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: other work each sweep does after its own (the provider connector's jobs): given the
        #: sweep's moment, returns a line per thing done and the names of what failed
        self.also: Callable[[datetime], tuple[tuple[str, ...], tuple[str, ...]]] | None = None
        self._reminders = _Notices(
            mark="dev_reminders",
            counter="reminders",
            days=tuple(sorted(set(reminder_days), reverse=True)),
            status=Status.ACTIVE,
            column="dev_expires_at",
            offset=timedelta(0),
            entry=self._reminder_entry,
        )
        self._warnings = _Notices(
            mark="purge_warnings",
            counter="purge_warnings",
            days=tuple(sorted(set(purge_warning_days), reverse=True)),
            status=Status.DISABLED,
            column="disabled_at",
            offset=PURGE_AFTER,
            entry=self._purge_warning_entry,
        )

    @property
    def tz(self) -> ZoneInfo:
        """The billing time zone."""
        return self.config.billing_tz

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
        notes: tuple[str, ...] = ()
        if self.also is not None:
            try:
                notes, also_failed = self.also(now)
                failed.extend(also_failed)
            except Exception:  # like any job: logged, and the rest of the sweep is done
                log.exception("lifecycle job provider failed")
                failed.append("provider")
        return SweepReport(now=now, failed=tuple(failed), notes=notes, **counts)

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
            if report.total or report.failed or report.notes:
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
            self.roles.require(actor, "view", team, "see this team's bill")
        with self.store.unit_of_work(write=False) as uow:
            return team_statement(
                uow, team=team, year=year, month=month, config=self.config, now=now
            )

    # --- what is due -----------------------------------------------------------------------

    def _due_jobs(self, now: datetime) -> list[tuple[str, Callable[[], dict[str, int]]]]:
        """What is due as of `now`, found in one read-only transaction of indexed lookups."""
        statements = self._statement_month(now)[2]
        jobs: list[tuple[str, Callable[[], dict[str, int]]]] = []
        with self.store.unit_of_work(write=False) as uow:
            marks = uow.marks.get([self._reminders.mark, self._warnings.mark, statements])
            if uow.apps.any_due("suspend", now):
                jobs.append(("suspend", partial(self._transition, now, "suspend")))
            if uow.apps.any_due("purge", now):
                jobs.append(("purge", partial(self._transition, now, "purge")))
            for notices in (self._reminders, self._warnings):
                since = marks.get(notices.mark)
                windows = [
                    w
                    for w in notices.windows(since, now)
                    if uow.apps.any_in_window(notices.status, notices.column, w.low, w.high)
                ]
                if windows or since is None:
                    jobs.append((notices.mark, partial(self._notify, now, notices, windows)))
            if statements not in marks:
                jobs.append(("statements", partial(self._post_statements, now)))
            if uow.requests.any_expired(now):
                jobs.append(("requests", partial(self._expire_requests, now)))
            if uow.replays.any_before(now - REPLAYS_KEPT):
                jobs.append(("replays", partial(self._forget_replays, now)))
        return jobs

    def _forget_replays(self, now: datetime) -> dict[str, int]:
        """Forget the signatures of requests too old to be replayed."""
        with self.store.unit_of_work() as uow:
            uow.replays.forget(now - REPLAYS_KEPT)
            uow.commit()
        return {}

    # --- transitions -------------------------------------------------------------------------

    def _transition(self, now: datetime, what: str) -> dict[str, int]:
        """Suspend (or purge) every app due, in locked batches, each change audited.

        A changed app is no longer due, so each batch is simply the next one; a batch that
        changes nothing ends the job.
        """
        rule = domain.suspend if what == "suspend" else domain.purge
        op = Operation.SUSPEND if what == "suspend" else Operation.PURGE
        done = 0
        while True:
            with self.store.unit_of_work() as uow:
                changed = 0
                for before in uow.apps.due(what, now, limit=self.batch_size):
                    after = rule(before, now)  # re-checked under the row lock
                    if after is None:
                        continue
                    since = before.dev_expires_at if what == "suspend" else before.disabled_at
                    assert since is not None
                    record_change(
                        uow,
                        self.config,
                        before=before,
                        after=after,
                        operation=op,
                        actor=SWEEPER,
                        now=now,
                        changes=[
                            FieldChange(
                                field=Field.STATUS,
                                before=before.status.value,
                                after=after.status.value,
                            )
                        ],
                        since=since,
                        detail=self._record_detail(what, since),
                        wake=self.wake,
                    )
                    changed += 1
                uow.commit()
            done += changed
            if not changed:
                return {"suspended" if what == "suspend" else "purged": done}

    def _record_detail(self, what: str, since: datetime) -> str:
        """Why the lifecycle changed the app, as the audit record keeps it."""
        if what == "suspend":
            return f"The developer validity ended on {self._local(since)}."
        return (
            f"Disabled on {self._local(since)} and not re-enabled within 90 days (until "
            f"{self._local(domain.purge_at(since))}): its data and services can no longer be "
            "recovered."
        )

    def _local(self, moment: datetime) -> str:
        return f"{moment.astimezone(self.tz):%Y-%m-%d %H:%M} ({self.tz.key})"

    # --- notices -----------------------------------------------------------------------------

    def _notify(self, now: datetime, notices: _Notices, windows: list[_Window]) -> dict[str, int]:
        """Enqueue the notices due in `windows`, then move the kind's watermark to `now`."""
        sent = sum(self._notify_window(now, notices, window) for window in windows)
        with self.store.unit_of_work() as uow:
            uow.marks.advance(notices.mark, now)
            uow.commit()
        return {notices.counter: sent}

    def _notify_window(self, now: datetime, notices: _Notices, window: _Window) -> int:
        sent = 0
        after: tuple[datetime, str] | None = None
        while True:
            with self.store.unit_of_work() as uow:
                apps = uow.apps.in_window(
                    notices.status,
                    notices.column,
                    window.low,
                    window.high,
                    after=after,
                    limit=self.batch_size * 5,
                )
                if not apps:
                    return sent
                last = apps[-1]
                moment = getattr(last, notices.column)
                assert moment is not None
                after = (moment, last.app_id)
                entries = [notices.entry(app, window.days, now) for app in apps]
                sent += self._add_once(uow, entries)
                uow.commit()

    def _reminder_entry(self, app: AppState, days: int, now: datetime) -> OutboxEntry | None:
        if app.plan is not Plan.DEVELOPER or app.dev_expires_at is None:
            return None
        reminder = DevExpiryReminder(
            app_id=app.app_id,
            app_name=app.name,
            billing_mode=app.billing_mode,
            notice_days=days,
            expires_at=app.dev_expires_at,
            at=now,
        )
        key = f"remind:{app.app_id}:{_stamp(app.dev_expires_at)}:{days}d"
        return self._entry(key, "notice", app.owner_channel, app.app_id, reminder, now)

    def _purge_warning_entry(self, app: AppState, days: int, now: datetime) -> OutboxEntry | None:
        if app.disabled_at is None:
            return None
        warning = PurgeWarning(
            app_id=app.app_id,
            app_name=app.name,
            plan=app.plan,
            notice_days=days,
            disabled_at=app.disabled_at,
            purge_at=domain.purge_at(app.disabled_at),
            at=now,
        )
        key = f"purge-warning:{app.app_id}:{_stamp(app.disabled_at)}:{days}d"
        return self._entry(key, "notice", app.owner_channel, app.app_id, warning, now)

    # --- statements --------------------------------------------------------------------------

    def _statement_month(self, now: datetime) -> tuple[int, int, str]:
        """The month whose statements are due (the one before now's, in the billing zone)."""
        local = now.astimezone(self.tz)
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        return year, month, f"statements:{year:04d}-{month:02d}"

    def _post_statements(self, now: datetime) -> dict[str, int]:
        year, month, mark = self._statement_month(now)
        with self.store.exclusive(mark) as mine:
            if not mine:  # another replica is on it
                return {"statements": 0}
            with self.store.unit_of_work(write=False) as uow:
                if uow.marks.get([mark]):  # done meanwhile
                    return {"statements": 0}
            posted, complete = self._post_month(now, year, month)
            if complete:  # else the next sweep goes on where this one stopped
                with self.store.unit_of_work() as uow:
                    uow.marks.advance(mark, now)
                    uow.commit()
        return {"statements": posted}

    def _post_month(self, now: datetime, year: int, month: int) -> tuple[int, bool]:
        """Post the month's statements, team by team, within the time budget; whether done."""
        deadline = time.monotonic() + self.statement_budget.total_seconds()
        config = self.config
        start, end = domain.month_bounds(year, month, self.tz)
        with self.store.unit_of_work(write=False) as uow:
            found = uow.apps.billed_teams(start, end)
        teams: list[str | None] = sorted(
            (t for t in set(found) if t is not None or config.audit_channel),
            key=lambda t: (t is None, t or ""),
        )
        period = f"{year:04d}-{month:02d}"
        issued_on = now.astimezone(self.tz).date()
        posted = 0
        for chunk_start in range(0, len(teams), 20):
            if time.monotonic() > deadline:
                return posted, False
            chunk = teams[chunk_start : chunk_start + 20]
            keys = {t: f"statement:{t or _UNOWNED}:{period}" for t in chunk}
            with self.store.unit_of_work(write=False) as uow:
                done = uow.outbox.keys_in(list(keys.values()))
                todo = [t for t in chunk if keys[t] not in done]
                if not todo:
                    continue
                statements = team_statements(
                    uow, teams=todo, year=year, month=month, config=config, now=now
                )
            entries = []
            for team, statement in statements.items():
                if not statement.apps:
                    continue
                listed = TeamStatement(
                    statement.team,
                    statement.year,
                    statement.month,
                    statement.currency,
                    statement.apps[:STATEMENT_APPS_LISTED],
                )
                notice = StatementIssued(
                    statement=listed,
                    apps_omitted=max(0, len(statement.apps) - STATEMENT_APPS_LISTED),
                    total=statement.total,
                    to_date=statement.to_date,
                    issued_on=issued_on,
                    billing_tz=self.tz.key,
                )
                entries.append(self._entry(keys[team], "notice", team, None, notice, now))
            with self.store.unit_of_work() as uow:
                posted += self._add_once(uow, entries)
                uow.commit()
        return posted, True

    # --- pending requests --------------------------------------------------------------------

    def _expire_requests(self, now: datetime) -> dict[str, int]:
        """Close the pending requests past their expiry. One that waited for peers is an event:
        audited, its approval card replaced, its requester told (and their card replaced while
        their command's reply URL still answers)."""
        expired = cards = 0
        while True:
            with self.store.unit_of_work() as uow:
                found = [
                    r
                    for r in uow.requests.expired(now, limit=self.batch_size)
                    if r.state is RequestState.PENDING  # re-checked under the lock
                ]
                if not found:
                    return {"requests_expired": expired, "approval_cards_expired": cards}
                waited = [r for r in found if r.needs_peers]  # shown on home tabs until now
                if waited:
                    home_changed(
                        uow,
                        now=now,
                        app_ids=[r.app_id for r in waited],
                        teams=[r.owner_team for r in waited if r.app_id is None],
                        users=[r.requester.user_id for r in waited],
                    )
                for request in found:
                    closed = request.closed(RequestState.EXPIRED, SWEEPER, now)
                    uow.requests.decide(request, _no_decider(closed))
                    if request.needs_peers:
                        cards += self._expired_peer_request(uow, request, now)
                expired += len(found)
                uow.after_commit(self.wake)
                uow.commit()

    def _expired_peer_request(self, uow: UnitOfWork, request: Request, now: datetime) -> int:
        """Record and tell the expiry of a request that waited for peers; 1 if its approval
        card was replaced."""
        given = request.approved_by
        detail = (
            f"expired at {request.expires_at.isoformat()} with {len(given)} of "
            f"{request.approvals_needed} approvals"
        )
        seq = uow.audit.append(
            AuditRecord(
                at=now,
                actor_id=SWEEPER.user_id,
                actor_name=SWEEPER.name,
                action=request.operation.value,
                outcome="expired",
                app_id=request.app_id,
                request_id=request.id,
                detail=detail,
            )
        )
        told = RequestEvent(
            event="expired",
            audience="requester",
            operation=request.operation,
            app_id=request.app_id,
            app_name=request.app_name,
            actor=SWEEPER,
            requester=person(request.requester),
            approvals=given,
            approvals_needed=request.approvals_needed,
            at=now,
            audit_seq=seq,
            request_id=request.id,
        )
        enqueue(
            uow,
            told,
            destination=request.requester.user_id,
            app_id=request.app_id,
            now=now,
            topic="audit",
        )
        outcome = Outcome(
            request_id=request.id,
            state="expired",
            operation=request.operation,
            app_id=request.app_id,
            app_name=request.app_name,
            actor=SWEEPER,
            approvals=given,
            approvals_needed=request.approvals_needed,
        )
        approvals.tell_requester(uow, self.config, request, outcome, now)
        replaced = approvals.close_card(
            uow,
            request,
            "expired",
            now=now,
            approvals=given,
            key=f"approval-expired:{request.id}",
        )
        return 1 if replaced else 0

    # --- plumbing ----------------------------------------------------------------------------

    def _entry(
        self,
        key: str,
        topic: str,
        destination: str | None,
        app_id: str | None,
        message: Message,
        now: datetime,
    ) -> OutboxEntry | None:
        destination = destination or self.config.audit_channel
        if not destination:
            return None
        return message_entry(
            message, destination=destination, app_id=app_id, now=now, topic=topic, key=key
        )

    def _add_once(self, uow: UnitOfWork, entries: Sequence[OutboxEntry | None]) -> int:
        """Write the entries whose key is new; how many were written."""
        inserted = uow.outbox.add_once([e for e in entries if e is not None])
        if inserted:
            uow.after_commit(self.wake)
        return len(inserted)


def _no_decider(request: Request) -> Request:
    """An expiry is decided by time, not by a person: no `decided_by`."""
    return replace(request, decided_by=None)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
