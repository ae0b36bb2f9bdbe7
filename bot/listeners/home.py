"""The home tab: `app_home_opened`, and the buttons the tab carries.

Opening the tab is acked at once: the core records who opened it (and the event's id, so a
retried event, on any replica, changes nothing) and queues its drawing, which the delivery
worker does (`bot.home.HomePublisher`); nothing here calls Slack on the ack path. Approve,
Reject and Withdraw are decided by the core's one decision (`Changes.click`), whose transaction
also queues the redrawing of every home tab that shows the request; a refusal is shown in a
modal. Extend and Enable start the usual preview, in a modal, whose Confirm is the slash
command's. Paging and the team filter are remembered, then drawn by the worker.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from bot import home, modals, observe
from bot.listeners.context import Bot
from bot.listeners.modals import Forms
from core import ChangeRequest, Click, Operation, PlanError

__all__ = ["register"]

log = logging.getLogger(__name__)

#: what each of the tab's request buttons does
CLICKS = {
    home.HOME_APPROVE: Click.APPROVE,
    home.HOME_REJECT: Click.REJECT,
    home.HOME_WITHDRAW: Click.WITHDRAW,
}


def register(app: App, bot: Bot) -> None:
    """The event and the tab's buttons."""
    forms = Forms(bot)
    service = bot.service

    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return  # the messages tab
        actor = bot.actor(str(event.get("user", "")), None)
        event_id = body.get("event_id")
        if not service.home.opened(actor, event_id=event_id if isinstance(event_id, str) else None):
            log.info("event %s arrived again; it was processed already", event_id)

    def show(trigger_id: str | None, view: dict[str, Any]) -> None:
        if bot.surfaces is not None and trigger_id:
            bot.surfaces.open(trigger_id, view)

    def on_decision(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        actor = forms.actor(body)
        try:
            service.changes.click(
                CLICKS[action["action_id"]], str(action.get("value") or ""), actor=actor
            )
        except PlanError as err:  # already decided, not theirs, not allowed: nothing changed
            observe.refused(err)
            show(body.get("trigger_id"), modals.refusal_view(err))

    for action_id in CLICKS:
        app.action(action_id)(on_decision)

    def on_start(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        actor = forms.actor(body)
        operation = (
            Operation.EXTEND if action["action_id"] == home.HOME_EXTEND else Operation.ENABLE
        )
        change = ChangeRequest(operation, app=str(action.get("value") or ""))
        try:
            pending = service.request(change, actor=actor, channel_id=None)
        except PlanError as err:
            observe.refused(err)
            show(body.get("trigger_id"), modals.refusal_view(err))
            return
        show(body.get("trigger_id"), modals.confirm_view(pending, bot.words, channel=None))

    app.action(home.HOME_EXTEND)(on_start)
    app.action(home.HOME_ENABLE)(on_start)

    @app.action(home.HOME_PAGE)
    def on_page(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        page, team = home.page_of(str(action.get("value") or ""))
        service.home.browse(forms.actor(body), team=team, page=page)

    @app.action(home.HOME_TEAM)
    def on_team(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        team = action.get("selected_conversation")
        service.home.browse(forms.actor(body), team=team if isinstance(team, str) else None, page=1)

    @app.action(home.HOME_ALL_TEAMS)
    def on_all_teams(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        service.home.browse(forms.actor(body), team=None, page=1)

    @app.action(home.HOME_NEW)
    def on_new(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        if bot.surfaces is not None and body.get("trigger_id"):
            forms.open(str(body["trigger_id"]), None)
