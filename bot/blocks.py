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
from bot.i18n import N_, _, ngettext, number
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
from bot.words import (
    Words,
    billing_mode_name,
    date_text,
    day_range,
    mention,
    money_text,
    month_name,
    operation_name,
    plan_label,
    plan_name,
    refusal_text,
    role_name,
    status_name,
)
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
    Refusal,
    Statement,
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
    said = words.refusal(err) if words is not None else refusal_text(Refusal.of(err))
    lines = [f":no_entry: {said}"]
    if isinstance(err, PermissionDenied) and err.admins:
        admins = ", ".join(f"<@{a}>" for a in err.admins)
        lines.append(_("Admins: {people}").format(people=admins))
    if isinstance(err, NoApproverAvailable):
        role = escape(err.role)
        if err.holders:
            holders = ", ".join(mention(h) for h in err.holders)
            lines.append(
                _("Who has the `{role}` role besides you: {people}.").format(
                    role=role, people=holders
                )
            )
        else:
            lines.append(_("Who has the `{role}` role besides you: nobody.").format(role=role))
    if isinstance(err, ChannelNotAllowed) and err.channels:
        allowed = ", ".join(f"<#{c}>" for c in err.channels)
        lines.append(_("Allowed: {channels}").format(channels=allowed))
    return text_message("\n".join(lines), **extra)


def channel_refusal(reach: str, channel: str, purpose: str) -> dict[str, Any]:
    """Why an app can't belong to that channel (`purpose` "own": created there; "grant": a
    team's role), and the fix. `reach`: "direct", "outside" or "unknown" (`bot.channels`)."""
    where = f"<#{channel}>"
    if reach == "direct":
        text = _(
            "An app belongs to a team's channel, where planbot posts its expiry reminders, "
            "purge warnings and statements, and a direct message is not one. Run this in your "
            "team's channel (after `/invite @planbot` there)."
        )
    elif reach == "outside":
        text = _(
            "planbot is not a member of {channel}, so the app's expiry reminders, purge warnings "
            "and statements could not be posted there. Invite it with `/invite @planbot` in "
            "{channel}, then try again (if you just did, give it a few seconds)."
        ).format(channel=where)
    else:
        text = _(
            "planbot is checking that it can post in {channel} (it has not looked at this "
            "channel before). Try again in a few seconds; if planbot is not in the channel, "
            "invite it first with `/invite @planbot`."
        ).format(channel=where)
    if purpose == "grant":
        text = _("A team's role can't be granted for {channel} yet. {why}").format(
            channel=where, why=text
        )
    return text_message(f":no_entry: {text}")


def failure_message(reference: str) -> dict[str, Any]:
    """What a person sees when something unexpected broke (details are only in the log)."""
    said = _(
        "Something went wrong on planbot's side and nothing was changed. Try again in a moment; "
        "if it keeps happening, give this reference to the admins: `{reference}`."
    ).format(reference=reference)
    return text_message(f":warning: {said}")


def help_message(text: str) -> dict[str, Any]:
    """The help text (from the grammar) as a message."""
    return message(_("planbot help"), [section(chunk) for chunk in chunks(text, MAX_SECTION)])


# --- the preview card and what becomes of it ----------------------------------------------------


def change_lines(changes: Sequence[FieldChange], words: Words) -> str:
    """The changed fields, one bullet each: label, before → *after*."""
    lines = []
    for change in changes:
        label, before, after = words.change(change)
        lines.append(f"• {escape(label)}: {before} → *{after}*")
    return "\n".join(lines) or "• " + _("nothing visible changes")


