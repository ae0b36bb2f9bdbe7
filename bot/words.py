"""How planbot words the core's facts for people, in Slack mrkdwn, in the reader's language.

The core says what changes and why a click was refused as facts (`core.facts`, the `PlanError`
tree); this is where they become sentences. Every sentence is whole, with named values, and
marked for translation (`bot.i18n`), so that it can be translated as one piece: the language is
the one of the current context (`speaking`), English outside any.

What these methods return is mrkdwn, ready to put in a section: user text in it (app names) is
escaped here; people are named by mention (`<@U…>`), so each reader sees the name they know; a
moment is a Slack date token, so each reader sees it in their own time zone (its fallback, in
the billing time zone, names that zone). Days that are billing days (a bill's dates, the month a
change counts in) are shown as dates with the billing time zone named.

Plan, status, billing mode and operation names, field labels: the tables below, marked with
`N_` and translated where they are used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_interval, format_skeleton, format_time

from bot import i18n
from bot.i18n import ENGLISH, N_, _, ngettext
from bot.kit import date_token, escape
from core import Actor as CoreActor
from core import (
    AlreadyApproved,
    Catalog,
    ConfigChangeLimitReached,
    CostImpact,
    Field,
    FieldChange,
    Notice,
    NoticeCode,
    NotYourRequest,
    Operation,
    Outcome,
    Plan,
    PlanError,
    Preview,
    PurgeDeadlinePassed,
    Refusal,
    RequestAlreadyDecided,
    RequestExpired,
    parse_config_text,
)

__all__ = [
    "BILLING_MODES",
    "BUSY",
    "CONNECTOR_OFF",
    "FIELD_LABELS",
    "FIGURE_LABELS",
    "GROUPS_NOT_YET_KNOWN",
    "OPERATIONS",
    "OVERAGE_PER_MAU",
    "PLANS",
    "STATUSES",
    "VERBS",
    "Words",
    "billing_mode_name",
    "catalog_text",
    "date_text",
    "day_range",
    "mention",
    "mentions",
    "money_text",
    "month_name",
    "operation_name",
    "plan_label",
    "plan_name",
    "refusal_text",
    "role_name",
    "status_name",
    "worded_refusal",
]

#: a request the database did not answer in time (`DatabaseBusy`)
BUSY = N_(
    "planbot is busy right now (the database did not answer in time); nothing was changed — "
    "try again in a moment"
)
#: a person whose user groups (which may give them a role) have not been read yet
GROUPS_NOT_YET_KNOWN = N_(
    "planbot is still reading your user groups from Slack (they may give you a role here); "
    "nothing was changed — try again in a few seconds"
)

#: the add-ons' labels and descriptions in the catalog planbot ships (`core/catalog.toml`), so
#: that they are translated; a catalog's own texts are shown as the operator wrote them
CATALOG_TEXTS = frozenset(
    {
        N_("Message history retention"),
        N_(
            "Keep message history longer than the plan's free period (7 days standard, 30 days "
            "premium)."
        ),
        N_("Members per group"),
        N_(
            "Raise the member limit of every group above the plan's own (200 standard, 2,000 "
            "premium)."
        ),
    }
)


def catalog_text(text: str) -> str:
    """An add-on's label or description from the catalog in use: in the current language when
    it is one of the shipped catalog's, else as written."""
    return _(text) if text in CATALOG_TEXTS else text


#: the past participle of each operation ("upgraded"), as messages use it (English only: a
#: sentence per operation is used wherever the verb would be glued into a sentence)
VERBS: dict[Operation, str] = {
    Operation.CREATE: N_("created"),
    Operation.UPGRADE: N_("upgraded"),
    Operation.CONFIGURE: N_("reconfigured"),
    Operation.EXTEND: N_("extended"),
    Operation.DISABLE: N_("disabled"),
    Operation.ENABLE: N_("re-enabled"),
    Operation.MIGRATE: N_("migrated"),
    Operation.SUSPEND: N_("suspended"),
    Operation.PURGE: N_("purged"),
}

#: each operation by name, as a noun ("upgrade"), as the console names it
OPERATIONS: dict[str, str] = {
    # Translators: the operation's name (a noun, as in "on upgrade of app X")
    "create": N_("create"),
    "upgrade": N_("upgrade"),
    "configure": N_("configure"),
    "extend": N_("extend"),
    "disable": N_("disable"),
    "enable": N_("enable"),
    "migrate": N_("migrate"),
    "suspend": N_("suspend"),
    "purge": N_("purge"),
    # Translators: an entry of an app's history made by importing the app list
    "import": N_("import"),
}

#: the plans (editions) by name
PLANS: dict[str, str] = {
    # Translators: the developer edition (a plan's name)
    "developer": N_("developer"),
    # Translators: the standard edition (a plan's name)
    "standard": N_("standard"),
    # Translators: the premium edition (a plan's name)
    "premium": N_("premium"),
}

#: an app's service status by name
STATUSES: dict[str, str] = {
    # Translators: an app's service status
    "active": N_("active"),
    # Translators: an app's service status
    "suspended": N_("suspended"),
    # Translators: an app's service status
    "disabled": N_("disabled"),
    # Translators: an app's service status
    "purged": N_("purged"),
}

#: the roles by name
ROLES: dict[str, str] = {
    # Translators: a role's name
    "admin": N_("admin"),
    # Translators: a role's name
    "operator": N_("operator"),
    # Translators: a role's name
    "viewer": N_("viewer"),
}

#: the billing modes by name
BILLING_MODES: dict[str, str] = {
    # Translators: the legacy billing mode (a field's value)
    "legacy": N_("legacy"),
    # Translators: the current billing mode (a field's value)
    "current": N_("current"),
}

