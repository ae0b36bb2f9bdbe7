"""Prices, daily proration and statements, in `Decimal`.

A day costs the monthly price divided by the days of that month. Each calendar day (in the billing
time zone) is billed at the highest daily rate in force at any moment of that day, so the day of an
upgrade is billed at the new plan and the day of a disable is still billed.

A month's charge is the sum of those exact daily costs, rounded once, half-up, to the cent: a plan
(and add-ons) held all month costs exactly its monthly price. The lines of a bill (runs of days
charged alike, and the days in them) share that total out by largest remainder, so they add up to
it exactly. A preview's cost is the month's total with the change minus the total without it,
both from `statement`, so a preview and the bill that follows agree to the cent. A month's price
/ 31 has no finite decimal, so the sums are kept as whole multiples of 1/(days in the month)
(price x days x 100, in cents) and divided only once, exactly, when rounded.
"""

from __future__ import annotations

import calendar
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core import errors
from core.domain import BillingMode, Plan, Status, add_months, month_bounds

__all__ = [
    "BILL_MONTHS_AHEAD",
    "CENT",
    "Addon",
    "Catalog",
    "ChargeRun",
    "CostImpact",
    "DayCharge",
    "PlanPrice",
    "RateSegment",
    "Statement",
    "bill_month",
    "billing_window",
    "cents",
    "cost_impact",
    "format_money",
    "load_catalog",
    "statement",
]

CENT = Decimal("0.01")
#: how many months ahead a bill may be asked for (it says the month has not started)
BILL_MONTHS_AHEAD = 12
_ZERO = Decimal(0)


def cents(amount: Decimal) -> Decimal:
    """The amount rounded half-up to cents."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal, currency: str = "USD") -> str:
    """'$1,234.50' for USD, '1,234.50 EUR' otherwise."""
    text = f"{cents(amount):,.2f}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


@dataclass(frozen=True)
class PlanPrice:
    """A plan's monthly price and the limits worth showing."""

    plan: Plan
    label: str
    monthly: Decimal
    limits: Mapping[str, int]


