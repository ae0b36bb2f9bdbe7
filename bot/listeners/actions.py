"""The buttons: a request's card (confirm, cancel, approve, reject) and the notices' (extend, enable).

Each click is acked at once; what it does is decided by the core, and the card's new face goes to
the click's response_url through the outbox (queued with the decision itself when it decides).
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot import blocks, observe
from bot.listeners.commands import Asked, Commands
from bot.listeners.context import Bot
from core import (
    Actor,
    AlreadyApproved,
    AwaitingApproval,
    ChangeRequest,
    Click,
    DatabaseBusy,
    GroupsNotYetKnown,
    NotYourRequest,
    Operation,
    PermissionDenied,
    PlanError,
    RequestAlreadyDecided,
    SelfApprovalNotAllowed,
)

__all__ = ["CLICKS", "Clicks", "register"]

Message = dict[str, Any]
REPLACE = {"replace_original": True}
#: what each card button does to its request
CLICKS = {
    blocks.CONFIRM: Click.CONFIRM,
    blocks.CANCEL: Click.WITHDRAW,
    blocks.APPROVE: Click.APPROVE,
    blocks.REJECT: Click.REJECT,
}


class Clicks:
    """What a button press does."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.service = bot.service
        self.responder = bot.responder
        self.words = bot.words
        self.commands = Commands(bot)

    def decide(
        self, action_id: str, request_id: str, actor: Actor, response_url: str | None = None
    ) -> tuple[Message, bool] | None:
        """Carry out a button press; returns the message and whether it replaces the card, or
        None when the card's new face was queued with the decision itself."""
        click = CLICKS[action_id]
        observe.note(kind=observe.action_kind(action_id))
        try:
            if response_url and self.responder.queues_in_outbox:
                self.service.changes.click(click, request_id, actor=actor, reply_url=response_url)
                return None
            outcome = self.service.changes.click(click, request_id, actor=actor)
        except RequestAlreadyDecided as err:
            observe.note(outcome="already_done")
            said = self.words.refusal(err)
            return blocks.text_message(f":information_source: {said}"), False
        except PlanError as err:
            observe.note(outcome="refused")
            # Someone not entitled to decide gets a private answer; the card stays for its owner.
            personal = isinstance(
                err,
                DatabaseBusy  # (busy, or groups not read yet: the card stays, to try again)
                | GroupsNotYetKnown
                | NotYourRequest
                | SelfApprovalNotAllowed
                | PermissionDenied
                | AwaitingApproval
                | AlreadyApproved,
            )
            return blocks.refusal(err, self.words), not personal
        if click in (Click.APPROVE, Click.REJECT) and outcome.approvals_needed:
            return None  # the approval card's new face goes out as an update of it
        return blocks.outcome_card(outcome, self.words, self.service.clock()), True

    def start(
        self, operation: Operation, app_id: str, actor: Actor, channel_id: str | None
    ) -> Message:
        """A button on a notice (Extend, Enable) starts the normal preview/confirm flow."""
        observe.note(kind=f"action:{operation.value}", app=app_id)
        try:
            return self.commands.request(
                ChangeRequest(operation, app=app_id), Asked(actor, channel_id)
            )
        except PlanError as err:
            observe.note(outcome="refused")
            return blocks.refusal(err, self.words)


def register(app: App, bot: Bot) -> None:
    """The card's buttons and the notices' buttons."""
    clicks = Clicks(bot)

    def on_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user = body.get("user") or {}
        actor = bot.actor(str(user.get("id", "")), user.get("name") or user.get("username"))
        url = body.get("response_url")
        decided = clicks.decide(action["action_id"], str(action.get("value") or ""), actor, url)
        if decided is None:  # answered with the change
            return
        message, replace = decided
        if replace:
            message = {**message, **REPLACE}
        else:
            message = {**message, "response_type": "ephemeral", "replace_original": False}
        bot.responder.send(url, message)

    for action_id in (blocks.CONFIRM, blocks.CANCEL, blocks.APPROVE, blocks.REJECT):
        app.action(action_id)(on_button)

    def on_start(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user = body.get("user") or {}
        actor = bot.actor(str(user.get("id", "")), user.get("name") or user.get("username"))
        operation = (
            Operation.EXTEND if action["action_id"] == "plan_start_extend" else Operation.ENABLE
        )
        channel = (body.get("channel") or {}).get("id")
        message = clicks.start(operation, str(action.get("value") or ""), actor, channel)
        message = {**message, "response_type": "ephemeral", "replace_original": False}
        bot.responder.send(body.get("response_url"), message)

    app.action("plan_start_extend")(on_start)
    app.action("plan_start_enable")(on_start)