FIELD_LABELS: dict[Field, str] = {
    Field.PLAN: N_("Plan"),
    Field.STATUS: N_("Status"),
    Field.BILLING_MODE: N_("Billing mode"),
    Field.ADDONS: N_("Add-ons"),
    Field.MONTHLY_PRICE: N_("Monthly price"),
    Field.DEV_EXPIRES_AT: N_("Developer validity until"),
    Field.PURGE_AT: N_("Purged after"),
}

#: the provider's daily figures, as `/plan usage` names them
FIGURE_LABELS: dict[str, str] = {
    "active_users": N_("active users"),
    "logins": N_("logins"),
    "peak_online": N_("peak online"),
    "registered_users": N_("registered users"),
    "groups": N_("groups"),
    "messages": N_("messages sent"),
}
#: what every surface says when the provider connector has no credentials
CONNECTOR_OFF = N_(
    "the provider connector is off: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY"
)
#: the provider's price for each monthly active user above a paid plan's free ones (December 2022)
OVERAGE_PER_MAU = "US$0.015"

#: an app's sentence once an operation is applied to it ("{app} upgraded.")
_APPLIED: dict[Operation, str] = {
    Operation.CREATE: N_("{app} created."),
    Operation.UPGRADE: N_("{app} upgraded."),
    Operation.CONFIGURE: N_("{app} reconfigured."),
    Operation.EXTEND: N_("{app} extended."),
    Operation.DISABLE: N_("{app} disabled."),
    Operation.ENABLE: N_("{app} re-enabled."),
    Operation.MIGRATE: N_("{app} migrated."),
    Operation.SUSPEND: N_("{app} suspended."),
    Operation.PURGE: N_("{app} purged."),
}

#: what a request asks, in a few words ("Upgrade {who}")
_TITLES: dict[Operation, str] = {
    Operation.UPGRADE: N_("Upgrade {who}"),
    Operation.CONFIGURE: N_("Change the configuration of {who}"),
    Operation.EXTEND: N_("Extend the developer validity of {who}"),
    Operation.DISABLE: N_("Disable {who}"),
    Operation.ENABLE: N_("Re-enable {who}"),
    Operation.MIGRATE: N_("Migrate {who} from legacy to current billing"),
    # Translators: the lifecycle's own operation, named as the records name it
    Operation.SUSPEND: N_("suspend {who}"),
    # Translators: the lifecycle's own operation, named as the records name it
    Operation.PURGE: N_("purge {who}"),
}


#: a Slack user id (a mention of anything else would ping nobody or the wrong one)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


def mention(actor: CoreActor | str | None, name: str = "") -> str:
    """A person as Slack shows them to each reader (`<@U…>`); planbot itself, or someone known
    only by a name (the command line), by that name, escaped."""
    if isinstance(actor, CoreActor):
        user_id, name = actor.user_id, actor.name
    else:
        user_id = actor or ""
    if _USER_ID.match(user_id):
        return f"<@{user_id}>"
    return escape(name or user_id or _("someone"))


def mentions(actors: tuple[CoreActor, ...] | list[CoreActor]) -> str:
    """'<@A>, <@B>'."""
    return ", ".join(mention(a) for a in actors)


def _named(table: Mapping[str, str], value: object) -> str:
    """A value's name from one of the tables above, in the current language (as it is when the
    table does not know it)."""
    text = str(value)
    known = table.get(text)
    return _(known) if known is not None else text


def plan_name(plan: Plan | str) -> str:
    """A plan's name ('premium', '프리미엄 버전')."""
    return _named(PLANS, plan)


def status_name(status: object) -> str:
    """A status's name ('disabled', '비활성화')."""
    return _named(STATUSES, status)


def billing_mode_name(mode: object) -> str:
    """A billing mode's name ('legacy', '기존 과금 모드')."""
    return _named(BILLING_MODES, mode)


def role_name(role: object) -> str:
    """A role's name ('admin', '관리자')."""
    return _named(ROLES, role)


def operation_name(operation: object) -> str:
    """An operation's name ('upgrade', '업그레이드')."""
    return _named(OPERATIONS, operation)


_LABEL = re.compile(r"^(developer|standard|premium)(?: \((legacy billing|[a-z]+)\))?$")


def plan_label(label: str) -> str:
    """A bill line's plan ('premium', 'standard (disabled)', 'standard (legacy billing)'), in
    the current language (as it is when it is not one of those)."""
    if i18n.language() == ENGLISH:
        return label
    found = _LABEL.match(label)
    if found is None:
        return label
    plan, qualifier = found.group(1), found.group(2)
    if qualifier is None:
        return plan_name(plan)
    if qualifier == "legacy billing":
        return _("{plan} (legacy billing)").format(plan=plan_name(plan))
    return _("{plan} ({status})").format(plan=plan_name(plan), status=status_name(qualifier))


@cache
def _locale(spoken: str) -> Locale:
    return Locale.parse({"en": "en_US", "ko": "ko_KR"}.get(spoken, spoken))


# Babel's formatting takes tens of microseconds a call; the same days, months, times of day and
# currencies come back again and again (the ack path renders a preview), so each is formatted
# once per language and kept.


@lru_cache(maxsize=4096)
def _long_date(spoken: str, value: date) -> str:
    return format_date(value, format="long", locale=_locale(spoken))


@lru_cache(maxsize=2048)
def _short_time(spoken: str, hour: int, minute: int) -> str:
    return format_time(time(hour, minute), format="short", locale=_locale(spoken))


@lru_cache(maxsize=1024)
def _month(spoken: str, year: int, month: int) -> str:
    return format_skeleton("yMMMM", date(year, month, 1), locale=_locale(spoken))


