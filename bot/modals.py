"""The plan operation modal: pure functions from core values to Slack views, and back.

The form (`form_view`, callback `plan_form`) opens with an app picker (an `external_select` whose
options the bot serves as the person types, `app_options`); once an app is picked it offers the
operations this person may do to it, and once one is picked, that operation's fields (edition
and add-ons as selects, with their prices from the catalog). Submitting it previews the change
(`confirm_view`, callback `plan_form_confirm`: the changes, the cost and the warnings, as the
slash command's card shows them), or puts what is wrong under the field it concerns
(`field_errors`); confirming applies it (`result_view`) or says why not (`refusal_view`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot import blocks
from bot.i18n import ENGLISH, N_, _, day, language, money, ngettext, number
from bot.kit import clip, context, escape, header, plain_dates, section
from bot.names import plan_name, status_name
from bot.words import Words, catalog_text
from core import (
    AmbiguousAppName,
    AppNotFound,
    AppState,
    Catalog,
    ChangeRequest,
    InvalidAddonValue,
    InvalidTargetPlan,
    Operation,
    Outcome,
    PendingRequest,
    Plan,
    PlanError,
    UnknownAddon,
)

__all__ = [
    "ACK_BLOCK",
    "ADDON_BLOCK",
    "APP_BLOCK",
    "CONFIRM_VIEW",
    "EDITION_BLOCK",
    "FORM_VIEW",
    "OPERATION_BLOCK",
    "PICK_ACK",
    "PICK_ADDON",
    "PICK_APP",
    "PICK_EDITION",
    "PICK_OPERATION",
    "RESULT_VIEW",
    "SHORTCUT",
    "FormState",
    "app_options",
    "change_of",
    "confirm_view",
    "field_errors",
    "form_state",
    "form_view",
    "message_view",
    "refusal_text",
    "refusal_view",
    "result_view",
]

SHORTCUT = "plan_shortcut"
FORM_VIEW = "plan_form"
CONFIRM_VIEW = "plan_form_confirm"
RESULT_VIEW = "plan_form_result"
APP_BLOCK = "plan_app"
PICK_APP = "plan_pick_app"
OPERATION_BLOCK = "plan_operation"
PICK_OPERATION = "plan_pick_operation"
EDITION_BLOCK = "plan_edition"
PICK_EDITION = "plan_pick_edition"
ADDON_BLOCK = "plan_addon:"  # + the add-on's name
PICK_ADDON = "plan_pick_addon"
ACK_BLOCK = "plan_ack"
PICK_ACK = "plan_pick_ack"

#: what each operation is called in the form
#: (marked here, translated where used: `_(OPERATION_LABELS[op])`)
OPERATION_LABELS: dict[Operation, str] = {
    Operation.UPGRADE: N_("Upgrade to a paid plan"),
    Operation.CONFIGURE: N_("Change the edition or add-ons"),
    Operation.EXTEND: N_("Extend the developer validity by a month"),
    Operation.DISABLE: N_("Disable (the service stops at once)"),
    Operation.ENABLE: N_("Re-enable"),
    Operation.MIGRATE: N_("Migrate to the current billing mode"),
}
_TITLE = 24  # Slack's limit for a modal's title and buttons
_OPTION = 75  # and for an option's text


@dataclass(frozen=True)
class FormState:
    """What the form holds: the app, the operation, its fields, and where it was opened."""

    app_id: str | None = None
    operation: Operation | None = None
    edition: str | None = None
    addons: Mapping[str, str] = field(default_factory=dict)
    channel: str | None = None
    acknowledged: bool = False


# --- reading a view --------------------------------------------------------------------------------


def _selected(values: Mapping[str, Any], block: str, action: str) -> str | None:
    chosen = (values.get(block) or {}).get(action) or {}
    option = chosen.get("selected_option") or {}
    value = option.get("value")
    return value if isinstance(value, str) and value else None


def metadata(view: Mapping[str, Any]) -> dict[str, Any]:
    """The view's private metadata (empty when unreadable)."""
    try:
        found = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def form_state(view: Mapping[str, Any]) -> FormState:
    """What a submitted (or changed) form holds."""
    values = (view.get("state") or {}).get("values") or {}
    operation = _selected(values, OPERATION_BLOCK, PICK_OPERATION)
    addons = {
        block[len(ADDON_BLOCK) :]: value
        for block in values
        if block.startswith(ADDON_BLOCK)
        and (value := _selected(values, block, PICK_ADDON)) is not None
    }
    acknowledged = bool(((values.get(ACK_BLOCK) or {}).get(PICK_ACK) or {}).get("selected_options"))
    channel = metadata(view).get("channel")
    return FormState(
        app_id=_selected(values, APP_BLOCK, PICK_APP) or metadata(view).get("app"),
        operation=Operation(operation) if operation in {o.value for o in Operation} else None,
        edition=_selected(values, EDITION_BLOCK, PICK_EDITION),
        addons=addons,
        channel=channel if isinstance(channel, str) else None,
        acknowledged=acknowledged,
    )


