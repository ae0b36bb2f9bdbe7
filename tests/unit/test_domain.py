"""Every rule and refusal of DOMAIN.md, through the pure functions of core.domain."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import errors
from core.domain import (
    LEGACY_CUTOFF,
    PURGE_AFTER,
    AppState,
    BillingMode,
    Plan,
    Status,
    add_months,
    app_name,
    billing_mode_for,
    configure,
    create,
    disable,
    enable,
    extend,
    is_app_id,
    migrate,
    name_key,
    next_month_start,
    purge,
    suspend,
    upgrade,
)
from tests.conftest import SHANGHAI, utc

NOW = utc(2026, 11, 10, 4, 0)  # noon in UTC+8
APP_ID = "1400000001"


def an_app(
    plan: Plan = Plan.DEVELOPER,
    status: Status = Status.ACTIVE,
    mode: BillingMode = BillingMode.CURRENT,
    **fields: Any,
) -> AppState:
    """An app in a given state, with consistent dates."""
    created = fields.pop("created_at", utc(2026, 10, 1, 4, 0))
    if plan is Plan.DEVELOPER:
        fields.setdefault("dev_expires_at", add_months(created))
    if status in (Status.DISABLED, Status.PURGED):
        fields.setdefault("disabled_at", NOW - timedelta(days=10))
    return AppState(
        app_id=APP_ID,
        name="demo-chat",
        plan=plan,
        billing_mode=mode,
        status=status,
        created_at=created,
        owner_channel="CTEAM",
        **fields,
    )


def conf(app: AppState, now: datetime = NOW, edition: Plan | None = None, **addons: str):
    return configure(app, edition=edition, addons=addons, now=now, tz=SHANGHAI)


# --- upgrade ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [Plan.STANDARD, Plan.PREMIUM])
def test_upgrade_an_active_developer_app_takes_effect_at_once(target: Plan) -> None:
    before = an_app()
    after = upgrade(before, target, NOW)
    assert after.plan is target
    assert after.status is Status.ACTIVE
    assert after.dev_expires_at is None  # paid plans don't expire
    assert after.version == before.version + 1
    assert after.config_changed_at is None  # the upgrade is not the month's modification


def test_upgrade_reactivates_a_suspended_developer_app() -> None:
    after = upgrade(an_app(status=Status.SUSPENDED), Plan.PREMIUM, NOW)
    assert (after.plan, after.status) == (Plan.PREMIUM, Status.ACTIVE)


def test_upgrade_to_developer_is_refused_there_is_no_downgrade() -> None:
    with pytest.raises(errors.InvalidTargetPlan) as refused:
        upgrade(an_app(), Plan.DEVELOPER, NOW)
    assert "`standard` or `premium`" in refused.value.message
    assert "create a new app" in refused.value.message


@pytest.mark.parametrize("plan", [Plan.STANDARD, Plan.PREMIUM])
def test_upgrade_of_a_paid_app_is_refused_and_points_to_config(plan: Plan) -> None:
    with pytest.raises(errors.UpgradeNotAllowed) as refused:
        upgrade(an_app(plan), Plan.PREMIUM, NOW)
    assert f"on the {plan} plan" in refused.value.message
    assert "only developer apps can be upgraded" in refused.value.message
    assert f"/plan config {APP_ID}" in refused.value.message


@pytest.mark.parametrize("plan", [Plan.STANDARD, Plan.PREMIUM])
def test_paid_to_developer_is_refused(plan: Plan) -> None:
    with pytest.raises(errors.InvalidTargetPlan):
        upgrade(an_app(plan), Plan.DEVELOPER, NOW)


# --- configure -------------------------------------------------------------------------------


def test_configure_changes_edition_and_addons_and_records_the_moment() -> None:
    before = an_app(Plan.STANDARD)
    after = conf(before, edition=Plan.PREMIUM, history_retention="90d")
    assert after.plan is Plan.PREMIUM
    assert dict(after.config) == {"history_retention": "90d"}
    assert after.config_changed_at == NOW
    assert after.version == before.version + 1


def test_configure_can_go_back_from_premium_to_standard() -> None:
    after = conf(an_app(Plan.PREMIUM), edition=Plan.STANDARD)
    assert after.plan is Plan.STANDARD


def test_configure_addons_only_keeps_the_edition_and_merges_addons() -> None:
    before = an_app(Plan.PREMIUM, config={"group_members": "3000"})
    after = conf(before, history_retention="180d")
    assert after.plan is Plan.PREMIUM
    assert dict(after.config) == {"group_members": "3000", "history_retention": "180d"}


def test_configure_of_a_developer_app_is_refused_with_a_pointer_to_upgrade() -> None:
    with pytest.raises(errors.ConfigChangeNotAllowed) as refused:
        conf(an_app(Plan.DEVELOPER), edition=Plan.PREMIUM)
    assert "developer plan" in refused.value.message
    assert f"/plan upgrade {APP_ID}" in refused.value.message


def test_configure_of_a_disabled_app_is_refused_with_a_pointer_to_enable() -> None:
    with pytest.raises(errors.ConfigChangeNotAllowed) as refused:
        conf(an_app(Plan.STANDARD, Status.DISABLED), edition=Plan.PREMIUM)
    assert "disabled" in refused.value.message
    assert f"/plan enable {APP_ID}" in refused.value.message


def test_configure_to_developer_edition_is_refused() -> None:
    with pytest.raises(errors.InvalidTargetPlan):
        conf(an_app(Plan.PREMIUM), edition=Plan.DEVELOPER)


def test_configure_to_what_the_app_already_has_is_refused() -> None:
    with pytest.raises(errors.NothingToChange) as refused:
        conf(an_app(Plan.PREMIUM, config={"history_retention": "90d"}), history_retention="90d")
    assert "nothing to change" in refused.value.message


DEFAULTS = {"history_retention": "plan", "group_members": "plan"}


def test_an_addon_set_to_its_default_is_no_change() -> None:
    app = an_app(Plan.STANDARD)
    with pytest.raises(errors.NothingToChange):
        configure(
            app,
            edition=None,
            addons={"group_members": "plan"},
            now=NOW,
            tz=SHANGHAI,
            defaults=DEFAULTS,
        )


def test_setting_an_addon_back_to_its_default_removes_it() -> None:
    app = an_app(Plan.STANDARD, config={"group_members": "3000", "history_retention": "90d"})
    after = configure(
        app, edition=None, addons={"group_members": "plan"}, now=NOW, tz=SHANGHAI, defaults=DEFAULTS
    )
    assert dict(after.config) == {"history_retention": "90d"}
    assert after.config_changed_at == NOW


def test_configure_twice_in_one_billing_month_is_refused_with_the_next_allowed_date() -> None:
    first = conf(an_app(Plan.STANDARD), now=utc(2026, 11, 2, 4, 0), edition=Plan.PREMIUM)
    with pytest.raises(errors.ConfigChangeLimitReached) as refused:
        conf(first, now=utc(2026, 11, 29, 4, 0), edition=Plan.STANDARD)
    assert refused.value.next_allowed == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert "once per calendar month" in refused.value.message
    assert "2026-11-02" in refused.value.message
    assert "2026-12-01 00:00" in refused.value.message


def test_configure_again_next_billing_month_is_allowed() -> None:
    first = conf(an_app(Plan.STANDARD), now=utc(2026, 11, 2, 4, 0), edition=Plan.PREMIUM)
    second = conf(first, now=utc(2026, 11, 30, 16, 0), edition=Plan.STANDARD)  # Dec 1, 00:00
    assert second.plan is Plan.STANDARD


def test_a_change_at_2026_11_30_1630z_already_counts_for_december_in_utc8() -> None:
    december = conf(an_app(Plan.STANDARD), now=utc(2026, 11, 30, 16, 30), edition=Plan.PREMIUM)
    # Still 1 December in UTC, but also in UTC+8: refused until January.
    with pytest.raises(errors.ConfigChangeLimitReached) as refused:
        conf(december, now=utc(2026, 12, 1, 1, 0), history_retention="90d")
    assert refused.value.next_allowed == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert "2026-12-01" in refused.value.message  # the change's day, as the team saw it


def test_a_change_late_on_30_november_in_utc8_leaves_december_free() -> None:
    november = conf(an_app(Plan.STANDARD), now=utc(2026, 11, 30, 15, 30), edition=Plan.PREMIUM)
    december = conf(november, now=utc(2026, 11, 30, 16, 30), history_retention="90d")
    assert december.config["history_retention"] == "90d"


def test_the_upgrade_does_not_use_up_the_months_configuration_change() -> None:
    upgraded = upgrade(an_app(), Plan.STANDARD, NOW)
    configured = conf(upgraded, now=NOW + timedelta(minutes=5), edition=Plan.PREMIUM)
    assert configured.plan is Plan.PREMIUM


def test_next_month_start_is_midnight_in_the_billing_zone() -> None:
    assert next_month_start(utc(2026, 11, 30, 15, 59), SHANGHAI) == datetime(
        2026, 12, 1, tzinfo=SHANGHAI
    )
    assert next_month_start(utc(2026, 11, 30, 16, 0), SHANGHAI) == datetime(
        2027, 1, 1, tzinfo=SHANGHAI
    )


# --- extend ----------------------------------------------------------------------------------


def test_add_months_clamps_to_the_months_end() -> None:
    assert add_months(utc(2026, 1, 31, 4)) == utc(2026, 2, 28, 4)
    assert add_months(utc(2028, 1, 31, 4)) == utc(2028, 2, 29, 4)  # leap year
    assert add_months(utc(2026, 3, 31, 4)) == utc(2026, 4, 30, 4)
    assert add_months(utc(2026, 12, 15, 4)) == utc(2027, 1, 15, 4)
    assert add_months(utc(2026, 1, 31, 4), 13) == utc(2027, 2, 28, 4)


def test_extend_adds_one_month_to_a_future_expiry() -> None:
    before = an_app(dev_expires_at=utc(2026, 11, 20, 4))
    after = extend(before, NOW)
    assert after.dev_expires_at == utc(2026, 12, 20, 4)
    assert after.status is Status.ACTIVE
    assert after.version == before.version + 1


def test_extend_after_the_expiry_counts_from_now_and_reactivates() -> None:
    before = an_app(status=Status.SUSPENDED, dev_expires_at=utc(2026, 10, 1, 4))
    after = extend(before, NOW)
    assert after.dev_expires_at == utc(2026, 12, 10, 4)
    assert after.status is Status.ACTIVE


@pytest.mark.parametrize(
    ("expiry", "extended"),
    [
        (utc(2027, 1, 31, 4), utc(2027, 2, 28, 4)),
        (utc(2028, 1, 31, 4), utc(2028, 2, 29, 4)),
        (utc(2027, 3, 31, 4), utc(2027, 4, 30, 4)),
        (utc(2027, 2, 28, 4), utc(2027, 3, 28, 4)),
    ],
)
def test_extend_clamps_to_the_end_of_the_month(expiry: datetime, extended: datetime) -> None:
    assert extend(an_app(dev_expires_at=expiry), NOW, tz=SHANGHAI).dev_expires_at == extended


def test_extend_counts_calendar_months_in_the_billing_zone() -> None:
    # 31 March 00:30 in UTC+8 is still 30 March in UTC; one month later is 30 April (UTC+8),
    # not 1 May, which a month counted in UTC would give.
    expiry = datetime(2027, 3, 31, 0, 30, tzinfo=SHANGHAI)
    after = extend(an_app(dev_expires_at=expiry), NOW, tz=SHANGHAI)
    assert after.dev_expires_at is not None
    assert after.dev_expires_at.astimezone(SHANGHAI) == datetime(
        2027, 4, 30, 0, 30, tzinfo=SHANGHAI
    )


@pytest.mark.parametrize("plan", [Plan.STANDARD, Plan.PREMIUM])
def test_extend_of_a_paid_app_is_refused(plan: Plan) -> None:
    with pytest.raises(errors.ExtendNotAllowed) as refused:
        extend(an_app(plan), NOW)
    assert "only developer apps" in refused.value.message
    assert "don't expire" in refused.value.message


def test_a_developer_app_is_suspended_when_its_validity_ends() -> None:
    app = an_app(dev_expires_at=NOW)
    assert suspend(app, NOW - timedelta(seconds=1)) is None
    suspended = suspend(app, NOW)
    assert suspended is not None and suspended.status is Status.SUSPENDED
    assert suspend(an_app(Plan.STANDARD), NOW + timedelta(days=400)) is None


# --- disable / enable / purge ----------------------------------------------------------------


@pytest.mark.parametrize("plan", [Plan.STANDARD, Plan.PREMIUM])
def test_disable_stops_a_paid_app_and_sets_the_purge_date(plan: Plan) -> None:
    before = an_app(plan, config={"history_retention": "90d"})
    after = disable(before, NOW)
    assert after.status is Status.DISABLED
    assert after.disabled_at == NOW
    assert after.purge_at == NOW + timedelta(days=90)
    assert after.plan is plan and after.config == before.config


def test_disable_of_a_suspended_developer_app_is_refused_it_is_left_to_expire() -> None:
    with pytest.raises(errors.DisableNotAllowed) as refused:
        disable(an_app(status=Status.SUSPENDED), NOW)
    assert "suspended developer app is left to expire" in refused.value.message


def test_disable_of_an_active_developer_app_is_refused() -> None:
    with pytest.raises(errors.DisableNotAllowed) as refused:
        disable(an_app(), NOW)
    assert "standard and premium" in refused.value.message


def test_disable_twice_is_refused() -> None:
    with pytest.raises(errors.DisableNotAllowed) as refused:
        disable(an_app(Plan.PREMIUM, Status.DISABLED), NOW)
    assert "already disabled" in refused.value.message


def test_enable_within_90_days_restores_plan_and_configuration() -> None:
    disabled = disable(an_app(Plan.PREMIUM, config={"group_members": "6000"}), NOW)
    enabled = enable(disabled, NOW + timedelta(days=89))
    assert enabled.status is Status.ACTIVE
    assert enabled.plan is Plan.PREMIUM
    assert dict(enabled.config) == {"group_members": "6000"}
    assert enabled.disabled_at is None


def test_enable_on_the_90th_day_is_still_allowed() -> None:
    disabled = disable(an_app(Plan.STANDARD), NOW)
    assert enable(disabled, NOW + PURGE_AFTER).status is Status.ACTIVE


def test_enable_after_90_days_is_refused() -> None:
    disabled = disable(an_app(Plan.STANDARD), NOW)
    with pytest.raises(errors.PurgeDeadlinePassed) as refused:
        enable(disabled, NOW + PURGE_AFTER + timedelta(seconds=1))
    assert "more than 90 days" in refused.value.message
    assert "until 2027-02-08" in refused.value.message  # the deadline, not the disable date
    assert "/plan create" in refused.value.message


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.SUSPENDED])
def test_enable_of_an_app_that_is_not_disabled_is_refused(status: Status) -> None:
    plan = Plan.DEVELOPER if status is Status.SUSPENDED else Plan.STANDARD
    with pytest.raises(errors.EnableNotAllowed) as refused:
        enable(an_app(plan, status), NOW)
    assert f"is {status}, not disabled" in refused.value.message


def test_purge_happens_only_after_more_than_90_days() -> None:
    disabled = disable(an_app(Plan.PREMIUM), NOW)
    assert purge(disabled, NOW + PURGE_AFTER) is None
    purged = purge(disabled, NOW + PURGE_AFTER + timedelta(seconds=1))
    assert purged is not None and purged.status is Status.PURGED
    assert purge(an_app(Plan.PREMIUM), NOW + timedelta(days=365)) is None


# --- billing mode ----------------------------------------------------------------------------


def test_billing_mode_by_creation_day() -> None:
    assert LEGACY_CUTOFF.isoformat() == "2022-12-26"
    assert billing_mode_for(utc(2022, 12, 25, 4)) is BillingMode.LEGACY
    assert billing_mode_for(utc(2022, 12, 26, 4)) is BillingMode.CURRENT


def test_billing_mode_cutoff_is_counted_in_the_billing_zone() -> None:
    # 2022-12-25T16:30Z is 26 December in UTC+8, the provider's own zone: current billing.
    assert billing_mode_for(utc(2022, 12, 25, 16, 30), SHANGHAI) is BillingMode.CURRENT
    assert billing_mode_for(utc(2022, 12, 25, 15, 30), SHANGHAI) is BillingMode.LEGACY


def test_migrate_is_one_way() -> None:
    legacy = an_app(Plan.STANDARD, mode=BillingMode.LEGACY)
    current = migrate(legacy, NOW)
    assert current.billing_mode is BillingMode.CURRENT
    assert current.version == legacy.version + 1
    with pytest.raises(errors.AlreadyCurrentBilling) as refused:
        migrate(current, NOW)
    assert "nothing to migrate" in refused.value.message


def test_after_migration_the_plan_operations_are_allowed() -> None:
    current = migrate(an_app(Plan.DEVELOPER, mode=BillingMode.LEGACY), NOW)
    assert upgrade(current, Plan.STANDARD, NOW).plan is Plan.STANDARD


LEGACY_REFUSALS: list[tuple[str, Plan, Callable[[AppState], AppState]]] = [
    ("upgraded", Plan.DEVELOPER, lambda a: upgrade(a, Plan.PREMIUM, NOW)),
    ("reconfigured", Plan.STANDARD, lambda a: conf(a, edition=Plan.PREMIUM)),
    ("extended", Plan.DEVELOPER, lambda a: extend(a, NOW)),
    ("disabled", Plan.PREMIUM, lambda a: disable(a, NOW)),
]


@pytest.mark.parametrize(("verb", "plan", "operation"), LEGACY_REFUSALS)
def test_legacy_apps_are_refused_current_mode_operations_with_a_pointer_to_migrate(
    verb: str, plan: Plan, operation: Callable[[AppState], AppState]
) -> None:
    with pytest.raises(errors.LegacyBillingMode) as refused:
        operation(an_app(plan, mode=BillingMode.LEGACY))
    assert f"can't be {verb}" in refused.value.message
    assert f"`/plan migrate {APP_ID}`" in refused.value.message
    assert "one-way" in refused.value.message


# --- purged ----------------------------------------------------------------------------------

USER_OPERATIONS: dict[str, Callable[[AppState, datetime], AppState]] = {
    "upgrade": lambda a, t: upgrade(a, Plan.PREMIUM, t),
    "configure": lambda a, t: conf(a, now=t, edition=Plan.PREMIUM, history_retention="90d"),
    "extend": extend,
    "disable": disable,
    "enable": enable,
    "migrate": migrate,
}


@pytest.mark.parametrize("mode", list(BillingMode))
@pytest.mark.parametrize("name", sorted(USER_OPERATIONS))
def test_a_purged_app_refuses_everything(name: str, mode: BillingMode) -> None:
    purged = an_app(Plan.STANDARD, Status.PURGED, mode=mode)
    with pytest.raises(errors.AppPurged) as refused:
        USER_OPERATIONS[name](purged, NOW)
    assert "can't be recovered" in refused.value.message
    assert "/plan create" in refused.value.message
    assert suspend(purged, NOW) is None
    assert purge(purged, NOW + timedelta(days=1000)) is None


# --- create ----------------------------------------------------------------------------------


def test_create_makes_a_current_developer_app_valid_for_one_month() -> None:
    app = create(app_id="1400000009", name="  new-chat  ", owner_channel="CTEAM", now=NOW)
    assert app.name == "new-chat"
    assert (app.plan, app.billing_mode, app.status) == (
        Plan.DEVELOPER,
        BillingMode.CURRENT,
        Status.ACTIVE,
    )
    assert app.created_at == NOW
    assert app.dev_expires_at == utc(2026, 12, 10, 4)
    assert app.owner_channel == "CTEAM"


def test_create_on_31_january_is_valid_until_the_end_of_february() -> None:
    app = create(
        app_id="1",
        name="x",
        owner_channel=None,
        now=datetime(2028, 1, 31, 1, tzinfo=SHANGHAI),
        tz=SHANGHAI,
    )
    assert app.dev_expires_at is not None
    assert app.dev_expires_at.astimezone(SHANGHAI).date().isoformat() == "2028-02-29"


@pytest.mark.parametrize(
    ("name", "reason"),
    [("", "empty"), ("   ", "empty"), ("x" * 81, "longer than 80"), ("1400123456", "digits")],
)
def test_create_refuses_names_that_cannot_be_app_names(name: str, reason: str) -> None:
    with pytest.raises(errors.InvalidAppName) as refused:
        create(app_id="1", name=name, owner_channel=None, now=NOW)
    assert reason in refused.value.message


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pay\n:rotating_light: URGENT", "U+000A"),
        ("gnp\u202eexe", "U+202E"),
        ("dev-1\u200b", "U+200B"),
        ("a\u2028b", "U+2028"),
        ("a\u2029b", "U+2029"),
        ("tab\there", "U+0009"),
        ("bom\ufeff", "U+FEFF"),
        ("\u0661\u0664\u0660\u0660", "digits"),  # Arabic-Indic digits read as an id too
    ],
)
def test_a_name_is_one_line_of_visible_text(name: str, reason: str) -> None:
    with pytest.raises(errors.InvalidAppName) as refused:
        app_name(name)
    assert reason in refused.value.message


def test_a_name_is_normalised_and_trimmed_and_its_key_ignores_case() -> None:
    assert app_name("  Cafe\u0301 Chat \u00a0") == "Caf\u00e9 Chat"  # NFC, no-break space trimmed
    assert name_key("Café CHAT") == name_key("cafe\u0301 chat")
    assert name_key("STRASSE") == name_key("straße")


@given(st.text(max_size=100))
def test_whatever_is_typed_a_name_is_refused_or_clean(raw: str) -> None:
    try:
        name = app_name(raw)
    except errors.InvalidAppName:
        return
    assert name == name.strip() and 1 <= len(name) <= 80 and not name.isdigit()
    assert all(unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp", "Cs"} for ch in name)
    assert app_name(name) == name


def test_app_ids_are_ascii_digits() -> None:
    assert is_app_id("1400123456")
    assert not is_app_id("\u0661\u0664\u0660\u0660")
    assert not is_app_id("")
    assert not is_app_id("1" * 21)


# --- the error tree --------------------------------------------------------------------------


def test_every_refusal_is_its_own_plan_error_with_a_docstring() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    refusals = [c for c in classes if c is not errors.PlanError]
    assert all(issubclass(c, errors.PlanError) for c in refusals)
    assert len(set(refusals)) == len(refusals) == len(errors.__all__) - 1
    assert all(c.__doc__ and c.__doc__.strip() for c in classes)
    assert all(c.__name__ in errors.__doc__ for c in refusals)  # the tree drawn in the docstring


# --- properties ------------------------------------------------------------------------------

OPERATION_NAMES = ["upgrade", "configure", "extend", "disable", "enable", "migrate", "tick"]
ADDON_CHOICES = st.sampled_from(
    [{}, {"history_retention": "90d"}, {"group_members": "3000"}, {"group_members": "plan"}]
)
STEP = st.tuples(
    st.sampled_from(OPERATION_NAMES),
    st.sampled_from([*Plan, None]),
    ADDON_CHOICES,
    st.integers(min_value=0, max_value=120 * 24 * 3600),  # seconds until this step
)


def initial_apps() -> st.SearchStrategy[AppState]:
    return st.builds(
        lambda plan, status, mode: an_app(plan, status, mode),
        st.sampled_from(list(Plan)),
        st.sampled_from(list(Status)),
        st.sampled_from(list(BillingMode)),
    ).filter(valid_state)


def valid_state(app: AppState) -> bool:
    """Developer apps are active or suspended; paid apps active, disabled or purged."""
    if app.plan.paid:
        return app.status is not Status.SUSPENDED
    return app.status in (Status.ACTIVE, Status.SUSPENDED)


def step(app: AppState, name: str, plan: Plan | None, addons: dict[str, str], now: datetime):
    """Apply one operation; the lifecycle's own changes run on 'tick'."""
    if name == "upgrade":
        return upgrade(app, plan or Plan.DEVELOPER, now)
    if name == "configure":
        return configure(app, edition=plan, addons=addons, now=now, tz=SHANGHAI)
    if name == "tick":
        return suspend(app, now) or purge(app, now) or app
    return USER_OPERATIONS[name](app, now)