@lru_cache(maxsize=2048)
def _interval(spoken: str, first: date, last: date) -> str:
    if first == last:
        return _long_date(spoken, first)
    return format_interval(first, last, "yMMMd", locale=_locale(spoken))


_SAMPLE = Decimal("1234567.89")
_CENT = Decimal("0.01")


@lru_cache(maxsize=64)
def _money_shape(spoken: str, currency: str) -> tuple[str, str, str, str] | None:
    """What the language writes around an amount in `currency` (before and after it, positive
    and negative), when it groups and rounds as `{:,.2f}` does; None when it writes it otherwise
    (then Babel formats each amount)."""
    with i18n.speaking(spoken):
        positive, negative = i18n.money(_SAMPLE, currency), i18n.money(-_SAMPLE, currency)
    digits = f"{_SAMPLE:,.2f}"
    if positive.count(digits) != 1 or negative.count(digits) != 1:
        return None
    before, after = positive.split(digits)
    minus_before, minus_after = negative.split(digits)
    return before, after, minus_before, minus_after


def money_text(amount: Decimal, currency: str = "USD") -> str:
    """An amount in its currency, rounded to cents, as the current language writes it: the same
    as `bot.i18n.money` ('$1,234.50', 'US$1,234.50'), without asking Babel each time."""
    spoken = i18n.language()
    if spoken == ENGLISH:
        return i18n.money(amount, currency)
    shape = _money_shape(spoken, currency)
    if shape is None:
        return i18n.money(amount, currency)
    value = Decimal(amount).quantize(_CENT, rounding=ROUND_HALF_UP)
    if value.is_signed():
        return f"{shape[2]}{abs(value):,.2f}{shape[3]}"
    return f"{shape[0]}{value:,.2f}{shape[1]}"


def date_text(value: date) -> str:
    """A calendar day: '2026-12-01' in English (as planbot always wrote it), Babel's long date
    elsewhere ('2026년 12월 1일')."""
    spoken = i18n.language()
    if spoken == ENGLISH:
        return f"{value:%Y-%m-%d}"
    return _long_date(spoken, value)


def month_name(year: int, month: int) -> str:
    """A billing month: '2026-11' in English, '2026년 11월' in Korean."""
    spoken = i18n.language()
    if spoken == ENGLISH:
        return f"{year}-{month:02d}"
    return _month(spoken, year, month)


def day_range(first: date, last: date) -> str:
    """A run of days: '2026-12-01–03' in English (as planbot always wrote it), Babel's interval
    elsewhere ('12월 1일~3일')."""
    spoken = i18n.language()
    if spoken == ENGLISH:
        return f"{first:%Y-%m-%d}–{last:%d}"
    return _interval(spoken, first, last)


