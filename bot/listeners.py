"""The Bolt listeners: `/plan`, the card buttons, and the one error handler.

Each callback parses, asks the core, renders, and acks. A `PlanError` becomes an ephemeral
refusal; anything else reaches `on_error`, which logs it with a reference and tells the person
that nothing was changed, without internals.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App, BoltResponse

from bot import blocks, grammar
from bot.delivery import GroupDirectory, Responder
from bot.kit import escape
from bot.words import Words
from core import (
    Actor,
    AlreadyApproved,
    AwaitingApproval,
    ChangeRequest,
    Click,
    Grant,
    NotYourRequest,
    Operation,
    PermissionDenied,
    Plan,
    PlanError,
    PlanService,
    RequestAlreadyDecided,
    Role,
    SelfApprovalNotAllowed,
)

__all__ = ["Bot", "register"]

log = logging.getLogger(__name__)

Message = dict[str, Any]
REPLACE = {"replace_original": True}
#: what each card button does to its request
CLICKS = {
    blocks.CONFIRM: Click.CONFIRM,
    blocks.CANCEL: Click.WITHDRAW,
    blocks.APPROVE: Click.APPROVE,
    blocks.REJECT: Click.REJECT,
}


@dataclass
class Bot:
    """What the listeners need: the core service and the ways to talk back."""

    service: PlanService
    responder: Responder
    groups: GroupDirectory
    words: Words

    @property
    def tz(self) -> ZoneInfo:
        """The billing time zone, for dates shown."""
        return self.service.config.billing_tz

    def actor(self, user_id: str, name: str | None) -> Actor:
        """The person acting, with the granted groups they belong to."""
        return Actor(user_id=user_id, name=name or "", groups=self.groups.groups_of(user_id))

    # --- the slash command ---------------------------------------------------------------

    def answer(self, text: str, actor: Actor, channel_id: str | None) -> Message:
        """The reply to `/plan <text>` (a refusal rather than an exception)."""
        try:
            command = grammar.parse(text)
            return self.run(command, actor, channel_id)
        except grammar.CommandSyntaxError as err:
            return blocks.text_message(err.message)
        except PlanError as err:
            return blocks.refusal(err)

    def run(self, command: grammar.Command, actor: Actor, channel_id: str | None) -> Message:
        """Carry out one parsed command."""
        handler = self._handlers.get(type(command))
        if handler is None:  # pragma: no cover - the grammar only makes known commands
            raise TypeError(f"no handler for {command!r}")
        return handler(command, actor, channel_id)

    @functools.cached_property
    def _handlers(self) -> dict[type, Callable[[Any, Actor, str | None], Message]]:
        return {
            grammar.Help: self._help,
            grammar.ListApps: self._list,
            grammar.Status: lambda c, a, ch: blocks.status_message(
                self.service.status(c.app, actor=a), self.tz
            ),
            grammar.History: self._history,
            grammar.Bill: self._bill,
            grammar.Upgrade: lambda c, a, ch: self._request(
                ChangeRequest(Operation.UPGRADE, app=c.app, plan=Plan(c.plan)), a, ch
            ),
            grammar.Configure: lambda c, a, ch: self._request(
                ChangeRequest(
                    Operation.CONFIGURE,
                    app=c.app,
                    plan=Plan(c.edition) if c.edition else None,
                    addons=dict(c.addons),
                ),
                a,
                ch,
            ),
            grammar.Extend: lambda c, a, ch: self._request(
                ChangeRequest(Operation.EXTEND, app=c.app), a, ch
            ),
            grammar.Disable: lambda c, a, ch: self._request(
                ChangeRequest(Operation.DISABLE, app=c.app), a, ch
            ),
            grammar.Enable: lambda c, a, ch: self._request(
                ChangeRequest(Operation.ENABLE, app=c.app), a, ch
            ),
            grammar.Migrate: lambda c, a, ch: self._request(
                ChangeRequest(Operation.MIGRATE, app=c.app), a, ch
            ),
            grammar.Create: lambda c, a, ch: self._request(
                ChangeRequest(Operation.CREATE, name=c.name), a, ch
            ),
            grammar.AccessList: self._access_list,
            grammar.AccessGrant: self._access_change,
            grammar.AccessRevoke: self._access_change,
        }

    def _help(self, command: grammar.Help, actor: Actor, channel_id: str | None) -> Message:
        role = self.service.highest_role(actor)  # a team's operator may upgrade its apps
        allowed = {r.label for r in Role if Role.VIEWER <= r <= role}
        return blocks.help_message(grammar.help_text(allowed, command.topic))

    def _list(self, command: grammar.ListApps, actor: Actor, channel_id: str | None) -> Message:
        page = self.service.list_apps(
            actor=actor, contains=command.filter, page=command.page, per_page=40
        )
        return blocks.list_message(page, contains=command.filter)

    def _history(self, command: grammar.History, actor: Actor, channel_id: str | None) -> Message:
        app, entries = self.service.history(command.app, actor=actor, limit=command.limit)
        return blocks.history_message(app, entries, self.tz)

    def _bill(self, command: grammar.Bill, actor: Actor, channel_id: str | None) -> Message:
        year, month = command.month or (None, None)
        app, statement = self.service.statement(command.app, actor=actor, year=year, month=month)
        return blocks.bill_message(app, statement)

    def _request(self, change: ChangeRequest, actor: Actor, channel_id: str | None) -> Message:
        pending = self.service.request(change, actor=actor, channel_id=channel_id)
        return blocks.preview_card(pending, self.words)

    def _access_list(self, command: Any, actor: Actor, channel_id: str | None) -> Message:
        grants = self.service.grants(actor=actor)
        return blocks.access_list_message(grants, sorted(self.service.config.access.admins))

    def _access_change(self, command: Any, actor: Actor, channel_id: str | None) -> Message:
        principal = command.principal
        grant = Grant(principal.kind, principal.id, Role.parse(command.role), command.team)
        who = f"<@{principal.id}>" if principal.kind == "user" else f"<!subteam^{principal.id}>"
        where = f" for the apps of <#{command.team}>" if command.team else " for all apps"
        if isinstance(command, grammar.AccessGrant):
            self.service.grant(grant, label=principal.label, actor=actor)
            self.groups.forget()
            return blocks.text_message(f":key: {who} now has the `{command.role}` role{where}.")
        if self.service.revoke(grant, label=principal.label, actor=actor):
            self.groups.forget()
            return blocks.text_message(
                f":key: {who} no longer has the `{command.role}` role{where}."
            )
        return blocks.text_message(f"{who} had no `{command.role}` grant{where}; nothing changed.")

    # --- buttons -------------------------------------------------------------------------

    def decide(
        self, action_id: str, request_id: str, actor: Actor, response_url: str | None = None
    ) -> tuple[Message, bool] | None:
        """Carry out a button press; returns the message and whether it replaces the card, or
        None when the card's new face was queued with the decision itself."""
        click = CLICKS[action_id]
        try:
            if response_url and self.responder.queues_in_outbox:
                self.service.changes.click(click, request_id, actor=actor, reply_url=response_url)
                return None
            outcome = self.service.changes.click(click, request_id, actor=actor)
        except RequestAlreadyDecided as err:
            return blocks.text_message(f":information_source: {escape(err.message)}"), False
        except PlanError as err:
            # Someone not entitled to decide gets a private answer; the card stays for its owner.
            personal = isinstance(
                err,
                NotYourRequest
                | SelfApprovalNotAllowed
                | PermissionDenied
                | AwaitingApproval
                | AlreadyApproved,
            )
            return blocks.refusal(err), not personal
        return blocks.outcome_card(outcome, self.words, self.service.clock()), True

    def start(
        self, operation: Operation, app_id: str, actor: Actor, channel_id: str | None
    ) -> Message:
        """A button on a notice (Extend, Enable) starts the normal preview/confirm flow."""
        try:
            return self._request(ChangeRequest(operation, app=app_id), actor, channel_id)
        except PlanError as err:
            return blocks.refusal(err)


