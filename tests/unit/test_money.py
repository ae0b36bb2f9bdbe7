"""Prices, daily proration, statements and cost previews, in Decimal."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import errors
from core.domain import BillingMode, Plan, Status
from core.money import (
    Catalog,
    RateSegment,
    billing_window,
    cents,
    cost_impact,
    format_money,
    load_catalog,
    statement,
)
from tests.conftest import SHANGHAI, utc

PRICES = {Plan.DEVELOPER: Decimal(0), Plan.STANDARD: Decimal(399), Plan.PREMIUM: Decimal(699)}


def seg(
    start: datetime,
    plan: Plan,
    status: Status = Status.ACTIVE,
    mode: BillingMode = BillingMode.CURRENT,
    monthly: Decimal | None = None,
) -> RateSegment:
    return RateSegment(
        start=start,
        plan=plan,
        status=status,
        billing_mode=mode,
        monthly=PRICES[plan] if monthly is None else monthly,
    )


def local(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SHANGHAI)


# --- the catalog -----------------------------------------------------------------------------


def test_default_plan_prices(catalog: Catalog) -> None:
    assert catalog.currency == "USD"
    assert {p: catalog.plans[p].monthly for p in Plan} == PRICES


def test_default_addon_prices(catalog: Catalog) -> None:
    options = {name: dict(addon.options) for name, addon in catalog.addons.items()}
    assert options["history_retention"] == {
        "plan": Decimal(0),
        "90d": Decimal(99),
        "180d": Decimal(199),
        "365d": Decimal(299),
    }
    assert options["group_members"] == {
        "plan": Decimal(0),
        "3000": Decimal(99),
        "6000": Decimal(199),
    }
    # the provider has no "MAU pack": it bills extra monthly active users after the month
    assert set(options) == {"history_retention", "group_members"}
    assert all(
        a.default in a.options and a.options[a.default] == 0 for a in catalog.addons.values()
    )


def test_plan_limits_worth_showing(catalog: Catalog) -> None:
    assert catalog.plans[Plan.DEVELOPER].limits["monthly_active_users"] == 100
    assert catalog.plans[Plan.STANDARD].limits["members_per_group"] == 200
    assert catalog.plans[Plan.PREMIUM].limits["groups_per_user"] == 1000
    assert catalog.plans[Plan.PREMIUM].limits["history_days"] == 30


def test_monthly_price_adds_the_addons_of_a_paid_plan(catalog: Catalog) -> None:
    config = {"history_retention": "90d", "group_members": "6000"}
    assert catalog.monthly_price(Plan.PREMIUM, config) == Decimal(699 + 99 + 199)
    assert catalog.monthly_price(Plan.STANDARD, {}) == Decimal(399)
    assert catalog.monthly_price(Plan.DEVELOPER, config) == 0  # developer is free


def test_check_addons_refuses_unknown_addons_and_values(catalog: Catalog) -> None:
    assert catalog.check_addons({"history_retention": "365d"}) == {"history_retention": "365d"}
    with pytest.raises(errors.UnknownAddon) as unknown:
        catalog.check_addons({"colour": "blue"})
    assert "`history_retention`" in unknown.value.message
    with pytest.raises(errors.InvalidAddonValue) as invalid:
        catalog.check_addons({"history_retention": "2y"})
    assert "`90d`" in invalid.value.message


def test_describe_config_names_the_non_default_addons(catalog: Catalog) -> None:
    assert catalog.describe_config({}) == "no add-ons"
    assert catalog.describe_config({"history_retention": "plan"}) == "no add-ons"
    assert catalog.describe_config({"history_retention": "90d"}) == (
        "Message history retention: 90d"
    )


def test_prices_are_decimal_everywhere(catalog: Catalog) -> None:
    assert all(isinstance(p.monthly, Decimal) for p in catalog.plans.values())
    assert all(isinstance(v, Decimal) for a in catalog.addons.values() for v in a.options.values())
    bill = statement(
        [seg(utc(2026, 10, 1), Plan.PREMIUM)],
        year=2026,
        month=11,
        tz=SHANGHAI,
        now=utc(2026, 11, 5),
    )
    assert isinstance(bill.total, Decimal) and isinstance(bill.to_date, Decimal)
    assert all(isinstance(d.rate, Decimal) and isinstance(d.amount, Decimal) for d in bill.days)


def test_a_custom_catalog_file_changes_the_prices(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(
        'currency = "EUR"\n'
        '[plans.developer]\nmonthly = "0"\n'
        '[plans.standard]\nmonthly = "350.50"\n'
        '[plans.premium]\nmonthly = "650"\n'
        '[addons.history_retention]\ndefault = "plan"\n'
        '[addons.history_retention.options]\nplan = "0"\n90d = "10.25"\n'
    )
    custom = load_catalog(path)
    assert custom.currency == "EUR"
    assert custom.monthly_price(Plan.STANDARD, {"history_retention": "90d"}) == Decimal("360.75")
    assert format_money(Decimal("1234.5"), "EUR") == "1,234.50 EUR"


MALFORMED = {
    "syntax": "plans = [",
    "missing premium": '[plans.developer]\nmonthly = "0"\n[plans.standard]\nmonthly = "1"\n',
    "price not a number": (
        '[plans.developer]\nmonthly = "0"\n[plans.standard]\nmonthly = "lots"\n'
        '[plans.premium]\nmonthly = "2"\n'
    ),
    "price missing": (
        '[plans.developer]\nmonthly = "0"\n[plans.standard]\nlabel = "x"\n'
        '[plans.premium]\nmonthly = "2"\n'
    ),
    "negative price": (
        '[plans.developer]\nmonthly = "0"\n[plans.standard]\nmonthly = "-399"\n'
        '[plans.premium]\nmonthly = "2"\n'
    ),
    "unknown plan": (
        '[plans.developer]\nmonthly = "0"\n[plans.standard]\nmonthly = "1"\n'
        '[plans.premium]\nmonthly = "2"\n[plans.gold]\nmonthly = "3"\n'
    ),
    "plans not a table": 'plans = "standard"\n',
    "options not a table": (
        '[plans.developer]\nmonthly = "0"\n[plans.standard]\nmonthly = "1"\n'
        '[plans.premium]\nmonthly = "2"\n[addons.x]\ndefault = "a"\noptions = "a"\n'
    ),
    "default not an option": (
        '[plans.developer]\nmonthly = "0"\n[plans.standard]\nmonthly = "1"\n'
        '[plans.premium]\nmonthly = "2"\n[addons.x]\ndefault = "b"\n[addons.x.options]\na = "1"\n'
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_catalog_gives_a_clear_value_error(case: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(MALFORMED[case])
    with pytest.raises(ValueError) as refused:
        load_catalog(path)
    text = str(refused.value)
    assert "catalog" in text or "add-on" in text


# --- proration -------------------------------------------------------------------------------


def test_premium_for_five_days_of_a_30_day_month() -> None:
    # Upgraded to premium at noon on 26 November (UTC+8): days 26-30 billed at 699/30 each.
    history = [seg(local(2026, 11, 1), Plan.DEVELOPER), seg(local(2026, 11, 26, 12), Plan.PREMIUM)]
    bill = statement(history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 11, 26, 12))
    daily = Decimal(699) / 30
    assert [d.rate for d in bill.days[25:]] == [daily] * 5
    assert all(d.amount == Decimal("23.30") for d in bill.days[25:])
    assert bill.total == Decimal("116.50") == 5 * cents(daily)
    assert bill.days[24].amount == 0 and bill.days[24].label == "developer"


def test_a_day_in_february_of_a_leap_year_costs_a_29th() -> None:
    bill = statement(
        [seg(local(2028, 1, 1), Plan.STANDARD)],
        year=2028,
        month=2,
        tz=SHANGHAI,
        now=local(2028, 3, 5),
    )
    assert len(bill.days) == 29
    assert all(d.rate == Decimal(399) / 29 for d in bill.days)
    assert bill.days[0].amount == Decimal("13.76")
    assert bill.total == 29 * Decimal("13.76")
    assert not bill.projected


def test_the_day_boundary_is_midnight_in_the_billing_zone() -> None:
    # 2026-11-09T16:30Z is already 10 November in UTC+8: 9 November stays on developer.
    late = [seg(local(2026, 11, 1), Plan.DEVELOPER), seg(utc(2026, 11, 9, 16, 30), Plan.PREMIUM)]
    bill = statement(late, year=2026, month=11, tz=SHANGHAI, now=utc(2026, 11, 30))
    by_day = {d.day: d for d in bill.days}
    assert by_day[date(2026, 11, 9)].amount == 0
    assert by_day[date(2026, 11, 10)].amount == Decimal("23.30")
    # An hour earlier it is still 9 November in UTC+8, which is then billed at premium.
    early = [seg(local(2026, 11, 1), Plan.DEVELOPER), seg(utc(2026, 11, 9, 15, 30), Plan.PREMIUM)]
    bill = statement(early, year=2026, month=11, tz=SHANGHAI, now=utc(2026, 11, 30))
    assert {d.day: d for d in bill.days}[date(2026, 11, 9)].amount == Decimal("23.30")


def test_the_month_is_the_billing_zones_month() -> None:
    bill = statement(
        [seg(utc(2026, 1, 1), Plan.STANDARD)], year=2026, month=11, tz=SHANGHAI, now=utc(2027, 1, 1)
    )
    assert bill.days[0].day == date(2026, 11, 1) and bill.days[-1].day == date(2026, 11, 30)
    assert len(bill.days) == 30


def test_the_day_of_a_disable_is_still_billed_and_the_next_is_free() -> None:
    history = [
        seg(local(2026, 10, 1), Plan.STANDARD),
        seg(local(2026, 11, 20, 9), Plan.STANDARD, Status.DISABLED),
    ]
    bill = statement(history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 12, 2))
    by_day = {d.day.day: d.amount for d in bill.days}
    assert by_day[20] == Decimal("13.30")
    assert by_day[21] == 0
    assert bill.total == 20 * Decimal("13.30")


def test_the_day_of_a_re_enable_is_billed() -> None:
    history = [
        seg(local(2026, 10, 1), Plan.STANDARD),
        seg(local(2026, 10, 20), Plan.STANDARD, Status.DISABLED),
        seg(local(2026, 11, 15, 23, 59), Plan.STANDARD),
    ]
    bill = statement(history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 12, 2))
    by_day = {d.day.day: d.amount for d in bill.days}
    assert by_day[14] == 0
    assert by_day[15] == Decimal("13.30")
    assert bill.total == 16 * Decimal("13.30")


def test_a_day_with_a_downgrade_is_billed_at_the_higher_edition() -> None:
    history = [
        seg(local(2026, 10, 1), Plan.PREMIUM),
        seg(local(2026, 11, 15, 8), Plan.STANDARD),
    ]
    bill = statement(history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 12, 2))
    by_day = {d.day.day: d for d in bill.days}
    assert by_day[15].amount == Decimal("23.30") and by_day[15].label == "premium"
    assert by_day[16].amount == Decimal("13.30") and by_day[16].label == "standard"


def test_legacy_billing_is_not_charged_by_planbot() -> None:
    history = [seg(local(2020, 1, 1), Plan.PREMIUM, mode=BillingMode.LEGACY)]
    bill = statement(history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 12, 2))
    assert bill.total == 0
    assert bill.days[0].label == "premium (legacy billing)"


def test_days_before_the_app_existed_are_not_on_the_statement() -> None:
    history = [seg(local(2026, 11, 21, 15), Plan.STANDARD)]
    bill = statement(history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 12, 2))
    assert [d.day.day for d in bill.days] == list(range(21, 31))


def test_the_current_month_shows_charges_to_date_and_the_projection() -> None:
    history = [seg(local(2026, 10, 1), Plan.PREMIUM)]
    bill = statement(history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 11, 10, 12))
    assert bill.projected
    assert bill.to_date == 10 * Decimal("23.30")  # today included
    assert bill.total == 30 * Decimal("23.30")
    assert [d.projected for d in bill.days] == [False] * 10 + [True] * 20


def test_the_bill_is_issued_on_the_first_to_third_of_the_next_month() -> None:
    assert billing_window(2026, 11) == (date(2026, 12, 1), date(2026, 12, 3))
    assert billing_window(2026, 12) == (date(2027, 1, 1), date(2027, 1, 3))
    bill = statement([], year=2028, month=2, tz=SHANGHAI, now=local(2028, 2, 1))
    assert bill.bill_window == (date(2028, 3, 1), date(2028, 3, 3))
    assert bill.total == 0 and bill.days == ()


def test_cents_round_half_up_and_money_is_formatted() -> None:
    assert cents(Decimal("0.125")) == Decimal("0.13")
    assert cents(Decimal("0.135")) == Decimal("0.14")
    assert cents(Decimal("23.299999")) == Decimal("23.30")
    assert format_money(Decimal("1234.5")) == "$1,234.50"
    assert format_money(Decimal("0")) == "$0.00"


def test_cost_of_an_upgrade_for_the_rest_of_the_month() -> None:
    now = local(2026, 11, 26, 12)
    history = [seg(local(2026, 11, 1), Plan.DEVELOPER)]
    impact = cost_impact(history, seg(now, Plan.PREMIUM), tz=SHANGHAI, now=now)
    assert (impact.year, impact.month) == (2026, 11)
    assert impact.before_month_total == 0
    assert impact.after_month_total == impact.delta == Decimal("116.50")
    assert (impact.monthly_before, impact.monthly_after) == (0, Decimal(699))
    assert (impact.billed_from, impact.billed_to) == (date(2026, 12, 1), date(2026, 12, 3))


def test_cost_of_a_disable_saves_the_days_after_today() -> None:
    now = local(2026, 11, 10, 12)
    history = [seg(local(2026, 10, 1), Plan.STANDARD)]
    impact = cost_impact(history, seg(now, Plan.STANDARD, Status.DISABLED), tz=SHANGHAI, now=now)
    assert impact.delta == -20 * Decimal("13.30")
    assert impact.monthly_after == 0


# --- properties ------------------------------------------------------------------------------

MONTHS = st.tuples(st.integers(2024, 2030), st.integers(1, 12))
MONTHLY = st.sampled_from([Decimal(0), Decimal(399), Decimal(699), Decimal(798), Decimal("997.5")])
SEGMENT_KIND = st.tuples(
    st.sampled_from(list(Plan)),
    st.sampled_from(list(Status)),
    st.sampled_from(list(BillingMode)),
    MONTHLY,
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, int, list[RateSegment]]:
    """A month and a plan history around it: distinct start moments, random states."""
    year, month = draw(MONTHS)
    first = datetime(year, month, 1, tzinfo=SHANGHAI) - timedelta(days=40)
    changes = draw(
        st.lists(
            st.tuples(st.integers(0, 80 * 24 * 60), SEGMENT_KIND),
            max_size=10,
            unique_by=lambda change: change[0],
        )
    )
    segments = [seg(first + timedelta(minutes=m), *kind) for m, kind in sorted(changes)]
    return year, month, segments


def oracle_days(segments: list[RateSegment], year: int, month: int) -> dict[date, Decimal]:
    """Each day's rate: the highest of the segments in force at any moment of it."""
    days_in_month = calendar.monthrange(year, month)[1]
    rates: dict[date, Decimal] = {}
    for day in range(1, days_in_month + 1):
        start = datetime(year, month, day, tzinfo=SHANGHAI)
        end = start + timedelta(days=1)
        in_force = [
            s.daily_rate(days_in_month)
            for i, s in enumerate(segments)
            if s.start < end and (i + 1 == len(segments) or segments[i + 1].start > start)
        ]
        if in_force:
            rates[start.date()] = max(in_force)
    return rates


