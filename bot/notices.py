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
from bot.i18n import ENGLISH, N_, _, language, ngettext
from bot.kit import (
    MAX_BLOCKS,
    MAX_SECTION,
    Message,
    button,
    clip,
    context,
    danger_dialog,
    escape,
    header,
    message,
    plain_dates,
    section,
    units,
)
from bot.tables import LINE_WIDTH, cell, charge_rows, fit, pad, width
from bot.words import (
    Words,
    date_text,
    mention,
    mentions,
    money_text,
    month_name,
    operation_name,
    plan_label,
    role_name,
)
from core import (
    AccessChanged,
    ApprovalCardPosted,
    ApprovalCardUpdate,
    ApprovalRequested,
    CardDecided,
    ChangeApplied,
    DeliveryFailed,
    DevExpiryReminder,
    Operation,
    PurgeWarning,
    Rendered,
    RequestEvent,
    StatementIssued,
    billing_window,
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
_DAY = timedelta(days=1)


def render(notice: CoreMessage, words: Words) -> Message:
    """The Slack message of an outbox message."""
    builder = _BUILDERS[type(notice)]
    return builder(notice, words)


# --- the audit channel -----------------------------------------------------------------------


def _auditcontext(
    seq: int | None, at: datetime | None, words: Words, request_id: str | None
) -> str:
    moment = words.moment(at)
    text = (
        _("audit #{seq} · {moment}").format(seq=seq, moment=moment) if seq is not None else moment
    )
    if request_id:
        text += " · " + _("request `{request_id}`").format(request_id=escape(request_id))
    return text


def change_applied(notice: ChangeApplied, words: Words) -> Message:
    """A change was applied: who did what to which app, what changed, what it costs."""
    actor = mention(notice.actor)
    app = blocks.app_label(notice.app_name or notice.app_id, notice.app_id)
    op = notice.operation
    stopped = op in (Operation.DISABLE, Operation.PURGE, Operation.SUSPEND)
    icon = ":red_circle:" if stopped else ":large_green_circle:"
    if notice.actor.user_id == "planbot":
        said = _(_WAS_DONE[op]).format(app=app)
    else:
        said = _(_DID[op]).format(actor=actor, app=app)
    parts = [section(f"{icon} {said}")]
    if notice.changes:
        parts.append(section(blocks.change_lines(notice.changes, words)))
    if notice.cost is not None:
        parts.append(section(_("*Cost:* {cost}").format(cost=escape(words.cost(notice.cost)))))
    detail = _lifecycle_detail(notice, words)
    if detail:
        parts.append(section(detail))
    footer = _auditcontext(notice.audit_seq, notice.at, words, notice.request_id)
    if notice.requester and notice.requester.user_id != notice.actor.user_id:
        footer += " · " + _("requested by {person}").format(person=mention(notice.requester))
    if notice.approvals:
        footer += " · " + _("approved by {people}").format(people=mentions(notice.approvals))
    parts.append(context(footer))
    name = escape(notice.app_name or notice.app_id)
    return message(_(_DONE_TO[op]).format(name=name), parts)


#: who did what to which app (the audit channel)
_DID: dict[Operation, str] = {
    Operation.CREATE: N_("{actor} created {app}"),
    Operation.UPGRADE: N_("{actor} upgraded {app}"),
    Operation.CONFIGURE: N_("{actor} reconfigured {app}"),
    Operation.EXTEND: N_("{actor} extended {app}"),
    Operation.DISABLE: N_("{actor} disabled {app}"),
    Operation.ENABLE: N_("{actor} re-enabled {app}"),
    Operation.MIGRATE: N_("{actor} migrated {app}"),
    Operation.SUSPEND: N_("{actor} suspended {app}"),
    Operation.PURGE: N_("{actor} purged {app}"),
}
#: what planbot itself did to an app (the lifecycle)
_WAS_DONE: dict[Operation, str] = {
    Operation.CREATE: N_("{app} was created"),
    Operation.UPGRADE: N_("{app} was upgraded"),
    Operation.CONFIGURE: N_("{app} was reconfigured"),
    Operation.EXTEND: N_("{app} was extended"),
    Operation.DISABLE: N_("{app} was disabled"),
    Operation.ENABLE: N_("{app} was re-enabled"),
    Operation.MIGRATE: N_("{app} was migrated"),
    Operation.SUSPEND: N_("{app} was suspended"),
    Operation.PURGE: N_("{app} was purged"),
}
#: the notification text of a change ("upgraded chat")
_DONE_TO: dict[Operation, str] = {
    # Translators: a notification's text: what was done to the app named
    Operation.CREATE: N_("created {name}"),
    Operation.UPGRADE: N_("upgraded {name}"),
    Operation.CONFIGURE: N_("reconfigured {name}"),
    Operation.EXTEND: N_("extended {name}"),
    Operation.DISABLE: N_("disabled {name}"),
    Operation.ENABLE: N_("re-enabled {name}"),
    Operation.MIGRATE: N_("migrated {name}"),
    Operation.SUSPEND: N_("suspended {name}"),
    Operation.PURGE: N_("purged {name}"),
}


def _lifecycle_detail(notice: ChangeApplied, words: Words) -> str:
    since = notice.since
    if since is None:
        return ""
    local = words.moment(since)
    if notice.operation is Operation.SUSPEND:
        return _(
            "The developer validity ended on {moment}, so the app is suspended. Extend it "
            "(`/plan extend {app_id}`) to reactivate it, or upgrade it to a paid plan."
        ).format(moment=local, app_id=notice.app_id)
    if notice.operation is Operation.PURGE:
        until = words.moment(since + timedelta(days=90))
        return _(
            "Disabled on {moment} and not re-enabled within 90 days (until {until}): its data "
            "and services are purged and can no longer be recovered."
        ).format(moment=local, until=until)
    return ""


def request_event(notice: RequestEvent, words: Words) -> Message:
    """A refused click that matters, a rejection, a partial approval (the audit channel); or
    how a request ended, told to its requester."""
    if notice.audience == "requester":
        return _told_requester(notice, words)
    actor = mention(notice.actor)
    app = blocks.app_label(notice.app_name or notice.app_id or "?", notice.app_id)
    icon = {
        "refused": ":no_entry:",
        "rejected": ":no_entry_sign:",
        "approved": ":ballot_box_with_check:",
    }.get(notice.event, ":information_source:")
    event = _EVENTS.get(notice.event)
    operation = escape(operation_name(notice.operation))
    if event is not None:
        said = _(event).format(actor=actor, operation=operation, app=app)
    else:
        said = f"{notice.event.capitalize()}: {actor} on {operation} of {app}"
    text = f"{icon} {said}"
    footer = _auditcontext(notice.audit_seq, notice.at, words, notice.request_id)
    if notice.requester and notice.requester.user_id != notice.actor.user_id:
        footer += " · " + _("requested by {person}").format(person=mention(notice.requester))
    parts = [section(text)]
    if notice.refusal:
        parts.append(section(words.refusal_of(notice.refusal)))
    elif notice.event == "rejected":
        parts.append(section(_("Rejected by a peer; nothing was changed.")))
    elif notice.event == "approved":
        progress = words.progress(notice.approvals, notice.approvals_needed)
        parts.append(section(_("Approval recorded: {progress}.").format(progress=progress)))
    parts.append(context(footer))
    return message(plain_dates(text), parts)


#: what happened to a request, as the audit channel tells it
_EVENTS: dict[str, str] = {
    "refused": N_("Refused: {actor} on {operation} of {app}"),
    "rejected": N_("Rejected: {actor} on {operation} of {app}"),
    "approved": N_("Approved: {actor} on {operation} of {app}"),
    "expired": N_("Expired: {actor} on {operation} of {app}"),
    "withdrawn": N_("Withdrawn: {actor} on {operation} of {app}"),
}


def _told_requester(notice: RequestEvent, words: Words) -> Message:
    """How the requester's request ended, when someone else (or time) ended it."""
    title = escape(words.title(notice.operation, notice.app_name, notice.app_id))
    progress = words.progress(notice.approvals, notice.approvals_needed)
    if notice.event == "rejected":
        said = _("Your request was rejected by {person}: {title}. Nothing was changed.").format(
            person=mention(notice.actor), title=title
        )
        text = f":no_entry_sign: {said}"
    elif notice.event == "expired":
        said = _(
            "Your request expired without the approvals it needed ({progress}): {title}. "
            "Nothing was changed. Ask again with the `/plan` command if it is still wanted."
        ).format(progress=progress, title=title)
        text = f":hourglass: {said}"
    else:
        reason = words.refusal_of(notice.refusal) if notice.refusal else ""
        said = _("Your request was not applied: {title}.").format(title=title)
        text = f":no_entry: {said} {reason}".rstrip()
    footer = _auditcontext(notice.audit_seq, notice.at, words, notice.request_id)
    return message(plain_dates(text), [section(text), context(footer)])


def access_changed(notice: AccessChanged, words: Words) -> Message:
    """A role granted or revoked."""
    actor = mention(notice.actor)
    # named by the stable id, not the changeable label (a group is not pinged)
    label = escape(notice.label or notice.principal_id)
    if notice.principal_kind == "user":
        whom = f"<@{notice.principal_id}>"
    elif notice.principal_kind == "group":
        whom = _("group {label} (`{group_id}`)").format(
            label=label, group_id=escape(notice.principal_id)
        )
    else:
        whom = label
    where = f"<#{notice.team}>" if notice.team else _("all apps")
    role = escape(role_name(notice.role))
    if notice.granted:
        said = _("{actor} granted *{role}* to {whom} ({where})")
    else:
        said = _("{actor} revoked *{role}* from {whom} ({where})")
    text = ":key: " + said.format(actor=actor, role=role, whom=whom, where=where)
    footer = _auditcontext(notice.audit_seq, notice.at, words, None)
    return message(text, [section(text), context(footer)])


# --- approvals -------------------------------------------------------------------------------


def approval_requested(notice: ApprovalRequested, words: Words) -> Message:
    """The card asking peers to approve or reject a request: the whole preview, who may approve
    (the role, and the approver group when one is set), the approvals so far, and the buttons."""
    preview = notice.preview
    needed = notice.approvals_needed
    summary = words.summary(preview)
    warnings = [words.notice(n) for n in preview.notices]
    asks = _(_ASKS.get(preview.operation, _ASK_OTHER)).format(
        person=mention(notice.requester),
        operation=escape(str(preview.operation)),
        app=blocks.app_label(preview.app_name, preview.app_id),
    )
    needs = ngettext(
        "It needs the approval of someone else with the *{role}* role.",
        "It needs the approval of {n} other people with the *{role}* role.",
        needed,
    ).format(n=needed, role=escape(role_name(notice.role)))
    group = f" <!subteam^{notice.approver_group}>" if notice.approver_group else ""
    parts: list[dict[str, Any]] = [
        header(_("Approval needed: {summary}").format(summary=summary)),
        section(f"{asks} {needs}{group}"),
        section(_("*Changes*") + "\n" + blocks.change_lines(preview.changes, words)),
    ]
    if preview.cost is not None:
        parts.append(section(_("*Cost*") + "\n" + escape(words.cost(preview.cost))))
    for warning in warnings:
        parts.append(section(f":warning: {warning}"))
    if notice.approvals:
        progress = words.progress(notice.approvals, needed)
        parts.append(section(f":ballot_box_with_check: {progress}"))
    approve = button(
        _("Approve"),
        blocks.APPROVE,
        notice.request_id,
        style="danger" if preview.danger else "primary",
    )
    if preview.danger:
        approve["confirm"] = danger_dialog(
            _("Approve this change?"),
            " ".join(warnings) or _("Are you sure?"),
            yes=_("Approve"),
            no=_("Not yet"),
        )
    parts.append(
        {
            "type": "actions",
            "block_id": "plan_approval",
            "elements": [approve, button(_("Reject"), blocks.REJECT, notice.request_id)],
        }
    )
    expires = words.moment(notice.expires_at)
    parts.append(
        context(
            _("Expires {moment} · request `{request_id}`").format(
                moment=expires, request_id=notice.request_id
            )
        )
    )
    text = _("Approval needed: {summary}").format(summary=escape(summary))
    if notice.approvals:
        text += " " + ngettext(
            "({given} of {needed} approval)", "({given} of {needed} approvals)", needed
        ).format(given=len(notice.approvals), needed=needed)
    return message(text, parts)


#: who asks for what, on an approval card
_ASKS: dict[Operation, str] = {
    Operation.CREATE: N_("{person} asks to create {app}."),
    Operation.UPGRADE: N_("{person} asks to upgrade {app}."),
    Operation.CONFIGURE: N_("{person} asks to configure {app}."),
    Operation.EXTEND: N_("{person} asks to extend {app}."),
    Operation.DISABLE: N_("{person} asks to disable {app}."),
    Operation.ENABLE: N_("{person} asks to enable {app}."),
    Operation.MIGRATE: N_("{person} asks to migrate {app}."),
}
_ASK_OTHER = N_("{person} asks to {operation} {app}.")


def approval_card_update(notice: ApprovalCardUpdate, words: Words) -> Message:
    """The replacement of an approval card whose request is no longer waiting: how it ended,
    by whom, and (applied) what changed; no buttons."""
    title = escape(words.title(notice.operation, notice.app_name, notice.app_id))
    requester = mention(notice.requester)
    by = mention(notice.by) if notice.by is not None else "planbot"
    progress = words.progress(notice.approvals, notice.approvals_needed)
    app_id = notice.app_id or ""
    at = words.moment(notice.at)
    again = ""
    if _APP_ID.match(app_id):
        again = " " + _(
            "If it is still wanted, {person} can ask again with `/plan {operation} {app_id}`."
        ).format(person=requester, operation=notice.operation, app_id=app_id)
    if notice.state == "expired":
        expired = words.moment(notice.expired_at or notice.at)
        head = _("*Expired:* {title}, requested by {person}.").format(title=title, person=requester)
        body = _(
            "The request expired on {moment} without the approvals it needed ({progress}), so "
            "nothing was changed."
        ).format(moment=expired, progress=progress)
        text = f":hourglass: {head}\n{body}{again}"
        plain = _("Expired: {title}. Nothing was changed.").format(title=title)
    elif notice.state == "withdrawn":
        head = _("*Withdrawn:* {title}.").format(title=title)
        body = _(
            "Withdrawn by {person} on {moment}; nothing was changed and there is nothing to "
            "approve."
        ).format(person=by, moment=at)
        text = f":heavy_multiplication_x: {head}\n{body}"
        plain = _("Withdrawn: {title}. Nothing to approve.").format(title=title)
    elif notice.state == "rejected":
        head = _("*Rejected:* {title}, requested by {person}.").format(
            title=title, person=requester
        )
        if notice.approvals:
            body = _(
                "Rejected by {person} on {moment} (after {progress}); nothing was changed."
            ).format(person=by, moment=at, progress=progress)
        else:
            body = _("Rejected by {person} on {moment}; nothing was changed.").format(
                person=by, moment=at
            )
        text = f":no_entry_sign: {head}\n{body}"
        plain = _("Rejected: {title}.").format(title=title)
    elif notice.state == "applied":
        head = _("*Applied:* {title}, requested by {person}.").format(title=title, person=requester)
        body = _("Applied on {moment} with the approval of {people}.").format(
            moment=at, people=mentions(notice.approvals) or by
        )
        text = f":white_check_mark: {head}\n{body}"
        plain = _("Applied: {title}.").format(title=title)
    else:
        reason = words.refusal_of(notice.refusal) if notice.refusal else ""
        head = _("*Not applied:* {title}, requested by {person}.").format(
            title=title, person=requester
        )
        body = reason or _("It can no longer be applied; nothing was changed.")
        text = f":no_entry: {head}\n{body}"
        plain = _("Not applied: {title}.").format(title=title)
    parts: list[dict[str, Any]] = [section(text)]
    if notice.state == "applied" and notice.changes:
        parts.append(section(_("*Changes*") + "\n" + blocks.change_lines(notice.changes, words)))
    if notice.state == "applied" and notice.cost is not None:
        parts.append(section(_("*Cost*") + "\n" + escape(words.cost(notice.cost))))
    state = _(_CARD_STATES[notice.state]) if notice.state in _CARD_STATES else notice.state
    parts.append(
        context(
            _("Request `{request_id}` · {state}").format(
                request_id=escape(notice.request_id), state=state
            )
        )
    )
    return message(plain, parts)


#: how an approval card's request ended, in its footer
_CARD_STATES: dict[str, str] = {
    # Translators: how a request ended (an approval card's footer)
    "expired": N_("expired"),
    # Translators: how a request ended (an approval card's footer)
    "withdrawn": N_("withdrawn"),
    # Translators: how a request ended (an approval card's footer)
    "applied": N_("applied"),
    # Translators: how a request ended (an approval card's footer)
    "rejected": N_("rejected"),
    # Translators: how a request ended (an approval card's footer)
    "refused": N_("refused"),
}


def approval_card_posted(notice: ApprovalCardPosted, words: Words) -> Message:
    """The requester's card again, now saying where the approval card is (linked)."""
    card = blocks.waiting_card(
        notice.preview,
        words,
        request_id=notice.request_id,
        needed=notice.approvals_needed,
        role=notice.role,
        expires_at=notice.expires_at,
        channel=notice.channel,
        approver_group=notice.approver_group,
        permalink=notice.permalink,
        posted=notice.receipt is not None,
    )
    return {**card, "replace_original": True}


_WHY_LOST: dict[str, str] = {
    "not_in_channel": N_("planbot is not a member of that channel"),
    "channel_not_found": N_("that channel does not exist, or planbot can't see it"),
    "is_archived": N_("that channel is archived"),
}
_WHY_OTHER = N_("Slack refuses messages there")
#: what is lost, without and with the app it concerns
_LOST: dict[str, tuple[str, str]] = {
    "notice": (
        N_("Its expiry reminders, purge warnings and statements are lost until that is fixed."),
        N_(
            "Its expiry reminders, purge warnings and statements (app `{app_id}`) are lost "
            "until that is fixed."
        ),
    ),
    "approval": (
        N_("Its approval cards are lost until that is fixed."),
        N_("Its approval cards (app `{app_id}`) are lost until that is fixed."),
    ),
    "audit": (
        N_("Its change messages are lost until that is fixed."),
        N_("Its change messages (app `{app_id}`) are lost until that is fixed."),
    ),
}
_LOST_OTHER = (
    N_("Its messages are lost until that is fixed."),
    N_("Its messages (app `{app_id}`) are lost until that is fixed."),
)


def delivery_failed(notice: DeliveryFailed, words: Words) -> Message:
    """Messages to a destination are being lost: where, why, and the fix."""
    dest = notice.destination
    where = f"<@{dest}>" if _USER_ID.match(dest) else f"<#{dest}>"
    why = _(_WHY_LOST.get(notice.reason, _WHY_OTHER))
    if notice.reason == "not_in_channel":
        fix = _("Invite planbot there (`/invite @planbot`).")
    else:
        fix = _("Give the apps it owns a channel planbot can post in.")
    topic = _LOST.get(notice.topic, _LOST_OTHER)
    lost = _(topic[1]).format(app_id=escape(notice.app_id)) if notice.app_id else _(topic[0])
    said = _("planbot can't post to {where}: {why} (`{reason}`).").format(
        where=where, why=why, reason=escape(notice.reason)
    )
    text = f":warning: {said} {lost} {fix}"
    footer = _("{moment} · reported once a day per channel").format(moment=words.moment(notice.at))
    return message(plain_dates(text), [section(text), context(footer)])


# --- the lifecycle's notices -----------------------------------------------------------------


def reminder_message(notice: DevExpiryReminder, words: Words) -> Message:
    """A developer app expires soon: what happens then, and an Extend button."""
    app_id, name = notice.app_id, notice.app_name
    kind, n = _left(notice.expires_at - notice.at)
    expires = words.moment(notice.expires_at)
    headline = (
        ngettext(
            "Developer app *{name}* (`{app_id}`) *expires in {n} day*, on {moment}.",
            "Developer app *{name}* (`{app_id}`) *expires in {n} days*, on {moment}.",
            n,
        )
        if kind == "days"
        else ngettext(
            "Developer app *{name}* (`{app_id}`) *expires in {n} hour*, on {moment}.",
            "Developer app *{name}* (`{app_id}`) *expires in {n} hours*, on {moment}.",
            n,
        )
        if kind == "hours"
        else _("Developer app *{name}* (`{app_id}`) *expires within the hour*, on {moment}.")
    )
    lines = [
        ":hourglass_flowing_sand: "
        + headline.format(n=n, name=escape(name), app_id=app_id, moment=expires),
        _(
            "When it expires the app is suspended. Extending it gives it one more month on the "
            "free developer plan; to keep it for good, upgrade it to a paid plan "
            "(`/plan upgrade {app_id} standard`)."
        ).format(app_id=app_id),
    ]
    if notice.billing_mode == "legacy":
        lines.append(
            _(
                "This app is on the legacy billing mode: migrate it first "
                "(`/plan migrate {app_id}`), then extend it."
            ).format(app_id=app_id)
        )
    parts: list[dict[str, Any]] = [
        section("\n".join(lines)),
        *_actions("lifecycle_reminder", _("Extend"), EXTEND_ACTION, app_id),
        context(
            _(
                "planbot reminds the owner 7 days and 1 day before a developer app expires. "
                "Extend starts the usual preview; nothing changes until you confirm."
            )
        ),
    ]
    plain = (
        ngettext(
            "Developer app {name} ({app_id}) expires in {n} day, on {moment}.",
            "Developer app {name} ({app_id}) expires in {n} days, on {moment}.",
            n,
        )
        if kind == "days"
        else ngettext(
            "Developer app {name} ({app_id}) expires in {n} hour, on {moment}.",
            "Developer app {name} ({app_id}) expires in {n} hours, on {moment}.",
            n,
        )
        if kind == "hours"
        else _("Developer app {name} ({app_id}) expires within the hour, on {moment}.")
    )
    text = plain.format(n=n, name=escape(name), app_id=app_id, moment=plain_dates(expires))
    return {"text": text, "blocks": parts}


def purge_warning_message(notice: PurgeWarning, words: Words) -> Message:
    """A disabled app will be purged: when, what is lost, and an Enable button for admins."""
    app_id, name = notice.app_id, notice.app_name
    kind, n = _left(notice.purge_at - notice.at)
    purge = words.moment(notice.purge_at)
    disabled = words.moment(notice.disabled_at)
    headline = (
        ngettext(
            "*{name}* (`{app_id}`) has been disabled since {disabled}. It will be *purged in "
            "{n} day*, after {moment}: its data and services can't be recovered after that.",
            "*{name}* (`{app_id}`) has been disabled since {disabled}. It will be *purged in "
            "{n} days*, after {moment}: its data and services can't be recovered after that.",
            n,
        )
        if kind == "days"
        else ngettext(
            "*{name}* (`{app_id}`) has been disabled since {disabled}. It will be *purged in "
            "{n} hour*, after {moment}: its data and services can't be recovered after that.",
            "*{name}* (`{app_id}`) has been disabled since {disabled}. It will be *purged in "
            "{n} hours*, after {moment}: its data and services can't be recovered after "
            "that.",
            n,
        )
        if kind == "hours"
        else _(
            "*{name}* (`{app_id}`) has been disabled since {disabled}. It will be *purged within "
            "the hour*, after {moment}: its data and services can't be recovered after that."
        )
    )
    lines = [
        ":warning: "
        + headline.format(n=n, name=escape(name), app_id=app_id, disabled=disabled, moment=purge),
        _(
            "To keep it, re-enable it before then: that restores its plan and configuration, and "
            "billing resumes that day. *Only planbot admins can re-enable an app.*"
        ),
    ]
    parts: list[dict[str, Any]] = [
        section("\n".join(lines)),
        *_actions("lifecycle_purge_warning", _("Enable"), ENABLE_ACTION, app_id),
        context(
            _(
                "planbot warns the owner 30, 7 and 1 days before a disabled app is purged "
                "(after 90 days disabled). Enable starts the usual preview for an admin."
            )
        ),
    ]
    plain = (
        ngettext(
            "{name} ({app_id}) will be purged in {n} day, after {moment}. Only admins can "
            "re-enable it.",
            "{name} ({app_id}) will be purged in {n} days, after {moment}. Only admins can "
            "re-enable it.",
            n,
        )
        if kind == "days"
        else ngettext(
            "{name} ({app_id}) will be purged in {n} hour, after {moment}. Only admins can "
            "re-enable it.",
            "{name} ({app_id}) will be purged in {n} hours, after {moment}. Only admins can "
            "re-enable it.",
            n,
        )
        if kind == "hours"
        else _(
            "{name} ({app_id}) will be purged within the hour, after {moment}. Only admins can "
            "re-enable it."
        )
    )
    text = plain.format(n=n, name=escape(name), app_id=app_id, moment=plain_dates(purge))
    return {"text": text, "blocks": parts}


def statement_issued(notice: StatementIssued, words: Words) -> Message:
    """A team's monthly statement."""
    statement = notice.statement
    currency = statement.currency
    first, last = billing_window(statement.year, statement.month)
    payload: dict[str, Any] = {
        "period": f"{statement.year:04d}-{statement.month:02d}",
        "month_name": _month_title(statement.year, statement.month),
        "apps": [
            {
                "app_id": a.app_id,
                "name": a.name,
                "total_text": money_text(a.total, currency),
                "periods": [
                    {
                        "label": plan_label(p.label),
                        "first": p.first.isoformat(),
                        "last": p.last.isoformat(),
                        "days": p.days,
                        "addons": list(p.addons),
                        "projected": p.projected,
                        "amount_text": money_text(p.amount, currency),
                    }
                    for p in a.periods
                ],
            }
            for a in statement.apps
        ],
        "app_count": len(statement.apps) + notice.apps_omitted,
        "total_text": money_text(notice.total, currency),
        "projected": statement.projected,
        "to_date_text": money_text(notice.to_date, currency),
        "bill_window": [first.isoformat(), last.isoformat()],
        "due_on": first.isoformat(),
        "issued_on": notice.issued_on.isoformat(),
        "late": notice.issued_on > first,
        "zone": notice.billing_tz,
    }
    return statement_message(payload)


def statement_message(payload: Mapping[str, Any]) -> Message:
    """A team's monthly statement: per app its plan days and amounts, and the total."""
    month = escape(payload.get("month_name") or payload.get("period") or _("last month"))
    total = escape(payload.get("total_text") or payload.get("total") or "0")
    apps = [a for a in _list(payload.get("apps")) if isinstance(a, Mapping)]
    count = max(_int(payload.get("app_count")) or 0, len(apps))
    window = _list(payload.get("bill_window"))
    zone = escape(payload.get("zone") or "")
    summary = ngettext("*Total: {total}* for {n} app", "*Total: {total}* for {n} apps", count)
    summary = summary.format(total=total, n=count)
    if len(window) == 2:
        first, last = _day_text(window[0]), _day_text(window[1])
        if zone:
            billed = _("billed on {first} to {last} (billing days in {zone})")
        else:
            billed = _("billed on {first} to {last}")
        summary += " · " + billed.format(first=first, last=last, zone=zone)
    lines = [summary + "."]
    if payload.get("projected"):
        lines.append(
            _(
                "The month is not over: {to_date} so far, the rest is a projection if nothing "
                "changes."
            ).format(to_date=escape(payload.get("to_date_text") or ""))
        )
    if payload.get("late"):
        if zone:
            late = _(
                "This statement is late: it was due on {due} and is posted on {posted} (billing "
                "days in {zone}) (planbot was not running)."
            )
        else:
            late = _(
                "This statement is late: it was due on {due} and is posted on {posted} (planbot "
                "was not running)."
            )
        due, posted = _day_text(payload.get("due_on", "")), _day_text(payload.get("issued_on", ""))
        lines.append(":warning: " + late.format(due=due, posted=posted, zone=zone))
    title = _("Statement for {month}").format(month=_unescaped(payload))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain_text(f"🧾 {title}")},
        section("\n".join(lines)),
    ]
    footer = _(
        "Each day costs the monthly price ÷ the days in the month, at the highest plan in force "
        "that day; an app's month is rounded once to the cent, so a plan held all month costs its "
        "monthly price. `/plan bill &lt;app&gt; {period}` shows one app's bill."
    ).format(period=escape(payload.get("period") or "YYYY-MM"))
    room = MAX_BLOCKS - len(blocks) - 2  # the footer and a possible "more" note
    tables, shown = _table_sections(apps, room)
    blocks.extend(section(t) for t in tables)
    hidden = count - shown
    if hidden > 0:
        more = ngettext(
            "…and {n} more app not shown here.", "…and {n} more apps not shown here.", hidden
        )
        blocks.append(context(more.format(n=hidden)))
    blocks.append(context(footer))
    text = ngettext(
        "Statement for {month}: {total} for {n} app.",
        "Statement for {month}: {total} for {n} apps.",
        count,
    ).format(month=month, total=total, n=count)
    if payload.get("late"):
        text += " " + _("(late)")
    return {"text": text, "blocks": blocks}


