"""The plan operation modal: opened by the global shortcut (and by `/plan` with nothing after it),
its app picker's options, its changes as the person picks, its preview and its confirmation.

Every listener acks first. Opening and updating the modal are Slack calls: they are handed to
`bot.surfaces`, which makes them beside the ack (off the HTTP response path), so no ack waits
for Slack; the modal is opened at once (the trigger lives 3 seconds) and filled in as the person
picks. A submission is answered in the ack itself (`response_action`): the preview, the outcome,
or the errors under the fields, so the modal never stays dead. The preview and the confirmation
are the slash command's: `Changes.request`, then `Changes.click` (same audit, same approvals,
applied exactly once).
"""

from __future__ import annotations

import contextlib
from typing import Any

from slack_bolt import Ack, App

from bot import modals, observe
from bot.i18n import _
from bot.listeners.context import Bot
from core import Actor, Click, PlanError

__all__ = ["Forms", "register"]


def _user(body: dict[str, Any]) -> tuple[str, str | None]:
    user = body.get("user") or {}
    return str(user.get("id", "")), user.get("name") or user.get("username")


class Forms:
    """What the modal's listeners do."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.service = bot.service
        self.words = bot.words
        self.catalog = bot.service.config.catalog

    def actor(self, body: dict[str, Any]) -> Actor:
        """Who acts in this payload."""
        return self.bot.actor(*_user(body))

    def open(self, trigger_id: str, channel: str | None) -> None:
        """Open the empty form (the call is made beside the ack)."""
        assert self.bot.surfaces is not None
        view = modals.form_view(catalog=self.catalog, words=self.words, channel=channel)
        self.bot.surfaces.open(trigger_id, view)

    def options(self, text: str, actor: Actor) -> list[dict[str, Any]]:
        """The apps matching what the person typed, among those they may see."""
        return modals.app_options(self.service.forms.apps(text, actor=actor))

    def changed(self, body: dict[str, Any], actor: Actor) -> dict[str, Any]:
        """The form once an app or an operation was picked."""
        view = body.get("view") or {}
        state = modals.form_state(view)
        if state.app_id is None:
            return modals.form_view(catalog=self.catalog, words=self.words, channel=state.channel)
        try:
            app, operations = self.service.forms.operations(state.app_id, actor=actor)
        except PlanError as err:
            return modals.form_view(
                catalog=self.catalog,
                words=self.words,
                channel=state.channel,
                notice=modals.refusal_text(err, self.words),
            )
        return modals.form_view(
            catalog=self.catalog,
            words=self.words,
            channel=state.channel,
            app=app,
            operations=operations,
            operation=state.operation,
        )

    def submitted(self, view: dict[str, Any], actor: Actor) -> dict[str, Any]:
        """The preview (or the errors under the fields) for a submitted form."""
        state = modals.form_state(view)
        if state.app_id is None or state.operation is None:
            observe.note(outcome="refused")
        if state.app_id is None:
            return {"response_action": "errors", "errors": {modals.APP_BLOCK: _("Pick an app.")}}
        if state.operation is None:
            return {
                "response_action": "errors",
                "errors": {modals.OPERATION_BLOCK: _("Choose an operation.")},
            }
        try:
            app, _operations = self.service.forms.operations(state.app_id, actor=actor)
            change = modals.change_of(state, app, self.catalog)
            pending = self.service.request(change, actor=actor, channel_id=state.channel)
        except PlanError as err:
            observe.refused(err)
            return {
                "response_action": "errors",
                "errors": modals.field_errors(err, state, self.words),
            }
        view = modals.confirm_view(pending, self.words, channel=state.channel)
        return {"response_action": "update", "view": view}

    def confirmed(self, view: dict[str, Any], actor: Actor) -> dict[str, Any]:
        """The outcome of Confirm (or why it could not be done)."""
        request_id = str(modals.metadata(view).get("request") or "")
        state = modals.form_state(view)
        values = (view.get("state") or {}).get("values") or {}
        if modals.ACK_BLOCK in values and not state.acknowledged:
            observe.note(outcome="refused")
            return {
                "response_action": "errors",
                "errors": {modals.ACK_BLOCK: _("Tick the box to confirm, or cancel.")},
            }
        try:
            outcome = self.service.changes.click(Click.CONFIRM, request_id, actor=actor)
        except PlanError as err:
            observe.refused(err)
            return {"response_action": "update", "view": modals.refusal_view(err)}
        now = self.service.clock()
        return {"response_action": "update", "view": modals.result_view(outcome, self.words, now)}

    def closed(self, view: dict[str, Any], actor: Actor) -> None:
        """The preview was cancelled: withdraw its request (nothing to do if it was decided)."""
        request_id = str(modals.metadata(view).get("request") or "")
        if not request_id:
            return
        with contextlib.suppress(PlanError):  # decided, expired or not theirs: left as it is
            self.service.changes.click(Click.WITHDRAW, request_id, actor=actor)


def register(app: App, bot: Bot) -> None:
    """The shortcut, the picker's options, the form's changes, its submissions."""
    forms = Forms(bot)

    @app.shortcut(modals.SHORTCUT)
    def on_shortcut(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        if bot.surfaces is not None:
            forms.open(str(body.get("trigger_id") or ""), None)

    @app.options(modals.PICK_APP)
    def on_app_options(ack: Ack, body: dict[str, Any]) -> None:
        ack(options=forms.options(str(body.get("value") or ""), forms.actor(body)))

    def on_pick(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        view = body.get("view") or {}
        if bot.surfaces is not None and view.get("id"):
            bot.surfaces.update(
                view["id"], forms.changed(body, forms.actor(body)), hash=view.get("hash")
            )

    app.action(modals.PICK_APP)(on_pick)
    app.action(modals.PICK_OPERATION)(on_pick)

    @app.view(modals.FORM_VIEW)
    def on_form(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack(**forms.submitted(view, forms.actor(body)))

    @app.view(modals.CONFIRM_VIEW)
    def on_confirm(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack(**forms.confirmed(view, forms.actor(body)))

    @app.view_closed(modals.CONFIRM_VIEW)
    def on_cancel(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        forms.closed(view, forms.actor(body))
