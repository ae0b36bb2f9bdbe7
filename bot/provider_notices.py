"""The provider connector's channel messages, rendered when delivered (registered in
`bot.notices`'s table of builders).

- `DriftChanged` (audit channel): the account's SDKAppIDs and planbot's apps drifted apart.
- `UsageLevelReached` (owner channel): a figure reached 80% or 100% of the plan's limit.
- `ReconciliationDifferences` (audit channel): a month's bill differs from planbot's charges.

Built from `bot.kit`'s primitives; user-supplied text (app names) is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from bot.i18n import _, money, number
from bot.kit import Message, context, escape, message, section
from bot.names import figure_name, plan_name
from bot.tables import cell, fit, pad
from bot.words import OVERAGE_PER_MAU, Words
from core import (
    DriftChanged,
    ReconciliationDifferences,
    UsageLevelReached,
)

__all__ = [
    "BUILDERS",
    "drift_message",
    "reconciliation_message",
    "usage_level_message",
]

#: at most this many ids or apps are listed in one message
_LISTED = 40
_NAME = 24  # the app column of the reconciliation table
_AMOUNT = 12


def drift_message(notice: DriftChanged, words: Words) -> Message:
    """The inventory drift changed: what is new, what was resolved, and how to adopt an app."""
    unknown, missing = notice.unknown, notice.missing
    lines = [":mag: *" + _("The provider's account and planbot's apps have drifted.") + "*"]
    if notice.new_unknown:
        lines.append(
            _("New in the account, unknown to planbot ({n}): {ids}").format(
                n=number(len(notice.new_unknown)), ids=_ids(notice.new_unknown)
            )
        )
    if notice.new_missing:
        lines.append(
            _("Known to planbot, no longer in the account ({n}): {ids}").format(
                n=number(len(notice.new_missing)), ids=_ids(notice.new_missing)
            )
        )
    if notice.resolved:
        lines.append(
            _("Resolved ({n}): {ids}").format(
                n=number(len(notice.resolved)), ids=_ids(notice.resolved)
            )
        )
    if not unknown and not missing:
        agree = _("The provider's account and planbot's apps agree again.")
        lines[0] = f":white_check_mark: *{agree}*"
    else:
        lines.append(
            _(
                "Now {unknown} unknown and {missing} missing in all "
                "(`planbot provider sync` lists them)."
            ).format(unknown=number(len(unknown)), missing=number(len(missing)))
        )
    blocks = [section("\n".join(lines))]
    if unknown:
        blocks.append(
            context(
                _(
                    "Adopt an unknown app with the importer (`planbot apps import apps.csv`); an "
                    "app the account no longer lists may have been deleted in the console."
                )
            )
        )
    new = len(notice.new_unknown) + len(notice.new_missing)
    text = _(
        "Provider drift: {unknown} unknown, {missing} missing ({new} new, {resolved} resolved)."
    ).format(
        unknown=number(len(unknown)),
        missing=number(len(missing)),
        new=number(new),
        resolved=number(len(notice.resolved)),
    )
    return message(text, blocks)


def usage_level_message(notice: UsageLevelReached, words: Words) -> Message:
    """An app's figure reached 80% or 100% of its plan's limit this month."""
    app_id = escape(notice.app_id)
    name = escape(notice.app_name or notice.app_id)
    value, limit, level = notice.value, notice.limit, notice.level
    plan = escape(plan_name(notice.plan))
    month = escape(notice.month)
    figure = figure_name(notice.figure)
    busiest = _("{value} {figure} on {day}").format(
        value=number(value), figure=figure, day=f"{notice.day:%Y-%m-%d}"
    )
    values = {
        "name": name,
        "app_id": app_id,
        "month": month,
        "busiest": busiest,
        "plan": plan,
        "limit": number(limit),
        "over": number(notice.over),
        "price": OVERAGE_PER_MAU,
        "level": level,
        "percent": value * 100 // max(limit, 1),
    }
    if level >= 100 and notice.paid:
        head = ":rotating_light: " + _("*{name}* (`{app_id}`): certain overage in {month}.")
        body = _(
            "Its busiest day had {busiest}, above the {plan} plan's {limit} free monthly "
            "active users, so the month has at least {over} more active users than are "
            "free. The provider bills them after the month ({price} each in its "
            "December 2022 list)."
        )
    elif level >= 100:
        head = ":rotating_light: " + _("*{name}* (`{app_id}`) reached the {plan} plan's limit.")
        body = _(
            "Its busiest day in {month} had {busiest}; the {plan} plan allows {limit} monthly "
            "active users. To serve more, upgrade it (`/plan upgrade {app_id} standard`)."
        )
    else:
        head = ":warning: " + _(
            "*{name}* (`{app_id}`) is at {level}% of its plan's limit in {month}."
        )
        body = _(
            "Its busiest day had {busiest}, {percent}% of the {plan} plan's {limit} free "
            "monthly active users. A month's active users are at least its busiest day's."
        )
    blocks = [
        section(head.format(**values) + "\n" + body.format(**values)),
        context(
            _(
                "From the provider's daily figures · `/plan usage {app_id}` shows them · planbot "
                "warns once at 80% and once at 100% of a limit each month."
            ).format(app_id=app_id)
        ),
    ]
    text = _("{name} ({app_id}): {value} {figure} in a day, {level}% of {limit}.").format(
        name=name,
        app_id=app_id,
        value=number(value),
        figure=figure,
        level=level,
        limit=number(limit),
    )
    return message(text, blocks)


def reconciliation_message(notice: ReconciliationDifferences, words: Words) -> Message:
    """A month's bill differs from planbot's charges: per app, both amounts and the difference."""
    month = escape(notice.month)
    currency = notice.currency
    lines = notice.lines
    rows = [
        pad(_("app"), _NAME)
        + "".join(pad(h, _AMOUNT, right=True) for h in (_("planbot"), _("billed"), _("difference")))
    ]
    for line in lines[:_LISTED]:
        label = fit(cell(f"{line.name} {line.app_id}".strip()), _NAME - 1)
        rows.append(
            pad(label, _NAME)
            + pad(_money(line.ours, currency), _AMOUNT, right=True)
            + pad(_money(line.billed, currency), _AMOUNT, right=True)
            + pad(_money(line.difference, currency, sign=True), _AMOUNT, right=True)
        )
    table = "```\n" + "\n".join(escape(r) for r in rows) + "\n```"
    head = _(
        "*The provider's bill for {month} differs from planbot's charges* for "
        "{n} of {compared} apps (by more than a cent)."
    ).format(month=month, n=number(len(lines)), compared=number(notice.apps_compared))
    blocks = [section(f":receipt: {head}"), section(table)]
    more = len(lines) - _LISTED
    if more > 0:
        blocks.append(
            context(
                _("…and {n} more (`planbot provider reconcile {month}`).").format(
                    n=number(more), month=month
                )
            )
        )
    blocks.append(
        context(
            _(
                "Billed is the provider's amount after discounts for the resource whose id is "
                "the SDKAppID; a positive difference means the provider billed more. Check the "
                "plan history (`/plan bill <app> {month}`) and the catalog's prices."
            ).format(month=month)
        )
    )
    text = _("The provider's bill for {month} differs from planbot's charges for {n} apps.").format(
        month=month, n=number(len(lines))
    )
    return message(text, blocks)


#: the builders `bot.notices` adds to its table
BUILDERS: dict[type, Callable[[Any, Words], Message]] = {
    DriftChanged: drift_message,
    UsageLevelReached: usage_level_message,
    ReconciliationDifferences: reconciliation_message,
}


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(f"`{escape(i)}`" for i in ids[:_LISTED])
    if len(ids) > _LISTED:
        return _("{ids} and {more} more").format(ids=shown, more=number(len(ids) - _LISTED))
    return shown


def _money(amount: Decimal, currency: str, *, sign: bool = False) -> str:
    text = money(abs(amount), currency)
    if amount < 0:
        return "-" + text
    return ("+" + text) if sign and amount > 0 else text
