"""Slack messages for the provider connector's outbox entries (pure: payload in, message out).

- `provider_drift` (audit channel): the account's SDKAppIDs and planbot's apps drifted apart.
- `provider_usage_level` (owner channel): a figure reached 80% or 100% of the plan's limit.
- `provider_reconciliation` (audit channel): a month's bill differs from planbot's charges.

`provider_message` gives None for any other type. User-supplied text is escaped; missing fields
never raise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.grammar import escape_mrkdwn as escape

__all__ = [
    "drift_message",
    "provider_message",
    "reconciliation_message",
    "usage_level_message",
]

Message = dict[str, Any]
_APP_ID = re.compile(r"^[0-9]{1,20}$")
_LISTED = 40
_MAX_SECTION = 3000
#: the provider's price for each monthly active user above a paid plan's free ones (December 2022)
OVERAGE_PER_MAU = "US$0.015"


def provider_message(payload: Mapping[str, Any]) -> Message | None:
    """The Slack message of a provider connector entry, or None when the payload is not one."""
    builder = _BUILDERS.get(str(payload.get("type", "")))
    return builder(payload) if builder is not None else None


def drift_message(payload: Mapping[str, Any]) -> Message:
    """The inventory drift changed: what is new, what was resolved, and how to adopt an app."""
    unknown, missing = _ids(payload.get("unknown")), _ids(payload.get("missing"))
    new_unknown, new_missing = _ids(payload.get("new_unknown")), _ids(payload.get("new_missing"))
    resolved = _ids(payload.get("resolved"))
    lines = [":mag: *The provider's account and planbot's apps have drifted.*"]
    if new_unknown:
        lines.append(
            f"New in the account, unknown to planbot ({len(new_unknown)}): {_list(new_unknown)}"
        )
    if new_missing:
        lines.append(
            f"Known to planbot, no longer in the account ({len(new_missing)}): {_list(new_missing)}"
        )
    if resolved:
        lines.append(f"Resolved ({len(resolved)}): {_list(resolved)}")
    if not unknown and not missing:
        lines[0] = ":white_check_mark: *The provider's account and planbot's apps agree again.*"
    else:
        lines.append(
            f"Now {len(unknown)} unknown and {len(missing)} missing in all "
            f"(`planbot provider sync` lists them)."
        )
    blocks = [_section("\n".join(lines))]
    if unknown:
        blocks.append(
            _context(
                "Adopt an unknown app with the importer (`planbot apps import apps.csv`); an app "
                "the account no longer lists may have been deleted in the console."
            )
        )
    text = (
        f"Provider drift: {len(unknown)} unknown, {len(missing)} missing "
        f"({len(new_unknown) + len(new_missing)} new, {len(resolved)} resolved)."
    )
    return {"text": text, "blocks": blocks}


def usage_level_message(payload: Mapping[str, Any]) -> Message:
    """An app's figure reached 80% or 100% of its plan's limit this month."""
    app_id = str(payload.get("app_id") or "")
    app_id = app_id if _APP_ID.match(app_id) else escape(app_id)
    name = escape(payload.get("app_name") or app_id or "an app")
    value, limit = _int(payload.get("value")), _int(payload.get("limit"))
    level, over = _int(payload.get("level")), _int(payload.get("over"))
    plan = escape(payload.get("plan") or "its plan")
    month = escape(payload.get("month") or "this month")
    day = escape(payload.get("day") or "")
    busiest = f"{value:,} active users on {day}" if day else f"{value:,} active users in a day"
    if level >= 100 and payload.get("paid"):
        head = f":rotating_light: *{name}* (`{app_id}`): certain overage in {month}."
        body = (
            f"Its busiest day had {busiest}, above the {plan} plan's {limit:,} free monthly "
            f"active users, so the month has at least {over:,} more active users than are free. "
            f"The provider bills them after the month ({OVERAGE_PER_MAU} each in its December "
            "2022 list)."
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
        _section(f"{head}\n{body}"),
        _context(
            f"From the provider's daily figures · `/plan usage {app_id}` shows them · planbot "
            "warns once at 80% and once at 100% of a limit each month."
        ),
    ]
    text = f"{name} ({app_id}): {value:,} active users in a day, {level}% of {limit:,}."
    return {"text": text, "blocks": blocks}


def reconciliation_message(payload: Mapping[str, Any]) -> Message:
    """A month's bill differs from planbot's charges: per app, both amounts and the difference."""
    month = escape(payload.get("month") or "last month")
    currency = str(payload.get("currency") or "USD")
    lines = [line for line in payload.get("lines") or [] if isinstance(line, Mapping)]
    compared = _int(payload.get("apps_compared"))
    rows = [f"{'app':<24}{'planbot':>12}{'billed':>12}{'difference':>12}"]
    for line in lines[:_LISTED]:
        label = _cell(f"{line.get('name') or ''} {line.get('app_id') or ''}")[:23]
        rows.append(
            f"{label:<24}{_money(line.get('ours'), currency):>12}"
            f"{_money(line.get('billed'), currency):>12}"
            f"{_money(line.get('difference'), currency, sign=True):>12}"
        )
    more = len(lines) - _LISTED
    table = "```\n" + "\n".join(escape(r) for r in rows) + "\n```"
    head = (
        f":receipt: *The provider's bill for {month} differs from planbot's charges* for "
        f"{len(lines)} of {compared} apps (by more than a cent)."
    )
    blocks = [_section(head), _section(table)]
    if more > 0:
        blocks.append(_context(f"…and {more} more (`planbot provider reconcile {month}`)."))
    blocks.append(
        _context(
            "Billed is the provider's amount after discounts for the resource whose id is the "
            "SDKAppID; a positive difference means the provider billed more. Check the plan "
            "history (`/plan bill <app> " + month + "`) and the catalog's prices."
        )
    )
    text = f"The provider's bill for {month} differs from planbot's charges for {len(lines)} apps."
    return {"text": text, "blocks": blocks}


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Message]] = {
    "provider_drift": drift_message,
    "provider_usage_level": usage_level_message,
    "provider_reconciliation": reconciliation_message,
}


def _ids(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v) if _APP_ID.match(str(v)) else escape(v) for v in value]


def _list(ids: list[str]) -> str:
    shown = ", ".join(f"`{i}`" for i in ids[:_LISTED])
    return shown + (f" and {len(ids) - _LISTED} more" if len(ids) > _LISTED else "")


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _money(value: object, currency: str, *, sign: bool = False) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return "?"
    text = f"{abs(amount):,.2f}"
    text = f"${text}" if currency == "USD" else f"{text} {currency}"[:11]
    if amount < 0:
        return "-" + text
    return ("+" + text) if sign and amount > 0 else text


def _cell(value: object) -> str:
    return " ".join(str(value).split()).replace("`", "'")


def _section(text: str) -> dict[str, Any]:
    if len(text) > _MAX_SECTION:
        text = text[: _MAX_SECTION - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:2000]}]}