def change_of(state: FormState, app: AppState, catalog: Catalog) -> ChangeRequest:
    """The change the form asks for (the fields left as they are, left out)."""
    operation = state.operation
    assert operation is not None
    if operation is Operation.UPGRADE:
        return ChangeRequest(operation, app=app.app_id, plan=_plan(state.edition))
    if operation is Operation.CONFIGURE:
        edition = _plan(state.edition)
        defaults = {name: addon.default for name, addon in catalog.addons.items()}
        changed = {k: v for k, v in state.addons.items() if app.config.get(k, defaults.get(k)) != v}
        return ChangeRequest(
            operation,
            app=app.app_id,
            plan=edition if edition is not app.plan else None,
            addons=changed,
        )
    return ChangeRequest(operation, app=app.app_id)


def _plan(value: str | None) -> Plan | None:
    return Plan(value) if value in {p.value for p in Plan} else None


# --- the form --------------------------------------------------------------------------------------


def _text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _option(text: str, value: str, description: str | None = None) -> dict[str, Any]:
    option: dict[str, Any] = {"text": _text(clip(text, _OPTION)), "value": value}
    if description:
        option["description"] = _text(clip(description, _OPTION))
    return option


def app_option(app: AppState) -> dict[str, Any]:
    """An app as the picker offers it: name and id, then plan and status."""
    state = _("{plan}, {status}").format(plan=plan_name(app.plan), status=status_name(app.status))
    return _option(f"{app.name} ({app.app_id})", app.app_id, state)


def app_options(apps: Iterable[AppState]) -> list[dict[str, Any]]:
    """The picker's options (Slack shows at most 100)."""
    return [app_option(a) for a in list(apps)[:100]]


def _modal(
    callback_id: str,
    title: str,
    body: list[dict[str, Any]],
    *,
    submit: str | None = None,
    close: str | None = None,
    meta: Mapping[str, Any] | None = None,
    notify_on_close: bool = False,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": _text(clip(title, _TITLE)),
        "close": _text(clip(close or _("Close"), _TITLE)),
        "blocks": body[:100],
        "private_metadata": json.dumps(dict(meta or {}), separators=(",", ":"))[:3000],
    }
    if submit:
        view["submit"] = _text(clip(submit, _TITLE))
    if notify_on_close:
        view["notify_on_close"] = True
    return view


