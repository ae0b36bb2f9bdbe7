"""Prices, daily proration and statements, in `Decimal`.

A day costs the monthly price divided by the days of that month. Each calendar day (in the billing
time zone) is billed at the highest daily rate in force at any moment of that day, so the day of an
upgrade is billed at the new plan and the day of a disable is still billed. A day's amount is
rounded half-up to cents when it is summed into a bill, so a bill is exactly the sum of its days.
"""

from __future__ import annotations

import calendar
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from core import errors
from core.domain import BillingMode, Plan, Status, add_months, month_bounds

__all__ = [
    "CENT",
    "Addon",
    "Catalog",
    "CostImpact",
    "DayCharge",
    "PlanPrice",
    "RateSegment",
    "Statement",
    "billing_window",
    "cents",
    "cost_impact",
    "format_money",
    "load_catalog",
    "statement",
]

CENT = Decimal("0.01")


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

    def describe_config(self, config: Mapping[str, str]) -> str:
        """'Message history retention: 90d, ...' or 'no add-ons'."""
        parts = [
            f"{self.addons[k].label}: {v}"
            for k, v in sorted(config.items())
            if k in self.addons and v != self.addons[k].default
        ]
        return ", ".join(parts) or "no add-ons"


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

    @property
    def billable(self) -> bool:
        """Whether days in this segment are charged (active, paid, current billing)."""
        return (
            self.status in (Status.ACTIVE, Status.SUSPENDED)
            and self.plan.paid
            and self.billing_mode is BillingMode.CURRENT
        )

    def daily_rate(self, days_in_month: int) -> Decimal:
        """The rate for one day of a month with that many days."""
        return self.monthly / days_in_month if self.billable else Decimal(0)

    @property
    def label(self) -> str:
        """'premium', 'standard (disabled)', 'standard (legacy billing)'."""
        if self.billing_mode is BillingMode.LEGACY:
            return f"{self.plan} (legacy billing)"
        return str(self.plan) if self.status is Status.ACTIVE else f"{self.plan} ({self.status})"


@dataclass(frozen=True)
class DayCharge:
    """One calendar day of a statement."""

    day: date
    label: str
    rate: Decimal
    amount: Decimal
    projected: bool


@dataclass(frozen=True)
class Statement:
    """An app's charges for one month, day by day; `total` is the sum of the days."""

    year: int
    month: int
    currency: str
    days: tuple[DayCharge, ...]

    @property
    def total(self) -> Decimal:
        """The month's bill (charged days plus the projection of the rest)."""
        return sum((d.amount for d in self.days), Decimal("0.00"))

    @property
    def to_date(self) -> Decimal:
        """The charges up to and including today."""
        return sum((d.amount for d in self.days if not d.projected), Decimal("0.00"))

    @property
    def projected(self) -> bool:
        """Whether some days are a projection (the month is not over)."""
        return any(d.projected for d in self.days)

    @property
    def bill_window(self) -> tuple[date, date]:
        """The days on which the bill for this month is issued."""
        return billing_window(self.year, self.month)


def billing_window(year: int, month: int) -> tuple[date, date]:
    """The bill for a month is issued on the 1st-3rd of the next month."""
    first = add_months(datetime(year, month, 1)).date()
    return first, first.replace(day=3)


def statement(
    segments: Sequence[RateSegment],
    *,
    year: int,
    month: int,
    tz: ZoneInfo,
    now: datetime,
    currency: str = "USD",
) -> Statement:
    """The month's statement from the plan history (segments in time order)."""
    start, end = month_bounds(year, month, tz)
    charges = _day_charges(segments, start, end, year, month, now.astimezone(tz).date())
    return Statement(year=year, month=month, currency=currency, days=tuple(charges))


def _day_charges(
    segments: Sequence[RateSegment],
    start: datetime,
    end: datetime,
    year: int,
    month: int,
    today: date,
) -> list[DayCharge]:
    """The charge of each day from `start` (a local midnight) to `end`, at its highest rate."""
    return [
        DayCharge(day=day, label=best.label, rate=rate, amount=amount, projected=day > today)
        for day, best, rate, amount in _days(segments, start, end, year, month)
    ]


def _days(
    segments: Sequence[RateSegment], start: datetime, end: datetime, year: int, month: int
) -> Iterator[tuple[date, RateSegment, Decimal, Decimal]]:
    """Each day from `start` to `end` with a segment in force: the day, the segment charged
    (the highest rate in force that day), its daily rate and the day's amount in cents."""
    for first, count, best, rate, amount in _runs(segments, start, end, year, month):
        for offset in range(count):
            yield first + timedelta(days=offset), best, rate, amount


def _runs(
    segments: Sequence[RateSegment], start: datetime, end: datetime, year: int, month: int
) -> Iterator[tuple[date, int, RateSegment, Decimal, Decimal]]:
    """The days of `_days`, consecutive days charged alike taken together: (first day, number
    of days, segment charged, daily rate, one day's amount). Days on which no segment starts
    are charged by the segment in force, so only the days with a start are looked at one by one.
    """
    days_in_month = calendar.monthrange(year, month)[1]
    ordered = sorted(segments, key=lambda s: s.start)
    rates: dict[int, tuple[Decimal, Decimal]] = {}  # per segment: (daily rate, in cents)
    zone = start.tzinfo

    def rate_of(segment: RateSegment) -> tuple[Decimal, Decimal]:
        known = rates.get(id(segment))
        if known is None:
            rate = segment.daily_rate(days_in_month)
            known = rates[id(segment)] = (rate, cents(rate))
        return known

    index = 0
    current: RateSegment | None = None
    day_start = start
    while day_start < end:
        day = day_start.date()
        day_end = datetime.combine(day + timedelta(days=1), day_start.timetz())
        while index < len(ordered) and ordered[index].start <= day_start:
            current = ordered[index]
            index += 1
        best = current
        look = index
        while look < len(ordered) and ordered[look].start < day_end:
            later = ordered[look]
            if best is None or rate_of(later)[0] > rate_of(best)[0]:
                best = later
            look += 1
        count = 1
        if look == index:  # nothing starts today: alike until the day the next segment starts
            until = min(ordered[index].start, end) if index < len(ordered) else end
            count = max(1, (until.astimezone(zone).date() - day).days)
        if best is not None:
            rate, amount = rate_of(best)
            yield day, count, best, rate, amount
        day_start = datetime.combine(day + timedelta(days=count), day_start.timetz())


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
    """This month's bill without and with `change` starting now.

    The days before today are the same either way, so only today and the rest of the month are
    charged a second time, with the change.
    """
    local = now.astimezone(tz)
    start, end = month_bounds(local.year, local.month, tz)
    today = local.date()
    before_total = unchanged = Decimal("0.00")
    for first, count, _, _, amount in _runs(segments, start, end, local.year, local.month):
        before_total += amount * count
        unchanged += amount * max(0, min(count, (today - first).days))
    today_start = datetime.combine(today, start.timetz())
    rest = _runs([*segments, change], today_start, end, local.year, local.month)
    after_total = unchanged + sum((amount * count for _, count, _, _, amount in rest), Decimal(0))
    current = max((s for s in segments if s.start <= now), key=lambda s: s.start, default=None)
    first, last = billing_window(local.year, local.month)
    return CostImpact(
        year=local.year,
        month=local.month,
        currency=currency,
        before_month_total=before_total,
        after_month_total=after_total,
        monthly_before=current.monthly if current and current.billable else Decimal(0),
        monthly_after=change.monthly if change.billable else Decimal(0),
        billed_from=first,
        billed_to=last,
    )
