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

from bot.kit import Message, context, escape, message, section
from bot.tables import cell, fit, pad
from bot.words import FIGURE_LABELS, OVERAGE_PER_MAU, Words
from core import (
    DriftChanged,
    ReconciliationDifferences,
    UsageLevelReached,
    format_money,
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
    lines = [":mag: *The provider's account and planbot's apps have drifted.*"]
    if notice.new_unknown:
        lines.append(
            f"New in the account, unknown to planbot ({len(notice.new_unknown)}): "
            f"{_ids(notice.new_unknown)}"
        )
    if notice.new_missing:
        lines.append(
            f"Known to planbot, no longer in the account ({len(notice.new_missing)}): "
            f"{_ids(notice.new_missing)}"
        )
    if notice.resolved:
        lines.append(f"Resolved ({len(notice.resolved)}): {_ids(notice.resolved)}")
    if not unknown and not missing:
        lines[0] = ":white_check_mark: *The provider's account and planbot's apps agree again.*"
    else:
        lines.append(
            f"Now {len(unknown)} unknown and {len(missing)} missing in all "
            f"(`planbot provider sync` lists them)."
        )
    blocks = [section("\n".join(lines))]
    if unknown:
        blocks.append(
            context(
                "Adopt an unknown app with the importer (`planbot apps import apps.csv`); an app "
                "the account no longer lists may have been deleted in the console."
            )
        )
    new = len(notice.new_unknown) + len(notice.new_missing)
    text = (
        f"Provider drift: {len(unknown)} unknown, {len(missing)} missing "
        f"({new} new, {len(notice.resolved)} resolved)."
    )
    return message(text, blocks)


def usage_level_message(notice: UsageLevelReached, words: Words) -> Message:
    """An app's figure reached 80% or 100% of its plan's limit this month."""
    app_id = escape(notice.app_id)
    name = escape(notice.app_name or notice.app_id)
    value, limit, level = notice.value, notice.limit, notice.level
    plan = escape(words.plan(notice.plan))
    month = escape(notice.month)
    figure = FIGURE_LABELS.get(notice.figure, notice.figure.replace("_", " "))
    busiest = f"{value:,} {figure} on {notice.day:%Y-%m-%d}"
    if level >= 100 and notice.paid:
        head = f":rotating_light: *{name}* (`{app_id}`): certain overage in {month}."
        body = (
            f"Its busiest day had {busiest}, above the {plan} plan's {limit:,} free monthly "
            f"active users, so the month has at least {notice.over:,} more active users than are "
            f"free. The provider bills them after the month ({OVERAGE_PER_MAU} each in its "
            "December 2022 list)."
        )
    elif level >= 100:
        head = f":rotating_light: *{name}* (`{app_id}`) reached the {plan} plan's limit."
        body = (
            f"Its busiest day in {month} had {busiest}; the {plan} plan allows {limit:,} monthly "
            f"active users. To serve more, upgrade it (`/plan upgrade {app_id} standard`)."
        )
    else:
        head = f":warning: *{name}* (`{app_id}`) is at {level}% of its plan's limit in {month}."
        body = (
            f"Its busiest day had {busiest}, {value * 100 // max(limit, 1)}% of the {plan} "
            f"plan's {limit:,} free monthly active users. A month's active users are at least "
            "its busiest day's."
        )
    blocks = [
        section(f"{head}\n{body}"),
        context(
            f"From the provider's daily figures · `/plan usage {app_id}` shows them · planbot "
            "warns once at 80% and once at 100% of a limit each month."
        ),
    ]
    text = f"{name} ({app_id}): {value:,} {figure} in a day, {level}% of {limit:,}."
    return message(text, blocks)


def reconciliation_message(notice: ReconciliationDifferences, words: Words) -> Message:
    """A month's bill differs from planbot's charges: per app, both amounts and the difference."""
    month = escape(notice.month)
    currency = notice.currency
    lines = notice.lines
    rows = [
        pad("app", _NAME)
        + "".join(pad(h, _AMOUNT, right=True) for h in ("planbot", "billed", "difference"))
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
    head = (
        f":receipt: *The provider's bill for {month} differs from planbot's charges* for "
        f"{len(lines)} of {notice.apps_compared} apps (by more than a cent)."
    )
    blocks = [section(head), section(table)]
    more = len(lines) - _LISTED
    if more > 0:
        blocks.append(context(f"…and {more} more (`planbot provider reconcile {month}`)."))
    blocks.append(
        context(
            "Billed is the provider's amount after discounts for the resource whose id is the "
            "SDKAppID; a positive difference means the provider billed more. Check the plan "
            f"history (`/plan bill <app> {month}`) and the catalog's prices."
        )
    )
    text = f"The provider's bill for {month} differs from planbot's charges for {len(lines)} apps."
    return message(text, blocks)


#: the builders `bot.notices` adds to its table
BUILDERS: dict[type, Callable[[Any, Words], Message]] = {
    DriftChanged: drift_message,
    UsageLevelReached: usage_level_message,
    ReconciliationDifferences: reconciliation_message,
}


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(f"`{escape(i)}`" for i in ids[:_LISTED])
    return shown + (f" and {len(ids) - _LISTED} more" if len(ids) > _LISTED else "")


def _money(amount: Decimal, currency: str, *, sign: bool = False) -> str:
    text = format_money(abs(amount), currency)
    if amount < 0:
        return "-" + text
    return ("+" + text) if sign and amount > 0 else text
