"""Channel messages: the outbox's typed messages rendered as Slack messages when delivered.

`render` turns any `core.Message` into `{"text": fallback, "blocks": [...]}`, ready for
`chat.postMessage` (or `chat.update` for an update of an earlier message):

- `ChangeApplied`, `RequestEvent`, `AccessChanged`: the audit channel's (and owner's) messages.
- `ApprovalRequested`: the card asking peers to approve; `ApprovalCardUpdate` replaces it.
- `DevExpiryReminder`: a developer app expires soon; an "Extend" button (`plan_start_extend`).
- `PurgeWarning`: a disabled app will be purged; an "Enable" button (`plan_start_enable`).
- `StatementIssued`: a team's monthly statement as a table, paged to stay within Slack's limits.
- `CardDecided`: a request's card once decided; `Rendered`: a reply the bot already built.
- The provider connector's messages, drawn by `bot.provider_notices`.

All user-supplied text (app names, summaries) is escaped (`&`, `<`, `>`), so an app named
`<!channel>` pings nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from bot import blocks, provider_notices
from bot.kit import (
    MAX_BLOCKS,
    MAX_SECTION,
    Message,
    button,
    context,
    danger_dialog,
    escape,
    header,
    message,
    section,
)
from bot.tables import LINE_WIDTH, cell, charge_rows, fit, pad, width
from bot.words import VERBS, Words
from core import (
    AccessChanged,
    ApprovalCardUpdate,
    ApprovalRequested,
    CardDecided,
    ChangeApplied,
    DevExpiryReminder,
    Operation,
    PurgeWarning,
    Rendered,
    RequestEvent,
    StatementIssued,
    billing_window,
    format_money,
)
from core import Message as CoreMessage

__all__ = [
    "ENABLE_ACTION",
    "EXTEND_ACTION",
    "MAX_BLOCKS",
    "escape",
    "render",
    "statement_message",
]

EXTEND_ACTION = "plan_start_extend"
ENABLE_ACTION = "plan_start_enable"
MAX_SECTION_TEXT = MAX_SECTION
MAX_HEADER_TEXT = 150
_TABLE_WIDTH = 2 + LINE_WIDTH  # a run's line is indented under its app's title
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_APP_ID = re.compile(r"^[0-9]{1,20}$")
_DATE_TOKEN = re.compile(r"^<!date\^[0-9]+\^[^|]*\|(.*)>$")
_DAY = timedelta(days=1)


def render(notice: CoreMessage, words: Words) -> Message:
    """The Slack message of an outbox message."""
    builder = _BUILDERS[type(notice)]
    return builder(notice, words)


# --- the audit channel -----------------------------------------------------------------------


def _auditcontext(
    seq: int | None, at: datetime | None, words: Words, request_id: str | None
) -> str:
    text = f"audit #{seq} · {blocks.when(at, words.tz, time=True)}"
    if request_id:
        text += f" · request `{escape(request_id)}`"
    return text


def change_applied(notice: ChangeApplied, words: Words) -> Message:
    """A change was applied: who did what to which app, what changed, what it costs."""
    actor = f"<@{notice.actor.user_id}>"
    app = blocks.app_label(notice.app_name or notice.app_id, notice.app_id)
    verb = VERBS[notice.operation]
    stopped = notice.operation in (Operation.DISABLE, Operation.PURGE, Operation.SUSPEND)
    icon = ":red_circle:" if stopped else ":large_green_circle:"
    text = f"{icon} {actor} {verb} {app}"
    if notice.actor.user_id == "planbot":
        text = f"{icon} {app} was {verb}"
    parts = [section(text)]
    if notice.changes:
        parts.append(section(blocks.change_lines(notice.changes, words)))
    if notice.cost is not None:
        parts.append(section(f"*Cost:* {escape(words.cost(notice.cost))}"))
    detail = _lifecycle_detail(notice, words)
    if detail:
        parts.append(section(escape(detail)))
    footer = _auditcontext(notice.audit_seq, notice.at, words, notice.request_id)
    if notice.requester and notice.requester.user_id != notice.actor.user_id:
        footer += f" · requested by <@{notice.requester.user_id}>"
    parts.append(context(footer))
    return message(f"{verb} {escape(notice.app_name or notice.app_id)}", parts)


def _lifecycle_detail(notice: ChangeApplied, words: Words) -> str:
    since = notice.since
    if since is None:
        return ""
    local = _local(since, words)
    if notice.operation is Operation.SUSPEND:
        return (
            f"The developer validity ended on {local}, so the app is suspended. Extend it "
            f"(`/plan extend {notice.app_id}`) to reactivate it, or upgrade it to a paid plan."
        )
    if notice.operation is Operation.PURGE:
        until = _local(since + timedelta(days=90), words)
        return (
            f"Disabled on {local} and not re-enabled within 90 days (until {until}): its data "
            "and services are purged and can no longer be recovered."
        )
    return ""


def request_event(notice: RequestEvent, words: Words) -> Message:
    """A refused click that matters, a rejection, a partial approval."""
    actor = f"<@{notice.actor.user_id}>"
    app = blocks.app_label(notice.app_name or notice.app_id or "?", notice.app_id)
    icon = {
        "refused": ":no_entry:",
        "rejected": ":no_entry_sign:",
        "approved": ":ballot_box_with_check:",
    }.get(notice.event, ":information_source:")
    text = f"{icon} {notice.event.capitalize()}: {actor} on {notice.operation} of {app}"
    footer = _auditcontext(notice.audit_seq, notice.at, words, notice.request_id)
    if notice.requester and notice.requester.user_id != notice.actor.user_id:
        footer += f" · requested by <@{notice.requester.user_id}>"
    parts = [section(text)]
    detail = (
        notice.refusal.message
        if notice.refusal
        else {
            "rejected": "rejected by a peer",
            "approved": "approval recorded",
        }.get(notice.event, "")
    )
    if detail:
        parts.append(section(escape(detail)))
    parts.append(context(footer))
    return message(text, parts)


def access_changed(notice: AccessChanged, words: Words) -> Message:
    """A role granted or revoked."""
    actor = f"<@{notice.actor.user_id}>"
    verb = "granted" if notice.granted else "revoked"
    # named by the stable id, not the changeable label (a group is not pinged)
    label = escape(notice.label or notice.principal_id)
    whom = {
        "user": f"<@{notice.principal_id}>",
        "group": f"group {label} (`{escape(notice.principal_id)}`)",
    }.get(notice.principal_kind, label)
    where = f"<#{notice.team}>" if notice.team else "all apps"
    text = (
        f":key: {actor} {verb} *{escape(notice.role)}* "
        f"{'to' if notice.granted else 'from'} {whom} ({where})"
    )
    footer = _auditcontext(notice.audit_seq, notice.at, words, None)
    return message(text, [section(text), context(footer)])


# --- approvals -------------------------------------------------------------------------------


def approval_requested(notice: ApprovalRequested, words: Words) -> Message:
    """The card asking peers to approve or reject a request."""
    preview = notice.preview
    needed = notice.approvals_needed
    summary = words.summary(preview)
    warnings = [words.notice(n) for n in preview.notices]
    parts: list[dict[str, Any]] = [
        header(f"Approval needed: {summary}"),
        section(
            f"<@{notice.requester.user_id}> asks to {escape(str(preview.operation))} "
            f"{blocks.app_label(preview.app_name, preview.app_id)}. "
            f"Needs {needed} approval{'s' if needed != 1 else ''} from someone else with the role."
        ),
        section("*Changes*\n" + blocks.change_lines(preview.changes, words)),
    ]
    if preview.cost is not None:
        parts.append(section(f"*Cost*\n{escape(words.cost(preview.cost))}"))
    for warning in warnings:
        parts.append(section(f":warning: {escape(warning)}"))
    approve = button(
        "Approve",
        blocks.APPROVE,
        notice.request_id,
        style="danger" if preview.danger else "primary",
    )
    if preview.danger:
        approve["confirm"] = danger_dialog(
            "Approve this change?",
            escape(" ".join(warnings)) or "Are you sure?",
            yes="Approve",
            no="Not yet",
        )
    parts.append(
        {
            "type": "actions",
            "block_id": "plan_approval",
            "elements": [approve, button("Reject", blocks.REJECT, notice.request_id)],
        }
    )
    expires = blocks.when(notice.expires_at, words.tz, time=True)
    parts.append(context(f"Expires {expires} · request `{notice.request_id}`"))
    return message(f"Approval needed: {escape(summary)}", parts)


def approval_card_update(notice: ApprovalCardUpdate, words: Words) -> Message:
    """The replacement of an approval card whose request is no longer waiting."""
    summary = escape(words.title(notice.operation, notice.app_name, notice.app_id))
    requester = f"<@{notice.requester.user_id}>"
    expired = _moment(notice.expired_at or notice.at, words)
    app_id = notice.app_id or ""
    again = (
        f" If it is still wanted, {requester} can ask again with `/plan {notice.operation} "
        f"{app_id}`."
        if _APP_ID.match(app_id)
        else ""
    )
    text_block = (
        f":hourglass: *Expired:* {summary}, requested by {requester}.\n"
        f"The request expired on {expired} without the approvals it needed, so nothing was "
        f"changed.{again}"
    )
    parts = [section(text_block), context(f"Request `{escape(notice.request_id)}` · expired")]
    return message(f"Expired: {summary}. Nothing was changed.", parts)


# --- the lifecycle's notices -----------------------------------------------------------------


def reminder_message(notice: DevExpiryReminder, words: Words) -> Message:
    """A developer app expires soon: what happens then, and an Extend button."""
    app_id, name = notice.app_id, notice.app_name
    when = _in(notice.expires_at - notice.at)
    expires = _moment(notice.expires_at, words)
    lines = [
        f":hourglass_flowing_sand: Developer app *{escape(name)}* (`{app_id}`) *expires {when}*, "
        f"on {expires}.",
        "When it expires the app is suspended. Extending it gives it one more month on the free "
        "developer plan; to keep it for good, upgrade it to a paid plan "
        f"(`/plan upgrade {app_id} standard`).",
    ]
    if notice.billing_mode == "legacy":
        lines.append(
            f"This app is on the legacy billing mode: migrate it first (`/plan migrate {app_id}`), "
            "then extend it."
        )
    parts: list[dict[str, Any]] = [
        section("\n".join(lines)),
        *_actions("lifecycle_reminder", "Extend", EXTEND_ACTION, app_id),
        context(
            "planbot reminds the owner 7 days and 1 day before a developer app expires. "
            "Extend starts the usual preview; nothing changes until you confirm."
        ),
    ]
    text = f"Developer app {escape(name)} ({app_id}) expires {when}, on {_plain(expires)}."
    return {"text": text, "blocks": parts}


def purge_warning_message(notice: PurgeWarning, words: Words) -> Message:
    """A disabled app will be purged: when, what is lost, and an Enable button for admins."""
    app_id, name = notice.app_id, notice.app_name
    when = _in(notice.purge_at - notice.at)
    purge = _moment(notice.purge_at, words)
    disabled = _moment(notice.disabled_at, words)
    lines = [
        f":warning: *{escape(name)}* (`{app_id}`) has been disabled since {disabled}. "
        f"It will be *purged {when}*, after {purge}: its data and services can't be recovered "
        "after that.",
        "To keep it, re-enable it before then: that restores its plan and configuration, and "
        "billing resumes that day. *Only planbot admins can re-enable an app.*",
    ]
    parts: list[dict[str, Any]] = [
        section("\n".join(lines)),
        *_actions("lifecycle_purge_warning", "Enable", ENABLE_ACTION, app_id),
        context(
            "planbot warns the owner 30, 7 and 1 days before a disabled app is purged "
            "(after 90 days disabled). Enable starts the usual preview for an admin."
        ),
    ]
    text = (
        f"{escape(name)} ({app_id}) will be purged {when}, after {_plain(purge)}. "
        "Only admins can re-enable it."
    )
    return {"text": text, "blocks": parts}


def statement_issued(notice: StatementIssued, words: Words) -> Message:
    """A team's monthly statement."""
    statement = notice.statement
    currency = statement.currency
    first, last = billing_window(statement.year, statement.month)
    payload: dict[str, Any] = {
        "period": f"{statement.year:04d}-{statement.month:02d}",
        "month_name": date(statement.year, statement.month, 1).strftime("%B %Y"),
        "apps": [
            {
                "app_id": a.app_id,
                "name": a.name,
                "total_text": format_money(a.total, currency),
                "periods": [
                    {
                        "label": p.label,
                        "first": p.first.isoformat(),
                        "last": p.last.isoformat(),
                        "days": p.days,
                        "addons": list(p.addons),
                        "projected": p.projected,
                        "amount_text": format_money(p.amount, currency),
                    }
                    for p in a.periods
                ],
            }
            for a in statement.apps
        ],
        "app_count": len(statement.apps) + notice.apps_omitted,
        "total_text": format_money(notice.total, currency),
        "projected": statement.projected,
        "to_date_text": format_money(notice.to_date, currency),
        "bill_window": [first.isoformat(), last.isoformat()],
        "due_on": first.isoformat(),
        "issued_on": notice.issued_on.isoformat(),
        "late": notice.issued_on > first,
    }
    return statement_message(payload)


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
        section("\n".join(lines)),
    ]
    footer = (
        "Each day costs the monthly price ÷ the days in the month, at the highest plan in force "
        "that day; an app's month is rounded once to the cent, so a plan held all month costs its "
        f"monthly price. `/plan bill <app> {escape(payload.get('period') or 'YYYY-MM')}` shows "
        "one app's bill."
    )
    room = MAX_BLOCKS - len(blocks) - 2  # the footer and a possible "more" note
    tables, shown = _table_sections(apps, room)
    blocks.extend(section(t) for t in tables)
    hidden = count - shown
    if hidden > 0:
        blocks.append(
            context(f"…and {hidden} more app{'s' if hidden != 1 else ''} not shown here.")
        )
    blocks.append(context(footer))
    text = f"Statement for {month}: {total} for {count} app{'s' if count != 1 else ''}."
    if payload.get("late"):
        text += " (late)"
    return {"text": text, "blocks": blocks}