@dataclass(frozen=True)
class Addon:
    """An add-on feature: its options and their monthly prices."""

    name: str
    label: str
    description: str
    default: str
    options: Mapping[str, Decimal]
    #: per option, the plan limits it raises (`{"90d": {"history_days": 90}}`)
    limits: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """The plan catalog: plan prices and add-ons."""

    currency: str
    plans: Mapping[Plan, PlanPrice]
    addons: Mapping[str, Addon]

    def monthly_price(self, plan: Plan, config: Mapping[str, str]) -> Decimal:
        """The monthly price of a plan with that add-on configuration."""
        total = self.plans[plan].monthly
        if plan.paid:
            for name, value in config.items():
                addon = self.addons.get(name)
                if addon is not None:
                    total += addon.options.get(value, Decimal(0))
        return total

    def check_addons(self, addons: Mapping[str, str]) -> dict[str, str]:
        """The add-on choices, validated against the catalog (raises on unknown ones)."""
        checked: dict[str, str] = {}
        for name, value in addons.items():
            addon = self.addons.get(name)
            if addon is None:
                raise errors.UnknownAddon(name, sorted(self.addons))
            if value not in addon.options:
                raise errors.InvalidAddonValue(name, value, list(addon.options))
            checked[name] = value
        return checked

    def limits(self, plan: Plan, config: Mapping[str, str]) -> dict[str, int]:
        """The plan's limits worth showing, raised by the add-ons a paid app has."""
        found = dict(self.plans[plan].limits)
        if plan.paid:
            for name, value in config.items():
                addon = self.addons.get(name)
                raised = addon.limits.get(value, {}) if addon is not None else {}
                for key, limit in raised.items():
                    found[key] = max(found.get(key, 0), limit)
        return found

    def describe_config(self, config: Mapping[str, str]) -> str:
        """'Message history retention: 90d, ...' or 'no add-ons'."""
        return ", ".join(self.addon_labels(config)) or "no add-ons"

    def addon_labels(self, config: Mapping[str, str]) -> tuple[str, ...]:
        """('Message history retention: 90d', ...): the add-ons not at their default."""
        return tuple(
            f"{self.addons[k].label}: {v}"
            for k, v in sorted(config.items())
            if k in self.addons and v != self.addons[k].default
        )


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog from a TOML file, or the one shipped with the package."""
    try:
        if path is None:
            text = resources.files("core").joinpath("catalog.toml").read_text("utf-8")
            raw = tomllib.loads(text)
        else:
            with open(path, "rb") as handle:
                raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"plan catalog {path or '(built-in)'} is not valid TOML: {exc}") from exc
    try:
        plans = {
            Plan(name): PlanPrice(
                plan=Plan(name),
                label=str(spec.get("label", name)),
                monthly=Decimal(str(spec["monthly"])),
                limits={k: int(v) for k, v in spec.items() if isinstance(v, int)},
            )
            for name, spec in raw["plans"].items()
        }
        addons = {
            name: Addon(
                name=name,
                label=str(spec.get("label", name)),
                description=str(spec.get("description", "")),
                default=str(spec["default"]),
                options={str(k): Decimal(str(v)) for k, v in spec["options"].items()},
                limits={
                    str(option): {str(k): int(v) for k, v in raised.items()}
                    for option, raised in spec.get("limits", {}).items()
                },
            )
            for name, spec in raw.get("addons", {}).items()
        }
    except (KeyError, ValueError, ArithmeticError, AttributeError, TypeError) as exc:
        raise ValueError(f"plan catalog {path or '(built-in)'} is malformed: {exc!r}") from exc
    prices = [p.monthly for p in plans.values()]
    prices += [v for a in addons.values() for v in a.options.values()]
    if any(not price.is_finite() or price < 0 for price in prices):
        raise ValueError(f"plan catalog {path or '(built-in)'} has a negative or invalid price")
    missing = set(Plan) - set(plans)
    if missing:
        raise ValueError(f"plan catalog {path or '(built-in)'} lacks plans: {sorted(missing)}")
    for addon in addons.values():
        if addon.default not in addon.options:
            raise ValueError(f"add-on {addon.name}: default {addon.default!r} is not an option")
    return Catalog(currency=str(raw.get("currency", "USD")), plans=plans, addons=addons)


@dataclass(frozen=True)
class RateSegment:
    """From `start` on (until the next segment), the app is billed at `monthly` a month."""

    start: datetime
    plan: Plan
    status: Status
    billing_mode: BillingMode
    monthly: Decimal
    #: the add-on configuration in force, as sorted (name, value) pairs
    config: tuple[tuple[str, str], ...] = ()

    @property
    def billable(self) -> bool:
        """Whether days in this segment are charged (active, paid, current billing)."""
        return (
            self.status in (Status.ACTIVE, Status.SUSPENDED)
            and self.plan.paid
            and self.billing_mode is BillingMode.CURRENT
        )

    @property
    def charge(self) -> Decimal:
        """The monthly price charged while this segment is in force (0 when not billable)."""
        return self.monthly if self.billable else Decimal(0)

    def daily_rate(self, days_in_month: int) -> Decimal:
        """The rate for one day of a month with that many days."""
        return self.charge / days_in_month

    @property
    def label(self) -> str:
        """'premium', 'standard (disabled)', 'standard (legacy billing)'."""
        if self.billing_mode is BillingMode.LEGACY:
            return f"{self.plan} (legacy billing)"
        return str(self.plan) if self.status is Status.ACTIVE else f"{self.plan} ({self.status})"


@dataclass(frozen=True)
class DayCharge:
    """One calendar day of a statement: its share of its run's amount."""

    day: date
    label: str
    addons: tuple[str, ...]
    rate: Decimal
    amount: Decimal
    projected: bool


