"""Cards for people: pure functions from core values to Slack message dicts.

Previews and what becomes of them, refusals, and what `/plan` shows (status, list, history,
bill, access). Built from `bot.kit`'s primitives, worded by `bot.words`; channel messages are in
`bot.notices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import tables
from bot.kit import (
    MAX_BLOCKS,
    MAX_SECTION,
    Message,
    button,
    chunks,
    clip,
    context,
    danger_dialog,
    escape,
    fields,
    header,
    message,
    section,
    text_message,
)
from bot.words import Words
from core import (
    AppPage,
    AppState,
    AppStatus,
    ChannelNotAllowed,
    FieldChange,
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
    "app_label",
    "bill_message",
    "change_lines",
    "failure_message",
    "help_message",
    "history_message",
    "list_message",
    "outcome_card",
    "preview_card",
    "refusal",
    "status_message",
    "text_message",
    "when",
]

CONFIRM = "plan_confirm"
CANCEL = "plan_cancel"
APPROVE = "plan_approve"
REJECT = "plan_reject"


def _danger_dialog(
    title: str, text: str, *, yes: str = "Approve", no: str = "Not yet"
) -> dict[str, Any]:
    return danger_dialog(title, text, yes=yes, no=no)


def when(moment: datetime | None, tz: ZoneInfo, *, time: bool = False) -> str:
    """'2026-12-01' (or '2026-12-01 19:32 CST' with `time`) in `tz`; '-' for none."""
    if moment is None:
        return "-"
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M %Z" if time else "%Y-%m-%d")


def app_label(name: str, app_id: str | None) -> str:
    """'*name* (`id`)', the name escaped."""
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
    return message("planbot help", [section(chunk) for chunk in chunks(text, MAX_SECTION)])


# --- the preview card and what becomes of it ----------------------------------------------------


def change_lines(changes: Sequence[FieldChange], words: Words) -> str:
    """The changed fields, one bullet each: label, before → *after*."""
    lines = []
    for change in changes:
        label, before, after = words.change(change)
        lines.append(f"• {escape(label)}: {escape(before)} → *{escape(after)}*")
    return "\n".join(lines) or "• nothing visible changes"


def preview_card(pending: PendingRequest, words: Words) -> Message:
    """The ephemeral card of a previewed change, with Confirm / Cancel (or waiting for approval)."""
    preview = pending.preview
    summary = words.summary(preview)
    title = summary + ("?" if not pending.approval.needs_peer else "")
    warnings = [words.notice(n) for n in preview.notices]
    blocks: list[dict[str, Any]] = [
        header(title),
        section(f"*App:* {app_label(preview.app_name, preview.app_id)}"),
        section("*Changes*\n" + change_lines(preview.changes, words)),
        section(f"*Cost*\n{escape(words.cost(preview.cost))}"),
    ]
    for warning in warnings:
        icon = ":warning:" if preview.danger or preview.irreversible else ":information_source:"
        blocks.append(section(f"{icon} {escape(warning)}"))
    expires = when(pending.expires_at, words.tz, time=True)
    if pending.approval.needs_peer:
        n = pending.approval.approvers
        blocks.append(
            section(
                f":hourglass_flowing_sand: This change needs approval by {n} other "
                f"{'person' if n == 1 else 'people'} with the needed role. An approval card was "
                "posted for them; planbot will message you the outcome."
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": "plan_request",
                "elements": [button("Withdraw request", CANCEL, pending.id)],
            }
        )
    else:
        confirm = button(
            "Confirm", CONFIRM, pending.id, style="danger" if preview.danger else "primary"
        )
        if preview.danger:
            confirm["confirm"] = danger_dialog(
                "Are you sure?",
                escape(" ".join(warnings)) or "This can't be undone.",
                yes="Yes, go ahead",
                no="No, keep it",
            )
        blocks.append(
            {
                "type": "actions",
                "block_id": "plan_request",
                "elements": [confirm, button("Cancel", CANCEL, pending.id)],
            }
        )
    blocks.append(context(f"Expires {expires} · request `{pending.id}`"))
    return message(f"{escape(summary)}: confirm or cancel", blocks, response_type="ephemeral")


_OUTCOME_ICON = {
    "applied": ":white_check_mark:",
    "cancelled": ":heavy_multiplication_x:",
    "rejected": ":no_entry_sign:",
    "approved": ":ballot_box_with_check:",
}


def outcome_card(outcome: Outcome, words: Words, now: datetime) -> Message:
    """What replaces the preview card once the request is decided."""
    icon = _OUTCOME_ICON.get(outcome.state, ":information_source:")
    said = words.outcome(outcome)
    blocks = [section(f"{icon} {escape(said)}")]
    if outcome.state == "applied":
        if outcome.changes:
            blocks.append(section("*Changes*\n" + change_lines(outcome.changes, words)))
        if outcome.cost is not None:
            blocks.append(section(f"*Cost*\n{escape(words.cost(outcome.cost))}"))
    if outcome.state == "approved":  # more approvals needed: the card keeps its buttons
        danger = outcome.operation.value in ("disable", "migrate")
        approve = button(
            "Approve", APPROVE, outcome.request_id, style="danger" if danger else "primary"
        )
        if danger:
            approve["confirm"] = _danger_dialog(
                "Approve this change?", f"{escape(outcome.app_name)}: {outcome.operation}"
            )
        reject = button("Reject", REJECT, outcome.request_id)
        blocks.append(
            {"type": "actions", "block_id": "plan_approval", "elements": [approve, reject]}
        )
    who = f"<@{outcome.actor.user_id}>"
    names = ", ".join(a.label for a in outcome.approvals)
    extra = f" · approved by {escape(names)}" if outcome.approvals else ""
    blocks.append(
        context(f"{outcome.state.capitalize()} by {who} at {when(now, words.tz, time=True)}{extra}")
    )
    return message(escape(said), blocks, replace_original=True)


# --- reading ---------------------------------------------------------------------------------


def status_message(
    status: AppStatus, tz: ZoneInfo, *, extra: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """An app's status card; `extra` fields (the provider's figures) follow the plan's limits."""
    app = status.app
    price = format_money(status.monthly_price, status.currency)
    pairs = [
        ("Plan", f"{app.plan} ({price}/month)"),
        ("Status", str(app.status)),
        ("Billing mode", str(app.billing_mode)),
        ("Owner", f"<#{app.owner_channel}>" if app.owner_channel else "-"),
        ("Created", when(app.created_at, tz)),
    ]
    if app.plan.value == "developer":
        pairs.append(("Developer validity until", when(app.dev_expires_at, tz)))
    else:
        pairs.append(("Add-ons", escape(status.config_text)))
        used = (
            f"used (next change from {when(status.next_config_change, tz)})"
            if status.config_change_used
            else "available"
        )
        pairs.append(("Configuration change this month", used))
    if app.disabled_at:
        pairs.append(("Disabled on", when(app.disabled_at, tz)))
        pairs.append(("Purged after", when(status.purge_at, tz)))
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
    pairs.extend(extra)
    blocks = [header(f"{clip(app.name, 100)} ({app.app_id})"), *fields(pairs)]
    if app.billing_mode.value == "legacy":
        blocks.append(
            context(f"On legacy billing: plan operations need `/plan migrate {app.app_id}` first.")
        )
    return message(f"{escape(app.name)} ({app.app_id}): {app.plan}, {app.status}", blocks)


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
    blocks = [section(chunk) for chunk in chunks("\n".join(lines), MAX_SECTION)]
    filt = f" matching `{escape(contains)}`" if contains else ""
    more = ""
    if page.page < page.pages:
        arg = f" {escape(contains)}" if contains else ""
        more = f" · next: `/plan list{arg} page={page.page + 1}`"
    blocks.append(context(f"{page.total:,} apps{filt} · page {page.page} of {page.pages}{more}"))
    return message(f"{page.total} apps", blocks)