@settings(max_examples=200, deadline=None)
@given(initial_apps(), st.lists(STEP, max_size=25))
def test_no_sequence_of_operations_returns_a_paid_app_to_developer(
    app: AppState, steps: list[tuple[str, Plan | None, dict[str, str], int]]
) -> None:
    now = NOW
    was_paid = app.plan.paid
    for name, plan, addons, wait in steps:
        now += timedelta(seconds=wait)
        try:
            after = step(app, name, plan, addons, now)
        except errors.PlanError:
            continue
        if after is not app:
            assert after.version == app.version + 1  # every change is a new version
        app = after
        was_paid = was_paid or app.plan.paid
        if was_paid:
            assert app.plan is not Plan.DEVELOPER


@settings(max_examples=200, deadline=None)
@given(initial_apps(), st.lists(STEP, min_size=1, max_size=25))
def test_a_purged_app_never_changes_again(
    app: AppState, steps: list[tuple[str, Plan | None, dict[str, str], int]]
) -> None:
    now = NOW
    purged: AppState | None = None
    for name, plan, addons, wait in steps:
        now += timedelta(seconds=wait)
        if purged is not None:
            if name == "tick":
                assert suspend(purged, now) is None and purge(purged, now) is None
            else:
                with pytest.raises(errors.AppPurged):
                    step(purged, name, plan, addons, now)
            continue
        try:
            app = step(app, name, plan, addons, now)
        except errors.PlanError:
            continue
        if app.status is Status.PURGED:
            purged = app