class Words:
    """The sentences for one catalog and billing time zone, in the current language."""

    def __init__(self, catalog: Catalog, tz: ZoneInfo) -> None:
        self.catalog = catalog
        self.tz = tz

    # --- values ----------------------------------------------------------------------------

    @property
    def zone(self) -> str:
        """The billing time zone's name ('Asia/Shanghai')."""
        return self.tz.key

    def day(self, moment: datetime | None) -> str:
        """'2026-12-01' in the billing time zone ('2026년 12월 1일' in Korean), '-' for none
        (plain text)."""
        return date_text(moment.astimezone(self.tz).date()) if moment else "-"

    def local(self, moment: datetime) -> str:
        """'2026-12-01 19:32 (Asia/Shanghai)': a moment in the billing time zone, named (plain
        text, the fallback of its date token); in Babel's words in other languages."""
        there = moment.astimezone(self.tz)
        spoken = i18n.language()
        if spoken == ENGLISH:
            return f"{there:%Y-%m-%d %H:%M} ({self.zone})"
        when = _long_date(spoken, there.date())
        at = _short_time(spoken, there.hour, there.minute)
        return f"{when} {at} ({self.zone})"

    def moment(self, moment: datetime | None) -> str:
        """A moment as a Slack date token ('Dec 1st at 7:32 PM' in each reader's zone), with
        the billing-zone text as its fallback; '-' for none."""
        if moment is None:
            return "-"
        if i18n.language() == ENGLISH:
            return date_token(moment, self.local(moment))
        return date_token(moment, self.local(moment), style="{date_short_pretty} {time}")

    def billing_day(self, day: date) -> str:
        """'2026-12-01 (billing day in Asia/Shanghai)'."""
        return _("{day} (billing day in {zone})").format(day=date_text(day), zone=self.zone)

    def money(self, amount: Decimal) -> str:
        """'$699.00' (Korean: 'US$699.00')."""
        return money_text(amount, self.catalog.currency)

    def plan(self, plan: Plan | str) -> str:
        """A plan's name."""
        return plan_name(plan)

    def value(self, field: Field, value: str | None) -> str:
        """A field's canonical value, as a person reads it (mrkdwn)."""
        if value is None:
            return "-"
        if field is Field.ADDONS:
            config = parse_config_text(value)
            if not config:
                return escape(_("no add-ons"))
            return escape(self.catalog.describe_config(config))
        if field is Field.MONTHLY_PRICE:
            return self.money(Decimal(value))
        if field in (Field.DEV_EXPIRES_AT, Field.PURGE_AT):
            return self.moment(datetime.fromisoformat(value))
        if field is Field.PLAN:
            return escape(plan_name(value))
        if field is Field.STATUS:
            return escape(status_name(value))
        if field is Field.BILLING_MODE:
            return escape(billing_mode_name(value))
        return escape(value)

    def change(self, change: FieldChange) -> tuple[str, str, str]:
        """A changed field: its label, the value before and after (mrkdwn)."""
        return (
            _(FIELD_LABELS[change.field]),
            self.value(change.field, change.before),
            self.value(change.field, change.after),
        )

    # --- previews --------------------------------------------------------------------------

    def summary(self, preview: Preview) -> str:
        """'Upgrade chat (1400000001) from developer to premium' (plain text)."""
        if (
            preview.operation is Operation.UPGRADE
            and preview.app_id is not None
            and preview.plan_before is not None
        ):
            return _("Upgrade {name} ({app_id}) from {before} to {after}").format(
                name=preview.app_name,
                app_id=preview.app_id,
                before=plan_name(preview.plan_before),
                after=plan_name(preview.plan_after),
            )
        return self.title(preview.operation, preview.app_name, preview.app_id)

    def title(self, op: Operation, app_name: str, app_id: str | None) -> str:
        """'Disable chat (1400000001)': what a request asks, in a few words (plain text)."""
        if op is Operation.CREATE or app_id is None:
            return _("Create developer app {name}").format(name=app_name)
        who = f"{app_name} ({app_id})"
        return _(_TITLES[op]).format(who=who) if op in _TITLES else f"{op} {who}"

    def cost(self, cost: CostImpact | None) -> str:
        """What a change does to this month's bill, and the monthly price from next month."""
        if cost is None:
            return ""
        money = self.money
        month = month_name(cost.year, cost.month)
        if cost.delta == 0 and cost.monthly_after == cost.monthly_before:
            return _("No change to the bill for {month} (projected {total}).").format(
                month=month, total=money(cost.after_month_total)
            )
        sign = "+" if cost.delta >= 0 else "-"
        return _(
            "{delta} for the rest of {month}, charged by the billing day in {zone} (bill for "
            "{month}: {before} → {after}, billed on {window}). From next month {monthly} a month."
        ).format(
            delta=sign + money(abs(cost.delta)),
            month=month,
            zone=self.zone,
            before=money(cost.before_month_total),
            after=money(cost.after_month_total),
            window=day_range(cost.billed_from, cost.billed_to),
            monthly=money(cost.monthly_after),
        )

    def notice(self, notice: Notice) -> str:
        """A preview's notice as a sentence (mrkdwn)."""
        code, at = notice.code, notice.at
        if code is NoticeCode.IRREVERSIBLE_UPGRADE:
            return _(
                "Takes effect at once and can't be undone: there is no way back to the developer "
                "plan. To use the developer plan again, create a new app."
            )
        if code is NoticeCode.CONFIG_ONCE_A_MONTH:
            first = at.astimezone(self.tz).date() if at else None
            next_day = self.billing_day(first) if first else "-"
            return _(
                "Takes effect at once. The configuration can be changed once per calendar month "
                "(in {zone}, the billing time zone): the next change is possible from "
                "{next_day}, that is {moment}."
            ).format(zone=self.zone, next_day=next_day, moment=self.moment(at))
        if code is NoticeCode.SERVICE_STOPS:
            return _("The app's service stops at once. Today is still billed.")
        if code is NoticeCode.REENABLE_UNTIL:
            return _(
                "An admin can re-enable it until {moment}; after 90 days disabled its data and "
                "services are purged and can't be recovered."
            ).format(moment=self.moment(at))
        if code is NoticeCode.SERVICE_RESUMES:
            return _(
                "Service resumes at once with its plan and configuration; billing resumes today."
            )
        if code is NoticeCode.ONE_WAY_MIGRATION:
            return _(
                "One-way: once migrated to the current billing mode, the legacy billing mode "
                "can't be restored."
            )
        if code is NoticeCode.REACTIVATES:
            return _("The app is suspended; extending reactivates it at once.")
        return _(
            "A developer app is free and valid for one month (until {moment}); extend it or "
            "upgrade it before then."
        ).format(moment=self.moment(at))

    # --- outcomes --------------------------------------------------------------------------

    def outcome(self, outcome: Outcome) -> str:
        """What became of a request, in one sentence (mrkdwn)."""
        who = f"{escape(outcome.app_name)} ({outcome.app_id})"
        by = mention(outcome.actor)
        if outcome.state == "applied":
            if outcome.operation is Operation.CREATE:
                return _("Created developer app {app}.").format(app=who)
            return _(_APPLIED[outcome.operation]).format(app=who)
        if outcome.state == "cancelled":
            return _("Cancelled; nothing was changed.")
        if outcome.state == "rejected":
            return _("Rejected by {person}; nothing was changed.").format(person=by)
        if outcome.state == "approved":
            return _("Approved by {person}; {progress}.").format(
                person=by, progress=self.progress(outcome.approvals, outcome.approvals_needed)
            )
        if outcome.state == "expired":
            return _(
                "This request expired before it had the approvals it needed ({progress}); "
                "nothing was changed."
            ).format(progress=self.progress(outcome.approvals, outcome.approvals_needed))
        if outcome.state == "refused":
            reason = self.refusal_of(outcome.refusal) if outcome.refusal else ""
            if reason:
                return _("Not applied: {reason}").format(reason=reason)
            return _("Not applied; nothing was changed.")
        return escape(outcome.state)

    def progress(self, approvals: tuple[CoreActor, ...], needed: int) -> str:
        """'1 of 2 approvals: <@A>' (none yet: '0 of 2 approvals')."""
        given = len(approvals)
        if approvals:
            return ngettext(
                "{given} of {needed} approval: {people}",
                "{given} of {needed} approvals: {people}",
                needed,
            ).format(given=given, needed=needed, people=mentions(approvals))
        return ngettext(
            "{given} of {needed} approval", "{given} of {needed} approvals", needed
        ).format(given=given, needed=needed)

    # --- refusals --------------------------------------------------------------------------

    def refusal(self, err: PlanError) -> str:
        """A refusal as the person reads it (mrkdwn): people as mentions, moments as tokens."""
        return self.refusal_of(Refusal.of(err))

    def refusal_of(self, refusal: Refusal) -> str:
        """A refusal fact as the person reads it (mrkdwn)."""
        code, params = refusal.code, refusal.params
        if code == RequestExpired.__name__ and params.get("expired_at"):
            at = _moment(params["expired_at"])
            return _(
                "This request expired on {moment}, so nothing was changed. Run the `/plan` "
                "command again for a fresh preview."
            ).format(moment=self.moment(at))
        if code == ConfigChangeLimitReached.__name__ and params.get("next_allowed"):
            nxt = _moment(params["next_allowed"])
            changed = _moment(params["changed_at"])
            app = _app_ref(str(params.get("app_id", "")), str(params.get("name") or ""))
            return _(
                "App {app} had its configuration changed on {changed}; the configuration can "
                "be changed once per calendar month. The next change is possible from {next_day}, "
                "that is {moment}."
            ).format(
                app=app,
                changed=self.billing_day(changed.date()),
                next_day=self.billing_day(nxt.astimezone(self.tz).date()),
                moment=self.moment(nxt),
            )
        if code == PurgeDeadlinePassed.__name__ and params.get("purge_at"):
            app = _app_ref(str(params.get("app_id", "")), str(params.get("name") or ""))
            return _(
                "App {app} has been disabled for more than 90 days (it could be re-enabled until "
                "{moment}); it can't be recovered. Create a new app with "
                "`/plan create &lt;name&gt;`."
            ).format(app=app, moment=self.moment(_moment(params["purge_at"])))
        if code == RequestAlreadyDecided.__name__ and params.get("by_id"):
            state = str(params.get("state"))
            decided = _DECIDED_BY.get(state)
            if decided is not None:
                return _(decided).format(person=mention(str(params["by_id"])))
        if code == NotYourRequest.__name__ and params.get("requester_id"):
            return _(
                "This request belongs to {person}; only they can confirm or cancel it."
            ).format(person=mention(str(params["requester_id"])))
        if code == AlreadyApproved.__name__:
            left = int(params.get("waiting_for") or 0)
            return ngettext(
                "You already approved this request; it still waits for {n} more approval from "
                "other people.",
                "You already approved this request; it still waits for {n} more approvals from "
                "other people.",
                left,
            ).format(n=left)
        if i18n.language() == ENGLISH:
            return escape(refusal.message)
        return worded_refusal(refusal) or escape(refusal.message)


