"""Slack messages for the lifecycle's notices (pure: payload dict in, message dict out).

The lifecycle sweep (`core.lifecycle`) writes outbox entries whose payload is a plain dict with a
"type"; `notice_message` turns the types it knows into a Slack message, `{"text": fallback,
"blocks": [...]}`, ready for `chat.postMessage` (or `chat.update` for an "update_of" entry):

- `dev_expiry_reminder`: a developer app expires soon; an "Extend" button (`plan_start_extend`).
- `purge_warning`: a disabled app will be purged; an "Enable" button for admins (`plan_start_enable`).
- `statement`: a team's monthly statement as a table, paged to stay within Slack's limits.
- `approval_expired`: the replacement of an approval card whose request expired.

Any other type gives None. All user-supplied text (app names, summaries) is escaped (`&`, `<`, `>`),
so an app named `<!channel>` pings nobody; the functions never raise on missing fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from bot.tables import LINE_WIDTH, cell, charge_rows, fit, pad, width

__all__ = [
    "ENABLE_ACTION",
    "EXTEND_ACTION",
    "MAX_BLOCKS",
    "MAX_SECTION_TEXT",
    "approval_expired_message",
    "escape",
    "notice_message",
    "purge_warning_message",
    "reminder_message",
    "statement_message",
]

EXTEND_ACTION = "plan_start_extend"
ENABLE_ACTION = "plan_start_enable"
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
_TABLE_WIDTH = 2 + LINE_WIDTH  # a run's line is indented under its app's title
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_APP_ID = re.compile(r"^[0-9]{1,20}$")
_DATE_TOKEN = re.compile(r"^<!date\^[0-9]+\^[^|]*\|(.*)>$")

Message = dict[str, Any]


def escape(text: object) -> str:
    """Text made safe for Slack mrkdwn: `&`, `<` and `>` escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def notice_message(payload: Mapping[str, Any]) -> Message | None:
    """The Slack message of a lifecycle notice, or None when the payload is not one."""
    builder = _BUILDERS.get(str(payload.get("type", "")))
    return builder(payload) if builder is not None else None


# --- the notices -------------------------------------------------------------------------------


def reminder_message(payload: Mapping[str, Any]) -> Message:
    """A developer app expires soon: what happens then, and an Extend button."""
    app_id, name = _app(payload)
    when = _in(payload)
    expires = _moment(payload.get("expires_at"), payload.get("expires_local"))
    lines = [
        f":hourglass_flowing_sand: Developer app *{escape(name)}* (`{app_id}`) *expires {when}*, "
        f"on {expires}.",
        "When it expires the app is suspended. Extending it gives it one more month on the free "
        "developer plan; to keep it for good, upgrade it to a paid plan "
        f"(`/plan upgrade {app_id} standard`).",
    ]
    if payload.get("billing_mode") == "legacy":
        lines.append(
            f"This app is on the legacy billing mode: migrate it first (`/plan migrate {app_id}`), "
            "then extend it."
        )
    blocks: list[dict[str, Any]] = [
        _section("\n".join(lines)),
        *_actions("lifecycle_reminder", "Extend", EXTEND_ACTION, app_id),
        _context(
            "planbot reminds the owner 7 days and 1 day before a developer app expires. "
            "Extend starts the usual preview; nothing changes until you confirm."
        ),
    ]
    text = f"Developer app {escape(name)} ({app_id}) expires {when}, on {_plain(expires)}."
    return {"text": text, "blocks": blocks}


def purge_warning_message(payload: Mapping[str, Any]) -> Message:
    """A disabled app will be purged: when, what is lost, and an Enable button for admins."""
    app_id, name = _app(payload)
    when = _in(payload)
    purge = _moment(payload.get("purge_at"), payload.get("purge_local"))
    disabled = _moment(payload.get("disabled_at"), payload.get("disabled_local"))
    lines = [
        f":warning: *{escape(name)}* (`{app_id}`) has been disabled since {disabled}. "
        f"It will be *purged {when}*, after {purge}: its data and services can't be recovered "
        "after that.",
        "To keep it, re-enable it before then: that restores its plan and configuration, and "
        "billing resumes that day. *Only planbot admins can re-enable an app.*",
    ]
    blocks: list[dict[str, Any]] = [
        _section("\n".join(lines)),
        *_actions("lifecycle_purge_warning", "Enable", ENABLE_ACTION, app_id),
        _context(
            "planbot warns the owner 30, 7 and 1 days before a disabled app is purged "
            "(after 90 days disabled). Enable starts the usual preview for an admin."
        ),
    ]
    text = (
        f"{escape(name)} ({app_id}) will be purged {when}, after {_plain(purge)}. "
        "Only admins can re-enable it."
    )
    return {"text": text, "blocks": blocks}


