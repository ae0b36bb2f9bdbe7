"""How planbot words the core's facts for people (plain text; the builders escape it).

The core says what changes and why a click was refused as facts (`core.facts`, the `PlanError`
tree); this is where they become sentences. Dates are shown by the day in the billing time zone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from core import (
    Catalog,
    CostImpact,
    Field,
    FieldChange,
    Notice,
    NoticeCode,
    Operation,
    Outcome,
    Plan,
    Preview,
    format_money,
    parse_config_text,
)

__all__ = [
    "CONNECTOR_OFF",
    "FIELD_LABELS",
    "FIGURE_LABELS",
    "OVERAGE_PER_MAU",
    "VERBS",
    "Words",
]

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


class Words:
    """The sentences of one language (English) for one catalog and billing time zone."""

    def __init__(self, catalog: Catalog, tz: ZoneInfo) -> None:
        self.catalog = catalog
        self.tz = tz

    # --- values ----------------------------------------------------------------------------

    def day(self, moment: datetime | None) -> str:
        """'2026-12-01' in the billing time zone, '-' for none."""
        return moment.astimezone(self.tz).strftime("%Y-%m-%d") if moment else "-"

    def money(self, amount: Decimal) -> str:
        """'$699.00'."""
        return format_money(amount, self.catalog.currency)

    def value(self, field: Field, value: str | None) -> str:
        """A field's canonical value, as a person reads it."""
        if value is None:
            return "-"
        if field is Field.ADDONS:
            return self.catalog.describe_config(parse_config_text(value))
        if field is Field.MONTHLY_PRICE:
            return self.money(Decimal(value))
        if field in (Field.DEV_EXPIRES_AT, Field.PURGE_AT):
            return self.day(datetime.fromisoformat(value))
        return value

    def change(self, change: FieldChange) -> tuple[str, str, str]:
        """A changed field: its label, the value before and after."""
        return (
            FIELD_LABELS[change.field],
            self.value(change.field, change.before),
            self.value(change.field, change.after),
        )

    # --- previews --------------------------------------------------------------------------

    def summary(self, preview: Preview) -> str:
        """'Upgrade chat (1400000001) from developer to premium'."""
        title = self.title(preview.operation, preview.app_name, preview.app_id)
        if preview.operation is Operation.UPGRADE and preview.app_id is not None:
            return f"{title} from {preview.plan_before} to {preview.plan_after}"
        return title

    def title(self, op: Operation, app_name: str, app_id: str | None) -> str:
        """'Disable chat (1400000001)': what a request asks, in a few words."""
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
            f"{sign}{money(abs(cost.delta))} for the rest of {month}, charged by the day (bill "
            f"for {month}: {money(cost.before_month_total)} → {money(cost.after_month_total)}, "
            f"{window}). From next month {money(cost.monthly_after)} a month."
        )

    def notice(self, notice: Notice) -> str:
        """A preview's notice as a sentence."""
        code, at = notice.code, notice.at
        return {
            NoticeCode.IRREVERSIBLE_UPGRADE: "Takes effect at once and can't be undone: there is "
            "no way back to the developer plan. To use the developer plan again, create a new app.",
            NoticeCode.CONFIG_ONCE_A_MONTH: "Takes effect at once. The configuration can be "
            f"changed once per calendar month: the next change is possible from {self.day(at)}.",
            NoticeCode.SERVICE_STOPS: "The app's service stops at once. Today is still billed.",
            NoticeCode.REENABLE_UNTIL: f"An admin can re-enable it until {self.day(at)}; after 90 "
            "days disabled its data and services are purged and can't be recovered.",
            NoticeCode.SERVICE_RESUMES: "Service resumes at once with its plan and configuration; "
            "billing resumes today.",
            NoticeCode.ONE_WAY_MIGRATION: "One-way: once migrated to the current billing mode, "
            "the legacy billing mode can't be restored.",
            NoticeCode.REACTIVATES: "The app is suspended; extending reactivates it at once.",
            NoticeCode.DEVELOPER_VALID_UNTIL: "A developer app is free and valid for one month "
            f"(until {self.day(at)}); extend it or upgrade it before then.",
        }[code]

    # --- outcomes --------------------------------------------------------------------------

    def outcome(self, outcome: Outcome) -> str:
        """What became of a request, in one sentence."""
        if outcome.state == "applied":
            who = f"{outcome.app_name} ({outcome.app_id})"
            if outcome.operation is Operation.CREATE:
                return f"Created developer app {who}."
            return f"{who} {VERBS[outcome.operation]}."
        if outcome.state == "cancelled":
            return "Cancelled; nothing was changed."
        if outcome.state == "rejected":
            return f"Rejected by {outcome.actor.label}."
        if outcome.state == "approved":
            left = outcome.approvals_needed - len(outcome.approvals)
            return f"Approved by {outcome.actor.label}; {left} more approval(s) needed."
        return outcome.state

    def plan(self, plan: Plan | str) -> str:
        """A plan's name."""
        return str(plan)
