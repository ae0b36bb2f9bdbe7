"""`planbot shell`: the whole bot in a terminal, no Slack workspace needed.

The shell runs the real Bolt app and the real core (the same `bot.app.build` as production) on the
embedded default database, and stands in for Slack around them:

- What the person types becomes the form body Slack would POST for `/plan` (or for a button click,
  a `block_actions` payload), signed with a per-session signing secret and handed to
  `App.dispatch`, so Bolt verifies the signature and routes it to planbot's listeners as in
  production. The ack body is the ephemeral reply.
- `ShellResponder` catches what the listeners send to a click's `response_url` (the card
  replacement), and `ShellNotifier` catches what the outbox posts to channels (audit messages,
  approval cards, notices), drawn under a channel heading after every command and click.
- `ShellSurfaces` keeps the modals the listeners open and the home tabs the delivery worker
  draws; `/home` opens the home tab (an `app_home_opened` event through Bolt), `shortcut` the
  global shortcut's modal (as does `/plan` alone). A view's fields are numbered like buttons:
  `<number> <text>` fills one (a select by its option's number or text, the app picker by
  typing part of a name or id, which asks the options handler as Slack does), and its Submit
  and Close are numbered too.
- There is no bot token (the app authorizes requests locally, user groups are not looked up) and
  the Web API URL points at a closed loopback port, so nothing ever reaches Slack; the provisioning
  webhook is left out too.

Every message is drawn with `bot.shell.render.render_message`; buttons are numbered across the
session, so a number on screen names one button, and typing it presses that button. A button with
a Slack `confirm` dialog asks it as a yes/no question first.

Refusals, for the exit status of `planbot shell -c`: a reply is a refusal when the bot built it
with `bot.blocks.refusal` (a `PlanError`: its `text` starts with the refusal icon that function
puts first) or when the typed command does not parse (`bot.grammar.parse` raises
`CommandSyntaxError`: the same pure function the listener runs on the same text, so the shell's
verdict and the bot's reply cannot disagree). The unexpected-failure reply of the error handler
counts as a refusal too. The reply itself always comes from Bolt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import json
import logging
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot import blocks, grammar
from bot.app import Planbot, build
from bot.delivery import HOME_KINDS, SlackNotifier, rendered
from bot.i18n import ENGLISH, N_, _, speaking
from bot.kit import escape
from bot.names import plan_name, role_name, status_name, sweep_line
from bot.settings import Settings
from bot.shell.render import Button, confirm_prompt, render_message
from bot.shell.views import Field, ShellSurfaces, draw_view, option_text
from bot.tables import pad
from bot.words import Words
from core import Actor, PlanError, utcnow

__all__ = [
    "DEMO_APPS",
    "DemoApp",
    "Posted",
    "ShellNotifier",
    "ShellReplier",
    "ShellResponder",
    "ShellSession",
    "ShellSurfaces",
    "demo_csv",
    "is_refusal",
    "run_shell",
    "seed_demo_apps",
    "shell_settings",
    "split_commands",
    "wire_text",
]

log = logging.getLogger(__name__)

SHELL_USER = "USHELL"
SHELL_CHANNEL = "CSHELL"
SHELL_AUDIT_CHANNEL = "CAUDIT"
SHELL_TEAM = "TSHELL"
#: where the Web API would be: a closed port (discard), so a stray call fails at once, locally
SHELL_API_URL = "http://127.0.0.1:9/api/"
SHELL_ACTOR = Actor("planbot-shell", "planbot shell")
HISTORY_FILE = ".planbot_history"

_REFUSAL_PREFIX = blocks.refusal(PlanError("-"))["text"].removesuffix("-")
_FAILURE_PREFIX = blocks.failure_message("-")["text"].partition("`")[0]
_QUIT = frozenset({"quit", "exit", ":q", "/quit", "/exit", "종료", "나가기"})
_HELP = frozenset({"help", "?", "/help", "도움말"})
#: the answers that say yes to a question (in English, and in Korean)
_YES = frozenset({"y", "yes", "예", "네"})
_PRESS_RE = re.compile(r"([0-9]{1,6})(?:\s+(y|yes|n|no|예|네|아니요|아니오))?", re.IGNORECASE)
_AS_RE = re.compile(r"as\s+(\S+)", re.IGNORECASE)
_FILL_RE = re.compile(r"([0-9]{1,6})(?:\s+(.*))?")
# Slack's autocomplete turns a picked person or channel into a control sequence; `@U123` and
# `#C123` typed in the shell stand for that pick.
_PICKED_USER_RE = re.compile(r"(?<!\S)@([UW][A-Z0-9]{2,})(?!\S)")
_PICKED_CHANNEL_RE = re.compile(r"(?<!\S)#([CG][A-Z0-9]{2,})(?!\S)")

SHELL_HELP = N_(
    """\
