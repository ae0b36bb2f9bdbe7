"""Cards for people: pure functions from core values to Slack message dicts.

Previews and what becomes of them, refusals, and what `/plan` shows (status, list, history,
bill, access). Built from `bot.kit`'s primitives, worded by `bot.words`; channel messages are in
`bot.notices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
from bot.words import Words, mention, plural
from core import (
    AppPage,
    AppState,
    AppStatus,
    ChannelNotAllowed,
    FieldChange,
    Grant,
    HistoryEntry,
    NoApproverAvailable,
    Outcome,
    PendingRequest,
    PermissionDenied,
    PlanError,
    Preview,
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
    "channel_refusal",
    "failure_message",
    "help_message",
    "history_message",
    "list_message",
    "outcome_card",
    "preview_card",
    "refusal",
    "status_message",
    "text_message",
    "waiting_card",
]

CONFIRM = "plan_confirm"
CANCEL = "plan_cancel"
APPROVE = "plan_approve"
REJECT = "plan_reject"


def app_label(name: str, app_id: str | None) -> str:
    """'*name* (`id`)', the name escaped."""
    return f"*{escape(name)}* (`{app_id}`)" if app_id else f"*{escape(name)}*"


# --- refusals --------------------------------------------------------------------------------


def refusal(err: PlanError, words: Words | None = None, **extra: Any) -> dict[str, Any]:
    """A refusal, as the person should read it: what, why, what to do instead (worded by
    `words` when given: people as mentions, moments as date tokens)."""
    said = words.refusal(err) if words is not None else escape(err.message)
    text = f":no_entry: {said}"
    if isinstance(err, PermissionDenied) and err.admins:
        text += "\nAdmins: " + ", ".join(f"<@{a}>" for a in err.admins)
    if isinstance(err, NoApproverAvailable):
        holders = ", ".join(mention(h) for h in err.holders) or "nobody"
        text += f"\nWho has the `{escape(err.role)}` role besides you: {holders}."
    if isinstance(err, ChannelNotAllowed) and err.channels:
        text += "\nAllowed: " + ", ".join(f"<#{c}>" for c in err.channels)
    return text_message(text, **extra)


def channel_refusal(reach: str, channel: str, purpose: str) -> dict[str, Any]:
    """Why an app can't belong to that channel (`purpose` "own": created there; "grant": a
    team's role), and the fix. `reach`: "direct", "outside" or "unknown" (`bot.channels`)."""
    where = f"<#{channel}>"
    if reach == "direct":
        text = (
            "An app belongs to a team's channel, where planbot posts its expiry reminders, "
            "purge warnings and statements, and a direct message is not one. Run this in your "
            "team's channel (after `/invite @planbot` there)."
        )
    elif reach == "outside":
        text = (
            f"planbot is not a member of {where}, so the app's expiry reminders, purge warnings "
            f"and statements could not be posted there. Invite it with `/invite @planbot` in "
            f"{where}, then try again (if you just did, give it a few seconds)."
        )
    else:
        text = (
            f"planbot is checking that it can post in {where} (it has not looked at this "
            "channel before). Try again in a few seconds; if planbot is not in the channel, "
            "invite it first with `/invite @planbot`."
        )
    if purpose == "grant":
        text = f"A team's role can't be granted for {where} yet. {text}"
    return text_message(f":no_entry: {text}")


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
        lines.append(f"• {escape(label)}: {before} → *{after}*")
    return "\n".join(lines) or "• nothing visible changes"


def _preview_blocks(preview: Preview, words: Words, title: str) -> list[dict[str, Any]]:
    """The header, the app, the changes, the cost and the notices of a preview."""
    icon = ":warning:" if preview.danger or preview.irreversible else ":information_source:"
    return [
        header(title),
        section(f"*App:* {app_label(preview.app_name, preview.app_id)}"),
        section("*Changes*\n" + change_lines(preview.changes, words)),
        section(f"*Cost*\n{escape(words.cost(preview.cost))}"),
        *(section(f"{icon} {words.notice(n)}") for n in preview.notices),
    ]