def _preview_blocks(preview: Preview, words: Words, title: str) -> list[dict[str, Any]]:
    """The header, the app, the changes, the cost and the notices of a preview."""
    icon = ":warning:" if preview.danger or preview.irreversible else ":information_source:"
    return [
        header(title),
        section(_("*App:* {app}").format(app=app_label(preview.app_name, preview.app_id))),
        section(_("*Changes*") + "\n" + change_lines(preview.changes, words)),
        section(_("*Cost*") + "\n" + escape(words.cost(preview.cost))),
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
            note = _(
                "Besides the people planbot knows to have the role, members of {groups} have "
                "it; planbot can't tell in advance who they are."
            ).format(groups=groups)
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
    # Translators: a preview card's title: the change it asks, as a question
    blocks = _preview_blocks(preview, words, _("{summary}?").format(summary=summary))
    confirm = button(
        _("Confirm"), CONFIRM, pending.id, style="danger" if preview.danger else "primary"
    )
    if preview.danger:
        confirm["confirm"] = danger_dialog(
            _("Are you sure?"),
            " ".join(words.notice(n) for n in preview.notices) or _("This can't be undone."),
            yes=_("Yes, go ahead"),
            no=_("No, keep it"),
        )
    blocks.append(
        {
            "type": "actions",
            "block_id": "plan_request",
            "elements": [confirm, button(_("Cancel"), CANCEL, pending.id)],
        }
    )
    blocks.append(context(_expires(words.moment(pending.expires_at), pending.id)))
    return message(
        _("{summary}: confirm or cancel").format(summary=escape(summary)),
        blocks,
        response_type="ephemeral",
    )


def _expires(moment: str, request_id: str) -> str:
    """'Expires <date> · request `id`'."""
    return _("Expires {moment} · request `{request_id}`").format(
        moment=moment, request_id=request_id
    )


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
    where = f"<#{channel}>" if channel else _("the approvals channel")
    if posted is None:
        status = _("An approval card is being posted in {channel}.").format(channel=where)
    elif posted and permalink:
        status = _("The approval card is in {channel}: <{link}|open it>.").format(
            channel=where, link=permalink
        )
    elif posted:
        status = _("The approval card is in {channel}.").format(channel=where)
    else:
        status = _(
            "The approval card could not be posted in {channel}: planbot may not be in that "
            "channel (`/invite @planbot` there). The audit channel was told."
        ).format(channel=where)
    if approver_group:
        needs = ngettext(
            "This change needs approval by {n} other person with the *{role}* role ({group}).",
            "This change needs approval by {n} other people with the *{role}* role ({group}).",
            needed,
        ).format(n=needed, role=escape(role_name(role)), group=f"<!subteam^{approver_group}>")
    else:
        needs = ngettext(
            "This change needs approval by {n} other person with the *{role}* role.",
            "This change needs approval by {n} other people with the *{role}* role.",
            needed,
        ).format(n=needed, role=escape(role_name(role)))
    told = _("planbot will message you the outcome.")
    lines = [f":hourglass_flowing_sand: {needs} {status} {told}"]
    if note:
        lines.append(note)
    blocks.append(section("\n".join(lines)))
    blocks.append(
        {
            "type": "actions",
            "block_id": "plan_request",
            "elements": [button(_("Withdraw request"), CANCEL, request_id)],
        }
    )
    blocks.append(context(_expires(words.moment(expires_at), request_id)))
    return message(
        _("{summary}: waiting for approval").format(summary=escape(summary)),
        blocks,
        response_type="ephemeral",
    )


_OUTCOME_FOOTER = {
    "applied": N_("Applied by {who} · {at}"),
    "cancelled": N_("Cancelled by {who} · {at}"),
    "rejected": N_("Rejected by {who} · {at}"),
    "approved": N_("Approved by {who} · {at}"),
    "refused": N_("Refused · {at}"),
    "expired": N_("Expired · {at}"),
}

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
            blocks.append(section(_("*Changes*") + "\n" + change_lines(outcome.changes, words)))
        if outcome.cost is not None:
            blocks.append(section(_("*Cost*") + "\n" + escape(words.cost(outcome.cost))))
    footer = _OUTCOME_FOOTER.get(outcome.state)
    at = words.moment(now)
    text = _(footer).format(who=mention(outcome.actor), at=at) if footer else at
    if outcome.approvals and outcome.state != "approved":
        approved = ", ".join(mention(a) for a in outcome.approvals)
        text += " · " + _("approved by {people}").format(people=approved)
    blocks.append(context(text))
    return message(said, blocks, replace_original=True)


# --- reading ---------------------------------------------------------------------------------


def status_message(
    status: AppStatus, words: Words, *, extra: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """An app's status card; `extra` fields (the provider's figures) follow the plan's limits."""
    app = status.app
    price = money_text(status.monthly_price, status.currency)
    plan, state = plan_name(app.plan), status_name(app.status)
    pairs = [
        (_("Plan"), _("{plan} ({price}/month)").format(plan=plan, price=price)),
        (_("Status"), state),
        (_("Billing mode"), billing_mode_name(app.billing_mode)),
        (_("Owner"), f"<#{app.owner_channel}>" if app.owner_channel else "-"),
        (_("Created"), words.moment(app.created_at)),
    ]
    if app.plan.value == "developer":
        pairs.append((_("Developer validity until"), words.moment(app.dev_expires_at)))
    else:
        config = status.config_text
        shown = _("no add-ons") if config == "no add-ons" else config
        pairs.append((_("Add-ons"), escape(shown)))
        pairs.append((_("Configuration change this month"), _config_change(status, words)))
    if app.disabled_at:
        pairs.append((_("Disabled on"), words.moment(app.disabled_at)))
        pairs.append((_("Purged after"), words.moment(status.purge_at)))
    limits = status.limits
    if limits:
        pairs.append(
            (
                _("Limits"),
                _("{mau} free MAU · {members} members/group · {days} days history").format(
                    mau=_grouped(limits.get("monthly_active_users", 0)),
                    members=_grouped(limits.get("members_per_group", 0)),
                    days=limits.get("history_days", 0),
                ),
            )
        )
    pairs.extend(extra)
    blocks = [header(f"{clip(app.name, 100)} ({app.app_id})"), *fields(pairs)]
    if app.billing_mode.value == "legacy":
        blocks.append(
            context(
                _("On legacy billing: plan operations need `/plan migrate {app_id}` first.").format(
                    app_id=app.app_id
                )
            )
        )
    return message(f"{escape(app.name)} ({app.app_id}): {plan}, {state}", blocks)


def _grouped(value: int) -> str:
    """'12,345' (as the current language groups digits)."""
    return number(value)


def _config_change(status: AppStatus, words: Words) -> str:
    """Whether this month's configuration change can be made: what the rule says now."""
    blocked = status.config_change_blocked
    app_id = status.app.app_id
    if blocked is not None:
        if blocked.code == "LegacyBillingMode":
            return _(
                "not possible on legacy billing: migrate it first (`/plan migrate {app_id}`)"
            ).format(app_id=app_id)
        if blocked.code == "AppPurged":
            return _("never: the app is purged")
        if status.app.status.value == "disabled":
            return _(
                "not possible while disabled: re-enable it first (`/plan enable {app_id}`)"
            ).format(app_id=app_id)
        return _("not possible while {status}").format(
            status=escape(status_name(status.app.status))
        )
    if status.config_change_used:
        nxt = status.next_config_change
        day = words.billing_day(nxt.astimezone(words.tz).date()) if nxt else "-"
        return _("used (next change from {day})").format(day=day)
    return _("available")


def list_message(page: AppPage, *, contains: str | None) -> dict[str, Any]:
    """One page of the app list (at most 40 apps a page keeps within 50 blocks)."""
    arg = f" {escape(contains)}" if contains else ""
    matching = escape(contains) if contains else ""
    total = number(page.total)
    if not page.apps and page.total:
        last = f"`/plan list{arg} page={page.pages}`" if page.pages > 1 else f"`/plan list{arg}`"
        if contains:
            said = ngettext(
                "Page {page} is past the end: {total} apps matching `{text}` fill {pages} page. "
                "The last one is {last}.",
                "Page {page} is past the end: {total} apps matching `{text}` fill {pages} pages. "
                "The last one is {last}.",
                page.pages,
            )
        else:
            said = ngettext(
                "Page {page} is past the end: {total} apps fill {pages} page. The last one is "
                "{last}.",
                "Page {page} is past the end: {total} apps fill {pages} pages. The last one is "
                "{last}.",
                page.pages,
            )
        return text_message(
            said.format(page=page.page, total=total, text=matching, pages=page.pages, last=last)
        )
    if not page.apps:
        if contains:
            return text_message(_("No apps matching `{text}`.").format(text=matching))
        return text_message(_("No apps."))
    legacy = " · " + _("legacy billing")
    lines = [
        f"`{a.app_id}` *{escape(clip(a.name, 60))}* · {plan_name(a.plan)} · {status_name(a.status)}"
        + (legacy if a.billing_mode.value == "legacy" else "")
        for a in page.apps
    ]
    blocks = [section(chunk) for chunk in chunks("\n".join(lines), MAX_SECTION)]
    if contains:
        where = _("{total} apps matching `{text}` · page {page} of {pages}")
    else:
        where = _("{total} apps · page {page} of {pages}")
    said = where.format(total=total, text=matching, page=page.page, pages=page.pages)
    if page.page < page.pages:
        said += " · " + _("next: {command}").format(
            command=f"`/plan list{arg} page={page.page + 1}`"
        )
    blocks.append(context(said))
    return message(_("{n} apps").format(n=page.total), blocks)


def history_message(app: AppState, entries: Sequence[HistoryEntry], words: Words) -> dict[str, Any]:
    """An app's plan history, newest first."""
    legacy = _("{plan}, {status}, legacy billing")
    plain = _("{plan}, {status}")
    month = _("{price}/month")
    lines = [
        f"{words.moment(e.at)} · *{escape(operation_name(e.operation))}* → "
        + (legacy if e.billing_mode == "legacy" else plain).format(
            plan=plan_name(e.plan), status=status_name(e.status)
        )
        + " · "
        + month.format(price=money_text(e.monthly_price))
        + f" · {mention(e.actor)}"
        for e in entries
    ]
    body = "\n".join(lines) or _("No history.")
    title = _("History of {name} ({app_id})").format(name=clip(app.name, 100), app_id=app.app_id)
    blocks = [header(title)]
    blocks += [section(chunk) for chunk in chunks(body, MAX_SECTION)]
    return message(_("History of {name}").format(name=escape(app.name)), blocks)


def bill_message(app: AppState, statement: Statement, zone: str | None = None) -> dict[str, Any]:
    """A month's bill: one line per run of days charged alike (dates, days, plan and add-ons,
    amount), adding up to the total to the cent; or why the month has nothing to bill. `zone`:
    the billing time zone, named where the billing day matters."""
    cur = statement.currency
    month = month_name(statement.year, statement.month)
    title = header(
        _("Bill for {name} ({app_id}), {month}").format(
            name=clip(app.name, 80), app_id=app.app_id, month=month
        )
    )
    created = date_text(statement.created_on) if statement.created_on else "?"
    if statement.before_app:
        text = _(
            "{app} was created on {day}, after {month}: there is nothing to bill for that month."
        ).format(app=app_label(app.name, app.app_id), day=created, month=month)
        return message(
            _("Nothing to bill for {name} in {month}").format(name=escape(app.name), month=month),
            [title, section(text)],
        )
    first, last = statement.bill_window
    if statement.not_started:
        text = _(
            "{month} has not started yet: nothing is charged for it so far. If nothing changes, "
            "it will cost {total}, billed on {window}. `/plan bill {app_id}` shows this month "
            "so far."
        ).format(
            month=month,
            total=money_text(statement.total, cur),
            window=day_range(first, last),
            app_id=app.app_id,
        )
        return message(_("{month} has not started yet").format(month=month), [title, section(text)])
    rows = [
        escape(row)
        for run in statement.runs
        for row in tables.charge_rows(
            first=run.first,
            last=run.last,
            days=run.days,
            label=plan_label(run.label),
            addons=run.addons,
            amount=money_text(run.amount, cur),
            projected=run.projected,
        )
    ]
    amount = money_text(statement.total, cur)
    total = "*" + _("Total for {month}: {total}").format(month=month, total=amount) + "*"
    if statement.projected:
        total += " " + _(
            "(charged to date, today included: {to_date}; the lines marked projected are what "
            "the rest costs if nothing changes)"
        ).format(to_date=money_text(statement.to_date, cur))
    if statement.created_on and statement.created_on >= statement.first_day:
        total += "\n" + _("Created on {day}: billed from that day.").format(day=created)
    room = MAX_BLOCKS - 3  # the header, the total and the note
    sections = tables.fences(rows, MAX_SECTION) if rows else [_("No days to bill in this month.")]
    if zone:
        dates = _("Dates are billing days in {zone}. Billed on {window}.")
    else:
        dates = _("Dates are billing days. Billed on {window}.")
    note = _(
        "A day costs the monthly price / days in the month, at the highest rate in force that "
        "day; the month's total is rounded once to the cent, so a plan held all month costs its "
        "monthly price, and the lines add up to it."
    )
    blocks = [
        title,
        *(section(t) for t in sections[:room]),
        section(total),
        context(dates.format(zone=zone, window=day_range(first, last)) + " " + note),
    ]
    return message(
        _("Bill for {name} {month}: {total}").format(
            name=escape(app.name), month=month, total=amount
        ),
        blocks,
    )


def access_list_message(
    grants: Sequence[tuple[Grant, str]], admins: Sequence[str]
) -> dict[str, Any]:
    """Who has which role."""
    lines = [_("• {person}: admin (configured)").format(person=f"<@{a}>") for a in admins]
    for grant, label in grants:
        who = (
            f"<@{grant.principal_id}>"
            if grant.principal_kind == "user"
            else f"<!subteam^{grant.principal_id}>"
        )
        role = role_name(grant.role.label)
        if grant.team:
            line = _("• {who}: {role} for {channel}").format(
                who=who, role=role, channel=f"<#{grant.team}>"
            )
        else:
            line = _("• {who}: {role}").format(who=who, role=role)
        lines.append(line + (f" ({escape(label)})" if label else ""))
    body = "\n".join(lines) or _("No grants: everyone has the default role.")
    return message(
        _("planbot access"),
        [header(_("Who may do what")), *(section(c) for c in chunks(body, MAX_SECTION))],
    )
