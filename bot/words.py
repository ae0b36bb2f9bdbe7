"""How planbot words the core's facts for people, in Slack mrkdwn.

The core says what changes and why a click was refused as facts (`core.facts`, the `PlanError`
tree); this is where they become sentences. Every sentence is whole, with named values, so that
it can be translated as one piece.

What these methods return is mrkdwn, ready to put in a section: user text in it (app names) is
escaped here; people are named by mention (`<@U…>`), so each reader sees the name they know; a
moment is a Slack date token, so each reader sees it in their own time zone (its fallback, in
the billing time zone, names that zone). Days that are billing days (a bill's dates, the month a
change counts in) are shown as dates with the billing time zone named.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.kit import date_token, escape
from core import Actor as CoreActor
from core import (
    AlreadyApproved,
    Catalog,
    ConfigChangeLimitReached,
    CostImpact,
    DatabaseBusy,
    Field,
    FieldChange,
    GroupsNotYetKnown,
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
    format_money,
    parse_config_text,
)

__all__ = [
    "BUSY",
    "CONNECTOR_OFF",
    "FIELD_LABELS",
    "FIGURE_LABELS",
    "GROUPS_NOT_YET_KNOWN",
    "OVERAGE_PER_MAU",
    "VERBS",
    "Words",
    "mention",
]

#: a request the database did not answer in time (`DatabaseBusy`)
BUSY = (
    "planbot is busy right now (the database did not answer in time); nothing was changed — "
    "try again in a moment"
)
#: a person whose user groups (which may give them a role) have not been read yet
GROUPS_NOT_YET_KNOWN = (
    "planbot is still reading your user groups from Slack (they may give you a role here); "
    "nothing was changed — try again in a few seconds"
)

#: the past participle of each operation ("upgraded"), as messages use it
VERBS: dict[Operation, str] = {
    Operation.CREATE: "created",
    Operation.UPGRADE: "upgraded",
    Operation.CONFIGURE: "reconfigured",
    Operation.EXTEND: "extended",
    Operation.DISABLE: "disabled",
    Operation.ENABLE: "re-enabled",
    Operation.MIGRATE: "migrated",
    Operation.SUSPEND: "suspended",
    Operation.PURGE: "purged",
}

FIELD_LABELS: dict[Field, str] = {
    Field.PLAN: "Plan",
    Field.STATUS: "Status",
    Field.BILLING_MODE: "Billing mode",
    Field.ADDONS: "Add-ons",
    Field.MONTHLY_PRICE: "Monthly price",
    Field.DEV_EXPIRES_AT: "Developer validity until",
    Field.PURGE_AT: "Purged after",
}

#: the provider's daily figures, as `/plan usage` names them
FIGURE_LABELS: dict[str, str] = {
    "active_users": "active users",
    "logins": "logins",
    "peak_online": "peak online",
    "registered_users": "registered users",
    "groups": "groups",
    "messages": "messages sent",
}
#: what every surface says when the provider connector has no credentials
CONNECTOR_OFF = (
    "the provider connector is off: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY"
)
#: the provider's price for each monthly active user above a paid plan's free ones (December 2022)
OVERAGE_PER_MAU = "US$0.015"


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
    return escape(name or user_id or "someone")


def mentions(actors: tuple[CoreActor, ...] | list[CoreActor]) -> str:
    """'<@A>, <@B>'."""
    return ", ".join(mention(a) for a in actors)


def plural(count: int, one: str, many: str) -> str:
    """'1 approval', '2 approvals'."""
    return f"{count} {one if count == 1 else many}"


class Words:
    """The sentences of one language (English) for one catalog and billing time zone."""

    def __init__(self, catalog: Catalog, tz: ZoneInfo) -> None:
        self.catalog = catalog
        self.tz = tz

    # --- values ----------------------------------------------------------------------------

    @property
    def zone(self) -> str:
        """The billing time zone's name ('Asia/Shanghai')."""
        return self.tz.key

    def day(self, moment: datetime | None) -> str:
        """'2026-12-01' in the billing time zone, '-' for none (plain text)."""
        return moment.astimezone(self.tz).strftime("%Y-%m-%d") if moment else "-"

    def local(self, moment: datetime) -> str:
        """'2026-12-01 19:32 (Asia/Shanghai)': a moment in the billing time zone, named (plain
        text, the fallback of its date token)."""
        return f"{moment.astimezone(self.tz):%Y-%m-%d %H:%M} ({self.zone})"

    def moment(self, moment: datetime | None) -> str:
        """A moment as a Slack date token ('Dec 1st at 7:32 PM' in each reader's zone), with
        the billing-zone text as its fallback; '-' for none."""
        if moment is None:
            return "-"
        return date_token(moment, self.local(moment))

    def billing_day(self, day: date) -> str:
        """'2026-12-01 (billing day in Asia/Shanghai)'."""
        return f"{day:%Y-%m-%d} (billing day in {self.zone})"

    def money(self, amount: Decimal) -> str:
        """'$699.00'."""
        return format_money(amount, self.catalog.currency)

    def value(self, field: Field, value: str | None) -> str:
        """A field's canonical value, as a person reads it (mrkdwn)."""
        if value is None:
            return "-"
        if field is Field.ADDONS:
            return escape(self.catalog.describe_config(parse_config_text(value)))
        if field is Field.MONTHLY_PRICE:
            return self.money(Decimal(value))
        if field in (Field.DEV_EXPIRES_AT, Field.PURGE_AT):
            return self.moment(datetime.fromisoformat(value))
        return escape(value)

    def change(self, change: FieldChange) -> tuple[str, str, str]:
        """A changed field: its label, the value before and after (mrkdwn)."""
        return (
            FIELD_LABELS[change.field],
            self.value(change.field, change.before),
            self.value(change.field, change.after),
        )

    # --- previews --------------------------------------------------------------------------

    def summary(self, preview: Preview) -> str:
        """'Upgrade chat (1400000001) from developer to premium' (plain text)."""
        title = self.title(preview.operation, preview.app_name, preview.app_id)
        if preview.operation is Operation.UPGRADE and preview.app_id is not None:
            return f"{title} from {preview.plan_before} to {preview.plan_after}"
        return title

    def title(self, op: Operation, app_name: str, app_id: str | None) -> str:
        """'Disable chat (1400000001)': what a request asks, in a few words (plain text)."""
        if op is Operation.CREATE or app_id is None:
            return f"Create developer app {app_name}"
        who = f"{app_name} ({app_id})"
        return {
            Operation.UPGRADE: f"Upgrade {who}",
            Operation.CONFIGURE: f"Change the configuration of {who}",
            Operation.EXTEND: f"Extend the developer validity of {who}",
            Operation.DISABLE: f"Disable {who}",
            Operation.ENABLE: f"Re-enable {who}",
            Operation.MIGRATE: f"Migrate {who} from legacy to current billing",
        }.get(op, f"{op} {who}")

    def cost(self, cost: CostImpact | None) -> str:
        """What a change does to this month's bill, and the monthly price from next month."""
        if cost is None:
            return ""
        money = self.money
        window = f"billed on {cost.billed_from:%Y-%m-%d}–{cost.billed_to:%d}"
        month = f"{cost.year}-{cost.month:02d}"
        if cost.delta == 0 and cost.monthly_after == cost.monthly_before:
            return f"No change to the bill for {month} (projected {money(cost.after_month_total)})."
        sign = "+" if cost.delta >= 0 else "-"
        return (
            f"{sign}{money(abs(cost.delta))} for the rest of {month}, charged by the billing day "
            f"in {self.zone} (bill for {month}: {money(cost.before_month_total)} → "
            f"{money(cost.after_month_total)}, {window}). From next month "
            f"{money(cost.monthly_after)} a month."
        )

    def notice(self, notice: Notice) -> str:
        """A preview's notice as a sentence (mrkdwn)."""
        code, at = notice.code, notice.at
        if code is NoticeCode.IRREVERSIBLE_UPGRADE:
            return (
                "Takes effect at once and can't be undone: there is no way back to the developer "
                "plan. To use the developer plan again, create a new app."
            )
        if code is NoticeCode.CONFIG_ONCE_A_MONTH:
            first = at.astimezone(self.tz).date() if at else None
            next_day = self.billing_day(first) if first else "-"
            return (
                "Takes effect at once. The configuration can be changed once per calendar month "
                f"(in {self.zone}, the billing time zone): the next change is possible from "
                f"{next_day}, that is {self.moment(at)}."
            )
        if code is NoticeCode.SERVICE_STOPS:
            return "The app's service stops at once. Today is still billed."
        if code is NoticeCode.REENABLE_UNTIL:
            return (
                f"An admin can re-enable it until {self.moment(at)}; after 90 days disabled its "
                "data and services are purged and can't be recovered."
            )
        if code is NoticeCode.SERVICE_RESUMES:
            return "Service resumes at once with its plan and configuration; billing resumes today."
        if code is NoticeCode.ONE_WAY_MIGRATION:
            return (
                "One-way: once migrated to the current billing mode, the legacy billing mode "
                "can't be restored."
            )
        if code is NoticeCode.REACTIVATES:
            return "The app is suspended; extending reactivates it at once."
        return (
            "A developer app is free and valid for one month (until "
            f"{self.moment(at)}); extend it or upgrade it before then."
        )

    # --- outcomes --------------------------------------------------------------------------

    def outcome(self, outcome: Outcome) -> str:
        """What became of a request, in one sentence (mrkdwn)."""
        who = f"{escape(outcome.app_name)} ({outcome.app_id})"
        by = mention(outcome.actor)
        if outcome.state == "applied":
            if outcome.operation is Operation.CREATE:
                return f"Created developer app {who}."
            return f"{who} {VERBS[outcome.operation]}."
        if outcome.state == "cancelled":
            return "Cancelled; nothing was changed."
        if outcome.state == "rejected":
            return f"Rejected by {by}; nothing was changed."
        if outcome.state == "approved":
            return (
                f"Approved by {by}; {self.progress(outcome.approvals, outcome.approvals_needed)}."
            )
        if outcome.state == "expired":
            return (
                "This request expired before it had the approvals it needed "
                f"({self.progress(outcome.approvals, outcome.approvals_needed)}); nothing was "
                "changed."
            )
        if outcome.state == "refused":
            reason = self.refusal_of(outcome.refusal) if outcome.refusal else ""
            return f"Not applied: {reason}" if reason else "Not applied; nothing was changed."
        return escape(outcome.state)

    def progress(self, approvals: tuple[CoreActor, ...], needed: int) -> str:
        """'1 of 2 approvals: <@A>' (none yet: '0 of 2 approvals')."""
        given = len(approvals)
        counted = f"{given} of {plural(needed, 'approval', 'approvals')}"
        return f"{counted}: {mentions(approvals)}" if approvals else counted

    def plan(self, plan: Plan | str) -> str:
        """A plan's name."""
        return str(plan)

    # --- refusals --------------------------------------------------------------------------

    def refusal(self, err: PlanError) -> str:
        """A refusal as the person reads it (mrkdwn): people as mentions, moments as tokens."""
        return self.refusal_of(Refusal.of(err))

    def refusal_of(self, refusal: Refusal) -> str:
        """A refusal fact as the person reads it (mrkdwn)."""
        code, params = refusal.code, refusal.params
        if code == DatabaseBusy.__name__:
            return BUSY
        if code == GroupsNotYetKnown.__name__:
            return GROUPS_NOT_YET_KNOWN
        if code == RequestExpired.__name__ and params.get("expired_at"):
            at = _moment(params["expired_at"])
            return (
                f"This request expired on {self.moment(at)}, so nothing was changed. Run the "
                "`/plan` command again for a fresh preview."
            )
        if code == ConfigChangeLimitReached.__name__ and params.get("next_allowed"):
            nxt = _moment(params["next_allowed"])
            changed = _moment(params["changed_at"])
            app = _app_ref(str(params.get("app_id", "")), str(params.get("name") or ""))
            return (
                f"App {app} had its configuration changed on {self.billing_day(changed.date())}; "
                "the configuration can be changed once per calendar month. The next change is "
                f"possible from {self.billing_day(nxt.astimezone(self.tz).date())}, that is "
                f"{self.moment(nxt)}."
            )
        if code == PurgeDeadlinePassed.__name__ and params.get("purge_at"):
            app = _app_ref(str(params.get("app_id", "")), str(params.get("name") or ""))
            return (
                f"App {app} has been disabled for more than 90 days (it could be re-enabled until "
                f"{self.moment(_moment(params['purge_at']))}); it can't be recovered. Create a "
                "new app with `/plan create &lt;name&gt;`."
            )
        if code == RequestAlreadyDecided.__name__ and params.get("by_id"):
            state = str(params.get("state"))
            word = {"applied": "already done", "cancelled": "cancelled", "rejected": "rejected"}
            if state in word:
                return (
                    f"This request was {word[state]} by {mention(str(params['by_id']))}; "
                    "nothing more to do."
                )
        if code == NotYourRequest.__name__ and params.get("requester_id"):
            return (
                f"This request belongs to {mention(str(params['requester_id']))}; only they can "
                "confirm or cancel it."
            )
        if code == AlreadyApproved.__name__:
            left = int(params.get("waiting_for") or 0)
            return (
                "You already approved this request; it still waits for "
                f"{plural(left, 'more approval', 'more approvals')} from other people."
            )
        return escape(refusal.message)


def _moment(value: object) -> datetime:
    """A moment from a refusal's parameters (a datetime, or its ISO text once stored)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _app_ref(app_id: str, name: str) -> str:
    """'`name` (`id`)', the name escaped."""
    return f"`{escape(name)}` (`{app_id}`)" if name and name != app_id else f"`{app_id}`"