planbot shell: type what you would type in Slack.
  /plan <subcommand> ...   a /plan command (the leading /plan is optional)
  <number>                 press the button shown with that number, e.g. [1] Confirm
  <number> y               press it and answer yes to its "Are you sure?" question
  /home                    your home tab (what needs you, what is coming up, your apps)
  shortcut                 the plan operation modal (also `/plan` alone)
  <number> <text>          fill in a modal's field: pick an option by number or text, or type
                           part of an app's name or id in the app picker
  as <USER>                act as another Slack user id (try the access rules); `as me` is you
  tick                     run one lifecycle sweep now (expiry, reminders, purge, statements)
  help, ?                  this help, then planbot's own
  quit, exit, Ctrl-D       leave"""
)


# --------------------------------------------------------------------------------------------------
# Demo apps


@dataclass(frozen=True)
class DemoApp:
    """One demo app seeded on first start, and the rule it is there to show."""

    app_id: str
    name: str
    plan: str
    created_days_ago: float | None
    shows: str
    status: str = "active"
    disabled_days_ago: float | None = None
    created_on: str | None = None
    owned: bool = False


DEMO_APPS: tuple[DemoApp, ...] = (
    DemoApp("1400000001", "demo-chat", "developer", 3, N_("upgrade, extend, history"), owned=True),
    DemoApp(
        "1400000002",
        "demo-expired",
        "developer",
        40,
        N_("extend (it expired)"),
        status="suspended",
    ),
    DemoApp("1400000003", "demo-standard", "standard", 90, N_("config, disable")),
    DemoApp("1400000004", "demo-premium", "premium", 60, N_("bill, config")),
    DemoApp(
        "1400000005",
        "demo-disabled",
        "standard",
        120,
        N_("enable (before the purge)"),
        status="disabled",
        disabled_days_ago=10,
    ),
    DemoApp(
        "1400000006",
        "demo-legacy",
        "standard",
        None,
        N_("migrate (legacy billing)"),
        created_on="2021-06-01",
    ),
)


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def demo_csv(now: datetime, owner_channel: str) -> str:
    """The demo apps as an import CSV (dates relative to `now`, so every rule applies today)."""
    lines = ["app_id,name,plan,created_at,status,owner_channel,disabled_at"]
    for app in DEMO_APPS:
        created = app.created_on or _iso(now - timedelta(days=app.created_days_ago or 0))
        disabled = (
            _iso(now - timedelta(days=app.disabled_days_ago)) if app.disabled_days_ago else ""
        )
        owner = owner_channel if app.owned else ""
        lines.append(
            f"{app.app_id},{app.name},{app.plan},{created},{app.status},{owner},{disabled}"
        )
    return "\n".join(lines) + "\n"


def seed_demo_apps(planbot: Planbot, *, owner_channel: str = SHELL_CHANNEL) -> int:
    """Import the demo apps when the database has no app yet; returns how many were added.

    Seeding goes through the core's import, so the demo apps pass the same checks as any import.
    """
    service = planbot.service
    with service.store.unit_of_work(write=False) as uow:
        _apps, total = uow.apps.page(contains=None, channels=None, offset=0, limit=1)
    if total:
        return 0
    now = utcnow()
    try:
        result = service.imports.from_csv(demo_csv(now, owner_channel), actor=SHELL_ACTOR, now=now)
    except PlanError:  # another shell seeded the same database a moment ago
        log.info("demo apps already seeded")
        return 0
    return result.imported


# --------------------------------------------------------------------------------------------------
# Slack's side, in the terminal


@dataclass(frozen=True)
class Posted:
    """A message the outbox posted (or updated) in a channel."""

    channel: str
    ts: str
    message: dict[str, Any]
    updated: bool


class ShellNotifier:
    """The outbox's notifier for the shell: renders as `SlackNotifier` does, keeps the message."""

    def __init__(self, renderer: SlackNotifier) -> None:
        self.renderer = renderer
        self.posted: list[Posted] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)

    def send(
        self,
        destination: str,
        payload: Mapping[str, Any],
        *,
        replaces: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        """Keep the rendered message; return a receipt shaped like `chat.postMessage`'s (home
        tab messages are drawn into the shell's surfaces instead)."""
        if payload.get("kind") in HOME_KINDS:
            return self.renderer.deliver_home(payload)
        message = self.renderer.render(payload)
        with self._lock:
            if replaces and replaces.get("ts"):
                channel, ts, updated = (
                    str(replaces.get("channel") or destination),
                    replaces["ts"],
                    True,
                )
            else:
                channel, ts, updated = (
                    destination,
                    f"{int(time.time())}.{next(self._ts):06d}",
                    False,
                )
            self.posted.append(Posted(channel, str(ts), dict(message), updated))
        return {"channel": channel, "ts": ts}

    def take(self) -> list[Posted]:
        """What was posted since the last call."""
        with self._lock:
            posted, self.posted = self.posted, []
        return posted


class ShellReplier:
    """The outbox's replier for the shell: renders a queued reply as `SlackReplier` does and
    hands it to the responder, as if Slack had shown it where the reply URL points."""

    def __init__(self, words: Words, responder: ShellResponder) -> None:
        self.words = words
        self.responder = responder

    def reply(self, url: str, message: Mapping[str, Any]) -> None:
        """Keep the rendered reply for the terminal."""
        self.responder.send(url, rendered(message, self.words))


class ShellResponder:
    """Catches what the listeners send to a click's `response_url` (the bot's `Responder`)."""

    queues_in_outbox = False

    def __init__(self) -> None:
        self.sent: list[tuple[str | None, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Keep the message for the terminal."""
        with self._lock:
            self.sent.append((url, dict(message)))

    def take(self) -> list[tuple[str | None, dict[str, Any]]]:
        """What was sent since the last call."""
        with self._lock:
            sent, self.sent = self.sent, []
        return sent

    def close(self, timeout: float = 5.0) -> None:
        """Nothing is queued: messages are kept as they are sent."""


# --------------------------------------------------------------------------------------------------
# Refusals


def is_refusal(message: Mapping[str, Any]) -> bool:
    """Whether a reply is a refusal (`blocks.refusal`) or the unexpected-failure message."""
    text = message.get("text")
    return isinstance(text, str) and text.startswith((_REFUSAL_PREFIX, _FAILURE_PREFIX))


def _syntax_error(text: str) -> bool:
    try:
        grammar.parse(text)
    except grammar.CommandSyntaxError:
        return True
    return False


def wire_text(typed: str) -> str:
    """What Slack would send as the command's `text` for what was typed.

    `&`, `<` and `>` arrive as entities; `@U123` and `#C123` stand for people and channels picked
    from Slack's autocomplete, which arrive as `<@U123>` and `<#C123>`.
    """
    text = escape(typed.strip())
    text = _PICKED_USER_RE.sub(r"<@\1>", text)
    return _PICKED_CHANNEL_RE.sub(r"<#\1>", text)


# --------------------------------------------------------------------------------------------------
# The session


@dataclass
class _Card:
    """A message on screen whose buttons can still be pressed."""

    channel: str
    ts: str
    message: dict[str, Any]
    ephemeral: bool
    buttons: list[Button] = field(default_factory=list)
    #: "modal" or "home" when the card is a view (its clicks carry the view, not a message)
    view: str | None = None


Ask = Callable[[str], str]


class ShellSession:
    """One person at the terminal: their lines in, Bolt requests out, Slack's view drawn."""

    def __init__(
        self,
        planbot: Planbot,
        *,
        signing_secret: str,
        notifier: ShellNotifier,
        responder: ShellResponder,
        out: TextIO,
        user_id: str = SHELL_USER,
        user_name: str = "you",
        channel: str = SHELL_CHANNEL,
        color: bool = False,
        width: int = 80,
        ask: Ask | None = None,
        surfaces: ShellSurfaces | None = None,
    ) -> None:
        self.planbot = planbot
        self.surfaces = surfaces or ShellSurfaces()
        self.fields: dict[int, tuple[str, Field]] = {}
        self.values: dict[str, dict[str, dict[str, dict[str, Any]]]] = {"modal": {}, "home": {}}
        self.errors: dict[str, str] = {}
        self.modal_ends: tuple[int | None, int | None] = (None, None)
        self.drawn: dict[str, tuple[tuple[Any, Any], int]] = {}
        #: whether the home tab is the last thing drawn for this person (then it is redrawn
        #: as it changes; else a line says it changed)
        self.home_shown = False
        self.verifier = SignatureVerifier(signing_secret)
        self.notifier = notifier
        self.responder = responder
        self.out = out
        self.home_user = (user_id, user_name)
        self.user_id = user_id
        self.user_name = user_name
        self.channel = channel
        self.color = color
        self.width = width
        self.ask = ask
        self.next_number = 1
        self.buttons: dict[int, tuple[_Card, Button]] = {}
        self.cards_by_ts: dict[tuple[str, str], _Card] = {}
        self.origins: dict[str, _Card] = {}
        self.hinted = False
        self._counter = itertools.count(1)

    # -- what was typed ---------------------------------------------------------------------

    def run_line(self, line: str) -> str:
        """Carry out one line; returns "ok", "refused" or "quit"."""
        line = line.strip()
        if not line:
            return "ok"
        if not (_FILL_RE.fullmatch(line) or _PRESS_RE.fullmatch(line)):
            self.home_shown = False  # a command: its answer comes next, not the home tab
        lowered = line.lower()
        if lowered in _QUIT:
            return "quit"
        if lowered in _HELP:
            self.say(_(SHELL_HELP))
            return self.command("help")
        if lowered in ("tick", "틱"):
            return self.tick()
        if match := _AS_RE.fullmatch(line):
            return self.switch_user(match.group(1))
        if lowered in ("/home", "home"):
            return self.open_home()
        if lowered in ("shortcut", "/shortcut"):
            return self.shortcut()
        if (match := _FILL_RE.fullmatch(line)) and int(match.group(1)) in self.fields:
            return self.fill(int(match.group(1)), match.group(2))
        if (match := _FILL_RE.fullmatch(line)) and int(match.group(1)) in self.modal_ends:
            return self.end_modal(int(match.group(1)) == self.modal_ends[0])
        if match := _PRESS_RE.fullmatch(line):
            answer = match.group(2)
            return self.press(int(match.group(1)), answer.lower() if answer else None)
        if line.startswith("/"):
            name, _sep, rest = line.partition(" ")
            if name.lower() != "/plan":
                self.say(
                    _("Only /plan is a command here: {name} would not reach planbot.").format(
                        name=name
                    )
                )
                return "refused"
            line = rest
        return self.command(line)

    def switch_user(self, who: str) -> str:
        """Act as another user from now on (`me` is the shell's own user)."""
        if who.lower() in ("me", SHELL_USER.lower()):
            self.user_id, self.user_name = self.home_user
        else:
            self.user_id, self.user_name = who, who.lower()
        role = self.planbot.service.role_of(self.planbot.bot.actor(self.user_id, self.user_name))
        self.say(
            _("You are now {user} ({role}).").format(user=self.user_id, role=role_name(role.label))
        )
        return "ok"

    def tick(self) -> str:
        """One lifecycle sweep, as the server runs every minute."""
        report = self.planbot.lifecycle.sweep()
        self.say(_("Lifecycle sweep: {summary}").format(summary=sweep_line(report)))
        self.after()
        return "ok"

    # -- Slack requests -----------------------------------------------------------------------

    def _response_url(self) -> str:
        return f"shell://response/{next(self._counter)}"

    def _trigger_id(self) -> str:
        return f"{time.time_ns() // 1000}.{next(self._counter)}.{secrets.token_hex(16)}"

    def dispatch(
        self, body: str, content_type: str = "application/x-www-form-urlencoded"
    ) -> BoltResponse:
        """Sign a body (a form, or an event's JSON) as Slack does and hand it to the Bolt app."""
        timestamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body)
        headers: dict[str, str | Sequence[str]] = {
            "content-type": content_type,
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature or "",
        }
        return self.planbot.app.dispatch(BoltRequest(body=body, headers=headers))

    def command(self, typed: str) -> str:
        """`/plan <typed>` through Bolt; the ack body is the reply."""
        text = wire_text(typed)
        url = self._response_url()
        body = urlencode(
            {
                "token": "planbot-shell",
                "team_id": SHELL_TEAM,
                "team_domain": "planbot-shell",
                "channel_id": self.channel,
                "channel_name": "shell",
                "user_id": self.user_id,
                "user_name": self.user_name,
                "command": "/plan",
                "text": text,
                "api_app_id": "APLANBOT",
                "is_enterprise_install": "false",
                "response_url": url,
                "trigger_id": self._trigger_id(),
            }
        )
        response = self.dispatch(body)
        refused = response.status != 200 or _syntax_error(text)
        message = self._ack_message(response)
        if message is not None:
            refused = refused or is_refusal(message)
            card = _Card(self.channel, self._ts(), message, ephemeral=True)
            self.origins[url] = card
            self.show(card, None)
        refused = self.after() or refused
        return "refused" if refused else "ok"

    def press(self, number: int, answer: str | None = None) -> str:
        """Press a numbered button: its confirm dialog first, then the click through Bolt."""
        entry = self.buttons.get(number)
        if entry is None:
            missing = _("There is no button {number} on screen.").format(number=number)
            self.say(missing + self._buttons_hint())
            return "refused"
        card, button = entry
        if button.url:
            self.say(
                _("{button} opens {url} in Slack; nothing to do here.").format(
                    button=button.text, url=button.url
                )
            )
            return "ok"
        prompt = confirm_prompt(button, color=self.color, width=self.width)
        if prompt is not None and answer is None:
            if self.ask is None:
                self.say(prompt.rpartition("\n")[0])
                self.say(_("Not pressed: type `{number} y` to answer yes.").format(number=number))
                return "refused"
            answer = self.ask(prompt)
        if answer is not None and answer.strip().lower() not in _YES:
            self.say(_("{button} not pressed: nothing changed.").format(button=button.text))
            return "ok"
        url = self._response_url()
        self.origins[url] = card
        response = self.dispatch(self._click_body(card, button, url))
        refused = response.status != 200
        message = self._ack_message(response)
        if message is not None:
            refused = refused or is_refusal(message)
            self.show(_Card(card.channel, self._ts(), message, ephemeral=True), None)
        refused = self.after() or refused
        return "refused" if refused else "ok"

    def _click_body(self, card: _Card, button: Button, url: str) -> str:
        if card.view is not None:
            pressed = {
                "action_id": button.action_id,
                "block_id": button.block_id or "actions",
                "type": "button",
                "text": {"type": "plain_text", "text": button.text, "emoji": True},
                "value": button.value or "",
            }
            return self._view_action(card.view, pressed)
        now = f"{time.time():.6f}"
        action: dict[str, Any] = {
            "action_id": button.action_id,
            "block_id": button.block_id or "actions",
            "text": {"type": "plain_text", "text": button.text, "emoji": True},
            "type": "button",
            "action_ts": now,
        }
        if button.value is not None:
            action["value"] = button.value
        if button.style:
            action["style"] = button.style
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {
                "id": self.user_id,
                "username": self.user_name,
                "name": self.user_name,
                "team_id": SHELL_TEAM,
            },
            "api_app_id": "APLANBOT",
            "token": "planbot-shell",
            "container": {
                "type": "message",
                "message_ts": card.ts,
                "channel_id": card.channel,
                "is_ephemeral": card.ephemeral,
            },
            "trigger_id": self._trigger_id(),
            "team": {"id": SHELL_TEAM, "domain": "planbot-shell"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": card.channel, "name": card.channel.lower()},
            "state": {"values": {}},
            "response_url": url,
            "actions": [action],
        }
        if not card.ephemeral:
            payload["message"] = {
                "type": "message",
                "user": "UPLANBOT",
                "bot_id": "BPLANBOT",
                "ts": card.ts,
                **card.message,
            }
        return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})

    # -- views: the home tab and modals ---------------------------------------------------

    def _user(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "username": self.user_name,
            "name": self.user_name,
            "team_id": SHELL_TEAM,
        }

    def _view(self, where: str) -> dict[str, Any]:
        """The view as Slack sends it with an interaction: with its state."""
        view = self.surfaces.modal if where == "modal" else self.surfaces.homes.get(self.user_id)
        return {**(view or {}), "state": {"values": self.values[where]}}

    def _interaction(self, payload: dict[str, Any]) -> str:
        base = {
            "user": self._user(),
            "api_app_id": "APLANBOT",
            "token": "planbot-shell",
            "team": {"id": SHELL_TEAM, "domain": "planbot-shell"},
            "is_enterprise_install": False,
        }
        return urlencode({"payload": json.dumps({**base, **payload}, separators=(",", ":"))})

    def _view_action(self, where: str, action: dict[str, Any]) -> str:
        view = self._view(where)
        return self._interaction(
            {
                "type": "block_actions",
                "container": {"type": "view", "view_id": view.get("id", "")},
                "trigger_id": self._trigger_id(),
                "view": view,
                "actions": [{"action_ts": f"{time.time():.6f}", **action}],
            }
        )

    def open_home(self) -> str:
        """The home tab, as Slack asks for it: an `app_home_opened` event."""
        self.home_shown = True
        event = {
            "type": "event_callback",
            "token": "planbot-shell",
            "team_id": SHELL_TEAM,
            "api_app_id": "APLANBOT",
            "event_id": f"EvSHELL{time.time_ns()}{next(self._counter)}",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": self.user_id, "tab": "home"},
        }
        body = json.dumps(event, separators=(",", ":"))
        response = self.dispatch(body, content_type="application/json")
        if self.user_id not in self.surfaces.homes:
            self.say(_("Opening your home tab…"))
        return "ok" if response.status == 200 and not self.after() else "refused"

    def shortcut(self) -> str:
        """The global shortcut: it opens the plan operation modal."""
        body = self._interaction(
            {
                "type": "shortcut",
                "callback_id": "plan_shortcut",
                "trigger_id": self._trigger_id(),
                "action_ts": f"{time.time():.6f}",
            }
        )
        response = self.dispatch(body)
        return "ok" if response.status == 200 and not self.after() else "refused"

    def fill(self, number: int, typed: str | None) -> str:
        """Fill in a view's field: an option by number or text, the app picker by typing."""
        where, found = self.fields[number]
        if typed is None and self.ask is not None:
            if found.kind == "static_select":
                self.say(self._options_list(found.options))
            typed = self.ask(f"{found.label}: ").strip()
        if typed is None or not typed.strip():
            self.say(
                _("Type `{number} <text>` to fill in {field}.").format(
                    number=number, field=found.label
                )
            )
            return "refused"
        typed = typed.strip()
        state: dict[str, Any] | None
        action: dict[str, Any] = {"action_id": found.action_id, "block_id": found.block_id}
        if found.kind == "checkboxes":
            yes = typed.lower() in (*_YES, "x", "1")
            state = {"type": "checkboxes", "selected_options": found.options[:1] if yes else []}
        elif found.kind == "conversations_select":
            channel = typed.lstrip("#").upper()
            if not _PICKED_CHANNEL_RE.fullmatch(f"#{channel}"):
                self.say(_("`{typed}` is not a channel id (like C0123ABCD).").format(typed=typed))
                return "refused"
            state = {"type": "conversations_select", "selected_conversation": channel}
        else:
            options = found.options
            if found.kind == "external_select":
                options = self._suggestions(where, found, typed)
            chosen = self._choose(options, typed, found.kind == "external_select")
            if chosen is None:
                self.say(
                    _("No option of {field} matches `{typed}`.").format(
                        field=found.label, typed=typed
                    )
                )
                return "refused"
            state = {"type": found.kind, "selected_option": chosen}
            self.say(f"{found.label}: {option_text(chosen)}")
        action.update(state)
        self.values[where].setdefault(found.block_id, {})[found.action_id] = state
        if found.dispatch:
            response = self.dispatch(self._view_action(where, action))
            if response.status != 200:
                return "refused"
        elif where == "modal" and self.surfaces.modal is not None:
            self.surfaces.changed.append("modal")  # drawn again with the value
        return "refused" if self.after() else "ok"

    def _suggestions(self, where: str, found: Field, typed: str) -> list[dict[str, Any]]:
        """What the options handler answers to what was typed, as Slack would ask it."""
        body = self._interaction(
            {
                "type": "block_suggestion",
                "action_id": found.action_id,
                "block_id": found.block_id,
                "value": typed,
                "container": {"type": "view", "view_id": self._view(where).get("id", "")},
                "view": self._view(where),
            }
        )
        answer = self._ack_message(self.dispatch(body)) or {}
        options = [o for o in answer.get("options") or [] if isinstance(o, dict)]
        if options:
            self.say(self._options_list(options))
        return options

    def _choose(
        self, options: list[dict[str, Any]], typed: str, first: bool
    ) -> dict[str, Any] | None:
        """The option a person meant: by its number, its value or its text, else (searched)
        the first."""
        if not options:
            return None
        lowered = typed.lower()
        if typed.isascii() and typed.isdigit() and not first and 1 <= int(typed) <= len(options):
            return options[int(typed) - 1]
        for option in options:
            if lowered in (str(option.get("value", "")).lower(), option_text(option).lower()):
                return option
        for option in options:
            if option_text(option).lower().startswith(lowered):
                return option
        if first and len(options) > 1 and self.ask is not None:
            picked = self.ask(_("Which one (1-{n}, Enter for 1)? ").format(n=len(options))).strip()
            if picked.isascii() and picked.isdigit() and 1 <= int(picked) <= len(options):
                return options[int(picked) - 1]
        return options[0] if first else None

    @staticmethod
    def _options_list(options: list[dict[str, Any]]) -> str:
        return "\n".join(f"  {n}) {option_text(o)}" for n, o in enumerate(options, start=1))

    def end_modal(self, submit: bool) -> str:
        """Submit the open modal (its answer: a new view, errors, or closed), or close it."""
        modal = self.surfaces.modal
        if modal is None:
            return "refused"
        view = self._view("modal")
        if not submit:
            if modal.get("notify_on_close"):
                self.dispatch(self._interaction({"type": "view_closed", "view": view}))
            self._close_modal()
            self.say(self.rule(_("modal closed")))
            return "refused" if self.after() else "ok"
        response = self.dispatch(
            self._interaction(
                {"type": "view_submission", "trigger_id": self._trigger_id(), "view": view}
            )
        )
        answer = self._ack_message(response) or {}
        refused = response.status != 200
        if answer.get("response_action") == "errors":
            self.errors = {str(k): str(v) for k, v in (answer.get("errors") or {}).items()}
            self.surfaces.changed.append("modal")
            refused = True
        elif answer.get("response_action") in ("update", "push") and answer.get("view"):
            self.values["modal"], self.errors = {}, {}
            self.surfaces.replace(answer["view"])
        else:
            self._close_modal()
            self.say(self.rule(_("modal closed")))
        refused = self.after() or refused
        return "refused" if refused else "ok"

    def _close_modal(self) -> None:
        self.surfaces.replace(None)
        self.values["modal"], self.errors = {}, {}
        self._forget_view("modal")

    def _forget_view(self, where: str) -> None:
        for number in [n for n, (w, _field) in self.fields.items() if w == where]:
            del self.fields[number]
        for number in [n for n, (card, _button) in self.buttons.items() if card.view == where]:
            del self.buttons[number]
        if where == "modal":
            self.modal_ends = (None, None)

    def draw_views(self) -> None:
        """Draw the modal and home tab that changed."""
        for changed in self.surfaces.take():
            if changed == "modal" and self.surfaces.modal is not None:
                self._draw("modal", self.surfaces.modal, _("modal"))
            elif changed == self.user_id and self.home_shown:
                self._draw("home", self.surfaces.homes[changed], _("your home tab"))
            elif changed == self.user_id:  # kept up to date, drawn when asked for
                self.say(self._dim(_("(your home tab changed: /home shows it)")))

    def _draw(self, where: str, view: dict[str, Any], heading: str) -> None:
        # the same view drawn again (a field filled in) keeps its numbers
        key = (view.get("id"), view.get("hash"))
        known = self.drawn.get(where)
        start = known[1] if known and known[0] == key else self.next_number
        self.drawn[where] = (key, start)
        self._forget_view(where)
        blocks = {str(b.get("block_id")) for b in view.get("blocks") or [] if isinstance(b, dict)}
        self.values[where] = {k: v for k, v in self.values[where].items() if k in blocks}
        drawing = draw_view(
            view,
            self.values[where],
            color=self.color,
            width=self.width,
            start=start,
            errors=self.errors if where == "modal" else None,
        )
        card = _Card(self.channel, self._ts(), {}, ephemeral=True, view=where)
        card.buttons = drawing.buttons
        for button in drawing.buttons:
            self.buttons[button.number] = (card, button)
        for item in drawing.fields:
            self.fields[item.number] = (where, item)
        if where == "modal":
            self.modal_ends = (drawing.submit, drawing.close)
        numbers = [b.number for b in drawing.buttons] + [f.number for f in drawing.fields]
        numbers += [n for n in self.modal_ends if n is not None and where == "modal"]
        self.next_number = max([self.next_number - 1, *numbers]) + 1
        self.out.write("\n" + self.rule(heading) + "\n" + drawing.text + "\n")
        self.out.flush()

    @staticmethod
    def _ack_message(response: BoltResponse) -> dict[str, Any] | None:
        body = response.body or ""
        if response.status != 200:  # Bolt refused the request itself (it never should here)
            return {"text": f"Bolt answered {response.status} {body}".strip(), "mrkdwn": False}
        if not body.strip():
            return None
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        return message if isinstance(message, dict) else {"text": body, "mrkdwn": False}

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._counter):06d}"

    # -- what came back besides the ack -----------------------------------------------------------

    def after(self) -> bool:
        """Draw the click replies, deliver the outbox and draw its messages and replies; True if
        refused."""
        refused = self._replies()
        self.planbot.dispatcher.deliver_due()
        for posted in self.notifier.take():
            existing = self.cards_by_ts.get((posted.channel, posted.ts))
            if posted.updated and existing is not None:
                self.forget(existing)
                existing.message = posted.message
                card = existing
            else:
                card = _Card(posted.channel, posted.ts, posted.message, ephemeral=False)
            self.cards_by_ts[(card.channel, card.ts)] = card
            self.show(card, self._heading(card, updated=posted.updated))
        refused = self._replies() or refused
        self.draw_views()
        return refused

    def _replies(self) -> bool:
        """Draw what was sent to reply URLs (replacing the card each answers); True if one
        was a refusal."""
        refused = False
        for url, message in self.responder.take():
            refused = refused or is_refusal(message)
            origin = self.origins.get(url or "")
            if message.get("delete_original") and origin is not None:
                self.forget(origin)
                self.say(self.rule(_("card deleted")))
            elif message.get("replace_original") and origin is not None:
                self.forget(origin)
                origin.message = message
                self.show(origin, self._heading(origin, updated=True))
            else:
                channel = origin.channel if origin else self.channel
                self.show(_Card(channel, self._ts(), message, ephemeral=True), None)
        return refused

    def _heading(self, card: _Card, *, updated: bool) -> str:
        if card.ephemeral:
            return _("your card, updated") if updated else _("only visible to you")
        labels = []
        settings = self.planbot.settings
        if card.channel == settings.audit_channel:
            # Translators: a channel heading's tag: the audit channel
            labels.append(_("audit"))
        if card.channel == settings.approvals_channel:
            # Translators: a channel heading's tag: the approvals channel
            labels.append(_("approvals"))
        if card.channel == self.channel:
            labels.append(_("this channel"))
        if updated:
            labels.append(_("message updated"))
        label = f" ({', '.join(labels)})" if labels else ""
        return f"#{card.channel}{label}"

    # -- drawing ------------------------------------------------------------------------------

    def forget(self, card: _Card) -> None:
        """The card's buttons can no longer be pressed (it was replaced or deleted)."""
        for button in card.buttons:
            self.buttons.pop(button.number, None)
        card.buttons = []

    def show(self, card: _Card, heading: str | None) -> None:
        """Draw a message, numbering its buttons after every button drawn before."""
        rendered = render_message(
            card.message, color=self.color, width=self.width, start=self.next_number
        )
        card.buttons = list(rendered.buttons)
        for button in rendered.buttons:
            self.buttons[button.number] = (card, button)
            self.next_number = max(self.next_number, button.number + 1)
        self.out.write("\n")
        if heading is not None:
            self.out.write(self.rule(heading) + "\n")
        self.out.write(rendered.text + "\n")
        if rendered.buttons and self.ask is not None and not self.hinted:
            self.hinted = True
            first = rendered.buttons[0]
            hint = _("(type a number to press a button: {number} for {button})").format(
                number=first.number, button=first.text
            )
            self.out.write(self._dim(hint) + "\n")
        self.out.flush()

    def rule(self, text: str) -> str:
        """A channel heading such as `── #CAUDIT (audit) ──`."""
        return self._dim(f"── {text} ──")

    def say(self, text: str) -> None:
        """A line from the shell itself (not from the bot)."""
        self.out.write(text + "\n")
        self.out.flush()

    def _dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[22m" if self.color else text

    def _buttons_hint(self) -> str:
        if not self.buttons:
            return ""
        shown = ", ".join(f"{n} {b.text}" for n, (_c, b) in sorted(self.buttons.items())[-6:])
        return " " + _("Buttons you can press: {buttons}.").format(buttons=shown)


# --------------------------------------------------------------------------------------------------
# Running it


def split_commands(text: str) -> list[str]:
    """Lines of a `-c` script: newlines and `;` separate commands (not inside double quotes)."""
    commands: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch in '"“”':
            quoted = not quoted
        if ch == "\n" or (ch == ";" and not quoted):
            commands.append("".join(current))
            current, quoted = [], False
            continue
        current.append(ch)
    commands.append("".join(current))
    return [c.strip() for c in commands if c.strip()]


def shell_settings(settings: Settings) -> Settings:
    """The settings the shell runs with: no Slack, an audit channel, you as an admin."""
    return dataclasses.replace(
        settings,
        api_url=SHELL_API_URL,
        bot_token=None,
        signing_secret=None,
        app_token=None,
        admins=settings.admins or frozenset({SHELL_USER}),
        audit_channel=settings.audit_channel or SHELL_AUDIT_CHANNEL,
        webhook_url=None,
        webhook_secret=None,
    )


def _use_color(color: bool, out: TextIO, env: Mapping[str, str]) -> bool:
    if not color or env.get("NO_COLOR"):
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _width(out: TextIO) -> int:
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = shutil.get_terminal_size((80, 24)).columns
    return max(40, min(columns or 80, 100))


@dataclass
class _Readline:
    """Line editing and history, when the terminal has them."""

    path: Path
    module: Any = None

    def start(self, color: bool, words: Callable[[], list[str]]) -> None:
        try:
            import readline
        except ImportError:  # not every Python has it; plain input() still works
            return
        self.module = readline
        if not color:  # bracketed paste writes escape codes around the prompt
            readline.parse_and_bind("set enable-bracketed-paste off")
        readline.parse_and_bind("tab: complete")
        readline.set_completer_delims(" \t\n")
        candidates: list[str] = []

        def complete(prefix: str, state: int) -> str | None:
            if state == 0:
                candidates[:] = [w for w in words() if w.startswith(prefix)]
            return candidates[state] if state < len(candidates) else None

        readline.set_completer(complete)
        readline.set_history_length(1000)
        with contextlib.suppress(OSError, UnicodeDecodeError):
            readline.read_history_file(self.path)

    def forget_last(self) -> None:
        if self.module is None:
            return
        length = self.module.get_current_history_length()
        if length:
            self.module.remove_history_item(length - 1)

    def save(self) -> None:
        if self.module is None:
            return
        with contextlib.suppress(OSError):
            self.module.write_history_file(self.path)


def _completions(planbot: Planbot, actor: Actor) -> Callable[[], list[str]]:
    cache: list[str] = []

    def words() -> list[str]:
        if not cache:
            cache.extend(["/plan", *grammar.SUBCOMMANDS, "help", "quit", "tick", "as"])
            try:
                page = planbot.service.list_apps(actor=actor, per_page=200)
                cache.extend(app.name for app in page.apps if " " not in app.name)
            except PlanError:
                pass
        return cache

    return words


def _banner(session: ShellSession, seeded: int, database_url: str) -> str:
    planbot = session.planbot
    role = planbot.service.role_of(planbot.bot.actor(session.user_id, session.user_name))
    if seeded:
        database = _("Database: {url}, seeded with {n} demo apps:").format(
            url=database_url, n=seeded
        )
        demos = [
            "  {name} {rest}".format(
                name=pad(app.name, 14),
                rest=_("{plan}, {status}: try {shows}").format(
                    plan=plan_name(app.plan), status=status_name(app.status), shows=_(app.shows)
                ),
            )
            for app in DEMO_APPS
        ]
    else:
        database = _("Database: {url}").format(url=database_url)
        demos = [_("Demo apps: {apps}").format(apps=", ".join(app.name for app in DEMO_APPS))]
    lines = [
        _("planbot shell: the real bot and core, with this terminal standing in for Slack."),
        _("You are {user} ({name}), {role}, in #{channel}; audit messages go to #{audit}.").format(
            user=session.user_id,
            name=session.user_name,
            role=role_name(role.label),
            channel=session.channel,
            audit=planbot.settings.audit_channel,
        ),
        database,
        *demos,
        _("Try: /plan status demo-chat · /plan upgrade demo-chat premium · help · quit"),
    ]
    return session._dim("\n".join(lines)) if session.color else "\n".join(lines)


def _interactive(session: ShellSession, tty: bool, history: _Readline) -> int:
    prompt = "planbot> "
    if session.color:  # \001 and \002 tell readline the codes take no room
        prompt = "\001\x1b[1m\002planbot>\001\x1b[22m\002 "
    while True:
        try:
            line = input(prompt if tty else "")
        except EOFError:
            if tty:
                session.say("")
            return 0
        except KeyboardInterrupt:
            session.say("")
            continue
        try:
            if session.run_line(line) == "quit":
                return 0
        except KeyboardInterrupt:
            session.say("\n" + _("(interrupted)"))
        finally:
            history.save()


def _asker(tty: bool, out: TextIO, history: _Readline) -> Ask:
    def ask(question: str) -> str:
        head, _sep, last = question.rpartition("\n")
        if head:
            out.write(head + "\n")
            out.flush()
        try:
            answer = input(last if tty else "")
        except (EOFError, KeyboardInterrupt):  # no answer: a no, or a field left empty
            out.write("\n")
            return ""
        history.forget_last()  # a y/n answer is not a command to recall
        return answer

    return ask


def run_shell(
    settings: Settings,
    *,
    one_shot: str | None = None,
    user: str | None = None,
    color: bool = True,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    lang: str | None = None,
) -> int:
    """Run the shell (interactive, or the `-c` commands); returns the exit status.

    One-shot mode exits 1 when a command was refused (see the module docstring), else 0. The
    shell speaks `lang` (English when None): its own lines, and what the bot says to its person
    and in its channels.
    """
    with speaking(lang or ENGLISH):
        return _run_shell(settings, one_shot=one_shot, user=user, color=color, env=env, out=out)


def _run_shell(
    settings: Settings,
    *,
    one_shot: str | None,
    user: str | None,
    color: bool,
    env: Mapping[str, str] | None,
    out: TextIO | None,
) -> int:
    env = os.environ if env is None else env
    out = out or sys.stdout
    if "PLANBOT_LOG_LEVEL" not in env:  # the terminal is the conversation: only real trouble
        logging.getLogger().setLevel(logging.WARNING)
    user_id = (user or SHELL_USER).strip()
    if not user_id or any(ch.isspace() for ch in user_id):
        print(
            _("planbot shell: --as needs a Slack user id, not {user}").format(user=repr(user)),
            file=sys.stderr,
        )
        return 2
    user_name = env.get("USER") or env.get("USERNAME") or "you"
    if user_id != SHELL_USER:
        user_name = user_id.lower()
    tty = sys.stdin.isatty() and one_shot is None
    secret = secrets.token_hex(32)
    config = shell_settings(settings)
    # The outbox renders as Slack would, then keeps the message for the terminal.
    core_config = config.core_config()
    words = Words(core_config.catalog, core_config.billing_tz)
    renderer = SlackNotifier(WebClient(base_url=SHELL_API_URL), words)
    notifier = ShellNotifier(renderer)
    responder = ShellResponder()
    history = _Readline(Path(env.get("HOME") or Path.home()) / HISTORY_FILE)
    surfaces = ShellSurfaces()
    planbot = build(
        config,
        signing_secret=secret,
        token=None,
        notifier=notifier,
        responder=responder,
        replier=ShellReplier(words, responder),
        surfaces=surfaces,
    )
    renderer.home = planbot.home  # home tabs are drawn into the shell's surfaces
    try:
        seeded = seed_demo_apps(planbot)
        # Everything loaded so far (SQLAlchemy, pydantic, Bolt: some 100k objects) lives until the
        # process ends: keep the cyclic collector from scanning it again, during the session and
        # in the interpreter's teardown, which otherwise costs a good part of a second.
        gc.freeze()
        session = ShellSession(
            planbot,
            signing_secret=secret,
            notifier=notifier,
            responder=responder,
            out=out,
            user_id=user_id,
            user_name=user_name,
            color=_use_color(color, out, env),
            width=_width(out),
            ask=None if one_shot is not None else _asker(tty, out, history),
            surfaces=surfaces,
        )
        if one_shot is not None:
            refused = False
            for line in split_commands(one_shot):
                outcome = session.run_line(line)
                refused = refused or outcome == "refused"
                if outcome == "quit":
                    break
            return 1 if refused else 0
        if tty:
            history.start(
                session.color, _completions(planbot, planbot.bot.actor(user_id, user_name))
            )
            session.say(_banner(session, seeded, config.database_url))
        return _interactive(session, tty, history)
    finally:
        planbot.close()