@settings(max_examples=200, deadline=None)
@given(histories(), st.integers(0, 60 * 24))
def test_a_statement_is_the_sum_of_its_days_each_at_the_highest_rate_in_force(
    history: tuple[int, int, list[RateSegment]], hours_into_month: int
) -> None:
    year, month, segments = history
    now = datetime(year, month, 1, tzinfo=SHANGHAI) + timedelta(hours=hours_into_month)
    bill = statement(segments, year=year, month=month, tz=SHANGHAI, now=now)
    expected = oracle_days(segments, year, month)
    assert {d.day: d.rate for d in bill.days} == expected
    assert [d.day for d in bill.days] == sorted(expected)  # in order, each day once
    assert bill.total == sum((cents(r) for r in expected.values()), Decimal(0))
    assert bill.total == sum((d.amount for d in bill.days), Decimal(0))
    assert bill.to_date + sum(d.amount for d in bill.days if d.projected) == bill.total
    assert all(d.amount == cents(d.rate) for d in bill.days)
    assert all(d.rate >= 0 for d in bill.days)


@settings(max_examples=200, deadline=None)
@given(histories(), SEGMENT_KIND, st.integers(0, 27 * 24 * 60))
def test_cost_impact_delta_is_the_bill_with_the_change_minus_the_bill_without(
    history: tuple[int, int, list[RateSegment]],
    kind: tuple[Plan, Status, BillingMode, Decimal],
    minutes_into_month: int,
) -> None:
    year, month, segments = history
    now = datetime(year, month, 1, tzinfo=SHANGHAI) + timedelta(minutes=minutes_into_month)
    past = [s for s in segments if s.start < now]
    change = seg(now, *kind)
    impact = cost_impact(past, change, tz=SHANGHAI, now=now)
    before = sum((cents(r) for r in oracle_days(past, year, month).values()), Decimal(0))
    after = sum((cents(r) for r in oracle_days([*past, change], year, month).values()), Decimal(0))
    assert (impact.before_month_total, impact.after_month_total) == (before, after)
    assert impact.delta == after - before
    assert impact.monthly_after == (change.monthly if change.billable else 0)