@dataclass(frozen=True)
class ChargeRun:
    """Consecutive days of a statement charged alike: one line of a bill.

    `amount` is the run's share of the month's total, allocated by largest remainder, so the
    runs of a statement add up to its total exactly. A run is either all charged (up to and
    including today) or all projected.
    """

    first: date
    days: int
    label: str
    #: the add-ons billed with the plan, as the catalog describes them (none when at default)
    addons: tuple[str, ...]
    #: the daily rate (monthly price / days in the month), not rounded to cents
    rate: Decimal
    amount: Decimal
    projected: bool

    @property
    def last(self) -> date:
        """The run's last day."""
        return self.first + timedelta(days=self.days - 1)

    def each_day(self) -> Iterator[DayCharge]:
        """The run's days, its amount shared out by whole cents (the earlier days first)."""
        whole, extra = divmod(_to_cents(self.amount), self.days)
        for offset in range(self.days):
            yield DayCharge(
                day=self.first + timedelta(days=offset),
                label=self.label,
                addons=self.addons,
                rate=self.rate,
                amount=_from_cents(whole + (1 if offset < extra else 0)),
                projected=self.projected,
            )


@dataclass(frozen=True)
class Statement:
    """An app's charges for one month, as runs of days charged alike.

    `total` is the sum of the month's exact daily costs, rounded once, half-up, to the cent;
    the runs (and the days) add up to it exactly.
    """

    year: int
    month: int
    currency: str
    runs: tuple[ChargeRun, ...]
    total: Decimal
    #: today, in the billing time zone, when the statement was made
    today: date
    #: the day the app was created, in the billing time zone (None when not known)
    created_on: date | None = None

    @property
    def days(self) -> tuple[DayCharge, ...]:
        """The statement day by day (each run's amount shared out over its days)."""
        return tuple(day for run in self.runs for day in run.each_day())

    @property
    def to_date(self) -> Decimal:
        """The charges up to and including today (the lines that are not projected)."""
        return sum((r.amount for r in self.runs if not r.projected), Decimal("0.00"))

    @property
    def projected(self) -> bool:
        """Whether some days are a projection (the month is not over)."""
        return any(r.projected for r in self.runs)

    @property
    def first_day(self) -> date:
        """The month's first day."""
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        """The month's last day."""
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def not_started(self) -> bool:
        """Whether the month is still to come."""
        return self.today < self.first_day

    @property
    def before_app(self) -> bool:
        """Whether the month ended before the app was created."""
        return self.created_on is not None and self.created_on > self.last_day

    @property
    def bill_window(self) -> tuple[date, date]:
        """The days on which the bill for this month is issued."""
        return billing_window(self.year, self.month)


def billing_window(year: int, month: int) -> tuple[date, date]:
    """The bill for a month is issued on the 1st-3rd of the next month."""
    first = add_months(datetime(year, month, 1)).date()
    return first, first.replace(day=3)


def bill_month(
    year: int | None,
    month: int | None,
    *,
    now: datetime,
    tz: ZoneInfo,
    created: datetime | None = None,
) -> tuple[int, int]:
    """The month a bill is asked for (this month when not given), or a refusal when no bill
    can exist for it: not a month, before 1970, or more than `BILL_MONTHS_AHEAD` ahead. The
    refusal names the months one can ask for (from the app's creation, when `created` is given;
    a month before it is answered, not refused: it says when the app was created)."""
    local = now.astimezone(tz)
    year = local.year if year is None else year
    month = local.month if month is None else month
    latest = add_months(datetime(local.year, local.month, 1), BILL_MONTHS_AHEAD)
    first = created.astimezone(tz) if created is not None else None
    earliest = f"{first:%Y-%m}" if first is not None else "1970-01"
    span: dict[str, Any] = {
        "earliest": earliest,
        "created": first is not None,
        "latest": f"{latest:%Y-%m}",
    }
    if not 1 <= month <= 12:
        raise errors.InvalidBillMonth(year, month, "a month is 01 to 12", problem="month", **span)
    if year < 1970:
        raise errors.InvalidBillMonth(
            year, month, "bills start in 1970", problem="before_1970", **span
        )
    if (year, month) > (latest.year, latest.month):
        raise errors.InvalidBillMonth(
            year,
            month,
            f"that is more than {BILL_MONTHS_AHEAD} months ahead ({latest:%Y-%m} at the latest)",
            problem="ahead",
            ahead=BILL_MONTHS_AHEAD,
            **span,
        )
    return year, month


