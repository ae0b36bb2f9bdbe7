"""The connector's jobs: inventory sync, daily usage, bill reconciliation; and the usage reader.

`ProviderJobs.run_due(now)` does what is due, from the lifecycle sweep:

- sync, once a day (billing time zone): the account's SDKAppIDs against planbot's apps; the drift
  is stored, and posted to the audit channel only when it changed;
- usage, once a day: each app with an IM key (not purged), its last 30 days stored per app and
  day (a day fetched twice is stored once), within the IM API's rate limit, in batches within a
  time budget per sweep (the next sweep goes on where it stopped); the owner channel is warned
  once when a figure reaches 80% and once at 100% of the plan's limit in the current month;
- reconcile, on or after the 4th: the month before, once.

A job that fails is reported in one line, retried after `retry_after`, and never stops the others.
Notices are typed outbox messages with a unique key, so concurrent sweeps write each once. What
the jobs keep (usage, drift, reconciliations, their marks) goes through the store's `provider`
repository (`core.store.ports.Provider`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from core import domain
from core.config import CoreConfig
from core.domain import AppState, BillingMode, Status
from core.messages import dump
from core.money import statement as compute_statement
from core.provider.messages import DriftChanged, ReconciliationDifferences, UsageLevelReached
from core.provider.model import (
    BilledAmount,
    DailyUsage,
    Drift,
    DriftChange,
    ImKey,
    ProviderConfig,
    ProviderError,
    ReconciliationLine,
    reconcile,
    usage_warnings,
)
from core.store.ports import OutboxEntry, Store, UnitOfWork

__all__ = [
    "AccountPort",
    "ProviderJobs",
    "ProviderSweep",
    "ProviderView",
    "ReconcileReport",
    "SyncReport",
    "UsagePort",
    "UsageReport",
]

log = logging.getLogger(__name__)

#: the day of the month from which the month before is reconciled (the provider bills on the 1st-3rd)
RECONCILE_FROM_DAY = 4
#: apps fetched per transaction
USAGE_BATCH = 50


class AccountPort(Protocol):
    """The account side of the provider: its SDKAppIDs, and its bill for a month."""

    def app_ids(self) -> set[str]:
        """The account's SDKAppIDs."""
        ...

    def billed(self, month: str) -> dict[str, BilledAmount]:
        """Per resource id, what the month's bill charged."""
        ...


class UsagePort(Protocol):
    """The IM side: an app's daily figures."""

    def daily_usage(self, key: ImKey) -> list[DailyUsage]:
        """The app's figures for each day the provider returns."""
        ...


# --- reports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncReport:
    """One inventory sync: the counts, the drift, and what changed since the last one."""

    account_count: int
    planbot_count: int
    drift: Drift
    change: DriftChange
    posted: bool


@dataclass(frozen=True)
class UsageReport:
    """One usage fetch: apps fetched, days stored, warnings queued, and what failed."""

    apps: int = 0
    days: int = 0
    new_days: int = 0
    warnings: int = 0
    without_key: int = 0
    failed: tuple[tuple[str, str], ...] = ()
    complete: bool = True
    stopped_by: ProviderError | None = None


@dataclass(frozen=True)
class ReconcileReport:
    """One month's reconciliation: a line per app, and whether differences were posted."""

    month: str
    currency: str
    lines: tuple[ReconciliationLine, ...]
    posted: bool

    @property
    def differences(self) -> tuple[ReconciliationLine, ...]:
        """The lines that differ by more than a cent."""
        return tuple(line for line in self.lines if line.differs)


@dataclass(frozen=True)
class ProviderSweep:
    """What the provider jobs of one sweep did (one line each) and which of them failed."""

    lines: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass
class _Marks:
    """The marks of one job: its last success and its last failure."""

    ok: datetime | None = None
    failed: datetime | None = None


# --- the jobs ----------------------------------------------------------------------------------