def statement_message(payload: Mapping[str, Any]) -> Message:
    """A team's monthly statement: per app its plan days and amounts, and the total."""
    month = escape(payload.get("month_name") or payload.get("period") or "last month")
    total = escape(payload.get("total_text") or payload.get("total") or "0")
    apps = [a for a in _list(payload.get("apps")) if isinstance(a, Mapping)]
    count = max(_int(payload.get("app_count")) or 0, len(apps))
    window = _list(payload.get("bill_window"))
    summary = f"*Total: {total}* for {count} app{'s' if count != 1 else ''}"
    if len(window) == 2:
        summary += f" · billed on {escape(window[0])} to {escape(window[1])}"
    lines = [summary + "."]
    if payload.get("projected"):
        lines.append(
            f"The month is not over: {escape(payload.get('to_date_text') or '')} so far, the rest "
            "is a projection if nothing changes."
        )
    if payload.get("late"):
        lines.append(
            f":warning: This statement is late: it was due on {escape(payload.get('due_on', ''))} "
            f"and is posted on {escape(payload.get('issued_on', ''))} (planbot was not running)."
        )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain_text(f"🧾 Statement for {_unescaped(payload)}")},
        _section("\n".join(lines)),
    ]
    footer = (
        "Each day costs the monthly price ÷ the days in the month, at the highest plan in force "
        "that day; an app's month is rounded once to the cent, so a plan held all month costs its "
        f"monthly price. `/plan bill <app> {escape(payload.get('period') or 'YYYY-MM')}` shows "
        "one app's bill."
    )
    room = MAX_BLOCKS - len(blocks) - 2  # the footer and a possible "more" note
    tables, shown = _table_sections(apps, room)
    blocks.extend(_section(t) for t in tables)
    hidden = count - shown
    if hidden > 0:
        blocks.append(
            _context(f"…and {hidden} more app{'s' if hidden != 1 else ''} not shown here.")
        )
    blocks.append(_context(footer))
    text = f"Statement for {month}: {total} for {count} app{'s' if count != 1 else ''}."
    if payload.get("late"):
        text += " (late)"
    return {"text": text, "blocks": blocks}


def approval_expired_message(payload: Mapping[str, Any]) -> Message:
    """The replacement of an approval card whose request expired unapproved."""
    summary = escape(payload.get("summary") or _fallback_summary(payload))
    requester = _person(payload.get("requester_id"), payload.get("requester_name"))
    expired = _moment(payload.get("expired_at"), payload.get("expired_local"))
    app_id = str(payload.get("app_id") or "")
    operation = str(payload.get("operation") or "")
    again = (
        f" If it is still wanted, {requester} can ask again with `/plan {escape(operation)} "
        f"{app_id}`."
        if operation and _APP_ID.match(app_id)
        else ""
    )
    text_block = (
        f":hourglass: *Expired:* {summary}, requested by {requester}.\n"
        f"The request expired on {expired} without the approvals it needed, so nothing was "
        f"changed.{again}"
    )
    blocks = [
        _section(text_block),
        _context(f"Request `{escape(payload.get('request_id') or '?')}` · expired"),
    ]
    return {"text": f"Expired: {summary}. Nothing was changed.", "blocks": blocks}


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Message]] = {
    "dev_expiry_reminder": reminder_message,
    "purge_warning": purge_warning_message,
    "statement": statement_message,
    "approval_expired": approval_expired_message,
}


# --- the statement table -----------------------------------------------------------------------