def form_view(
    *,
    catalog: Catalog,
    words: Words,
    channel: str | None,
    app: AppState | None = None,
    operations: Sequence[Operation] = (),
    operation: Operation | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """The form: the app picker; then the operations this person may do to the app picked; then
    the fields of the operation picked."""
    picker: dict[str, Any] = {
        "type": "external_select",
        "action_id": PICK_APP,
        "placeholder": _text(_("Type an app's name or id")),
        "min_query_length": 0,
    }
    if app is not None:
        picker["initial_option"] = app_option(app)
    body: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": APP_BLOCK,
            "dispatch_action": True,
            "label": _text(_("App")),
            "element": picker,
        }
    ]
    if notice:
        body.append(section(f":no_entry: {escape(notice)}"))
    if app is None:
        body.append(context(_("Pick an app to see what you may do to it.")))
        return _modal(
            FORM_VIEW,
            _("Plan operation"),
            body,
            submit=_("Preview"),
            close=_("Cancel"),
            meta={"channel": channel},
        )
    body.append(context(escape(_app_summary(app, words))))
    if not operations:
        body.append(section(_("There is nothing you may do to this app now.")))
        return _modal(
            FORM_VIEW,
            _("Plan operation"),
            body,
            close=_("Cancel"),
            meta={"channel": channel, "app": app.app_id},
        )
    choices = [_option(_(OPERATION_LABELS[op]), op.value) for op in operations]
    chooser: dict[str, Any] = {
        "type": "static_select",
        "action_id": PICK_OPERATION,
        "placeholder": _text(_("Choose an operation")),
        "options": choices,
    }
    if operation is not None and operation in operations:
        chooser["initial_option"] = choices[list(operations).index(operation)]
    body.append(
        {
            "type": "input",
            "block_id": OPERATION_BLOCK,
            "dispatch_action": True,
            "label": _text(_("Operation")),
            "element": chooser,
        }
    )
    if operation is Operation.UPGRADE:
        body.append(_edition_input(catalog, app, optional=False))
    elif operation is Operation.CONFIGURE:
        body.append(_edition_input(catalog, app, optional=True))
        body += [_addon_input(catalog, name, app) for name in sorted(catalog.addons)]
    if operation in operations:
        body.append(
            context(
                _(
                    "Preview shows what changes and what it costs; "
                    "nothing changes until you confirm."
                )
            )
        )
    return _modal(
        FORM_VIEW,
        _("Plan operation"),
        body,
        submit=_("Preview"),
        close=_("Cancel"),
        meta={"channel": channel, "app": app.app_id},
    )


def _app_summary(app: AppState, words: Words) -> str:
    values = {
        "app": f"{app.name} ({app.app_id})",
        "plan": plan_name(app.plan),
        "status": status_name(app.status),
    }
    legacy = app.billing_mode.value == "legacy"
    if app.dev_expires_at is not None and app.plan is Plan.DEVELOPER:
        values["day"] = _day(app.dev_expires_at, words)
        if legacy:
            text = _("{app}: {plan}, {status}, legacy billing; developer validity until {day}.")
        else:
            text = _("{app}: {plan}, {status}; developer validity until {day}.")
    elif legacy:
        text = _("{app}: {plan}, {status}, legacy billing.")
    else:
        text = _("{app}: {plan}, {status}.")
    return text.format(**values)


def _day(moment: datetime, words: Words) -> str:
    """A day as plain text: the billing day as it always was in English, else as the language
    writes it (Babel)."""
    if language() == ENGLISH:
        return words.day(moment)
    return day(moment.astimezone(words.tz).date())


def _edition_input(catalog: Catalog, app: AppState, *, optional: bool) -> dict[str, Any]:
    paid = [p for p in (Plan.STANDARD, Plan.PREMIUM) if p in catalog.plans]
    options = [
        _option(
            _("{edition}: {price} a month").format(
                edition=catalog.plans[p].label if language() == ENGLISH else plan_name(p),
                price=money(catalog.plans[p].monthly, catalog.currency),
            ),
            p.value,
        )
        for p in paid
    ]
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": PICK_EDITION,
        "placeholder": _text(_("Choose the edition")),
        "options": options,
    }
    if app.plan in paid:
        element["initial_option"] = options[paid.index(app.plan)]
    return {
        "type": "input",
        "block_id": EDITION_BLOCK,
        "optional": optional,
        "label": _text(_("Edition")),
        "element": element,
    }


def _addon_input(catalog: Catalog, name: str, app: AppState) -> dict[str, Any]:
    addon = catalog.addons[name]
    values = list(addon.options)
    options = [
        _option(
            _("{option}: +{price} a month").format(
                option=value, price=money(price, catalog.currency)
            )
            if price
            else value,
            value,
        )
        for value, price in addon.options.items()
    ][:100]
    current = app.config.get(name, addon.default)
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": PICK_ADDON,
        "placeholder": _text(_("Leave as it is")),
        "options": options,
    }
    if current in values[:100]:
        element["initial_option"] = options[values.index(current)]
    block: dict[str, Any] = {
        "type": "input",
        "block_id": f"{ADDON_BLOCK}{name}",
        "optional": True,
        "label": _text(clip(catalog_text(addon.label), 2000)),
        "element": element,
    }
    if addon.description:
        block["hint"] = _text(clip(catalog_text(addon.description), 2000))
    return block


