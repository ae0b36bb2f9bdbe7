"""Block Kit builders: pure functions from core values to Slack message dicts.

Every piece of user-supplied text (app names, display names, what was typed) goes through
`escape`, so an app named `<!channel>` pings nobody. Slack's limits are kept here: at most 50
blocks a message, 3000 characters a section, 10 fields of 2000, 150 a header, 75 a button.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import tables
from bot.grammar import escape_mrkdwn as escape
from core import (
    AppPage,
    AppState,
    AppStatus,
    ChannelNotAllowed,
    Grant,
    HistoryEntry,
    Outcome,
    PendingRequest,
    PermissionDenied,
    PlanError,
    Statement,
    format_money,
)

__all__ = [
    "APPROVE",
    "CANCEL",
    "CONFIRM",
    "REJECT",
    "access_list_message",
    "approval_card",
    "audit_message",
    "bill_message",
    "clip",
    "escape",
    "failure_message",
    "help_message",
    "history_message",
    "list_message",
    "outcome_card",
    "preview_card",
    "refusal",
    "status_message",
    "text_message",
]

CONFIRM = "plan_confirm"
CANCEL = "plan_cancel"
APPROVE = "plan_approve"
REJECT = "plan_reject"

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_BUTTON = 75


def clip(text: str, limit: int) -> str:
    """The text cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def _header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": clip(text, MAX_HEADER), "emoji": True},
    }


def _context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(t, MAX_SECTION)} for t in texts[:10]],
    }


def _fields(pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    blocks = []
    for start in range(0, len(pairs), 10):
        chunk = pairs[start : start + 10]
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": clip(f"*{k}*\n{v}", 2000)} for k, v in chunk],
            }
        )
    return blocks


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, MAX_BUTTON), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _danger_dialog(
    title: str, text: str, *, yes: str = "Approve", no: str = "Not yet"
) -> dict[str, Any]:
    """Slack's confirm dialog for a danger button (`text` is mrkdwn, already escaped)."""
    return {
        "title": {"type": "plain_text", "text": clip(title, 100)},
        "text": {"type": "mrkdwn", "text": clip(text, 300)},
        "confirm": {"type": "plain_text", "text": yes},
        "deny": {"type": "plain_text", "text": no},
        "style": "danger",
    }


def _message(text: str, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"text": clip(text, 3000), "blocks": blocks[:MAX_BLOCKS], **extra}


def text_message(text: str, **extra: Any) -> dict[str, Any]:
    """A one-section message (the text is mrkdwn the caller already escaped)."""
    return _message(text, [_section(text)], **extra)


def _when(moment: datetime | None, tz: ZoneInfo, *, time: bool = False) -> str:
    if moment is None:
        return "-"
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M %Z" if time else "%Y-%m-%d")


def _app(name: str, app_id: str | None) -> str:
    return f"*{escape(name)}* (`{app_id}`)" if app_id else f"*{escape(name)}*"


# --- refusals --------------------------------------------------------------------------------


def refusal(err: PlanError, **extra: Any) -> dict[str, Any]:
    """A refusal, as the person should read it: what, why, what to do instead."""
    text = f":no_entry: {escape(err.message)}"
    if isinstance(err, PermissionDenied) and err.admins:
        text += "\nAdmins: " + ", ".join(f"<@{a}>" for a in err.admins)
    if isinstance(err, ChannelNotAllowed) and err.channels:
        text += "\nAllowed: " + ", ".join(f"<#{c}>" for c in err.channels)
    return text_message(text, **extra)


def failure_message(reference: str) -> dict[str, Any]:
    """What a person sees when something unexpected broke (details are only in the log)."""
    return text_message(
        ":warning: Something went wrong on planbot's side and nothing was changed. "
        f"Try again in a moment; if it keeps happening, give this reference to the admins: "
        f"`{reference}`."
    )


def help_message(text: str) -> dict[str, Any]:
    """The help text (from the grammar) as a message."""
    return _message("planbot help", [_section(chunk) for chunk in _chunks(text, MAX_SECTION)])