def _ephemeral(message: Message) -> Message:
    return {**message, "response_type": "ephemeral"}


def register(app: App, bot: Bot) -> None:
    """Attach planbot's listeners to a Bolt app."""

    @app.command("/plan")
    def on_plan(ack: Ack, command: dict[str, Any]) -> None:
        actor = bot.actor(command["user_id"], command.get("user_name"))
        message = bot.answer(command.get("text") or "", actor, command.get("channel_id"))
        ack(**_ephemeral(message))

    def on_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user = body.get("user") or {}
        actor = bot.actor(str(user.get("id", "")), user.get("name") or user.get("username"))
        url = body.get("response_url")
        decided = bot.decide(action["action_id"], str(action.get("value") or ""), actor, url)
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
        message = bot.start(operation, str(action.get("value") or ""), actor, channel)
        message = {**message, "response_type": "ephemeral", "replace_original": False}
        bot.responder.send(body.get("response_url"), message)

    app.action("plan_start_extend")(on_start)
    app.action("plan_start_enable")(on_start)

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        reference = uuid.uuid4().hex[:12]
        log.error("unexpected error (reference %s)", reference, exc_info=error)
        message = blocks.failure_message(reference)
        if isinstance(body, dict) and body.get("type") == "block_actions":
            bot.responder.send(
                body.get("response_url"),
                {**message, "replace_original": False, "response_type": "ephemeral"},
            )
            return BoltResponse(status=200, body="")
        return BoltResponse(
            status=200,
            body=json.dumps(_ephemeral(message)),
            headers={"content-type": "application/json"},
        )
