"""The `/plan` slash command: parse, ask the core, render, ack (one ephemeral message)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App, BoltRequest

from bot import blocks, grammar, observe, provider_views
from bot.channels import Reach
from bot.i18n import N_, _, speaking
from bot.listeners.context import Bot
from bot.listeners.modals import Forms
from bot.people import AUTO, Choice
from bot.words import Words, mention
from core import Actor, ChangeRequest, Grant, Operation, Plan, PlanError, Role

__all__ = ["Asked", "Commands", "register"]

Message = dict[str, Any]


@dataclass(frozen=True)
class Asked:
    """Who asked, where, and where their card can be answered later."""

    actor: Actor
    channel_id: str | None
    reply_url: str | None = None
    #: the request's signature: recorded with a change made without a confirmation click (a
    #: grant, a revoke), so that the same request sent again changes nothing
    once: str | None = None


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

    def answer(
        self,
        text: str,
        actor: Actor,
        channel_id: str | None,
        reply_url: str | None = None,
        once: str | None = None,
    ) -> Message:
        """The reply to `/plan <text>` (a refusal rather than an exception)."""
        try:
            command = grammar.parse(text)
            return self.run(command, Asked(actor, channel_id, reply_url, once))
        except grammar.CommandSyntaxError as err:
            observe.note(kind="command:invalid", outcome="refused")
            return blocks.text_message(err.message)
        except PlanError as err:
            observe.note(outcome="refused")
            return blocks.refusal(err, self.words)

    def run(self, command: grammar.Command, asked: Asked) -> Message:
        """Carry out one parsed command."""
        observe.note(kind=observe.command_kind(command), app=getattr(command, "app", None))
        handler = self._handlers.get(type(command))
        if handler is None:  # pragma: no cover - the grammar only makes known commands
            raise TypeError(f"no handler for {command!r}")
        return handler(command, asked)

    @functools.cached_property
    def _handlers(self) -> dict[type, Callable[[Any, Asked], Message]]:
        return {
            grammar.Help: self._help,
            grammar.ListApps: self._list,
            grammar.Status: self._status,
            grammar.History: self._history,
            grammar.Bill: self._bill,
            grammar.AppUsage: self._usage,
            grammar.Upgrade: lambda c, a: self.request(
                ChangeRequest(Operation.UPGRADE, app=c.app, plan=Plan(c.plan)), a
            ),
            grammar.Configure: lambda c, a: self.request(
                ChangeRequest(
                    Operation.CONFIGURE,
                    app=c.app,
                    plan=Plan(c.edition) if c.edition else None,
                    addons=dict(c.addons),
                ),
                a,
            ),
            grammar.Extend: lambda c, a: self.request(
                ChangeRequest(Operation.EXTEND, app=c.app), a
            ),
            grammar.Disable: lambda c, a: self.request(
                ChangeRequest(Operation.DISABLE, app=c.app), a
            ),
            grammar.Enable: lambda c, a: self.request(
                ChangeRequest(Operation.ENABLE, app=c.app), a
            ),
            grammar.Migrate: lambda c, a: self.request(
                ChangeRequest(Operation.MIGRATE, app=c.app), a
            ),
            grammar.Create: self._create,
            grammar.AccessList: self._access_list,
            grammar.AccessGrant: self._access_change,
            grammar.AccessRevoke: self._access_change,
            grammar.Lang: self._lang,
        }

    def _help(self, command: grammar.Help, asked: Asked) -> Message:
        role = self.service.highest_role(asked.actor)  # a team's operator may upgrade its apps
        allowed = {r.label for r in Role if Role.VIEWER <= r <= role}
        catalog = self.words.catalog
        addons = [
            grammar.AddonHelp(
                name=addon.name,
                label=addon.label,
                default=addon.default,
                options=tuple(
                    (value, self.words.money(price)) for value, price in addon.options.items()
                ),
            )
            for addon in catalog.addons.values()
        ]
        text = grammar.help_text(allowed, command.topic, addons=addons)
        admins = sorted(self.service.config.access.admins)
        if command.topic is None and Role.VIEWER <= role < Role.ADMIN:
            text += "\n\n" + _more_access(role, admins)
        return blocks.help_message(text)

    def _list(self, command: grammar.ListApps, asked: Asked) -> Message:
        page = self.service.list_apps(
            actor=asked.actor, contains=command.filter, page=command.page, per_page=40
        )
        return blocks.list_message(page, contains=command.filter)

    def _status(self, command: grammar.Status, asked: Asked) -> Message:
        status = self.service.status(command.app, actor=asked.actor)
        now = self.service.clock()
        figures = provider_views.status_fields(self.bot.provider, status, now, self.tz)
        return blocks.status_message(status, self.words, extra=figures)

    def _usage(self, command: grammar.AppUsage, asked: Asked) -> Message:
        status = self.service.status(command.app, actor=asked.actor)  # if they may see it
        now = self.service.clock()
        return provider_views.usage_message(status, self.bot.provider, command.days, now, self.tz)

    def _history(self, command: grammar.History, asked: Asked) -> Message:
        app, entries = self.service.history(command.app, actor=asked.actor, limit=command.limit)
        return blocks.history_message(app, entries, self.words)

    def _bill(self, command: grammar.Bill, asked: Asked) -> Message:
        year, month = command.month or (None, None)
        app, statement = self.service.statement(
            command.app, actor=asked.actor, year=year, month=month
        )
        return blocks.bill_message(app, statement, self.words.zone)

    def _create(self, command: grammar.Create, asked: Asked) -> Message:
        refused = self._unreachable(asked.channel_id, "own")
        if refused is not None:
            return refused
        return self.request(ChangeRequest(Operation.CREATE, name=command.name), asked)

    def request(self, change: ChangeRequest, asked: Asked) -> Message:
        """Preview a change and store it as a request; its card."""
        pending = self.service.request(
            change, actor=asked.actor, channel_id=asked.channel_id, reply_url=asked.reply_url
        )
        return blocks.preview_card(pending, self.words)

    def _unreachable(self, channel_id: str | None, purpose: str) -> Message | None:
        """A refusal when planbot can't post in the channel an app would belong to (the owner
        team's reminders, warnings and statements would be lost); None when it can."""
        reach = self.bot.channels.reach(channel_id)
        if reach is Reach.MEMBER:
            return None
        return blocks.channel_refusal(reach.value, channel_id or "", purpose)

    def _access_list(self, command: Any, asked: Asked) -> Message:
        grants = self.service.grants(actor=asked.actor)
        return blocks.access_list_message(grants, sorted(self.service.config.access.admins))

    def _access_change(self, command: Any, asked: Asked) -> Message:
        principal = command.principal
        grant = Grant(principal.kind, principal.id, Role.parse(command.role), command.team)
        who = f"<@{principal.id}>" if principal.kind == "user" else f"<!subteam^{principal.id}>"
        said = {"who": who, "role": command.role, "team": f"<#{command.team}>"}
        if isinstance(command, grammar.AccessGrant):
            if command.team:
                refused = self._unreachable(command.team, "grant")
                if refused is not None:
                    return refused
            self.service.grant(grant, label=principal.label, actor=asked.actor, once=asked.once)
            self.bot.groups.forget()
            if command.team:
                text = _(":key: {who} now has the `{role}` role for the apps of {team}.")
            else:
                text = _(":key: {who} now has the `{role}` role for all apps.")
            return blocks.text_message(text.format(**said))
        if self.service.revoke(grant, label=principal.label, actor=asked.actor, once=asked.once):
            self.bot.groups.forget()
            if command.team:
                text = _(":key: {who} no longer has the `{role}` role for the apps of {team}.")
            else:
                text = _(":key: {who} no longer has the `{role}` role for all apps.")
            return blocks.text_message(text.format(**said))
        if command.team:
            text = _("{who} had no `{role}` grant for the apps of {team}; nothing changed.")
        else:
            text = _("{who} had no `{role}` grant for all apps; nothing changed.")
        return blocks.text_message(text.format(**said))

    def _lang(self, command: grammar.Lang, asked: Asked) -> Message:
        """Show or choose the language the person is answered in (in that language)."""
        languages = self.bot.languages
        if languages is None:
            return blocks.text_message(_("planbot speaks only English here."))
        user = asked.actor.user_id
        if command.language is None:
            return blocks.text_message(_language_shown(languages.choice(user)))
        chosen = None if command.language == AUTO else command.language
        choice = languages.choose(user, chosen)
        with speaking(choice.language):
            if chosen is None:
                text = _(
                    ":speech_balloon: planbot now follows your Slack language: it answers you "
                    "in {language}."
                )
            else:
                text = _(":speech_balloon: planbot now answers you in {language}.")
            text = text.format(language=_(LANGUAGE_NAMES[choice.language]))
            text += "\n" + _("Channel messages keep the workspace's language.")
            return blocks.text_message(text)


