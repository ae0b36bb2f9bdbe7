"""Prices, daily proration, statements and cost previews, in Decimal."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import errors
from core.domain import BillingMode, Plan, Status
from core.money import (
    Catalog,
    RateSegment,
    bill_month,
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
    config: tuple[tuple[str, str], ...] = (),
) -> RateSegment:
    return RateSegment(
        start=start,
        plan=plan,
        status=status,
        billing_mode=mode,
        monthly=PRICES[plan] if monthly is None else monthly,
        config=config,
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
    # 399/29 = 13.7586...: rounding each day would make 29 x 13.76 = 399.04; the month is 399.00,
    # shared out as 25 days of 13.76 and 4 of 13.75.
    assert bill.total == Decimal("399.00")
    assert sorted({d.amount for d in bill.days}) == [Decimal("13.75"), Decimal("13.76")]
    assert sum(d.amount for d in bill.days) == bill.total
    assert not bill.projected


@pytest.mark.parametrize(
    ("year", "month", "plan", "monthly"),
    [
        (2027, 3, Plan.PREMIUM, Decimal(699)),  # 699/31 a day, each rounded: $699.05
        (2026, 10, Plan.STANDARD, Decimal(399)),  # 399/31 a day, each rounded: $398.97
        (2028, 2, Plan.PREMIUM, Decimal(699 + 99 + 199)),  # with add-ons, in 29 days
        (2027, 2, Plan.STANDARD, Decimal("997.5")),
    ],
)
def test_a_plan_held_all_month_costs_exactly_its_monthly_price(
    year: int, month: int, plan: Plan, monthly: Decimal
) -> None:
    history = [seg(local(2025, 1, 1), plan, monthly=monthly)]
    bill = statement(history, year=year, month=month, tz=SHANGHAI, now=local(2029, 1, 1))
    assert bill.total == monthly
    assert [(r.first.day, r.days, r.amount) for r in bill.runs] == [
        (1, calendar.monthrange(year, month)[1], monthly)
    ]


def test_consecutive_days_charged_alike_are_one_line_and_the_lines_add_up() -> None:
    # Standard until 15 October (noon), premium with 90-day retention from then; today is the 20th.
    history = [
        seg(local(2026, 1, 1), Plan.STANDARD),
        seg(
            local(2026, 10, 15, 12),
            Plan.PREMIUM,
            monthly=Decimal(699 + 99),
            config=(("group_members", "plan"), ("history_retention", "90d")),
        ),
    ]
    catalog = load_catalog()
    bill = statement(
        history, year=2026, month=10, tz=SHANGHAI, now=local(2026, 10, 20, 9), catalog=catalog
    )
    lines = [(r.first.day, r.last.day, r.days, r.label, r.addons, r.projected) for r in bill.runs]
    assert lines == [
        (1, 14, 14, "standard", (), False),
        (15, 20, 6, "premium", ("Message history retention: 90d",), False),
        (21, 31, 11, "premium", ("Message history retention: 90d",), True),
    ]
    # exact: 399x14/31 + 798x17/31 = 617.806...: rounded once to 617.81; the floors (180.19,
    # 154.45, 283.16) leave one cent, which goes to the largest remainder (180.1935...).
    assert [r.amount for r in bill.runs] == [
        Decimal("180.20"),
        Decimal("154.45"),
        Decimal("283.16"),
    ]
    assert bill.total == Decimal("617.81") == sum(r.amount for r in bill.runs)
    assert bill.to_date == Decimal("334.65")
    assert sum(d.amount for d in bill.days) == bill.total


def test_add_ons_are_named_only_when_charged() -> None:
    config = (("history_retention", "365d"),)
    history = [
        seg(local(2026, 1, 1), Plan.STANDARD, monthly=Decimal(399 + 299), config=config),
        seg(local(2026, 11, 10, 8), Plan.STANDARD, Status.DISABLED, config=config),
    ]
    bill = statement(
        history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 12, 2), catalog=load_catalog()
    )
    assert [(r.label, r.addons) for r in bill.runs] == [
        ("standard", ("Message history retention: 365d",)),
        ("standard (disabled)", ()),
    ]
    # without a catalog the lines carry no add-on names; the amounts are the same
    plain = statement(history, year=2026, month=11, tz=SHANGHAI, now=local(2026, 12, 2))
    assert {r.addons for r in plain.runs} == {()}
    assert plain.total == bill.total == Decimal("232.67")  # 698 x 10/30 = 232.666...


def test_a_month_before_the_app_or_still_to_come_is_marked() -> None:
    history = [seg(local(2026, 11, 21, 15), Plan.STANDARD)]
    before = statement(
        [], year=2026, month=10, tz=SHANGHAI, now=local(2026, 12, 2), created=local(2026, 11, 21)
    )
    assert before.before_app and not before.not_started and before.runs == ()
    first = statement(
        history,
        year=2026,
        month=11,
        tz=SHANGHAI,
        now=local(2026, 12, 2),
        created=local(2026, 11, 21, 15),
    )
    assert not first.before_app and first.created_on == date(2026, 11, 21)
    later = statement(history, year=2027, month=1, tz=SHANGHAI, now=local(2026, 12, 2))
    assert later.not_started and not later.before_app
    assert later.total == Decimal("399.00") and all(r.projected for r in later.runs)


def test_a_bill_month_is_refused_when_no_bill_can_exist() -> None:
    now = local(2026, 11, 5)
    assert bill_month(None, None, now=now, tz=SHANGHAI) == (2026, 11)
    assert bill_month(2020, 1, now=now, tz=SHANGHAI) == (2020, 1)  # before the app: not refused
    assert bill_month(2027, 11, now=now, tz=SHANGHAI) == (2027, 11)  # a year ahead
    for year, month, reason in [
        (9999, 12, "more than 12 months ahead (2027-11 at the latest)"),
        (2027, 12, "more than 12 months ahead"),
        (2026, 13, "a month is 01 to 12"),
        (2026, 0, "a month is 01 to 12"),
        (1969, 12, "bills start in 1970"),
    ]:
        with pytest.raises(errors.InvalidBillMonth) as refused:
            bill_month(year, month, now=now, tz=SHANGHAI)
        assert f"There is no bill for {year:04d}-{month:02d}: " in refused.value.message
        assert reason in refused.value.message


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
    assert impact.before_month_total == Decimal("399.00")
    assert impact.after_month_total == Decimal("133.00")  # 399 x 10/30, exactly
    assert impact.delta == Decimal("-266.00")
    assert impact.monthly_after == 0


def test_the_preview_of_an_upgrade_is_what_the_bill_then_says() -> None:
    # Upgraded on 5 March from standard (rounding each day would make 27 x 9.68 = 261.36).
    now = local(2027, 3, 5, 10)
    history = [seg(local(2027, 1, 1), Plan.STANDARD)]
    change = seg(now, Plan.PREMIUM)
    impact = cost_impact(history, change, tz=SHANGHAI, now=now)
    after = statement([*history, change], year=2027, month=3, tz=SHANGHAI, now=local(2027, 4, 1))
    assert impact.before_month_total == Decimal("399.00")
    assert impact.after_month_total == after.total == Decimal("660.29")  # (4x399 + 27x699)/31
    assert impact.delta == Decimal("261.29")


# --- properties ------------------------------------------------------------------------------

MONTHS = st.tuples(st.integers(2024, 2030), st.integers(1, 12))
MONTHLY = st.sampled_from([Decimal(0), Decimal(399), Decimal(699), Decimal(798), Decimal("997.5")])
#: billing zones on both sides of UTC, one with a half hour, one with daylight saving time
ZONES = [SHANGHAI, ZoneInfo("UTC"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]
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


def oracle_days(segments: list[RateSegment], year: int, month: int) -> dict[date, Fraction]:
    """Each day's exact cost: the highest monthly charge in force at any moment of it, over the
    days of the month (a fraction: no rounding at all)."""
    days_in_month = calendar.monthrange(year, month)[1]
    costs: dict[date, Fraction] = {}
    for day in range(1, days_in_month + 1):
        start = datetime(year, month, day, tzinfo=SHANGHAI)
        end = start + timedelta(days=1)
        in_force = [
            Fraction(s.monthly if s.billable else 0)
            for i, s in enumerate(segments)
            if s.start < end and (i + 1 == len(segments) or segments[i + 1].start > start)
        ]
        if in_force:
            costs[start.date()] = max(in_force) / days_in_month
    return costs


def cents_of(exact: Fraction) -> Decimal:
    """Half-up to the cent, by integer arithmetic (independent of the code under test)."""
    hundredths = exact * 100
    whole, rest = divmod(hundredths.numerator, hundredths.denominator)
    return Decimal(whole + (1 if 2 * rest >= hundredths.denominator else 0)) / 100


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(0, 60 * 24))
def test_a_statement_is_its_exact_days_rounded_once_and_its_lines_add_up_to_it(
    history: tuple[int, int, list[RateSegment]], hours_into_month: int
) -> None:
    year, month, segments = history
    now = datetime(year, month, 1, tzinfo=SHANGHAI) + timedelta(hours=hours_into_month)
    today = now.date()
    bill = statement(segments, year=year, month=month, tz=SHANGHAI, now=now)
    exact = oracle_days(segments, year, month)
    days_in_month = calendar.monthrange(year, month)[1]
    # each day once, in order, at the highest rate in force at any moment of it
    assert [d.day for d in bill.days] == sorted(exact)
    assert all(abs(Fraction(d.rate) - exact[d.day]) < Fraction(1, 10**20) for d in bill.days)
    # the total is the exact sum rounded once; lines and days add up to it exactly
    assert bill.total == cents_of(sum(exact.values(), Fraction(0)))
    assert sum(r.amount for r in bill.runs) == bill.total
    assert sum(d.amount for d in bill.days) == bill.total
    assert bill.to_date == sum((r.amount for r in bill.runs if not r.projected), Decimal(0))
    assert all(r.amount >= 0 and r.amount == cents(r.amount) for r in bill.runs)
    for run in bill.runs:
        # a line is within a cent of its exact amount (largest remainder gives floor or ceil)
        share = sum(
            (exact[d.day] for d in bill.days if run.first <= d.day <= run.last), Fraction(0)
        )
        assert abs(Fraction(run.amount) - share) < Fraction(1, 100)
        # all charged (today included) or all projected
        assert run.projected == (run.first > today) and (run.projected or run.last <= today)
    for earlier, later in zip(bill.runs, bill.runs[1:], strict=False):
        assert earlier.last < later.first
        alike = (earlier.label, earlier.rate, earlier.projected) == (
            later.label,
            later.rate,
            later.projected,
        )
        assert not (alike and earlier.last + timedelta(days=1) == later.first)  # one line a run
    if len(bill.days) == days_in_month and len({d.rate for d in bill.days}) == 1:
        assert bill.total == cents(bill.days[0].rate * days_in_month)  # a whole month: the price


MONTHLY_PRICES = st.decimals(
    min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False
)


@settings(max_examples=300, deadline=None)
@given(MONTHS, MONTHLY_PRICES, st.sampled_from([Plan.STANDARD, Plan.PREMIUM]), st.integers(0, 45))
def test_any_price_held_all_month_costs_exactly_that_price(
    month: tuple[int, int], monthly: Decimal, plan: Plan, days_into_month: int
) -> None:
    year, number = month
    history = [
        seg(datetime(year, number, 1, tzinfo=SHANGHAI) - timedelta(days=1), plan, monthly=monthly)
    ]
    now = datetime(year, number, 1, 12, tzinfo=SHANGHAI) + timedelta(days=days_into_month)
    bill = statement(history, year=year, month=number, tz=SHANGHAI, now=now)
    assert bill.total == monthly
    assert sum(r.amount for r in bill.runs) == monthly
    assert len(bill.runs) == (2 if bill.projected else 1)  # charged so far, and the rest


@settings(max_examples=300, deadline=None)
@given(histories(), SEGMENT_KIND, st.integers(0, 27 * 24 * 60), st.sampled_from(ZONES))
def test_a_preview_costs_the_bill_after_the_change_minus_the_bill_before(
    history: tuple[int, int, list[RateSegment]],
    kind: tuple[Plan, Status, BillingMode, Decimal],
    minutes_into_month: int,
    zone: ZoneInfo,
) -> None:
    year, month, segments = history
    now = datetime(year, month, 1, tzinfo=zone) + timedelta(minutes=minutes_into_month)
    local = now.astimezone(zone)
    past = [s for s in segments if s.start < now]
    change = seg(now, *kind)
    impact = cost_impact(past, change, tz=zone, now=now)
    # the bills of that month, asked for at the month's end (nothing projected any more)
    end = datetime(local.year, local.month, 1, tzinfo=zone) + timedelta(days=40)
    before = statement(past, year=local.year, month=local.month, tz=zone, now=end)
    after = statement([*past, change], year=local.year, month=local.month, tz=zone, now=end)
    assert (impact.before_month_total, impact.after_month_total) == (before.total, after.total)
    assert impact.delta == after.total - before.total
    assert impact.monthly_after == (change.monthly if change.billable else 0)