def refusal_text(err: PlanError, words: Words | None = None) -> str:
    """A refusal as plain text (a field's error, a notice in the form): the core's own message in
    English, as it always was; in another language the refusal as `words` puts it, its dates as
    their fallback text."""
    if words is None or language() == ENGLISH:
        return err.message
    text = plain_dates(words.refusal(err))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def field_errors(err: PlanError, state: FormState, words: Words | None = None) -> dict[str, str]:
    """A refusal of the form, under the field it concerns."""
    message = clip(refusal_text(err, words), 500)
    if isinstance(err, AppNotFound | AmbiguousAppName) or state.operation is None:
        return {APP_BLOCK: message}
    if isinstance(err, InvalidTargetPlan) and state.operation in (
        Operation.UPGRADE,
        Operation.CONFIGURE,
    ):
        return {EDITION_BLOCK: message}
    if isinstance(err, UnknownAddon | InvalidAddonValue) and state.addons:
        return {f"{ADDON_BLOCK}{sorted(state.addons)[0]}": message}
    return {OPERATION_BLOCK: message}


# --- the preview, and what became of it -------------------------------------------------------------


def confirm_view(pending: PendingRequest, words: Words, *, channel: str | None) -> dict[str, Any]:
    """The preview of a stored request: Confirm applies it (or it waits for approvals)."""
    preview = pending.preview
    summary = words.summary(preview)
    warnings = [words.notice(n) for n in preview.notices]
    body: list[dict[str, Any]] = [
        header(summary + ("?" if not pending.approval.needs_peer else "")),
        section(_("*App:* {app}").format(app=blocks.app_label(preview.app_name, preview.app_id))),
        section(_("*Changes*") + "\n" + blocks.change_lines(preview.changes, words)),
        section(_("*Cost*") + "\n" + escape(words.cost(preview.cost))),
    ]
    for warning in warnings:
        icon = ":warning:" if preview.danger or preview.irreversible else ":information_source:"
        body.append(section(f"{icon} {escape(warning)}"))
    expires = words.moment(pending.expires_at)
    meta = {"request": pending.id, "channel": channel}
    footer = _("Expires {moment} · request `{request}`").format(moment=expires, request=pending.id)
    if pending.approval.needs_peer:
        n = pending.approval.approvers
        needs = ngettext(
            "This change needs approval by {n} other person with the needed role. An approval "
            "card was posted for them; planbot will message you the outcome. You can withdraw "
            "the request from your home tab.",
            "This change needs approval by {n} other people with the needed role. An approval "
            "card was posted for them; planbot will message you the outcome. You can withdraw "
            "the request from your home tab.",
            n,
        ).format(n=number(n))
        body.append(section(f":hourglass_flowing_sand: {needs}"))
        body.append(context(footer))
        return _modal(CONFIRM_VIEW, _("Sent for approval"), body, meta=meta)
    if preview.danger:
        body.append(
            {
                "type": "input",
                "block_id": ACK_BLOCK,
                "label": _text(_("Are you sure?")),
                "element": {
                    "type": "checkboxes",
                    "action_id": PICK_ACK,
                    "options": [
                        _option(_("I have read the warnings above and want to go ahead."), "yes")
                    ],
                },
            }
        )
    body.append(context(footer))
    return _modal(
        CONFIRM_VIEW,
        _("Confirm the change"),
        body,
        submit=_("Confirm"),
        close=_("Cancel"),
        meta=meta,
        notify_on_close=True,
    )


def result_view(outcome: Outcome, words: Words, now: datetime) -> dict[str, Any]:
    """What became of the request once confirmed."""
    card = blocks.outcome_card(outcome, words, now)
    return _modal(RESULT_VIEW, _("Done"), list(card["blocks"]))


def refusal_view(err: PlanError) -> dict[str, Any]:
    """Why it could not be done (nothing was changed)."""
    return _modal(RESULT_VIEW, _("Not done"), list(blocks.refusal(err)["blocks"]))


def message_view(title: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """A message's blocks as a modal (what a click from the home tab answers)."""
    return _modal(RESULT_VIEW, title, list(message.get("blocks") or []))