#: each language by its name, in the language of the reader
LANGUAGE_NAMES = {"en": N_("English"), "ko": N_("Korean")}


def _language_shown(choice: Choice) -> str:
    """What decides the person's language, said to them."""
    name = _(LANGUAGE_NAMES[choice.language])
    if choice.chosen is not None:
        text = _(":speech_balloon: planbot answers you in {language}, as you chose.")
    elif choice.locale_language is not None:
        text = _(":speech_balloon: planbot answers you in {language}, the language of your Slack.")
    else:
        text = _(":speech_balloon: planbot answers you in {language}, the workspace's language.")
    return (
        text.format(language=name)
        + "\n"
        + _("To change it: `/plan lang ko`, `/plan lang en`, or `/plan lang auto`.")
    )


def _more_access(role: Role, admins: list[str]) -> str:
    """Whom to ask for more than `role` (the help of a viewer or an operator)."""
    nxt = Role(role + 1).label
    people = ", ".join(mention(a) for a in admins[:5])
    if people:
        text = _(
            "You have the *{role}* role. For more, ask a planbot admin ({admins}) to grant you "
            "the `{next}` role: `/plan access grant @you {next}`."
        )
    else:
        text = _(
            "You have the *{role}* role. For more, ask a planbot admin to grant you the "
            "`{next}` role: `/plan access grant @you {next}`."
        )
    return text.format(role=role.label, admins=people, next=nxt)


def register(app: App, bot: Bot) -> None:
    """`/plan`: the answer is the ack (ephemeral)."""
    commands = Commands(bot)

    forms = Forms(bot)

    @app.command("/plan")
    def on_plan(ack: Ack, command: dict[str, Any], request: BoltRequest) -> None:
        if not (command.get("text") or "").strip() and command.get("trigger_id") and bot.surfaces:
            ack()  # `/plan` alone opens the modal, beside the ack (see bot.surfaces)
            forms.open(command["trigger_id"], command.get("channel_id"))
            return
        actor = bot.actor(command["user_id"], command.get("user_name"))
        message = commands.answer(
            command.get("text") or "",
            actor,
            command.get("channel_id"),
            command.get("response_url"),
            _signature(request),
        )
        ack(**{**message, "response_type": "ephemeral"})


def _signature(request: BoltRequest) -> str | None:
    """The request's Slack signature (None where there is none: Socket Mode)."""
    values = request.headers.get("x-slack-signature") or ()
    first = values[0] if values else None
    return first if isinstance(first, str) and first else None