def _month_title(year: int, month: int) -> str:
    """'November 2026' in English, the month as the language names it otherwise."""
    if language() == ENGLISH:
        return date(year, month, 1).strftime("%B %Y")
    return month_name(year, month)


def _day_text(value: object) -> str:
    """An ISO day of a statement's payload as the language writes it (escaped)."""
    found = _date(value)
    return escape(date_text(found) if found is not None else str(value))


_BUILDERS: dict[type, Callable[[Any, Words], Message]] = {
    ChangeApplied: change_applied,
    RequestEvent: request_event,
    AccessChanged: access_changed,
    ApprovalRequested: approval_requested,
    ApprovalCardUpdate: approval_card_update,
    ApprovalCardPosted: approval_card_posted,
    DeliveryFailed: delivery_failed,
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
        if units("\n".join(rows)) > limit:  # one app with very many periods: its first lines
            kept: list[str] = []
            for row in rows:
                if units("\n".join([*kept, row, "  …"])) > limit:
                    break
                kept.append(row)
            rows = [*kept, "  …"]
        if current and units("\n".join([*current, *rows])) > limit:
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


def _left(left: timedelta) -> tuple[str, int]:
    """How much time is left, as a sentence says it: ("days", 2), ("hours", 5) or ("soon", 0)
    ('in 2 days', 'in 5 hours', 'within the hour')."""
    days, hours = left // _DAY, left // timedelta(hours=1)
    if days >= 1:
        return "days", days
    if hours >= 1:
        return "hours", hours
    return "soon", 0


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _unescaped(payload: Mapping[str, Any]) -> str:
    return str(payload.get("month_name") or payload.get("period") or _("last month"))


def _plain_text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, MAX_HEADER_TEXT), "emoji": True}


def _actions(block_id: str, text: str, action_id: str, app_id: str) -> list[dict[str, Any]]:
    """The block with the one button that starts the operation on the app (none without an id)."""
    if not _APP_ID.match(app_id):
        return []
    found = button(text, action_id, app_id, style="primary")
    return [{"type": "actions", "block_id": block_id, "elements": [found]}]