def _chunks(text: str, size: int) -> list[str]:
    chunks, current = [], ""
    for line in text.splitlines(keepends=True):
        if len(current) + len(line) > size and current:
            chunks.append(current)
            current = ""
        current += line[:size]
    return [*chunks, current] if current else chunks or [""]


# --- the preview card and what becomes of it ----------------------------------------------------


def _change_lines(changes: Sequence[Any]) -> str:
    lines = []
    for change in changes:
        label, before, after = (
            (change.label, change.before, change.after)
            if hasattr(change, "label")
            else tuple(change)
        )
        lines.append(f"• {escape(label)}: {escape(before)} → *{escape(after)}*")
    return "\n".join(lines) or "• nothing visible changes"


def preview_card(pending: PendingRequest, tz: ZoneInfo) -> dict[str, Any]:
    """The ephemeral card of a previewed change, with Confirm / Cancel (or waiting for approval)."""
    preview = pending.preview
    title = preview.summary + ("?" if not pending.approval.needs_peer else "")
    blocks: list[dict[str, Any]] = [
        _header(title),
        _section(f"*App:* {_app(preview.app_name, preview.app_id)}"),
        _section("*Changes*\n" + _change_lines(preview.changes)),
        _section(f"*Cost*\n{escape(preview.cost_text)}"),
    ]
    for warning in preview.warnings:
        icon = ":warning:" if preview.danger or preview.irreversible else ":information_source:"
        blocks.append(_section(f"{icon} {escape(warning)}"))
    expires = _when(pending.expires_at, tz, time=True)
    if pending.approval.needs_peer:
        n = pending.approval.approvers
        blocks.append(
            _section(
                f":hourglass_flowing_sand: This change needs approval by {n} other "
                f"{'person' if n == 1 else 'people'} with the needed role. An approval card was "
                "posted for them; planbot will message you the outcome."
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": "plan_request",
                "elements": [_button("Withdraw request", CANCEL, pending.id)],
            }
        )
    else:
        confirm = _button(
            "Confirm", CONFIRM, pending.id, style="danger" if preview.danger else "primary"
        )
        if preview.danger:
            confirm["confirm"] = _danger_dialog(
                "Are you sure?",
                escape(" ".join(preview.warnings)) or "This can't be undone.",
                yes="Yes, go ahead",
                no="No, keep it",
            )
        blocks.append(
            {
                "type": "actions",
                "block_id": "plan_request",
                "elements": [confirm, _button("Cancel", CANCEL, pending.id)],
            }
        )
    blocks.append(_context(f"Expires {expires} · request `{pending.id}`"))
    return _message(
        f"{escape(preview.summary)}: confirm or cancel", blocks, response_type="ephemeral"
    )


_OUTCOME_ICON = {
    "applied": ":white_check_mark:",
    "cancelled": ":heavy_multiplication_x:",
    "rejected": ":no_entry_sign:",
    "approved": ":ballot_box_with_check:",
}


