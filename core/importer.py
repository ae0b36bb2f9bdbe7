"""Importing apps from CSV: every row checked first; one bad row and nothing is imported.

The file is read twice, as a stream: once to check every row (keeping only each id and name
key seen, to find duplicates), then again to write the rows, a batch at a time, in the one
transaction of the caller's unit of work. So memory stays flat however long the file is, and a
file with one bad row, or a write the database refuses, imports nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from core import errors
from core.audit import AuditRecord
from core.domain import (
    LEGACY_CUTOFF,
    PRODUCT_SINCE,
    Actor,
    BillingMode,
    HistoryEntry,
    Plan,
    Status,
    add_months,
    app_name,
    billing_mode_for,
    is_app_id,
    name_key,
    one_month_later,
)
from core.money import Catalog
from core.store.mapping import app_state
from core.store.ports import Store, UnitOfWork

__all__ = [
    "BATCH",
    "DEV_EXPIRY_MONTHS_AHEAD",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "CsvSource",
    "ImportResult",
    "Imports",
    "import_apps",
]

REQUIRED_COLUMNS = ("app_id", "name", "plan", "created_at")
OPTIONAL_COLUMNS = ("billing_mode", "status", "owner_channel", "dev_expires_at", "disabled_at")
#: the furthest a developer app's expiry can be from the import (or its creation, if later):
#: twelve extensions of a month each
DEV_EXPIRY_MONTHS_AHEAD = 12
#: rows written (and names looked up in the database) at a time
BATCH = 2000
#: problems kept to report (the count is exact; a file of bad rows does not fill memory)
PROBLEMS_KEPT = 200

#: opens the CSV text from its start, each time it is called (the file is read twice)
CsvSource = Callable[[], AbstractContextManager[Iterable[str]]]


@dataclass(frozen=True)
class ImportResult:
    """How many apps an import added."""

    imported: int


def text_source(text: str) -> CsvSource:
    """A CSV source over text in memory."""
    return lambda: nullcontext(io.StringIO(text.lstrip("\ufeff")))


def _moment(text: str, tz: ZoneInfo) -> datetime:
    """An ISO date (midnight in the billing time zone) or datetime (UTC when no zone)."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=tz).astimezone(UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _check_row(
    raw: dict[str, str],
    tz: ZoneInfo,
    seen: set[str],
    names: dict[str, int],
    existing: set[str],
    now: datetime,
    line: int,
) -> tuple[dict[str, Any] | None, list[str]]:
    problems: list[str] = []
    get = {k: (v or "").strip() for k, v in raw.items() if k is not None}
    app_id = get.get("app_id", "")
    if not is_app_id(app_id):
        problems.append(f"app_id {app_id!r} is not 1-20 digits (0-9)")
    elif app_id in seen:
        problems.append(f"app_id {app_id} appears twice in the file")
    elif app_id in existing:
        problems.append(f"app_id {app_id} already exists")
    seen.add(app_id)
    name = ""
    try:
        name = app_name(get.get("name", ""))
    except errors.InvalidAppName as err:
        problems.append(f"name {get.get('name', '')!r} can't be used: {err.params['reason']}")
    if name:
        key = name_key(name)
        if key in names:
            problems.append(f"name {name!r} is the name of line {names[key]} too (case ignored)")
        else:
            names[key] = line
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
        except (ValueError, OverflowError):
            moments[column] = None
            try:  # a date, but at the edge of the calendar (0001-01-01, 9999-12-31)
                day = date.fromisoformat(value[:10])
            except ValueError:
                problems.append(f"{column} {value!r} is not an ISO date or datetime")
                continue
            if day < PRODUCT_SINCE:
                problems.append(
                    f"{column} {day} is before {PRODUCT_SINCE}, when the provider's IM "
                    "product began"
                )
            else:
                problems.append(f"{column} {day} is too far ahead")
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
        elif created.astimezone(tz).date() < PRODUCT_SINCE:
            problems.append(
                f"created_at {created.astimezone(tz).date()} is before {PRODUCT_SINCE}, "
                "when the provider's IM product began"
            )
            created = None
    if created is not None:
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
    if created is not None and disabled_at is not None:
        if disabled_at < created:
            problems.append("disabled_at is before created_at")
        elif disabled_at > now:
            problems.append("disabled_at is in the future")
    if created is not None and dev_expires is not None:
        # DOMAIN.md: a developer app is valid a month at a time, each extension a calendar month
        # after the later of now and its expiry; extensions can be applied one after another,
        # so a far expiry is possible, but not more than DEV_EXPIRY_MONTHS_AHEAD of them
        latest = add_months(max(now, created), DEV_EXPIRY_MONTHS_AHEAD)
        if dev_expires < created:
            problems.append("dev_expires_at is before created_at")
        elif dev_expires > latest:
            problems.append(
                f"dev_expires_at {dev_expires.astimezone(tz).date()} is too far ahead: a "
                "developer app is extended a month at a time, "
                f"{latest.astimezone(tz).date()} at the latest"
            )
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
    if owner is not None and (
        len(owner) > 40 or not owner.isascii() or not owner.replace("_", "").isalnum()
    ):
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