def statement(
    segments: Sequence[RateSegment],
    *,
    year: int,
    month: int,
    tz: ZoneInfo,
    now: datetime,
    currency: str = "USD",
    catalog: Catalog | None = None,
    created: datetime | None = None,
) -> Statement:
    """The month's statement from the plan history (segments in time order).

    Each day is charged at the highest rate in force at any moment of it; the month's total is
    the sum of those exact daily costs rounded once, half-up, to the cent. The days are grouped
    into runs charged alike (split where the charged days end and the projection starts), and
    the total is shared out over the runs by largest remainder. `catalog` names the add-ons of
    each run; `created` is the app's creation, for `created_on`.
    """
    start, end = month_bounds(year, month, tz)
    days_in_month = calendar.monthrange(year, month)[1]
    today = now.astimezone(tz).date()
    lines: list[tuple[date, int, str, tuple[str, ...], Decimal, bool]] = []
    for first, count, best in _runs(segments, start, end):
        addons = _addons(best, catalog)
        charged = max(0, min(count, (today - first).days + 1))
        for piece_first, piece_count, projected in (
            (first, charged, False),
            (first + timedelta(days=charged), count - charged, True),
        ):
            if piece_count == 0:
                continue
            previous = lines[-1] if lines else None
            if (
                previous is not None
                and previous[0] + timedelta(days=previous[1]) == piece_first
                and previous[2:] == (best.label, addons, best.charge, projected)
            ):
                lines[-1] = (previous[0], previous[1] + piece_count, *previous[2:])
            else:
                lines.append((piece_first, piece_count, best.label, addons, best.charge, projected))
    cents_times_days = [charge * count * 100 for _, count, _, _, charge, _ in lines]
    amounts, total = _allocate(cents_times_days, days_in_month)
    runs = tuple(
        ChargeRun(
            first=first,
            days=count,
            label=label,
            addons=addons,
            rate=charge / days_in_month,
            amount=_from_cents(amount),
            projected=projected,
        )
        for (first, count, label, addons, charge, projected), amount in zip(
            lines, amounts, strict=True
        )
    )
    return Statement(
        year=year,
        month=month,
        currency=currency,
        runs=runs,
        total=_from_cents(total),
        today=today,
        created_on=created.astimezone(tz).date() if created is not None else None,
    )


def _addons(segment: RateSegment, catalog: Catalog | None) -> tuple[str, ...]:
    """The add-ons charged with the segment's plan, as the catalog names them."""
    if catalog is None or not segment.billable:
        return ()
    return catalog.addon_labels(dict(segment.config))


def _allocate(numerators: Sequence[Decimal], divisor: int) -> tuple[list[int], int]:
    """Whole amounts for the shares `numerator / divisor` (none negative) that add up to the sum
    of the shares rounded once, half-up: each share gets its whole part, and the units left go
    to the largest remainders (the earlier share first among equal ones).

    Every share has the same divisor, so whole parts and remainders are exact `Decimal`
    operations (a product of prices and day counts has finitely many digits), and so is the
    comparison of remainders: nothing is rounded but the total.
    """
    total = _round_once(sum(numerators, _ZERO), divisor)
    parts = [divmod(numerator, divisor) for numerator in numerators]
    amounts = [int(whole) for whole, _ in parts]
    order = sorted(range(len(parts)), key=lambda i: (-parts[i][1], i))
    for index in order[: total - sum(amounts)]:
        amounts[index] += 1
    return amounts, total