def outcome_card(outcome: Outcome, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    """What replaces the preview card once the request is decided."""
    icon = _OUTCOME_ICON.get(outcome.state, ":information_source:")
    blocks = [_section(f"{icon} {escape(outcome.message)}")]
    if outcome.state == "applied":
        if outcome.changes:
            blocks.append(_section("*Changes*\n" + _change_lines(outcome.changes)))
        if outcome.cost_text:
            blocks.append(_section(f"*Cost*\n{escape(outcome.cost_text)}"))
    if outcome.state == "approved":  # more approvals needed: the card keeps its buttons
        danger = outcome.operation.value in ("disable", "migrate")
        approve = _button(
            "Approve", APPROVE, outcome.request_id, style="danger" if danger else "primary"
        )
        if danger:
            approve["confirm"] = _danger_dialog(
                "Approve this change?", f"{escape(outcome.app_name)}: {outcome.operation}"
            )
        reject = _button("Reject", REJECT, outcome.request_id)
        blocks.append(
            {"type": "actions", "block_id": "plan_approval", "elements": [approve, reject]}
        )
    who = f"<@{outcome.actor.user_id}>"
    extra = f" · approved by {escape(', '.join(outcome.approvals))}" if outcome.approvals else ""
    blocks.append(
        _context(f"{outcome.state.capitalize()} by {who} at {_when(now, tz, time=True)}{extra}")
    )
    return _message(escape(outcome.message), blocks, replace_original=True)


# --- reading ---------------------------------------------------------------------------------


def status_message(status: AppStatus, tz: ZoneInfo) -> dict[str, Any]:
    """An app's status card."""
    app = status.app
    price = format_money(status.monthly_price, status.currency)
    pairs = [
        ("Plan", f"{app.plan} ({price}/month)"),
        ("Status", str(app.status)),
        ("Billing mode", str(app.billing_mode)),
        ("Owner", f"<#{app.owner_channel}>" if app.owner_channel else "-"),
        ("Created", _when(app.created_at, tz)),
    ]
    if app.plan.value == "developer":
        pairs.append(("Developer validity until", _when(app.dev_expires_at, tz)))
    else:
        pairs.append(("Add-ons", escape(status.config_text)))
        used = (
            f"used (next change from {_when(status.next_config_change, tz)})"
            if status.config_change_used
            else "available"
        )
        pairs.append(("Configuration change this month", used))
    if app.disabled_at:
        pairs.append(("Disabled on", _when(app.disabled_at, tz)))
        pairs.append(("Purged after", _when(status.purge_at, tz)))
    limits = status.limits
    if limits:
        pairs.append(
            (
                "Limits",
                f"{limits.get('monthly_active_users', 0):,} free MAU · "
                f"{limits.get('members_per_group', 0):,} members/group · "
                f"{limits.get('history_days', 0)} days history",
            )
        )
    blocks = [_header(f"{clip(app.name, 100)} ({app.app_id})"), *_fields(pairs)]
    if app.billing_mode.value == "legacy":
        blocks.append(
            _context(f"On legacy billing: plan operations need `/plan migrate {app.app_id}` first.")
        )
    return _message(f"{escape(app.name)} ({app.app_id}): {app.plan}, {app.status}", blocks)


def list_message(page: AppPage, *, contains: str | None) -> dict[str, Any]:
    """One page of the app list (at most 40 apps a page keeps within 50 blocks)."""
    if not page.apps:
        what = f" matching `{escape(contains)}`" if contains else ""
        return text_message(f"No apps{what}.")
    lines = [
        f"`{a.app_id}` *{escape(clip(a.name, 60))}* · {a.plan} · {a.status}"
        + (" · legacy billing" if a.billing_mode.value == "legacy" else "")
        for a in page.apps
    ]
    blocks = [_section(chunk) for chunk in _chunks("\n".join(lines), MAX_SECTION)]
    filt = f" matching `{escape(contains)}`" if contains else ""
    more = ""
    if page.page < page.pages:
        arg = f" {escape(contains)}" if contains else ""
        more = f" · next: `/plan list{arg} page={page.page + 1}`"
    blocks.append(_context(f"{page.total:,} apps{filt} · page {page.page} of {page.pages}{more}"))
    return _message(f"{page.total} apps", blocks)


def history_message(app: AppState, entries: Sequence[HistoryEntry], tz: ZoneInfo) -> dict[str, Any]:
    """An app's plan history, newest first."""
    lines = [
        f"{_when(e.at, tz, time=True)} · *{e.operation}* → {e.plan}, {e.status}"
        f"{', legacy billing' if e.billing_mode == 'legacy' else ''}"
        f" · {format_money(e.monthly_price)}/month · {escape(e.actor)}"
        for e in entries
    ]
    body = "\n".join(lines) or "No history."
    blocks = [_header(f"History of {clip(app.name, 100)} ({app.app_id})")]
    blocks += [_section(chunk) for chunk in _chunks(body, MAX_SECTION)]
    return _message(f"History of {escape(app.name)}", blocks)


def bill_message(app: AppState, statement: Statement) -> dict[str, Any]:
    """A month's bill: one line per run of days charged alike (dates, days, plan and add-ons,
    amount), adding up to the total to the cent; or why the month has nothing to bill."""
    cur = statement.currency
    month = f"{statement.year}-{statement.month:02d}"
    header = _header(f"Bill for {clip(app.name, 80)} ({app.app_id}), {month}")
    created = f"{statement.created_on:%Y-%m-%d}" if statement.created_on else "?"
    if statement.before_app:
        text = (
            f"{_app(app.name, app.app_id)} was created on {created}, after {month}: "
            "there is nothing to bill for that month."
        )
        return _message(
            f"Nothing to bill for {escape(app.name)} in {month}", [header, _section(text)]
        )
    if statement.not_started:
        first, last = statement.bill_window
        text = (
            f"{month} has not started yet: nothing is charged for it so far. If nothing changes, "
            f"it will cost {format_money(statement.total, cur)}, billed on "
            f"{first:%Y-%m-%d}–{last:%d}. `/plan bill {app.app_id}` shows this month so far."
        )
        return _message(f"{month} has not started yet", [header, _section(text)])
    rows = [
        escape(row)
        for run in statement.runs
        for row in tables.charge_rows(
            first=run.first,
            last=run.last,
            days=run.days,
            label=run.label,
            addons=run.addons,
            amount=format_money(run.amount, cur),
            projected=run.projected,
        )
    ]
    first, last = statement.bill_window
    total = f"*Total for {month}: {format_money(statement.total, cur)}*"
    if statement.projected:
        total += (
            f" (charged to date, today included: {format_money(statement.to_date, cur)}; "
            "the lines marked projected are what the rest costs if nothing changes)"
        )
    if statement.created_on and statement.created_on >= statement.first_day:
        total += f"\nCreated on {created}: billed from that day."
    room = MAX_BLOCKS - 3  # the header, the total and the note
    sections = tables.fences(rows, MAX_SECTION) if rows else ["No days to bill in this month."]
    blocks = [
        header,
        *(_section(t) for t in sections[:room]),
        _section(total),
        _context(
            f"Billed on {first:%Y-%m-%d}–{last:%d}. A day costs the monthly price / days in the "
            "month, at the highest rate in force that day; the month's total is rounded once to "
            "the cent, so a plan held all month costs its monthly price, and the lines add up "
            "to it."
        ),
    ]
    return _message(
        f"Bill for {escape(app.name)} {month}: {format_money(statement.total, cur)}", blocks
    )


def access_list_message(
    grants: Sequence[tuple[Grant, str]], admins: Sequence[str]
) -> dict[str, Any]:
    """Who has which role."""
    lines = [f"• <@{a}>: admin (configured)" for a in admins]
    for grant, label in grants:
        who = (
            f"<@{grant.principal_id}>"
            if grant.principal_kind == "user"
            else f"<!subteam^{grant.principal_id}>"
        )
        where = f" for <#{grant.team}>" if grant.team else ""
        lines.append(
            f"• {who}: {grant.role.label}{where}" + (f" ({escape(label)})" if label else "")
        )
    body = "\n".join(lines) or "No grants: everyone has the default role."
    return _message(
        "planbot access",
        [_header("Who may do what"), *(_section(c) for c in _chunks(body, MAX_SECTION))],
    )


# --- channel messages (from the outbox) ------------------------------------------------------


def audit_message(payload: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """An audit-channel message for a change, a refused confirmation, or an access change."""
    kind = payload.get("type")
    actor = f"<@{payload.get('actor_id')}>"
    at = datetime.fromisoformat(str(payload["at"])) if payload.get("at") else None
    context = f"audit #{payload.get('audit_seq')} · {_when(at, tz, time=True)}"
    if payload.get("request_id"):
        context += f" · request `{escape(str(payload['request_id']))}`"
    app = _app(str(payload.get("app_name") or payload.get("app_id") or "?"), payload.get("app_id"))
    if kind in ("access.grant", "access.revoke"):
        verb = "granted" if kind == "access.grant" else "revoked"
        # named by the stable id, not the changeable label (a group is not pinged)
        principal_kind, _, principal_id = str(payload.get("principal", "")).partition(":")
        label = escape(str(payload.get("label") or principal_id))
        whom = {
            "user": f"<@{principal_id}>",
            "group": f"group {label} (`{escape(principal_id)}`)",
        }.get(principal_kind, label)
        team = str(payload.get("team") or "")
        where = f"<#{team}>" if team and not team.startswith("(") else "all apps"
        text = (
            f":key: {actor} {verb} *{escape(str(payload.get('role')))}* "
            f"{'to' if verb == 'granted' else 'from'} {whom} ({where})"
        )
        return _message(text, [_section(text), _context(context)])
    if kind == "change":
        verb = {
            "create": "created",
            "upgrade": "upgraded",
            "configure": "reconfigured",
            "extend": "extended",
            "disable": "disabled",
            "enable": "re-enabled",
            "migrate": "migrated",
            "suspend": "suspended",
            "purge": "purged",
        }.get(str(payload.get("operation")), str(payload.get("operation")))
        icon = (
            ":red_circle:"
            if verb in ("disabled", "purged", "suspended")
            else ":large_green_circle:"
        )
        text = f"{icon} {actor} {verb} {app}"
        if payload.get("actor_id") == "planbot":
            text = f"{icon} {app} was {verb}"
        blocks = [_section(text)]
        changes = payload.get("changes") or []
        if changes:
            blocks.append(_section(_change_lines(changes)))
        if payload.get("cost"):
            blocks.append(_section(f"*Cost:* {escape(str(payload['cost']))}"))
        if payload.get("detail"):
            blocks.append(_section(escape(str(payload["detail"]))))
        if payload.get("requester_id") and payload.get("requester_id") != payload.get("actor_id"):
            context += f" · requested by <@{payload['requester_id']}>"
        blocks.append(_context(context))
        return _message(
            f"{verb} {escape(str(payload.get('app_name') or payload.get('app_id')))}", blocks
        )
    outcome = str(payload.get("outcome", kind))
    icon = {
        "refused": ":no_entry:",
        "rejected": ":no_entry_sign:",
        "approved": ":ballot_box_with_check:",
    }.get(outcome, ":information_source:")
    text = f"{icon} {outcome.capitalize()}: {actor} on {payload.get('operation')} of {app}"
    if payload.get("requester_id") and payload.get("requester_id") != payload.get("actor_id"):
        context += f" · requested by <@{payload['requester_id']}>"
    blocks = [_section(text)]
    if payload.get("detail"):
        blocks.append(_section(escape(str(payload["detail"]))))
    blocks.append(_context(context))
    return _message(text, blocks)


def approval_card(payload: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """The card asking peers to approve or reject a request."""
    request_id = str(payload["request_id"])
    needed = int(payload.get("approvals_needed", 1))
    expires = (
        datetime.fromisoformat(str(payload["expires_at"])) if payload.get("expires_at") else None
    )
    blocks: list[dict[str, Any]] = [
        _header(f"Approval needed: {payload.get('summary', '')}"),
        _section(
            f"<@{payload.get('requester_id')}> asks to {escape(str(payload.get('operation')))} "
            f"{_app(str(payload.get('app_name') or ''), payload.get('app_id'))}. "
            f"Needs {needed} approval{'s' if needed != 1 else ''} from someone else with the role."
        ),
        _section("*Changes*\n" + _change_lines(payload.get("changes") or [])),
    ]
    if payload.get("cost"):
        blocks.append(_section(f"*Cost*\n{escape(str(payload['cost']))}"))
    for warning in payload.get("warnings") or []:
        blocks.append(_section(f":warning: {escape(str(warning))}"))
    approve = _button(
        "Approve", APPROVE, request_id, style="danger" if payload.get("danger") else "primary"
    )
    if payload.get("danger"):
        approve["confirm"] = _danger_dialog(
            "Approve this change?",
            escape(" ".join(payload.get("warnings") or [])) or "Are you sure?",
        )
    blocks.append(
        {
            "type": "actions",
            "block_id": "plan_approval",
            "elements": [approve, _button("Reject", REJECT, request_id)],
        }
    )
    blocks.append(_context(f"Expires {_when(expires, tz, time=True)} · request `{request_id}`"))
    return _message(f"Approval needed: {escape(str(payload.get('summary', '')))}", blocks)
