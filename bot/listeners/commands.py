"""The `/plan` slash command: parse, ask the core, render, ack (one ephemeral message)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App

from bot import blocks, grammar, provider_views
from bot.listeners.context import Bot
from bot.listeners.modals import Forms
from bot.words import Words
from core import Actor, ChangeRequest, Grant, Operation, Plan, PlanError, Role

__all__ = ["Commands", "register"]

Message = dict[str, Any]


class Commands:
    """The answer to each `/plan` subcommand."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.service = bot.service

    @property
    def words(self) -> Words:
        """The words of the replies."""
        return self.bot.words

    @property
    def tz(self) -> ZoneInfo:
        """The billing time zone, for dates shown."""
        return self.bot.tz

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
            grammar.Status: self._status,
            grammar.History: self._history,
            grammar.Bill: self._bill,
            grammar.AppUsage: self._usage,
            grammar.Upgrade: lambda c, a, ch: self.request(
                ChangeRequest(Operation.UPGRADE, app=c.app, plan=Plan(c.plan)), a, ch
            ),
            grammar.Configure: lambda c, a, ch: self.request(
                ChangeRequest(
                    Operation.CONFIGURE,
                    app=c.app,
                    plan=Plan(c.edition) if c.edition else None,
                    addons=dict(c.addons),
                ),
                a,
                ch,
            ),
            grammar.Extend: lambda c, a, ch: self.request(
                ChangeRequest(Operation.EXTEND, app=c.app), a, ch
            ),
            grammar.Disable: lambda c, a, ch: self.request(
                ChangeRequest(Operation.DISABLE, app=c.app), a, ch
            ),
            grammar.Enable: lambda c, a, ch: self.request(
                ChangeRequest(Operation.ENABLE, app=c.app), a, ch
            ),
            grammar.Migrate: lambda c, a, ch: self.request(
                ChangeRequest(Operation.MIGRATE, app=c.app), a, ch
            ),
            grammar.Create: lambda c, a, ch: self.request(
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

    def _status(self, command: grammar.Status, actor: Actor, channel_id: str | None) -> Message:
        status = self.service.status(command.app, actor=actor)
        now = self.service.clock()
        figures = provider_views.status_fields(self.bot.provider, status, now, self.tz)
        return blocks.status_message(status, self.tz, extra=figures)

    def _usage(self, command: grammar.AppUsage, actor: Actor, channel_id: str | None) -> Message:
        status = self.service.status(command.app, actor=actor)  # the app, if they may see it
        now = self.service.clock()
        return provider_views.usage_message(status, self.bot.provider, command.days, now, self.tz)

    def _history(self, command: grammar.History, actor: Actor, channel_id: str | None) -> Message:
        app, entries = self.service.history(command.app, actor=actor, limit=command.limit)
        return blocks.history_message(app, entries, self.tz)

    def _bill(self, command: grammar.Bill, actor: Actor, channel_id: str | None) -> Message:
        year, month = command.month or (None, None)
        app, statement = self.service.statement(command.app, actor=actor, year=year, month=month)
        return blocks.bill_message(app, statement)

    def request(self, change: ChangeRequest, actor: Actor, channel_id: str | None) -> Message:
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
            self.bot.groups.forget()
            return blocks.text_message(f":key: {who} now has the `{command.role}` role{where}.")
        if self.service.revoke(grant, label=principal.label, actor=actor):
            self.bot.groups.forget()
            return blocks.text_message(
                f":key: {who} no longer has the `{command.role}` role{where}."
            )
        return blocks.text_message(f"{who} had no `{command.role}` grant{where}; nothing changed.")


def register(app: App, bot: Bot) -> None:
    """`/plan`: the answer is the ack (ephemeral)."""
    commands = Commands(bot)

    forms = Forms(bot)

    @app.command("/plan")
    def on_plan(ack: Ack, command: dict[str, Any]) -> None:
        if not (command.get("text") or "").strip() and command.get("trigger_id") and bot.surfaces:
            ack()  # `/plan` alone opens the modal, beside the ack (see bot.surfaces)
            forms.open(command["trigger_id"], command.get("channel_id"))
            return
        actor = bot.actor(command["user_id"], command.get("user_name"))
        message = commands.answer(command.get("text") or "", actor, command.get("channel_id"))
        ack(**{**message, "response_type": "ephemeral"})