def _table_sections(apps: list[Mapping[str, Any]], room: int) -> tuple[list[str], int]:
    """Code-block sections of the apps' lines, at most `room` of them; and how many apps fit."""
    sections: list[str] = []
    current: list[str] = []
    shown = waiting = 0
    limit = MAX_SECTION_TEXT - 8  # the fences and their newlines
    for app in apps:
        rows = _app_rows(app)
        if len("\n".join(rows)) > limit:  # one app with very many periods: keep its first lines
            kept: list[str] = []
            for row in rows:
                if len("\n".join([*kept, row, "  …"])) > limit:
                    break
                kept.append(row)
            rows = [*kept, "  …"]
        if current and len("\n".join([*current, *rows])) > limit:
            sections.append(_fence(current))
            shown, current, waiting = shown + waiting, [], 0
            if len(sections) >= room:
                return sections, shown
        current.extend(rows)
        waiting += 1
    if current and len(sections) < room:
        sections.append(_fence(current))
        shown += waiting
    return sections, shown


def _app_rows(app: Mapping[str, Any]) -> list[str]:
    """The app's title line (name, id, total) and one line per run of days charged alike."""
    name = cell(app.get("name") or "")
    app_id = cell(app.get("app_id") or "")
    amount = fit(cell(app.get("total_text") or app.get("total") or ""), 20)
    room = _TABLE_WIDTH - width(amount)
    title = fit(f"{name} · {app_id}", room - 1)
    rows = [pad(title, room) + amount]
    for period in _list(app.get("periods")):
        if not isinstance(period, Mapping):
            continue
        rows += charge_rows(
            first=_date(period.get("first")),
            last=_date(period.get("last")),
            days=_int(period.get("days")) or 0,
            label=str(period.get("label") or ""),
            addons=[str(a) for a in _list(period.get("addons"))],
            amount=str(period.get("amount_text") or period.get("amount") or ""),
            projected=period.get("projected") is True,
            indent="  ",
        )
    return [escape(r) for r in rows]


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _fence(rows: list[str]) -> str:
    return "```\n" + "\n".join(rows) + "\n```"


# --- pieces ------------------------------------------------------------------------------------


def _app(payload: Mapping[str, Any]) -> tuple[str, str]:
    app_id = str(payload.get("app_id") or "")
    app_id = app_id if _APP_ID.match(app_id) else escape(app_id)
    return app_id, str(payload.get("app_name") or app_id or "an app")


def _in(payload: Mapping[str, Any]) -> str:
    """'in 2 days', 'in 1 day', 'in 5 hours', 'within the hour'."""
    days = _int(payload.get("days_left"))
    hours = _int(payload.get("hours_left"))
    if days is not None and days >= 1:
        return f"in {days} day{'s' if days != 1 else ''}"
    if hours is not None and hours >= 1:
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    return "within the hour"


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _moment(iso: object, local: object) -> str:
    """A Slack date token (shown in the reader's time zone), with the billing-zone text as
    its fallback."""
    fallback = escape(local or iso or "an unknown date")
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return fallback
    if moment.tzinfo is None:
        return fallback
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _plain(token: str) -> str:
    """The fallback part of a date token, for the notification text."""
    match = _DATE_TOKEN.match(token)
    return match.group(1) if match else token


def _person(user_id: object, name: object) -> str:
    if isinstance(user_id, str) and _USER_ID.match(user_id):
        return f"<@{user_id}>"
    return escape(name or user_id or "someone")


def _fallback_summary(payload: Mapping[str, Any]) -> str:
    operation = str(payload.get("operation") or "change")
    app = payload.get("app_name") or payload.get("app_id") or ""
    return f"{operation} {app}".strip()


def _unescaped(payload: Mapping[str, Any]) -> str:
    return str(payload.get("month_name") or payload.get("period") or "last month")


def _section(text: str) -> dict[str, Any]:
    if len(text) > MAX_SECTION_TEXT:
        text = text[: MAX_SECTION_TEXT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:2000]}]}


def _plain_text(text: str) -> dict[str, Any]:
    if len(text) > MAX_HEADER_TEXT:
        text = text[: MAX_HEADER_TEXT - 1] + "…"
    return {"type": "plain_text", "text": text, "emoji": True}


def _actions(block_id: str, text: str, action_id: str, app_id: str) -> list[dict[str, Any]]:
    """The block with the one button that starts the operation on the app (none without an id)."""
    if not _APP_ID.match(app_id):
        return []
    button = _button(text, action_id, app_id, style="primary")
    return [{"type": "actions", "block_id": block_id, "elements": [button]}]


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain_text(text),
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        button["style"] = style
    return button