class ProviderJobs:
    """Sync, usage and reconciliation against the provider, run when due or on demand.

    `config` is the core's (catalog, billing time zone, audit channel); `provider` the
    connector's credentials, endpoints and IM keys; `wake` is called once notices were queued.
    """

    def __init__(
        self,
        *,
        store: Store,
        config: CoreConfig,
        provider: ProviderConfig,
        clock: Callable[[], datetime] = domain.utcnow,
        wake: Callable[[], None] | None = None,
        account: AccountPort | None = None,
        usage: UsagePort | None = None,
        retry_after: timedelta = timedelta(minutes=15),
        usage_budget: timedelta = timedelta(seconds=50),
    ) -> None:
        self.store = store
        self.config = config
        self.provider = provider
        self.clock = clock
        self.wake = wake or (lambda: None)
        self._account = account
        self._usage = usage
        self.retry_after = retry_after
        self.usage_budget = usage_budget

    @property
    def account(self) -> AccountPort:
        """The account adapter (the SDK is loaded on first use)."""
        if self._account is None:
            from core.provider.tencent import TencentCloudAccount

            self._account = TencentCloudAccount(self.provider)
        return self._account

    @property
    def usage(self) -> UsagePort:
        """The IM adapter."""
        if self._usage is None:
            from core.provider.tencent import ImRestApi

            self._usage = ImRestApi(self.provider)
        return self._usage

    @property
    def tz(self) -> ZoneInfo:
        """The billing time zone."""
        return self.config.billing_tz

    # --- sweep -------------------------------------------------------------------------------

    def sweep_hook(self, now: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """`Lifecycle.also`: the lines and failed job names of `run_due`."""
        done = self.run_due(now)
        return done.lines, done.failed

    def run_due(self, now: datetime | None = None) -> ProviderSweep:
        """Run each job that is due as of `now`; a failing job never stops the others."""
        now = now or self.clock()
        if not self.provider.enabled:
            return ProviderSweep()
        lines: list[str] = []
        failed: list[str] = []
        today = now.astimezone(self.tz).date()
        month = _previous_month(today)
        jobs: list[tuple[str, str, Callable[[], str | None]]] = []
        if self._due_daily("sync", now):
            jobs.append(("sync", "sync", lambda: self._sync_line(now)))
        if self._due_daily("usage", now):
            jobs.append(("usage", "usage", lambda: self._usage_line(now)))
        if today.day >= RECONCILE_FROM_DAY and self._due_once(f"reconcile:{month}", now):
            jobs.append(("reconcile", f"reconcile:{month}", lambda: self._reconcile_line(now)))
        for name, mark, job in jobs:
            try:
                line = job()
            except ProviderError as err:
                self._set_mark(f"{mark}:failed", now)
                line = f"provider {name} failed: {err.line()}"
                log.warning("%s", line)
                failed.append(f"provider-{name}")
            except Exception:  # an unexpected failure: logged, and retried like a provider one
                self._set_mark(f"{mark}:failed", now)
                log.exception("provider job %s failed", name)
                line = f"provider {name} failed (see the log)"
                failed.append(f"provider-{name}")
            if line:
                lines.append(line)
        return ProviderSweep(tuple(lines), tuple(failed))

    def _sync_line(self, now: datetime) -> str:
        report = self.sync(now)
        change = "changed, posted" if report.posted else "changed" if report.change else "unchanged"
        return (
            f"provider sync: {report.account_count} in the account, "
            f"{len(report.drift.unknown)} unknown, {len(report.drift.missing)} missing ({change})"
        )

    def _usage_line(self, now: datetime) -> str | None:
        report = self.fetch_usage(now)
        line = (
            f"provider usage: {report.apps} apps, {report.days} days ({report.new_days} new), "
            f"{report.warnings} warnings"
        )
        if report.failed:
            line += f", {len(report.failed)} failed ({report.failed[0][1]})"
        if report.stopped_by is not None:
            raise report.stopped_by
        if not report.complete:
            line += ", to be continued"
        return line

    def _reconcile_line(self, now: datetime) -> str:
        local = now.astimezone(self.tz).date()
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        report = self.reconcile(year, month, now)
        posted = ", posted" if report.posted else ""
        return (
            f"provider reconcile {report.month}: {len(report.lines)} apps, "
            f"{len(report.differences)} differences{posted}"
        )

    def _due_daily(self, name: str, now: datetime) -> bool:
        marks = self._marks(name)
        today = now.astimezone(self.tz).date()
        if marks.ok is not None and marks.ok.astimezone(self.tz).date() >= today:
            return False
        return self._not_backing_off(marks, now)

    def _due_once(self, name: str, now: datetime) -> bool:
        marks = self._marks(name)
        return marks.ok is None and self._not_backing_off(marks, now)

    def _not_backing_off(self, marks: _Marks, now: datetime) -> bool:
        if marks.failed is None or (marks.ok is not None and marks.ok >= marks.failed):
            return True
        return now - marks.failed >= self.retry_after

    # --- sync --------------------------------------------------------------------------------

    def sync(self, now: datetime | None = None) -> SyncReport:
        """Compare the account's SDKAppIDs with planbot's apps; store the drift; post a change."""
        now = now or self.clock()
        listed = self.account.app_ids()
        with self.store.unit_of_work() as uow:
            statuses = uow.provider.statuses()
            purged = [a for a, s in statuses.items() if s is Status.PURGED]
            drift = Drift.between(listed, list(statuses), purged)
            before = uow.provider.drift()
            change = drift.changes_since(before)
            uow.provider.save_drift(drift, now)
            posted = False
            audit = self.config.audit_channel
            if change and audit:
                message = DriftChanged(
                    unknown=drift.unknown,
                    missing=drift.missing,
                    new_unknown=change.new_unknown,
                    new_missing=change.new_missing,
                    resolved=change.resolved,
                    account_count=len(listed),
                    at=now,
                )
                day = now.astimezone(self.tz).date().isoformat()
                key = f"provider-drift:{day}:{_digest(before)}:{_digest(drift)}"
                posted = bool(self._post(uow, key, audit, None, message, now))
            uow.provider.set_mark("sync:ok", now)
            uow.commit()
        return SyncReport(len(listed), len(statuses) - len(purged), drift, change, posted)

    # --- usage -------------------------------------------------------------------------------

    def fetch_usage(
        self,
        now: datetime | None = None,
        *,
        apps: Sequence[str] | None = None,
        budget: timedelta | None = None,
    ) -> UsageReport:
        """Fetch and store the daily figures of each app with a key (or of `apps`), warn owners.

        Without `apps`, it is the daily job: it goes on from where the day's last run stopped,
        stops at the time budget (`complete` False), and marks the day done when complete.
        """
        now = now or self.clock()
        daily_job = apps is None
        deadline = time.monotonic() + (budget or self.usage_budget).total_seconds()
        today = now.astimezone(self.tz).date().isoformat()
        with self.store.unit_of_work(write=False) as uow:
            found = uow.provider.live_apps(None if apps is None else list(apps))
            cursor = uow.provider.marks(["usage:cursor"]).get("usage:cursor")
        after = ""
        if daily_job and cursor is not None and cursor[1].startswith(today + "|"):
            after = cursor[1].split("|", 1)[1]
        keyed = [a for a in found if a.app_id in self.provider.im_keys]
        without_key = len(found) - len(keyed)
        todo = (
            [a for a in keyed if (len(a.app_id), a.app_id) > (len(after), after)]
            if after
            else keyed
        )
        report = UsageReport(without_key=without_key)
        workers = max(1, self.provider.im_concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provider-usage") as pool:
            for start in range(0, len(todo), USAGE_BATCH):
                if time.monotonic() > deadline and start > 0:
                    return replace(report, complete=False)
                batch = todo[start : start + USAGE_BATCH]
                results = list(pool.map(self._fetch_one, batch))
                report, stop_at = self._store_batch(report, batch, results, now)
                last_done = batch[-1].app_id if stop_at is None else stop_at
                if daily_job and last_done:
                    self._set_mark("usage:cursor", now, f"{today}|{last_done}")
                if report.stopped_by is not None:
                    return replace(report, complete=False)
        if daily_job:
            self._set_mark("usage:cursor", now)  # the next day's run starts from the first app
            self._set_mark("usage:ok", now)
        return report

    def _fetch_one(self, app: AppState) -> list[DailyUsage] | ProviderError:
        try:
            return self.usage.daily_usage(self.provider.im_keys[app.app_id])
        except ProviderError as err:
            return err

    def _store_batch(
        self,
        report: UsageReport,
        batch: Sequence[AppState],
        results: Sequence[list[DailyUsage] | ProviderError],
        now: datetime,
    ) -> tuple[UsageReport, str | None]:
        """Write the batch's figures and warnings; the app before the first retryable failure
        (so that the next run starts again there), or None when none failed that way."""
        stop_at: str | None = None
        stopped: ProviderError | None = None
        failed = list(report.failed)
        fetched: list[tuple[AppState, list[DailyUsage]]] = []
        previous = ""
        for app, result in zip(batch, results, strict=True):
            if isinstance(result, ProviderError):
                if result.retryable and stopped is None:
                    stopped, stop_at = result, previous
                elif not result.retryable:
                    failed.append((app.app_id, f"{app.app_id}: {result.line()}"))
            elif stopped is None:
                fetched.append((app, [d for d in result if d.app_id == app.app_id]))
            previous = app.app_id
        days = new_days = warnings = 0
        with self.store.unit_of_work() as uow:
            for app, usage in fetched:
                new_days += uow.provider.store_usage(usage, now)
                days += len({d.day for d in usage})
                warnings += self._warn(uow, app, usage, now)
            uow.commit()
        return (
            UsageReport(
                apps=report.apps + len(fetched),
                days=report.days + days,
                new_days=report.new_days + new_days,
                warnings=report.warnings + warnings,
                without_key=report.without_key,
                failed=tuple(failed),
                complete=stopped is None,
                stopped_by=stopped,
            ),
            stop_at,
        )

    def _warn(
        self, uow: UnitOfWork, app: AppState, usage: Sequence[DailyUsage], now: datetime
    ) -> int:
        """Queue the owner's warnings for the levels the app's figures reached (each once)."""
        limits = self.config.catalog.plans[app.plan].limits
        month = f"{now.astimezone(self.tz).date():%Y-%m}"
        recent = [u for u in usage if f"{u.day:%Y-%m}" == month]
        destination = app.owner_channel or self.config.audit_channel
        if not destination:
            return 0
        posted = 0
        for reached in usage_warnings(recent, limits):
            message = UsageLevelReached(
                app_id=app.app_id,
                app_name=app.name,
                plan=app.plan,
                month=reached.month,
                figure=reached.figure,
                level=reached.level,
                value=reached.value,
                limit=reached.limit,
                day=reached.day,
            )
            key = (
                f"provider-usage:{app.app_id}:{reached.month}:{app.plan.value}:"
                f"{reached.figure}:{reached.level}"
            )
            posted += len(self._post(uow, key, destination, app.app_id, message, now))
        return posted

    # --- reconciliation ----------------------------------------------------------------------

    def reconcile(self, year: int, month: int, now: datetime | None = None) -> ReconcileReport:
        """Compare planbot's charge for a month that ended with the provider's bill, per app."""
        now = now or self.clock()
        local = now.astimezone(self.tz).date()
        if (year, month) >= (local.year, local.month):
            raise ValueError(
                f"{year:04d}-{month:02d} is not over yet: reconcile a month that has ended "
                "(the provider bills it on the 1st-3rd of the next month)"
            )
        period = f"{year:04d}-{month:02d}"
        billed = self.account.billed(period)
        start, end = domain.month_bounds(year, month, self.tz)
        catalog = self.config.catalog
        with self.store.unit_of_work(write=False) as uow:
            apps = uow.provider.apps_in(start, end)
            segments = uow.history.segments_of([a.app_id for a in apps], until=end)
        charges = {
            a.app_id: compute_statement(
                segments[a.app_id],
                year=year,
                month=month,
                tz=self.tz,
                now=now,
                currency=catalog.currency,
                catalog=catalog,
            ).total
            for a in apps
        }
        lines = reconcile(
            charges,
            billed,
            names={a.app_id: a.name for a in apps},
            legacy=[a.app_id for a in apps if a.billing_mode is BillingMode.LEGACY],
        )
        differences = tuple(line for line in lines if line.differs)
        posted = False
        with self.store.unit_of_work() as uow:
            uow.provider.save_reconciliation(period, lines, now)
            audit = self.config.audit_channel
            if differences and audit:
                message = ReconciliationDifferences(
                    month=period,
                    currency=catalog.currency,
                    lines=differences,
                    apps_compared=len(lines),
                )
                text = json.dumps(dump(message), sort_keys=True)
                digest = hashlib.sha256(text.encode()).hexdigest()[:16]
                key = f"provider-reconcile:{period}:{digest}"
                posted = bool(self._post(uow, key, audit, None, message, now))
            uow.provider.set_mark(f"reconcile:{period}:ok", now)
            uow.commit()
        return ReconcileReport(period, catalog.currency, tuple(lines), posted)

    # --- plumbing ----------------------------------------------------------------------------

    def _post(
        self,
        uow: UnitOfWork,
        key: str,
        destination: str,
        app_id: str | None,
        message: DriftChanged | UsageLevelReached | ReconciliationDifferences,
        now: datetime,
    ) -> list[str]:
        """Queue one message unless its key exists; the keys written."""
        entry = OutboxEntry(
            kind="message",
            topic="provider",
            destination=destination,
            app_id=app_id,
            payload=dump(message),
            created_at=now,
            key=key,
        )
        written = uow.outbox.add_once([entry])
        if written:
            uow.after_commit(self.wake)
        return written

    def _marks(self, name: str) -> _Marks:
        with self.store.unit_of_work(write=False) as uow:
            found = uow.provider.marks([f"{name}:ok", f"{name}:failed"])
        ok, failed = found.get(f"{name}:ok"), found.get(f"{name}:failed")
        return _Marks(ok=ok[0] if ok else None, failed=failed[0] if failed else None)

    def _set_mark(self, name: str, at: datetime, note: str = "") -> None:
        with self.store.unit_of_work() as uow:
            uow.provider.set_mark(name, at, note)
            uow.commit()


# --- the read side, for /plan usage and status -------------------------------------------------


class ProviderView:
    """Stored usage, for people: whether the connector is on, an app's days, yesterday."""

    def __init__(self, *, store: Store, provider: ProviderConfig) -> None:
        self.store = store
        self.provider = provider

    @property
    def enabled(self) -> bool:
        """Whether the connector has credentials."""
        return self.provider.enabled

    def has_key(self, app_id: str) -> bool:
        """Whether planbot has the app's IM admin key (without one it can't fetch its figures)."""
        return app_id in self.provider.im_keys

    def days(self, app_id: str, *, last: date, count: int) -> list[DailyUsage]:
        """The app's stored days from `count` days before `last` to `last`, oldest first."""
        first = last - timedelta(days=count - 1)
        with self.store.unit_of_work(write=False) as uow:
            return uow.provider.usage(app_id, first=first, last=last)

    def on(self, app_id: str, day: date) -> DailyUsage | None:
        """The app's figures of one day, if stored."""
        with self.store.unit_of_work(write=False) as uow:
            found = uow.provider.usage(app_id, first=day, last=day)
        return found[0] if found else None


# --- helpers -----------------------------------------------------------------------------------


def _digest(drift: Drift) -> str:
    text = ",".join(drift.unknown) + "|" + ",".join(drift.missing)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _previous_month(day: date) -> str:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return f"{year:04d}-{month:02d}"