def _round_once(numerator: Decimal, divisor: int) -> int:
    """`numerator / divisor` (not negative) rounded half-up to a whole number, exactly."""
    whole, rest = divmod(numerator, divisor)
    return int(whole) + (1 if 2 * rest >= divisor else 0)


def _to_cents(amount: Decimal) -> int:
    return int(amount.scaleb(2))


def _from_cents(count: int) -> Decimal:
    return Decimal(count).scaleb(-2)


def _runs(
    segments: Sequence[RateSegment], start: datetime, end: datetime
) -> Iterator[tuple[date, int, RateSegment]]:
    """The days from `start` (a local midnight) to `end` with a segment in force, consecutive
    days charged by the same segment taken together: (first day, number of days, the segment
    charged, the one with the highest rate in force at any moment of each day). Days on which
    no segment starts are charged by the segment in force, so only the days with a start are
    looked at one by one."""
    ordered = sorted(segments, key=lambda s: s.start)
    charges = [s.charge for s in ordered]
    zone = start.tzinfo
    index = 0
    current = -1  # the index of the segment in force at the start of the day
    day_start = start
    while day_start < end:
        day = day_start.date()
        day_end = datetime.combine(day + timedelta(days=1), day_start.timetz())
        while index < len(ordered) and ordered[index].start <= day_start:
            current = index
            index += 1
        best = current
        look = index
        while look < len(ordered) and ordered[look].start < day_end:
            if best < 0 or charges[look] > charges[best]:
                best = look
            look += 1
        count = 1
        if look == index:  # nothing starts today: alike until the day the next segment starts
            until = min(ordered[index].start, end) if index < len(ordered) else end
            count = max(1, (until.astimezone(zone).date() - day).days)
        if best >= 0:
            yield day, count, ordered[best]
        day_start = datetime.combine(day + timedelta(days=count), day_start.timetz())


def _month_total(
    segments: Sequence[RateSegment], *, year: int, month: int, tz: ZoneInfo
) -> Decimal:
    """`statement(...).total` without the lines: the month's exact daily costs, summed and
    rounded once by `_round_once`, as `statement` does."""
    start, end = month_bounds(year, month, tz)
    numerator = sum((best.charge * count for _, count, best in _runs(segments, start, end)), _ZERO)
    return _from_cents(_round_once(numerator * 100, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class CostImpact:
    """What a change does to this month's bill, and the new monthly price."""

    year: int
    month: int
    currency: str
    before_month_total: Decimal
    after_month_total: Decimal
    monthly_before: Decimal
    monthly_after: Decimal
    billed_from: date
    billed_to: date

    @property
    def delta(self) -> Decimal:
        """The change to this month's bill."""
        return self.after_month_total - self.before_month_total


def cost_impact(
    segments: Sequence[RateSegment],
    change: RateSegment,
    *,
    tz: ZoneInfo,
    now: datetime,
    currency: str = "USD",
) -> CostImpact:
    """This month's bill without and with `change` starting now: the totals `statement` gives
    for the history as it is and with the change, so a preview and the bill always agree."""
    local = now.astimezone(tz)
    before = _month_total(segments, year=local.year, month=local.month, tz=tz)
    after = _month_total([*segments, change], year=local.year, month=local.month, tz=tz)
    current = max((s for s in segments if s.start <= now), key=lambda s: s.start, default=None)
    first, last = billing_window(local.year, local.month)
    return CostImpact(
        year=local.year,
        month=local.month,
        currency=currency,
        before_month_total=before,
        after_month_total=after,
        monthly_before=current.charge if current else Decimal(0),
        monthly_after=change.charge,
        billed_from=first,
        billed_to=last,
    )