def history_message(app: AppState, entries: Sequence[HistoryEntry], tz: ZoneInfo) -> dict[str, Any]:
    """An app's plan history, newest first."""
    lines = [
        f"{when(e.at, tz, time=True)} · *{e.operation}* → {e.plan}, {e.status}"
        f"{', legacy billing' if e.billing_mode == 'legacy' else ''}"
        f" · {format_money(e.monthly_price)}/month · {escape(e.actor.label)}"
        for e in entries
    ]
    body = "\n".join(lines) or "No history."
    blocks = [header(f"History of {clip(app.name, 100)} ({app.app_id})")]
    blocks += [section(chunk) for chunk in chunks(body, MAX_SECTION)]
    return message(f"History of {escape(app.name)}", blocks)


def bill_message(app: AppState, statement: Statement) -> dict[str, Any]:
    """A month's bill: one line per run of days charged alike (dates, days, plan and add-ons,
    amount), adding up to the total to the cent; or why the month has nothing to bill."""
    cur = statement.currency
    month = f"{statement.year}-{statement.month:02d}"
    title = header(f"Bill for {clip(app.name, 80)} ({app.app_id}), {month}")
    created = f"{statement.created_on:%Y-%m-%d}" if statement.created_on else "?"
    if statement.before_app:
        text = (
            f"{app_label(app.name, app.app_id)} was created on {created}, after {month}: "
            "there is nothing to bill for that month."
        )
        return message(f"Nothing to bill for {escape(app.name)} in {month}", [title, section(text)])
    if statement.not_started:
        first, last = statement.bill_window
        text = (
            f"{month} has not started yet: nothing is charged for it so far. If nothing changes, "
            f"it will cost {format_money(statement.total, cur)}, billed on "
            f"{first:%Y-%m-%d}–{last:%d}. `/plan bill {app.app_id}` shows this month so far."
        )
        return message(f"{month} has not started yet", [title, section(text)])
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
        title,
        *(section(t) for t in sections[:room]),
        section(total),
        context(
            f"Billed on {first:%Y-%m-%d}–{last:%d}. A day costs the monthly price / days in the "
            "month, at the highest rate in force that day; the month's total is rounded once to "
            "the cent, so a plan held all month costs its monthly price, and the lines add up "
            "to it."
        ),
    ]
    return message(
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
    return message(
        "planbot access",
        [header("Who may do what"), *(section(c) for c in chunks(body, MAX_SECTION))],
    )