def preview_card(pending: PendingRequest, words: Words) -> Message:
    """The ephemeral card of a previewed change, with Confirm / Cancel (or waiting for approval)."""
    preview = pending.preview
    if pending.approval.needs_peer:
        note = ""
        known = pending.approvers
        unsure = known is not None and not known.anyone and bool(known.groups)
        if known is not None and unsure and len(known.users) < pending.approval.approvers:
            groups = ", ".join(f"<!subteam^{g}>" for g in known.groups)
            note = (
                f"Besides the people planbot knows to have the role, members of {groups} have "
                "it; planbot can't tell in advance who they are."
            )
        return waiting_card(
            preview,
            words,
            request_id=pending.id,
            needed=pending.approval.approvers,
            role=pending.role,
            expires_at=pending.expires_at,
            channel=pending.approval_channel,
            approver_group=pending.approver_group,
            note=note,
        )
    summary = words.summary(preview)
    blocks = _preview_blocks(preview, words, summary + "?")
    confirm = button(
        "Confirm", CONFIRM, pending.id, style="danger" if preview.danger else "primary"
    )
    if preview.danger:
        confirm["confirm"] = danger_dialog(
            "Are you sure?",
            " ".join(words.notice(n) for n in preview.notices) or "This can't be undone.",
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
    blocks.append(context(f"Expires {words.moment(pending.expires_at)} · request `{pending.id}`"))
    return message(f"{escape(summary)}: confirm or cancel", blocks, response_type="ephemeral")


def waiting_card(
    preview: Preview,
    words: Words,
    *,
    request_id: str,
    needed: int,
    role: str,
    expires_at: datetime,
    channel: str | None,
    approver_group: str | None = None,
    permalink: str | None = None,
    posted: bool | None = None,
    note: str = "",
) -> Message:
    """The requester's card of a change that waits for peers' approval: the preview, who must
    approve it and where the approval card is (linked once posted), and Withdraw.

    `posted`: None while the approval card is on its way, True once posted (with its
    `permalink` when known), False when it could not be posted.
    """
    summary = words.summary(preview)
    blocks = _preview_blocks(preview, words, summary)
    who = "1 other person" if needed == 1 else f"{needed} other people"
    group = f" ({'<!subteam^' + approver_group + '>'})" if approver_group else ""
    where = f"<#{channel}>" if channel else "the approvals channel"
    if posted is None:
        status = f"An approval card is being posted in {where}."
    elif posted and permalink:
        status = f"The approval card is in {where}: <{permalink}|open it>."
    elif posted:
        status = f"The approval card is in {where}."
    else:
        status = (
            f"The approval card could not be posted in {where}: planbot may not be in that "
            "channel (`/invite @planbot` there). The audit channel was told."
        )
    lines = [
        f":hourglass_flowing_sand: This change needs approval by {who} with the *{escape(role)}* "
        f"role{group}. {status} planbot will message you the outcome.",
    ]
    if note:
        lines.append(note)
    blocks.append(section("\n".join(lines)))
    blocks.append(
        {
            "type": "actions",
            "block_id": "plan_request",
            "elements": [button("Withdraw request", CANCEL, request_id)],
        }
    )
    blocks.append(context(f"Expires {words.moment(expires_at)} · request `{request_id}`"))
    return message(f"{escape(summary)}: waiting for approval", blocks, response_type="ephemeral")


_OUTCOME_ICON = {
    "applied": ":white_check_mark:",
    "cancelled": ":heavy_multiplication_x:",
    "rejected": ":no_entry_sign:",
    "approved": ":ballot_box_with_check:",
    "expired": ":hourglass:",
    "refused": ":no_entry:",
}


def outcome_card(outcome: Outcome, words: Words, now: datetime) -> Message:
    """What replaces a request's card once it is decided (no buttons: nothing is left to do)."""
    icon = _OUTCOME_ICON.get(outcome.state, ":information_source:")
    said = words.outcome(outcome)
    blocks = [section(f"{icon} {said}")]
    if outcome.state == "applied":
        if outcome.changes:
            blocks.append(section("*Changes*\n" + change_lines(outcome.changes, words)))
        if outcome.cost is not None:
            blocks.append(section(f"*Cost*\n{escape(words.cost(outcome.cost))}"))
    footer = {
        "applied": "Applied by {who} · {at}",
        "cancelled": "Cancelled by {who} · {at}",
        "rejected": "Rejected by {who} · {at}",
        "approved": "Approved by {who} · {at}",
        "refused": "Refused · {at}",
        "expired": "Expired · {at}",
    }.get(outcome.state, "{at}")
    text = footer.format(who=mention(outcome.actor), at=words.moment(now))
    if outcome.approvals and outcome.state != "approved":
        text += f" · approved by {', '.join(mention(a) for a in outcome.approvals)}"
    blocks.append(context(text))
    return message(said, blocks, replace_original=True)


# --- reading ---------------------------------------------------------------------------------


def status_message(
    status: AppStatus, words: Words, *, extra: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """An app's status card; `extra` fields (the provider's figures) follow the plan's limits."""
    app = status.app
    price = format_money(status.monthly_price, status.currency)
    pairs = [
        ("Plan", f"{app.plan} ({price}/month)"),
        ("Status", str(app.status)),
        ("Billing mode", str(app.billing_mode)),
        ("Owner", f"<#{app.owner_channel}>" if app.owner_channel else "-"),
        ("Created", words.moment(app.created_at)),
    ]
    if app.plan.value == "developer":
        pairs.append(("Developer validity until", words.moment(app.dev_expires_at)))
    else:
        pairs.append(("Add-ons", escape(status.config_text)))
        pairs.append(("Configuration change this month", _config_change(status, words)))
    if app.disabled_at:
        pairs.append(("Disabled on", words.moment(app.disabled_at)))
        pairs.append(("Purged after", words.moment(status.purge_at)))
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


def _config_change(status: AppStatus, words: Words) -> str:
    """Whether this month's configuration change can be made: what the rule says now."""
    blocked = status.config_change_blocked
    app_id = status.app.app_id
    if blocked is not None:
        if blocked.code == "LegacyBillingMode":
            return f"not possible on legacy billing: migrate it first (`/plan migrate {app_id}`)"
        if blocked.code == "AppPurged":
            return "never: the app is purged"
        if status.app.status.value == "disabled":
            return f"not possible while disabled: re-enable it first (`/plan enable {app_id}`)"
        return f"not possible while {escape(status.app.status)}"
    if status.config_change_used:
        nxt = status.next_config_change
        day = words.billing_day(nxt.astimezone(words.tz).date()) if nxt else "-"
        return f"used (next change from {day})"
    return "available"


def list_message(page: AppPage, *, contains: str | None) -> dict[str, Any]:
    """One page of the app list (at most 40 apps a page keeps within 50 blocks)."""
    filt = f" matching `{escape(contains)}`" if contains else ""
    arg = f" {escape(contains)}" if contains else ""
    if not page.apps and page.total:
        last = f"`/plan list{arg} page={page.pages}`" if page.pages > 1 else f"`/plan list{arg}`"
        pages = plural(page.pages, "page", "pages")
        return text_message(
            f"Page {page.page} is past the end: {page.total:,} apps{filt} fill {pages}. "
            f"The last one is {last}."
        )
    if not page.apps:
        return text_message(f"No apps{filt}.")
    lines = [
        f"`{a.app_id}` *{escape(clip(a.name, 60))}* · {a.plan} · {a.status}"
        + (" · legacy billing" if a.billing_mode.value == "legacy" else "")
        for a in page.apps
    ]
    blocks = [section(chunk) for chunk in chunks("\n".join(lines), MAX_SECTION)]
    more = ""
    if page.page < page.pages:
        more = f" · next: `/plan list{arg} page={page.page + 1}`"
    blocks.append(context(f"{page.total:,} apps{filt} · page {page.page} of {page.pages}{more}"))
    return message(f"{page.total} apps", blocks)


def history_message(app: AppState, entries: Sequence[HistoryEntry], words: Words) -> dict[str, Any]:
    """An app's plan history, newest first."""
    lines = [
        f"{words.moment(e.at)} · *{e.operation}* → {e.plan}, {e.status}"
        f"{', legacy billing' if e.billing_mode == 'legacy' else ''}"
        f" · {format_money(e.monthly_price)}/month · {mention(e.actor)}"
        for e in entries
    ]
    body = "\n".join(lines) or "No history."
    blocks = [header(f"History of {clip(app.name, 100)} ({app.app_id})")]
    blocks += [section(chunk) for chunk in chunks(body, MAX_SECTION)]
    return message(f"History of {escape(app.name)}", blocks)


def bill_message(app: AppState, statement: Statement, zone: str | None = None) -> dict[str, Any]:
    """A month's bill: one line per run of days charged alike (dates, days, plan and add-ons,
    amount), adding up to the total to the cent; or why the month has nothing to bill. `zone`:
    the billing time zone, named where the billing day matters."""
    days = f"billing days in {zone}" if zone else "billing days"
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
            f"Dates are {days}. Billed on {first:%Y-%m-%d}–{last:%d}. A day costs the monthly "
            "price / days in the month, at the highest rate in force that day; the month's total "
            "is rounded once to the cent, so a plan held all month costs its monthly price, and "
            "the lines add up to it."
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