def _reader(lines: Iterable[str]) -> tuple[csv.DictReader[str], list[str]]:
    """A reader of the rows, and the problems of the header (a missing, unknown or repeated
    column: a repeated one would silently replace the first)."""
    reader = csv.DictReader(lines)
    try:
        fields = reader.fieldnames or []
    except csv.Error as err:
        return reader, [f"line 1: {err}"]
    header = [h.strip().lstrip("\ufeff") for h in fields]
    problems = []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing:
        problems.append(f"line 1: missing column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"line 1: unknown column(s): {', '.join(unknown)}")
    if repeated:
        problems.append(f"line 1: column(s) given more than once: {', '.join(repeated)}")
    reader.fieldnames = header
    return reader, problems


def _checked_rows(
    reader: csv.DictReader[str],
    *,
    tz: ZoneInfo,
    now: datetime,
    existing: set[str],
    names: dict[str, int],
) -> Iterator[tuple[int, dict[str, Any] | None, list[str]]]:
    """Each row with its problems (line number, row or None, problems)."""
    seen: set[str] = set()
    try:
        while True:
            line = reader.line_num + 1  # where the record starts (a quoted value may span lines)
            raw = next(reader, None)
            if raw is None:
                return
            if None in raw:
                yield line, None, ["more fields than the header has"]
                continue
            row, row_problems = _check_row(raw, tz, seen, names, existing, now, line)
            yield line, row, row_problems
    except csv.Error as err:
        yield reader.line_num, None, [str(err)]


def import_apps(
    uow: UnitOfWork,
    source: str | CsvSource,
    *,
    catalog: Catalog,
    tz: ZoneInfo,
    actor: Actor,
    now: datetime,
) -> ImportResult:
    """Check every row, then add them all with their history and one audit record, or none
    (in the caller's unit of work, which commits). `source`: the CSV text, or a way to open it
    (read twice, each time from its start)."""
    opened = text_source(source) if isinstance(source, str) else source
    existing = uow.apps.ids()
    problems: list[str] = []
    count = 0

    def problem(text: str) -> None:
        nonlocal count
        count += 1
        if len(problems) < PROBLEMS_KEPT:
            problems.append(text)

    # first pass: check every row; names are looked up in the database a batch at a time
    with opened() as lines:
        reader, header_problems = _reader(lines)
        if header_problems:
            raise errors.CsvImportError(header_problems)
        names: dict[str, int] = {}
        batch: dict[str, tuple[int, str]] = {}
        rows = 0

        def look_up_names() -> None:
            taken = uow.apps.names_taken(list(batch))
            for key in sorted(taken, key=lambda k: batch[k][0]):
                line, name = batch[key]
                problem(f"line {line}: an app named {name!r} already exists (case ignored)")
            batch.clear()

        for line, row, row_problems in _checked_rows(
            reader, tz=tz, now=now, existing=existing, names=names
        ):
            for text in row_problems:
                problem(f"line {line}: {text}")
            if row is not None:
                rows += 1
                batch[name_key(row["name"])] = (line, row["name"])
                if len(batch) >= BATCH:
                    look_up_names()
        if batch:
            look_up_names()
        del names
    if count:
        raise errors.CsvImportError(problems, total=count)
    if not rows:
        raise errors.CsvImportError(["the file has no rows"])
    # second pass: write, a batch at a time, in the one transaction
    with opened() as lines:
        reader, _ = _reader(lines)
        chunk: list[dict[str, Any]] = []
        for _line, row, _problems in _checked_rows(
            reader, tz=tz, now=now, existing=set(), names={}
        ):
            assert row is not None  # checked in the first pass
            chunk.append(row)
            if len(chunk) >= BATCH:
                _write(uow, chunk, catalog, actor, now)
                chunk = []
        if chunk:
            _write(uow, chunk, catalog, actor, now)
    uow.audit.append(
        AuditRecord(
            at=now,
            actor_id=actor.user_id,
            actor_name=actor.name,
            action="apps.import",
            outcome="applied",
            detail=f"imported {rows} apps",
        )
    )
    return ImportResult(imported=rows)


def _write(
    uow: UnitOfWork, rows: list[dict[str, Any]], catalog: Catalog, actor: Actor, now: datetime
) -> None:
    uow.apps.add_many([app_state(row) for row in rows], now)
    uow.history.add_many(list(_history(rows, catalog, actor)))


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

    def from_csv(
        self, source: str | CsvSource, *, actor: Actor, now: datetime | None = None
    ) -> ImportResult:
        """Import every row of the file, or none (CsvImportError says why). `source`: the CSV
        text, or a way to open it from its start (it is read twice, as a stream)."""
        with self.store.unit_of_work() as uow:
            result = import_apps(
                uow, source, catalog=self.catalog, tz=self.tz, actor=actor, now=now or self.clock()
            )
            uow.commit()
        return result
