"""Importing apps from CSV: every row checked first; one bad row and nothing is imported."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from core import errors
from core.audit import AuditRecord
from core.domain import (
    LEGACY_CUTOFF,
    Actor,
    BillingMode,
    HistoryEntry,
    Plan,
    Status,
    billing_mode_for,
    one_month_later,
)
from core.money import Catalog
from core.store.mapping import app_state
from core.store.ports import Store, UnitOfWork

__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "ImportResult", "Imports", "import_apps"]

REQUIRED_COLUMNS = ("app_id", "name", "plan", "created_at")
OPTIONAL_COLUMNS = ("billing_mode", "status", "owner_channel", "dev_expires_at", "disabled_at")


@dataclass(frozen=True)
class ImportResult:
    """How many apps an import added."""

    imported: int


def _moment(text: str, tz: ZoneInfo) -> datetime:
    """An ISO date (midnight in the billing time zone) or datetime (UTC when no zone)."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=tz).astimezone(UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _check_row(
    raw: dict[str, str], tz: ZoneInfo, seen: set[str], existing: set[str], now: datetime
) -> tuple[dict[str, Any] | None, list[str]]:
    problems: list[str] = []
    get = {k: (v or "").strip() for k, v in raw.items() if k is not None}
    app_id = get.get("app_id", "")
    if not app_id.isdigit() or not 1 <= len(app_id) <= 20:
        problems.append(f"app_id {app_id!r} is not 1-20 digits")
    elif app_id in seen:
        problems.append(f"app_id {app_id} appears twice in the file")
    elif app_id in existing:
        problems.append(f"app_id {app_id} already exists")
    seen.add(app_id)
    name = get.get("name", "")
    if not name or len(name) > 80:
        problems.append("name must be 1-80 characters")
    try:
        plan = Plan(get.get("plan", "").lower())
    except ValueError:
        problems.append(f"plan {get.get('plan')!r} is not developer, standard or premium")
        plan = None
    moments: dict[str, datetime | None] = {}
    for column in ("created_at", "dev_expires_at", "disabled_at"):
        value = get.get(column, "")
        if not value:
            moments[column] = None
            if column == "created_at":
                problems.append("created_at is required")
            continue
        try:
            moments[column] = _moment(value, tz)
        except ValueError:
            problems.append(f"{column} {value!r} is not an ISO date or datetime")
            moments[column] = None
    created = moments["created_at"]
    mode: BillingMode | None = None
    if get.get("billing_mode"):
        try:
            mode = BillingMode(get["billing_mode"].lower())
        except ValueError:
            problems.append(f"billing_mode {get['billing_mode']!r} is not legacy or current")
    if created is not None:
        if created > now:
            problems.append("created_at is in the future")
        if mode is None:
            mode = billing_mode_for(created, tz)
        elif mode is BillingMode.LEGACY and created.astimezone(tz).date() >= LEGACY_CUTOFF:
            problems.append(
                f"billing_mode legacy is impossible for an app created on or after {LEGACY_CUTOFF}"
            )
    status = Status.ACTIVE
    if get.get("status"):
        try:
            status = Status(get["status"].lower())
        except ValueError:
            problems.append(
                f"status {get['status']!r} is not active, suspended, disabled or purged"
            )
    disabled_at = moments["disabled_at"]
    dev_expires = moments["dev_expires_at"]
    if plan is not None:
        if status in (Status.DISABLED, Status.PURGED):
            if not plan.paid:
                problems.append(f"a developer app can't be {status}")
            if disabled_at is None:
                problems.append(f"status {status} needs disabled_at")
        elif disabled_at is not None:
            problems.append("disabled_at is only for disabled or purged apps")
        if status is Status.SUSPENDED and plan.paid:
            problems.append("only developer apps can be suspended")
        if plan.paid and dev_expires is not None:
            problems.append("dev_expires_at is only for developer apps")
        if not plan.paid and dev_expires is None and created is not None:
            dev_expires = one_month_later(created, tz)
    owner = get.get("owner_channel") or None
    if owner is not None and (len(owner) > 40 or not owner.replace("_", "").isalnum()):
        problems.append(f"owner_channel {owner!r} is not a channel id")
    if problems or plan is None or created is None or mode is None:
        return None, problems
    return {
        "app_id": app_id,
        "name": name,
        "owner_channel": owner,
        "plan": plan.value,
        "billing_mode": mode.value,
        "status": status.value,
        "created_at": created,
        "dev_expires_at": dev_expires,
        "disabled_at": disabled_at,
        "config_changed_at": None,
        "config": {},
        "version": 1,
        "updated_at": now,
        "known_since": now,
    }, []


def import_apps(
    uow: UnitOfWork,
    text: str,
    *,
    catalog: Catalog,
    tz: ZoneInfo,
    actor: Actor,
    now: datetime,
) -> ImportResult:
    """Check every row, then add them all with their history and one audit record, or none
    (in the caller's unit of work, which commits)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"line 1: missing column(s): {', '.join(missing)}")
        if unknown:
            problems.append(f"line 1: unknown column(s): {', '.join(unknown)}")
        raise errors.CsvImportError(problems)
    reader.fieldnames = header
    existing = uow.apps.ids()
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    problems = []
    try:
        for raw in reader:
            if None in raw:
                problems.append(f"line {reader.line_num}: more fields than the header has")
                continue
            row, row_problems = _check_row(raw, tz, seen, existing, now)
            problems.extend(f"line {reader.line_num}: {p}" for p in row_problems)
            if row is not None:
                rows.append(row)
    except csv.Error as err:
        problems.append(f"line {reader.line_num}: {err}")
    if problems:
        raise errors.CsvImportError(problems)
    if not rows:
        raise errors.CsvImportError(["the file has no rows"])
    uow.apps.add_many([app_state(row) for row in rows], now)
    uow.history.add_many(list(_history(rows, catalog, actor)))
    uow.audit.append(
        AuditRecord(
            at=now,
            actor_id=actor.user_id,
            actor_name=actor.name,
            action="apps.import",
            outcome="applied",
            detail=f"imported {len(rows)} apps",
        )
    )
    return ImportResult(imported=len(rows))


def _history(
    rows: Iterable[dict[str, Any]], catalog: Catalog, actor: Actor
) -> Iterable[HistoryEntry]:
    for row in rows:
        plan = Plan(row["plan"])
        base: dict[str, Any] = {
            "app_id": row["app_id"],
            "operation": "import",
            "plan": plan,
            "billing_mode": BillingMode(row["billing_mode"]),
            "monthly_price": catalog.monthly_price(plan, {}),
            "actor": actor,
        }
        started = Status.SUSPENDED if row["status"] == "suspended" else Status.ACTIVE
        yield HistoryEntry(**base, at=row["created_at"], status=started)
        if row["disabled_at"] is not None:
            yield HistoryEntry(**base, at=row["disabled_at"], status=Status(row["status"]))


class Imports:
    """Adding apps that exist at the provider already, from a CSV file."""

    def __init__(
        self, *, store: Store, catalog: Catalog, tz: ZoneInfo, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.tz = tz
        self.clock = clock

    def from_csv(self, text: str, *, actor: Actor, now: datetime | None = None) -> ImportResult:
        """Import every row of the file, or none (CsvImportError says why)."""
        with self.store.unit_of_work() as uow:
            result = import_apps(
                uow, text, catalog=self.catalog, tz=self.tz, actor=actor, now=now or self.clock()
            )
            uow.commit()
        return result