_BUILDERS: dict[type, Callable[[Any, Words], Message]] = {
    ChangeApplied: change_applied,
    RequestEvent: request_event,
    AccessChanged: access_changed,
    ApprovalRequested: approval_requested,
    ApprovalCardUpdate: approval_card_update,
    DevExpiryReminder: reminder_message,
    PurgeWarning: purge_warning_message,
    StatementIssued: statement_issued,
    CardDecided: lambda notice, words: blocks.outcome_card(notice.outcome, words, notice.at),
    Rendered: lambda notice, words: dict(notice.message),
    **provider_notices.BUILDERS,
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


def _in(left: timedelta) -> str:
    """'in 2 days', 'in 1 day', 'in 5 hours', 'within the hour'."""
    days, hours = left // _DAY, left // timedelta(hours=1)
    if days >= 1:
        return f"in {days} day{'s' if days != 1 else ''}"
    if hours >= 1:
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    return "within the hour"


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _local(moment: datetime, words: Words) -> str:
    local = moment.astimezone(words.tz)
    return f"{local:%Y-%m-%d %H:%M} ({words.tz.key})"


def _moment(moment: datetime, words: Words) -> str:
    """A Slack date token (shown in the reader's time zone), with the billing-zone text as
    its fallback."""
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|{escape(_local(moment, words))}>"


def _plain(token: str) -> str:
    """The fallback part of a date token, for the notification text."""
    match = _DATE_TOKEN.match(token)
    return match.group(1) if match else token


def _person(user_id: object, name: object) -> str:
    if isinstance(user_id, str) and _USER_ID.match(user_id):
        return f"<@{user_id}>"
    return escape(name or user_id or "someone")


def _unescaped(payload: Mapping[str, Any]) -> str:
    return str(payload.get("month_name") or payload.get("period") or "last month")


def _plain_text(text: str) -> dict[str, Any]:
    if len(text) > MAX_HEADER_TEXT:
        text = text[: MAX_HEADER_TEXT - 1] + "…"
    return {"type": "plain_text", "text": text, "emoji": True}


def _actions(block_id: str, text: str, action_id: str, app_id: str) -> list[dict[str, Any]]:
    """The block with the one button that starts the operation on the app (none without an id)."""
    if not _APP_ID.match(app_id):
        return []
    found = button(text, action_id, app_id, style="primary")
    return [{"type": "actions", "block_id": block_id, "elements": [found]}]