_DECIDED_BY: dict[str, str] = {
    "applied": N_("This request was already done by {person}; nothing more to do."),
    "cancelled": N_("This request was cancelled by {person}; nothing more to do."),
    "rejected": N_("This request was rejected by {person}; nothing more to do."),
}


def _moment(value: object) -> datetime:
    """A moment from a refusal's parameters (a datetime, or its ISO text once stored)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _app_ref(app_id: str, name: str) -> str:
    """'`name` (`id`)', the name escaped."""
    return f"`{escape(name)}` (`{app_id}`)" if name and name != app_id else f"`{app_id}`"


# --- every refusal, worded from its facts ------------------------------------------------------
#
# The core writes each refusal's message in English (`PlanError.message`), and that is what an
# English reader sees. In any other language the refusal is worded here from its facts, one whole
# message per shape; a refusal whose facts are not enough to word it (a reason this table does
# not know) falls back to the core's message.


def _codes(values: object) -> str:
    """'`a`, `b`' of a list of values."""
    return ", ".join(f"`{v}`" for v in values) if isinstance(values, list | tuple) else ""


_APP_IN_MESSAGE = re.compile(r"[Aa]pp (`[^`]*` \(`[^`]*`\)|`[^`]*`)")


def _app_of(refusal: Refusal) -> str:
    """The app as the refusal names it ('`name` (`id`)'), from its facts or its message."""
    params = refusal.params
    app_id = str(params.get("app_id", ""))
    name = str(params.get("name") or "")
    if name:
        return f"`{name}` (`{app_id}`)" if name != app_id else f"`{app_id}`"
    found = _APP_IN_MESSAGE.search(refusal.message)
    return found.group(1) if found else f"`{app_id}`"


#: the reasons the core gives for refusing to disable an app
_DISABLE_REASONS: dict[str, str] = {
    "it is a developer app; a suspended developer app is left to expire.": N_(
        "App {app} can't be disabled: it is a developer app; a suspended developer app is "
        "left to expire."
    ),
    "disabling is for standard and premium apps; a developer app simply expires at the end of "
    "its validity.": N_(
        "App {app} can't be disabled: disabling is for standard and premium apps; a developer "
        "app simply expires at the end of its validity."
    ),
    "it is already disabled.": N_("App {app} can't be disabled: it is already disabled."),
}

#: a request closed by planbot itself (not by a person)
_CLOSED: dict[str, str] = {
    "expired": N_(
        "This request was expired before it was confirmed; nothing was changed. Run the "
        "`/plan` command again for a fresh preview."
    ),
    "stale": N_(
        "This request was not applied because the app changed since its preview; nothing was "
        "changed. Run the `/plan` command again for a fresh preview."
    ),
    "refused": N_(
        "This request was refused when it was confirmed; nothing was changed. Run the `/plan` "
        "command again for a fresh preview."
    ),
}

_DECIDED: dict[str, str] = {
    "applied": N_("This request was already done; nothing more to do."),
    "cancelled": N_("This request was cancelled; nothing more to do."),
    "rejected": N_("This request was rejected; nothing more to do."),
}

#: what a person may not do, as the core names it in a refusal of a role
_WHAT: dict[str, str] = {
    "create apps": N_("You can't create apps: it needs the `{role}` role."),
    "list apps": N_("You can't list apps: it needs the `{role}` role."),
    "see this app": N_("You can't see this app: it needs the `{role}` role."),
    "see this app's bill": N_("You can't see this app's bill: it needs the `{role}` role."),
    "see this team's bill": N_("You can't see this team's bill: it needs the `{role}` role."),
    "see who has access": N_("You can't see who has access: it needs the `{role}` role."),
    "manage access": N_("You can't manage access: it needs the `{role}` role."),
    "upgrade this app": N_("You can't upgrade this app: it needs the `{role}` role."),
    "configure this app": N_("You can't configure this app: it needs the `{role}` role."),
    "extend this app": N_("You can't extend this app: it needs the `{role}` role."),
    "disable this app": N_("You can't disable this app: it needs the `{role}` role."),
    "enable this app": N_("You can't enable this app: it needs the `{role}` role."),
    "migrate this app": N_("You can't migrate this app: it needs the `{role}` role."),
}

_PAST_PARTICIPLES = {
    "created": "create",
    "upgraded": "upgrade",
    "reconfigured": "configure",
    "extended": "extend",
    "disabled": "disable",
    "re-enabled": "enable",
    "migrated": "migrate",
    "suspended": "suspend",
    "purged": "purge",
}
_CONFIG_DEVELOPER = re.compile(r"^it is on the developer plan\. Upgrade it first with")
_CONFIG_STATUS = re.compile(r"^it is (?P<status>[a-z]+)\. Re-enable it first with")
_PLAN_WITH_STATUS = re.compile(r"^(?P<plan>[a-z]+) \((?P<status>[a-z]+)\)$")


def _plan_words(plan: str) -> str:
    """'premium' or 'developer (suspended)' as the reader reads it."""
    found = _PLAN_WITH_STATUS.match(plan)
    if found:
        return _("{plan} ({status})").format(
            plan=plan_name(found.group("plan")), status=status_name(found.group("status"))
        )
    return plan_name(plan)


def _word_not_found(r: Refusal) -> str | None:
    ref = str(r.params.get("ref", ""))
    near = _codes(r.params.get("suggestions"))
    if near:
        return _(
            "No app `{ref}` found. Did you mean {near}? Use the app id (digits) or its name; "
            "`/plan list` shows the apps you can see."
        ).format(ref=ref, near=near)
    return _(
        "No app `{ref}` found. Use the app id (digits) or its name; `/plan list` shows the apps "
        "you can see."
    ).format(ref=ref)


def _word_ambiguous(r: Refusal) -> str | None:
    return _("Several apps are named `{name}` ({ids}). Use the app id instead.").format(
        name=r.params.get("name", ""), ids=_codes(r.params.get("app_ids"))
    )


def _word_name_taken(r: Refusal) -> str | None:
    return _("An app named `{name}` already exists (`{app_id}`). Choose another name.").format(
        name=r.params.get("name", ""), app_id=r.params.get("app_id", "")
    )


def _word_invalid_name(r: Refusal) -> str | None:
    problem = r.params.get("problem")
    if problem == "empty":
        return _("That app name can't be used: it is empty.")
    if problem == "invisible":
        return _(
            "That app name can't be used: it holds invisible or control characters "
            "({characters}): a name is one line of visible text."
        ).format(characters=r.params.get("characters", ""))
    if problem == "too_long":
        return _("That app name can't be used: it is longer than {limit} characters.").format(
            limit=r.params.get("limit", "")
        )
    if problem == "digits":
        return _("That app name can't be used: it is all digits, which would read as an app id.")
    return None


def _word_purged(r: Refusal) -> str | None:
    return _(
        "App {app} was purged after more than 90 days disabled; its data and services can't be "
        "recovered and it can't be changed. Create a new app with `/plan create <name>`."
    ).format(app=_app_of(r))


def _word_legacy(r: Refusal) -> str | None:
    op = _PAST_PARTICIPLES.get(str(r.params.get("operation", "")))
    if op is None:
        return None
    return _(
        "App {app} is on the legacy billing mode, so it can't be {operation} here: plan "
        "operations belong to the current billing mode. Migrate it first with "
        "`/plan migrate {app_id}` (one-way: legacy billing can't be restored)."
    ).format(
        app=_app_of(r),
        operation=operation_name(op) if i18n.language() != ENGLISH else _(VERBS[Operation(op)]),
        app_id=r.params.get("app_id", ""),
    )


def _word_already_current(r: Refusal) -> str | None:
    return _(
        "App {app} is already on the current billing mode; there is nothing to migrate."
    ).format(app=_app_of(r))


def _word_upgrade(r: Refusal) -> str | None:
    plan = str(r.params.get("plan", ""))
    app_id = r.params.get("app_id", "")
    if plan in ("standard", "premium"):
        return _(
            "App {app} is on the {plan} plan; only developer apps can be upgraded. To switch "
            "between standard and premium use `/plan config {app_id} edition=...`."
        ).format(app=_app_of(r), plan=plan_name(plan), app_id=app_id)
    return _("App {app} is on the {plan} plan; only developer apps can be upgraded.").format(
        app=_app_of(r), plan=_plan_words(plan)
    )


def _word_target(r: Refusal) -> str | None:
    return _(
        "`{target}` is not an upgrade target: choose `standard` or `premium`. There is no way "
        "back to the developer plan; to use it again, create a new app."
    ).format(target=r.params.get("target", ""))


def _word_config(r: Refusal) -> str | None:
    reason = str(r.params.get("reason", ""))
    app_id = r.params.get("app_id", "")
    if _CONFIG_DEVELOPER.match(reason):
        return _(
            "The configuration of app {app} can't be changed: it is on the developer plan. "
            "Upgrade it first with `/plan upgrade {app_id} standard` (or premium)."
        ).format(app=_app_of(r), app_id=app_id)
    found = _CONFIG_STATUS.match(reason)
    if found:
        return _(
            "The configuration of app {app} can't be changed: it is {status}. Re-enable it "
            "first with `/plan enable {app_id}`."
        ).format(app=_app_of(r), status=status_name(found.group("status")), app_id=app_id)
    return None


def _word_limit(r: Refusal) -> str | None:
    return None  # worded with its moments by `Words.refusal_of`


def _word_unknown_addon(r: Refusal) -> str | None:
    return _("There is no add-on `{name}`. Available: {known}.").format(
        name=r.params.get("name", ""), known=_codes(r.params.get("known"))
    )


def _word_addon_value(r: Refusal) -> str | None:
    return _("`{value}` is not a value of `{name}`. Choose one of: {options}.").format(
        value=r.params.get("value", ""),
        name=r.params.get("name", ""),
        options=_codes(r.params.get("options")),
    )


def _word_nothing(r: Refusal) -> str | None:
    if r.params.get("what") != "that configuration":
        return None
    return _("App {app} already has that configuration; nothing to change.").format(app=_app_of(r))


def _word_bill_month(r: Refusal) -> str | None:
    params = r.params
    month = f"{int(params.get('year', 0)):04d}-{int(params.get('month', 0)):02d}"
    problem = params.get("problem")
    if problem == "month":
        reason = _("There is no bill for {month}: a month is 01 to 12.")
    elif problem == "before_1970":
        reason = _("There is no bill for {month}: bills start in 1970.")
    elif problem == "ahead":
        reason = _(
            "There is no bill for {month}: that is more than {n} months ahead ({latest} at the "
            "latest)."
        )
    else:
        return None
    said = reason.format(month=month, n=params.get("ahead", ""), latest=params.get("latest", ""))
    if not params.get("latest"):
        advice = _("Give a month as `YYYY-MM`, or none for this month's bill so far.")
    elif params.get("created"):
        advice = _(
            "Bills can be asked for from {earliest} (the app's creation) to {latest}: give a "
            "month as `YYYY-MM`, or none for this month's bill so far."
        )
    else:
        advice = _(
            "Bills can be asked for from {earliest} to {latest}: give a month as `YYYY-MM`, or "
            "none for this month's bill so far."
        )
    earliest, latest = params.get("earliest", ""), params.get("latest", "")
    return f"{said} {advice.format(earliest=earliest, latest=latest)}"


def _word_busy(r: Refusal) -> str | None:
    return _(BUSY)


def _word_groups_unknown(r: Refusal) -> str | None:
    return _(GROUPS_NOT_YET_KNOWN)


def _word_replayed(r: Refusal) -> str | None:
    return _("This request was already received; nothing was changed.")


def _word_extend(r: Refusal) -> str | None:
    return _(
        "App {app} is on the {plan} plan; only developer apps have a validity to extend. Paid "
        "plans don't expire."
    ).format(app=_app_of(r), plan=_plan_words(str(r.params.get("plan", ""))))


def _word_disable(r: Refusal) -> str | None:
    said = _DISABLE_REASONS.get(str(r.params.get("reason", "")))
    return _(said).format(app=_app_of(r)) if said else None


def _word_enable(r: Refusal) -> str | None:
    return _("App {app} is {status}, not disabled; there is nothing to re-enable.").format(
        app=_app_of(r), status=status_name(r.params.get("status", ""))
    )


def _word_purge_deadline(r: Refusal) -> str | None:
    at = r.params.get("purge_at")
    if not at:
        return None
    return _(
        "App {app} has been disabled for more than 90 days (it could be re-enabled until "
        "{day}); it can't be recovered. Create a new app with `/plan create <name>`."
    ).format(app=_app_of(r), day=date_text(_moment(at).date()))


def _word_request_not_found(r: Refusal) -> str | None:
    return _(
        "That request doesn't exist (it may be from another workspace or was never made). Run "
        "the `/plan` command again."
    )


def _word_expired(r: Refusal) -> str | None:
    return None  # worded with its moment by `Words.refusal_of`


def _word_decided(r: Refusal) -> str | None:
    state = str(r.params.get("state", ""))
    if state in _CLOSED:
        return _(_CLOSED[state])
    by = r.params.get("by")
    if by and state in _DECIDED_BY:
        return _(_DECIDED_BY[state]).format(person=by)
    if state in _DECIDED:
        return _(_DECIDED[state])
    return None


def _word_changed(r: Refusal) -> str | None:
    return _(
        "App {app} changed since this preview was shown, so nothing was applied. Run the "
        "`/plan` command again to see the current state and cost."
    ).format(app=_app_of(r))


def _word_denied(r: Refusal) -> str | None:
    said = _WHAT.get(str(r.params.get("what", "")))
    if said is None:
        return None
    role = r.params.get("role", "")
    return (
        _(said).format(role=role)
        + " "
        + _("Ask a planbot admin to grant it (`/plan access grant @you {role}`).").format(role=role)
    )


def _word_not_yours(r: Refusal) -> str | None:
    return _("This request belongs to {person}; only they can confirm or cancel it.").format(
        person=r.params.get("requester", "")
    )


def _word_awaiting(r: Refusal) -> str | None:
    n = int(r.params.get("approvers") or 1)
    return ngettext(
        "This request needs approval by another person with the needed role, so it can't be "
        "confirmed directly. Approvers use the approval card; the requester can withdraw it.",
        "This request needs approval by {n} other people with the needed role, so it can't be "
        "confirmed directly. Approvers use the approval card; the requester can withdraw it.",
        n,
    ).format(n=n)


def _word_already_approved(r: Refusal) -> str | None:
    return None  # worded by `Words.refusal_of`


def _word_no_approver(r: Refusal) -> str | None:
    n = int(r.params.get("needed") or 1)
    holders = r.params.get("holders") or []
    count = len(holders) if isinstance(holders, list | tuple) else 0
    if count == 0:
        said = ngettext(
            "Nothing was requested: `/plan {operation}` needs approval by another person with "
            "the `{role}` role, and nobody else has that role, so nobody could approve it. Ask a "
            "planbot admin to grant the role to a colleague (`/plan access grant @someone "
            "{role}`), or whoever runs planbot to ask for fewer approvals for this operation.",
            "Nothing was requested: `/plan {operation}` needs approval by {n} other people with "
            "the `{role}` role, and nobody else has that role, so nobody could approve it. Ask a "
            "planbot admin to grant the role to a colleague (`/plan access grant @someone "
            "{role}`), or whoever runs planbot to ask for fewer approvals for this operation.",
            n,
        )
    elif count == 1:
        said = ngettext(
            "Nothing was requested: `/plan {operation}` needs approval by another person with "
            "the `{role}` role, and only 1 other person has that role, so nobody could approve "
            "it. Ask a planbot admin to grant the role to a colleague (`/plan access grant "
            "@someone {role}`), or whoever runs planbot to ask for fewer approvals for this "
            "operation.",
            "Nothing was requested: `/plan {operation}` needs approval by {n} other people with "
            "the `{role}` role, and only 1 other person has that role, so nobody could approve "
            "it. Ask a planbot admin to grant the role to a colleague (`/plan access grant "
            "@someone {role}`), or whoever runs planbot to ask for fewer approvals for this "
            "operation.",
            n,
        )
    else:
        said = ngettext(
            "Nothing was requested: `/plan {operation}` needs approval by another person with "
            "the `{role}` role, and only {count} other people have that role, so nobody could "
            "approve it. Ask a planbot admin to grant the role to a colleague (`/plan access "
            "grant @someone {role}`), or whoever runs planbot to ask for fewer approvals for "
            "this operation.",
            "Nothing was requested: `/plan {operation}` needs approval by {n} other people with "
            "the `{role}` role, and only {count} other people have that role, so nobody could "
            "approve it. Ask a planbot admin to grant the role to a colleague (`/plan access "
            "grant @someone {role}`), or whoever runs planbot to ask for fewer approvals for "
            "this operation.",
            n,
        )
    return said.format(
        operation=r.params.get("operation", ""), role=r.params.get("role", ""), n=n, count=count
    )


def _word_self(r: Refusal) -> str | None:
    return _(
        "You made this request, and it needs approval by someone else; ask a colleague with the "
        "needed role to approve it."
    )


def _word_channel(r: Refusal) -> str | None:
    return _("Plan changes can only be made from the allowed channels. Run it there.")


def _word_csv(r: Refusal) -> str | None:
    problems = r.params.get("problems") or []
    if not isinstance(problems, list | tuple):
        return None
    total = int(r.params.get("total") or len(problems))
    shown = [str(p) for p in problems[:50]]
    head = ngettext(
        "Nothing was imported: {n} problem found.",
        "Nothing was imported: {n} problems found.",
        total,
    ).format(n=total)
    lines = [head, *shown]
    if total > len(shown):
        lines.append(_("... and {n} more").format(n=total - len(shown)))
    return "\n".join(lines)


_WORDERS: dict[str, Callable[[Refusal], str | None]] = {
    "AppNotFound": _word_not_found,
    "AmbiguousAppName": _word_ambiguous,
    "AppNameTaken": _word_name_taken,
    "InvalidAppName": _word_invalid_name,
    "AppPurged": _word_purged,
    "LegacyBillingMode": _word_legacy,
    "AlreadyCurrentBilling": _word_already_current,
    "UpgradeNotAllowed": _word_upgrade,
    "InvalidTargetPlan": _word_target,
    "ConfigChangeNotAllowed": _word_config,
    "ConfigChangeLimitReached": _word_limit,
    "UnknownAddon": _word_unknown_addon,
    "InvalidAddonValue": _word_addon_value,
    "NothingToChange": _word_nothing,
    "InvalidBillMonth": _word_bill_month,
    "ExtendNotAllowed": _word_extend,
    "DisableNotAllowed": _word_disable,
    "EnableNotAllowed": _word_enable,
    "PurgeDeadlinePassed": _word_purge_deadline,
    "RequestNotFound": _word_request_not_found,
    "RequestExpired": _word_expired,
    "RequestAlreadyDecided": _word_decided,
    "AppChangedSincePreview": _word_changed,
    "PermissionDenied": _word_denied,
    "NotYourRequest": _word_not_yours,
    "AwaitingApproval": _word_awaiting,
    "AlreadyApproved": _word_already_approved,
    "NoApproverAvailable": _word_no_approver,
    "SelfApprovalNotAllowed": _word_self,
    "ChannelNotAllowed": _word_channel,
    "CsvImportError": _word_csv,
    "DatabaseBusy": _word_busy,
    "GroupsNotYetKnown": _word_groups_unknown,
    "RequestReplayed": _word_replayed,
}


def worded_refusal(refusal: Refusal) -> str | None:
    """A refusal worded from its facts in the current language, escaped for mrkdwn (None when
    its facts are not enough: the core's English message is then shown)."""
    worder = _WORDERS.get(refusal.code)
    said = worder(refusal) if worder is not None else None
    return escape(said) if said else None


def refusal_text(refusal: Refusal) -> str:
    """A refusal without people or moments in tokens (where no `Words` is at hand): the core's
    message in English, worded from its facts in other languages (escaped)."""
    if i18n.language() == ENGLISH:
        return escape(refusal.message)
    return worded_refusal(refusal) or escape(refusal.message)
