"""The `/plan` command grammar: the text of a slash command in, a `Command` out.

Pure: no I/O, no Slack calls, no clock. Every decision about apps, plans, add-ons and access is the
core's; this module only checks the shape of what was typed and says clearly what is wrong with it.

Input is the slash command's `text` as Slack sends it: `&`, `<`, `>` typed by the person arrive as
`&amp;`, `&lt;`, `&gt;`, and mentions picked from the autocomplete arrive as control sequences
(`<@U0123ABC|alice>`, `<!subteam^S0123ABC|@ops>`, `<#C0123ABC|team-chat>`) when the command is
registered with "escape channels, users, and links" (`should_escape: true` in the manifest).
`parse` decodes the three entities first, so every string in a `Command` is plain text, the way the
person meant it. `unparse` is its inverse: the command in Slack's wire form again.

Errors (one class, written for the person in Slack, in mrkdwn, with user text escaped):

    ValueError
     └── CommandSyntaxError   what was wrong, and the usage of that subcommand
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from bot.i18n import N_, _, language, number
from bot.kit import escape
from bot.words import catalog_text, refusal_text
from core import ROLE_FOR, InvalidAppName, Operation, Plan, Refusal, Role, app_name

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "DEFAULT_USAGE_DAYS",
    "LANGUAGE_WORDS",
    "MAX_HISTORY_LIMIT",
    "MAX_PAGE",
    "MAX_TEXT_LENGTH",
    "MAX_USAGE_DAYS",
    "PAID_PLANS",
    "ROLES",
    "SUBCOMMANDS",
    "AccessGrant",
    "AccessList",
    "AccessRevoke",
    "AddonHelp",
    "AppUsage",
    "Bill",
    "Command",
    "CommandSyntaxError",
    "Configure",
    "Create",
    "Disable",
    "Enable",
    "Extend",
    "Help",
    "History",
    "Lang",
    "ListApps",
    "Migrate",
    "Principal",
    "Status",
    "Upgrade",
    "Usage",
    "help_text",
    "parse",
    "qwerty",
    "resolve_subcommand",
    "unparse",
]

MAX_TEXT_LENGTH = 2000
"""Longest command text accepted (Slack itself caps slash-command text at a few thousand)."""

PAID_PLANS: tuple[str, ...] = tuple(plan.value for plan in Plan if plan.paid)
"""The plans an app can be upgraded to, or switched between by `config edition=` (the core's)."""

ROLES: tuple[str, ...] = tuple(role.label for role in Role if role > Role.NOBODY)
"""Roles from least to most powerful; each includes the ones before it (the core's)."""

DEFAULT_HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = 100
DEFAULT_USAGE_DAYS = 14
MAX_USAGE_DAYS = 90
MAX_PAGE = 10_000

_ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
_QUOTES = '"“”'  # straight and Slack's "smart" quotes; any of them opens or closes a quoted part
_SINGLE_QUOTES = "'‘’"  # around a whole word only: inside a word they are apostrophes
_HELP_WORDS = frozenset({"help", "--help", "-h", "?", "도움말", "도움"})
_DEVELOPER_WORDS = frozenset({"developer", "dev", "free", "development", "개발", "개발버전"})
_EDITION_KEYS = frozenset({"edition", "plan"})
_SHOWN_WORD_MAX = 40

_ENTITY_RE = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_BARE_WORD_RE = re.compile(r"[\w.\-]+")
_NUMBER_RE = re.compile(r"[0-9]{1,9}")
_APP_ID_RE = re.compile(r"[0-9]{1,20}")
_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{1,2})")
_KEY_RE = re.compile(r"[a-z][a-z0-9_.\-]{0,63}")
_USER_MENTION_RE = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")
_GROUP_MENTION_RE = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL_MENTION_RE = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL_MENTION_RE = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_RAW_USER_RE = re.compile(r"[UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{6,}")
_RAW_GROUP_RE = re.compile(r"S(?=[A-Z0-9]*[0-9])[A-Z0-9]{6,}")
_RAW_CHANNEL_RE = re.compile(r"[CG](?=[A-Z0-9]*[0-9])[A-Z0-9]{6,}")


def _unescape_slack(text: str) -> str:
    """Decode Slack's three entities in one pass (so `&amp;lt;` becomes `&lt;`, not `<`)."""
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group(1)], text)


# --------------------------------------------------------------------------------------------------
# Usage table


@dataclass(frozen=True)
class Usage:
    """How to use one subcommand: plain-text syntax (one form per line) and what it does, whose
    needed role the core decides (`core.ROLE_FOR[action]`). `summary` and `details` are English,
    marked for translation (`_` where they are shown); `korean`: the subcommand's Korean words."""

    name: str
    syntax: str
    summary: str
    action: str  # "view", "access", or an Operation's value
    aliases: tuple[str, ...] = ()
    example: str = ""
    details: str = ""
    korean: tuple[str, ...] = ()

    @property
    def role(self) -> str:
        """The role the subcommand needs: the core's rule for its action."""
        return ROLE_FOR[self.action].label

    @property
    def forms(self) -> tuple[str, ...]:
        """The syntax lines (most subcommands have one; `access` has three)."""
        return tuple(self.syntax.splitlines())

    def said(self) -> tuple[str, str]:
        """The summary and the details in the current language."""
        details = _(self.details).format(**_LIMITS) if self.details else ""
        return _(self.summary), details


_LIMITS = {
    "default_limit": DEFAULT_HISTORY_LIMIT,
    "max_limit": MAX_HISTORY_LIMIT,
    "default_days": DEFAULT_USAGE_DAYS,
    "max_days": MAX_USAGE_DAYS,
}

SUBCOMMANDS: dict[str, Usage] = {
    usage.name: usage
    for usage in (
        Usage(
            "help",
            "/plan help [subcommand]",
            N_("Show what you can do, or how to use one subcommand."),
            "view",
            aliases=("?", "-h", "--help"),
            example="/plan help upgrade",
            korean=("도움말", "도움"),
        ),
        Usage(
            "list",
            "/plan list [filter] [page=N]",
            N_("List the apps, optionally only those matching a word (name, id, plan or status)."),
            "view",
            aliases=("ls",),
            example="/plan list premium",
            details=N_("Long lists come in pages: add `page=2` for the next one."),
            korean=("목록",),
        ),
        Usage(
            "status",
            "/plan status <app>",
            N_("Show an app's plan, status, billing mode, owner and key dates."),
            "view",
            aliases=("info", "show"),
            example="/plan status 1400123456",
            details=N_("Also shows whether this month's configuration change has been used."),
            korean=("상태", "정보"),
        ),
        Usage(
            "history",
            "/plan history <app> [limit]",
            N_("Show an app's plan changes, newest first."),
            "view",
            aliases=("log",),
            example="/plan history demo-chat 50",
            details=N_(
                "Shows the last {default_limit} changes unless you give a limit (1 to {max_limit})."
            ),
            korean=("이력", "기록"),
        ),
        Usage(
            "bill",
            "/plan bill <app> [YYYY-MM]",
            N_(
                "Show an app's bill for a month: a line per run of days charged alike, and the "
                "total."
            ),
            "view",
            aliases=("billing",),
            example="/plan bill demo-chat 2025-03",
            details=N_(
                "Without a month, shows this month: the charges to date and the projection to "
                "the month's end."
            ),
            korean=("청구", "청구서", "명세서"),
        ),
        Usage(
            "usage",
            "/plan usage <app> [days]",
            N_(
                "Show an app's daily figures from the provider: active users, logins, peak "
                "online, registered users, groups, messages."
            ),
            "view",
            aliases=("stats",),
            example="/plan usage demo-chat 30",
            details=N_(
                "Shows the last {default_days} days unless you give a number of days "
                "(1 to {max_days}). The figures are the provider's, fetched once a day."
            ),
            korean=("사용량",),
        ),
        Usage(
            "upgrade",
            "/plan upgrade <app> <standard|premium>",
            N_("Upgrade a developer app to a paid plan."),
            Operation.UPGRADE,
            example="/plan upgrade 1400123456 premium",
            details=N_(
                "Takes effect at once and is charged by the day for the rest of the month. "
                "There is no way back to the developer plan: to use it again, create a new app."
            ),
            korean=("업그레이드",),
        ),
        Usage(
            "config",
            "/plan config <app> [edition=standard|premium] [<addon>=<value>...]",
            N_("Change a paid app's edition and/or add-ons (once per calendar month)."),
            Operation.CONFIGURE,
            aliases=("configure",),
            example="/plan config demo-chat edition=premium",
            details=N_(
                "Give at least one change: the edition, and any add-on as `name=value` (the "
                "add-ons and their values are listed below). You see the cost before you confirm."
            ),
            korean=("구성", "설정", "기능구성"),
        ),
        Usage(
            "extend",
            "/plan extend <app>",
            N_("Extend a developer app's validity by one month (and reactivate it if suspended)."),
            Operation.EXTEND,
            example="/plan extend demo-dev",
            korean=("연장",),
        ),
        Usage(
            "create",
            "/plan create <name>",
            N_("Create a new app on the developer plan."),
            Operation.CREATE,
            aliases=("new",),
            example="/plan create Support Chat",
            details=N_(
                "The app belongs to the channel you create it in: run it in your team's channel, "
                "with planbot invited there. A name can't be only digits."
            ),
            korean=("생성", "만들기"),
        ),
        Usage(
            "disable",
            "/plan disable <app>",
            N_("Disable a paid app: its service stops at once, and it is purged after 90 days."),
            Operation.DISABLE,
            example="/plan disable demo-chat",
            korean=("비활성화",),
        ),
        Usage(
            "enable",
            "/plan enable <app>",
            N_("Re-enable a disabled app within 90 days, with its plan and configuration."),
            Operation.ENABLE,
            aliases=("reenable", "re-enable"),
            example="/plan enable demo-old",
            korean=("활성화", "재활성화"),
        ),
        Usage(
            "migrate",
            "/plan migrate <app>",
            N_("Move a legacy-billing app to the current billing mode (one-way)."),
            Operation.MIGRATE,
            example="/plan migrate demo-legacy",
            details=N_("Once migrated, the legacy billing mode cannot be restored."),
            korean=("전환", "과금전환"),
        ),
        Usage(
            "access",
            "/plan access list\n"
            "/plan access grant <@user|@group> <viewer|operator|admin> [#team-channel]\n"
            "/plan access revoke <@user|@group> <viewer|operator|admin> [#team-channel]",
            N_("See and manage who may do what."),
            "access",
            example="/plan access grant @alice operator #team-chat",
            details=N_(
                "Pick the person, group and channel from Slack's autocomplete as you type `@` or "
                "`#`. Without a team channel the grant covers every app; with one, only the apps "
                "that team owns."
            ),
            korean=("권한",),
        ),
        Usage(
            "lang",
            "/plan lang [ko|en|auto]",
            N_("Choose the language planbot answers you in: Korean, English, or auto."),
            "view",
            aliases=("language",),
            example="/plan lang ko",
            details=N_(
                "`auto` follows the language of your Slack account. Without a language, shows "
                "the one you have now. Channel messages keep the workspace's language."
            ),
            korean=("언어",),
        ),
    )
}
"""Every subcommand's usage, keyed by its canonical name, in the order help lists them."""

_ALIASES: dict[str, str] = {
    word: usage.name
    for usage in SUBCOMMANDS.values()
    for word in (usage.name, *usage.aliases, *usage.korean)
}
_ACCESS_ACTIONS = {"list": "list", "ls": "list", "grant": "grant", "add": "grant"}
_ACCESS_ACTIONS |= {"revoke": "revoke", "remove": "revoke", "rm": "revoke"}
_ACCESS_ACTIONS |= {"목록": "list", "부여": "grant", "추가": "grant"}
_ACCESS_ACTIONS |= {"회수": "revoke", "제거": "revoke", "삭제": "revoke"}
#: the languages `/plan lang` takes, by the words for them
LANGUAGE_WORDS = {"ko": "ko", "en": "en", "auto": "auto", "korean": "ko", "english": "en"}
LANGUAGE_WORDS |= {"한국어": "ko", "한글": "ko", "영어": "en", "자동": "auto"}


@dataclass(frozen=True)
class AddonHelp:
    """An add-on as help lists it: its name, label, default value, and each value's price."""

    name: str
    label: str
    default: str
    options: tuple[tuple[str, str], ...]  # (value, price as shown)


def _keyword(word: str) -> str:
    """A word as a keyword: trimmed, lower case, Hangul composed (as macOS may not send it)."""
    word = word.strip().lower()
    return word if word.isascii() else unicodedata.normalize("NFC", word)


def resolve_subcommand(word: str) -> str | None:
    """The canonical subcommand for a word or alias, English or Korean (case-insensitive), or
    None."""
    return _ALIASES.get(_keyword(word))


def help_text(
    allowed_roles: set[str] | None = None,
    topic: str | None = None,
    *,
    addons: Sequence[AddonHelp] = (),
) -> str:
    """Help in mrkdwn, in the current language: the subcommands those roles allow (all when
    None), or one topic in detail.

    Roles are ranked (`viewer` < `operator` < `admin`): holding a role allows the subcommands of
    that role and of the roles below it. Unknown role names are ignored. `addons`: the catalog's
    add-ons, listed with their values and prices by the help of `config`.
    """
    if allowed_roles is None:
        rank = len(ROLES) - 1
    else:
        rank = max((_ROLE_RANK[role] for role in allowed_roles if role in _ROLE_RANK), default=-1)
    if topic is None:
        return _overview(rank)
    name = resolve_subcommand(topic)
    if name is not None:
        text = _topic_help(SUBCOMMANDS[name], rank)
        if name == "config" and addons:
            text += "\n" + _addon_lines(addons)
        return text
    near = _nearest(topic, list(_ALIASES))
    if near:
        problem = _("There is no subcommand {word}. Did you mean `{subcommand}`?").format(
            word=_show(topic), subcommand=_ALIASES[near]
        )
    else:
        problem = _("There is no subcommand {word}.").format(word=_show(topic))
    return f"{problem}\n\n{_overview(rank)}"


def _app_note() -> str:
    return _(
        "`&lt;app&gt;` is an app id or its name (any case), in quotes if it has spaces: "
        "`\"Support Chat\"` or `'Support Chat'`."
    )


_SECTIONS = (("viewer", N_("*See*")), ("operator", N_("*Change*")), ("admin", N_("*Administer*")))


def _korean_words(usage: Usage) -> str:
    """The subcommand's Korean words, for the Korean help (nothing in other languages)."""
    if language() != "ko" or not usage.korean:
        return ""
    return " (" + ", ".join(f"`{word}`" for word in usage.korean) + ")"


def _overview(rank: int) -> str:
    if rank < 0:
        return _(
            "You can't use `/plan` yet: you have no planbot role. Ask a planbot admin to grant "
            "you one, e.g. `/plan access grant @you viewer`."
        )
    lines = [_("*planbot* runs plan operations on your IM apps.") + " " + _app_note()]
    for role, title in _SECTIONS:
        if _ROLE_RANK[role] > rank:
            continue
        lines += ["", _(title)]
        for usage in SUBCOMMANDS.values():
            if usage.role != role:
                continue
            forms = usage.forms
            summary = escape(_(usage.summary))
            lines.append(f"• `{escape(forms[0])}`{_korean_words(usage)}: {summary}")
            lines.extend(f"• `{escape(form)}`" for form in forms[1:])
    lines += [
        "",
        _(
            "Every change shows a preview (what changes, what it costs) and waits for your "
            "Confirm. Type `/plan help &lt;subcommand&gt;` for details and an example."
        ),
    ]
    if language() == "ko":
        lines.append(
            _(
                "Command words may be typed in Korean, e.g. `/plan 업그레이드 1400123456 프리미엄`; "
                "plans: `개발`, `스탠다드` (`표준`), `프리미엄`."
            )
        )
    return "\n".join(lines)


def _addon_lines(addons: Sequence[AddonHelp]) -> str:
    """Each add-on with its values and their prices a month (the default marked)."""
    lines = [_("*Add-ons* (`name=value`, price a month):")]
    for addon in addons:
        values = ", ".join(
            (
                _("`{value}` {price} (default)")
                if value == addon.default
                else _("`{value}` {price}")
            ).format(value=escape(value), price=escape(price))
            for value, price in addon.options
        )
        lines.append(f"• `{escape(addon.name)}` ({escape(catalog_text(addon.label))}): {values}")
    first = next((a for a in addons if len(a.options) > 1), None)
    if first is not None:
        value = next(v for v, _price in first.options if v != first.default)
        example = f"/plan config demo-chat {escape(first.name)}={escape(value)}"
        lines.append(_("Example: `{example}`").format(example=example))
    return "\n".join(lines)


def _topic_help(usage: Usage, rank: int) -> str:
    summary, details = usage.said()
    lines = [f"*/plan {usage.name}*: {escape(summary)}", _usage_lines(usage.name)]
    if "<app>" in usage.syntax:
        lines.append(_app_note())
    if details:
        lines.append(escape(details))
    if usage.example:
        lines.append(_("Example: `{example}`").format(example=escape(usage.example)))
    written = [*usage.aliases, *(usage.korean if language() == "ko" else ())]
    if written:
        lines.append(
            _("Also written: {words}").format(words=", ".join(f"`{alias}`" for alias in written))
        )
    if _ROLE_RANK[usage.role] > rank:
        needed = _("Needs the *{role}* role. You don't have it: ask a planbot admin.")
    else:
        needed = _("Needs the *{role}* role.")
    lines.append(needed.format(role=usage.role))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True)
class Principal:
    """Who a grant is for: a Slack user or user group, by id (the label is for display only)."""

    kind: Literal["user", "group"]
    id: str
    label: str

    def mention(self) -> str:
        """The Slack control sequence that mentions this principal (`<@U..>`, `<!subteam^S..>`)."""
        return f"<@{self.id}>" if self.kind == "user" else f"<!subteam^{self.id}>"

    def to_text(self) -> str:
        """The mention as Slack sends it in command text, label included."""
        labelled = bool(self.label) and self.label != self.id
        label = escape(self.label)
        if self.kind == "user":
            return f"<@{self.id}|{label}>" if labelled else f"<@{self.id}>"
        return f"<!subteam^{self.id}|@{label}>" if labelled else f"<!subteam^{self.id}>"


@dataclass(frozen=True)
class Command:
    """A parsed `/plan` command; each subcommand is a frozen subclass."""

    subcommand: ClassVar[str] = ""

    def to_text(self) -> str:
        """The command text as Slack would send it, so that `parse(c.to_text()) == c`."""
        return " ".join([self.subcommand, *self._arguments()])

    def _arguments(self) -> list[str]:
        return []


@dataclass(frozen=True)
class Help(Command):
    """`/plan help [subcommand]`; `topic` is a canonical subcommand name or None."""

    topic: str | None = None
    subcommand: ClassVar[str] = "help"

    def _arguments(self) -> list[str]:
        return [] if self.topic is None else [self.topic]


@dataclass(frozen=True)
class ListApps(Command):
    """`/plan list [filter] [page=N]`."""

    filter: str | None = None
    page: int = 1
    subcommand: ClassVar[str] = "list"

    def _arguments(self) -> list[str]:
        args = [] if self.filter is None else [_quote(self.filter)]
        return args if self.page == 1 else [*args, f"page={self.page}"]


@dataclass(frozen=True)
class _AppCommand(Command):
    """A subcommand whose only argument is an app (id or exact name)."""

    app: str

    def _arguments(self) -> list[str]:
        return [_quote(self.app)]


@dataclass(frozen=True)
class Status(_AppCommand):
    """`/plan status <app>`."""

    subcommand: ClassVar[str] = "status"


@dataclass(frozen=True)
class Extend(_AppCommand):
    """`/plan extend <app>`."""

    subcommand: ClassVar[str] = "extend"


@dataclass(frozen=True)
class Disable(_AppCommand):
    """`/plan disable <app>`."""

    subcommand: ClassVar[str] = "disable"


@dataclass(frozen=True)
class Enable(_AppCommand):
    """`/plan enable <app>`."""

    subcommand: ClassVar[str] = "enable"


@dataclass(frozen=True)
class Migrate(_AppCommand):
    """`/plan migrate <app>`."""

    subcommand: ClassVar[str] = "migrate"


@dataclass(frozen=True)
class Upgrade(Command):
    """`/plan upgrade <app> <standard|premium>`."""

    app: str
    plan: str
    subcommand: ClassVar[str] = "upgrade"

    def _arguments(self) -> list[str]:
        return [_quote(self.app), self.plan]


@dataclass(frozen=True)
class Configure(Command):
    """`/plan config <app> [edition=...] [<addon>=<value>...]`; addons keep their typed order."""

    app: str
    edition: str | None = None
    addons: tuple[tuple[str, str], ...] = ()
    subcommand: ClassVar[str] = "config"

    def _arguments(self) -> list[str]:
        args = [_quote(self.app)]
        if self.edition is not None:
            args.append(f"edition={self.edition}")
        args.extend(f"{key}={_quote(value)}" for key, value in self.addons)
        return args


@dataclass(frozen=True)
class Create(Command):
    """`/plan create <name>`."""

    name: str
    subcommand: ClassVar[str] = "create"

    def _arguments(self) -> list[str]:
        return [_quote(self.name)]


@dataclass(frozen=True)
class History(Command):
    """`/plan history <app> [limit]`."""

    app: str
    limit: int = DEFAULT_HISTORY_LIMIT
    subcommand: ClassVar[str] = "history"

    def _arguments(self) -> list[str]:
        args = [_quote(self.app)]
        return args if self.limit == DEFAULT_HISTORY_LIMIT else [*args, str(self.limit)]


@dataclass(frozen=True)
class Bill(Command):
    """`/plan bill <app> [YYYY-MM]`; `month` is `(year, month)` or None for the current month."""

    app: str
    month: tuple[int, int] | None = None
    subcommand: ClassVar[str] = "bill"

    def _arguments(self) -> list[str]:
        args = [_quote(self.app)]
        if self.month is not None:
            args.append(f"{self.month[0]:04d}-{self.month[1]:02d}")
        return args


@dataclass(frozen=True)
class AppUsage(Command):
    """`/plan usage <app> [days]`."""

    app: str
    days: int = DEFAULT_USAGE_DAYS
    subcommand: ClassVar[str] = "usage"

    def _arguments(self) -> list[str]:
        args = [_quote(self.app)]
        return args if self.days == DEFAULT_USAGE_DAYS else [*args, str(self.days)]


@dataclass(frozen=True)
class Lang(Command):
    """`/plan lang [ko|en|auto]`; `language` is None to show the language in use."""

    language: str | None = None
    subcommand: ClassVar[str] = "lang"

    def _arguments(self) -> list[str]:
        return [] if self.language is None else [self.language]


@dataclass(frozen=True)
class AccessList(Command):
    """`/plan access list` (also `/plan access` alone)."""

    subcommand: ClassVar[str] = "access"

    def _arguments(self) -> list[str]:
        return ["list"]


@dataclass(frozen=True)
class _AccessChange(Command):
    """A grant or revoke: a principal, a role, and optionally the owner team's channel id."""

    principal: Principal
    role: str
    team: str | None = None
    subcommand: ClassVar[str] = "access"
    action: ClassVar[str] = ""

    def _arguments(self) -> list[str]:
        args = [self.action, self.principal.to_text(), self.role]
        return args if self.team is None else [*args, f"<#{self.team}>"]


@dataclass(frozen=True)
class AccessGrant(_AccessChange):
    """`/plan access grant <@user|@group> <role> [#team-channel]`; `team` is a channel id."""

    action: ClassVar[str] = "grant"


@dataclass(frozen=True)
class AccessRevoke(_AccessChange):
    """`/plan access revoke <@user|@group> <role> [#team-channel]`; `team` is a channel id."""

    action: ClassVar[str] = "revoke"


def unparse(command: Command) -> str:
    """The canonical text of a command, as Slack would send it; `parse(unparse(c)) == c`."""
    return command.to_text()


def _quote(value: str) -> str:
    """A value as one token: bare when it is a plain word, otherwise quoted and escaped."""
    if _BARE_WORD_RE.fullmatch(value) and value.lower() not in _HELP_WORDS:
        return value
    escaped = value.replace("\\", "\\\\")
    for quote in _QUOTES:
        escaped = escaped.replace(quote, "\\" + quote)
    return '"' + escape(escaped) + '"'


# --------------------------------------------------------------------------------------------------
# Errors


class CommandSyntaxError(ValueError):
    """A `/plan` command that could not be understood; `message` is mrkdwn for the person, in
    the language spoken when it was parsed."""

    def __init__(
        self, message: str, subcommand: str | None = None, suggestion: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.subcommand = subcommand
        self.suggestion = suggestion


def _show(word: str) -> str:
    """User text made safe to echo in mrkdwn: one line, short, escaped, in a code span."""
    one_line = " ".join(
        "".join(ch if unicodedata.category(ch) != "Cc" else " " for ch in word).split()
    )
    if len(one_line) > _SHOWN_WORD_MAX:
        one_line = one_line[: _SHOWN_WORD_MAX - 1] + "…"
    if not one_line:
        return _("(empty)") if not word else _("(blank)")
    escaped = escape(one_line)
    return f"“{escaped}”" if "`" in escaped else f"`{escaped}`"


def _usage_lines(subcommand: str) -> str:
    forms = SUBCOMMANDS[subcommand].forms
    if len(forms) == 1:
        return _("Usage: `{syntax}`").format(syntax=escape(forms[0]))
    return _("Usage:") + "\n" + "\n".join(f"• `{escape(form)}`" for form in forms)


def _error(subcommand: str | None, problem: str, suggestion: str | None = None) -> Exception:
    """Build the error for a problem (already mrkdwn-safe), followed by the usage."""
    if subcommand is None:
        message = problem + "\n" + _("Type `/plan help` to see what you can do.")
    else:
        message = f"{problem}\n{_usage_lines(subcommand)}"
    return CommandSyntaxError(message, subcommand, suggestion)


def _nearest(word: str, candidates: list[str] | tuple[str, ...], cutoff: float = 0.6) -> str | None:
    matches = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def _did_you_mean(problem: str, near: str | None) -> str:
    """The problem, and the nearest word (when there is one) as a question."""
    if not near:
        return problem
    return problem + " " + _("Did you mean `{word}`?").format(word=escape(near))


# --------------------------------------------------------------------------------------------------
# The Korean keyboard layout
#
# Someone who types a command with the Korean 2-set (두벌식) layout still on sends Hangul for
# the Latin keys they pressed: `upgrade` arrives as `ㅕㅔㅎㄱㅁㅇㄷ`, and where the input method
# composes syllables, `status` as `ㄴㅅㅁ션`. Each syllable is taken apart into its jamo by
# arithmetic (Unicode's Hangul syllables are ordered by initial, medial, final), and each jamo
# mapped back to the key it is on.

_INITIAL_KEYS: tuple[str, ...] = tuple(
    ["r", "R", "s", "e", "E", "f", "a", "q", "Q", "t", "T", "d", "w", "W", "c", "z", "x", "v", "g"]
)
_MEDIAL_KEYS: tuple[str, ...] = tuple(
    [
        "k",
        "o",
        "i",
        "O",
        "j",
        "p",
        "u",
        "P",
        "h",
        "hk",
        "ho",
        "hl",
        "y",
        "n",
        "nj",
        "np",
        "nl",
        "b",
        "m",
        "ml",
        "l",
    ]
)
_FINAL_KEYS: tuple[str, ...] = (
    "",
    *[
        "r",
        "R",
        "rt",
        "s",
        "sw",
        "sg",
        "e",
        "f",
        "fr",
        "fa",
        "fq",
        "ft",
        "fx",
        "fv",
        "fg",
        "a",
        "q",
        "qt",
        "t",
        "T",
        "d",
        "w",
    ],
)
_FINAL_KEYS += tuple(["c", "z", "x", "v", "g"])
#: the compatibility jamo (U+3131 ㄱ to U+3163 ㅣ), as typed one at a time
_JAMO_KEYS: tuple[str, ...] = tuple(
    [
        "r",
        "R",
        "rt",
        "s",
        "sw",
        "sg",
        "e",
        "E",
        "f",
        "fr",
        "fa",
        "fq",
        "ft",
        "fx",
        "fv",
        "fg",
        "a",
        "q",
        "Q",
        "qt",
        "t",
        "T",
        "d",
        "w",
        "W",
        "c",
        "z",
        "x",
        "v",
        "g",
    ]
)
_JAMO_KEYS += _MEDIAL_KEYS
_SYLLABLES = range(0xAC00, 0xD7A4)
_JAMO = range(0x3131, 0x3164)


def qwerty(text: str) -> str | None:
    """The Latin keys pressed to type `text` with the Korean 2-set layout on (lower case), or
    None when `text` has no Hangul or has something no key of that layout types."""
    keys: list[str] = []
    hangul = False
    for ch in unicodedata.normalize("NFC", text):
        code = ord(ch)
        if code in _SYLLABLES:
            index = code - _SYLLABLES.start
            initial, rest = divmod(index, 21 * 28)
            medial, final = divmod(rest, 28)
            keys += (_INITIAL_KEYS[initial], _MEDIAL_KEYS[medial], _FINAL_KEYS[final])
            hangul = True
        elif code in _JAMO:
            keys.append(_JAMO_KEYS[code - _JAMO.start])
            hangul = True
        elif ch.isascii() and (ch.isalnum() or ch in "-_=.?"):
            keys.append(ch)
        else:
            return None
    return "".join(keys).lower() if hangul else None


def _keyboard_word(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate `word` was meant to be, typed with the Korean layout on (None if none)."""
    typed = qwerty(word)
    if typed is None:
        return None
    if typed in candidates:
        return typed
    return _nearest(typed, list(candidates), cutoff=0.8)


#: the words, beside the subcommands, that a command typed with the Korean layout on may hold
_KEYBOARD_ARGUMENTS: tuple[str, ...] = tuple(
    [
        "standard",
        "premium",
        "viewer",
        "operator",
        "admin",
        "list",
        "grant",
        "revoke",
        "ko",
        "en",
        "auto",
        "help",
    ]
)


def _keyboard_command(subcommand: str, args: Sequence[_Token]) -> str:
    """The command as it was meant: the subcommand, and each argument typed with the Korean
    layout on that is one of the grammar's words (app names and ids stay as typed)."""
    words = [subcommand]
    for token in args:
        meant = None if token.quoted else _keyboard_word(token.text, _KEYBOARD_ARGUMENTS)
        if meant is not None and token.eq is None:
            words.append(meant)
        elif token.eq is not None and not token.quoted:
            key, value = token.text[: token.eq], token.text[token.eq + 1 :]
            value = _keyboard_word(value, _KEYBOARD_ARGUMENTS) or value
            words.append((qwerty(key) or key) + "=" + value)
        elif token.text.startswith("<") and not token.quoted:  # a mention, as Slack sent it
            words.append(token.text)
        else:
            words.append(_quote(token.text))
    return "/plan " + " ".join(words)


# --------------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class _Token:
    """One whitespace-separated word, with quoted parts joined in and their quotes removed."""

    text: str
    quoted: bool
    eq: int | None  # index in `text` of the first `=` typed outside quotes, if any

    @property
    def word(self) -> str:
        """The token as a keyword: lower case; a quoted token is never a keyword."""
        return "" if self.quoted else self.text.lower()


_Parser = Callable[[list[_Token]], Command]


class _UnclosedQuoteError(Exception):
    pass


def _single_quoted(text: str, i: int) -> int | None:
    """Where the single-quoted part opening at `i` closes: a single quote followed by a space
    or the end. None when none does (the quote is then an apostrophe, taken as it is)."""
    for k in range(i + 1, len(text)):
        if text[k] in _SINGLE_QUOTES and (k + 1 == len(text) or text[k + 1].isspace()):
            return k
    return None


def _tokenize(text: str) -> list[_Token]:
    """Split on whitespace; double quotes (straight or curly) group, and so do single quotes
    around a whole word (`'Support Chat'`; an apostrophe inside a word stays one); `<...>`
    stays one piece."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] in _SINGLE_QUOTES and (close := _single_quoted(text, i)) is not None:
            tokens.append(_Token(text[i + 1 : close], True, None))
            i = close + 1
            continue
        parts: list[str] = []
        length = 0
        quoted = False
        eq: int | None = None
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch in _QUOTES:
                quoted = True
                start = i
                i += 1
                while True:
                    if i >= n:
                        raise _UnclosedQuoteError(text[start:])
                    c = text[i]
                    if c in _QUOTES:
                        i += 1
                        break
                    if c == "\\" and i + 1 < n and (text[i + 1] in _QUOTES or text[i + 1] == "\\"):
                        c = text[i + 1]
                        i += 1
                    parts.append(c)
                    length += 1
                    i += 1
            elif ch == "<" and (end := text.find(">", i)) != -1:
                parts.append(text[i : end + 1])
                length += end + 1 - i
                i = end + 1
            else:
                if ch == "=" and eq is None:
                    eq = length
                parts.append(ch)
                length += 1
                i += 1
        tokens.append(_Token("".join(parts), quoted, eq))
    return tokens


# --------------------------------------------------------------------------------------------------
# Parsing


def parse(text: str) -> Command:
    """Parse the text after `/plan`; raises `CommandSyntaxError` (and nothing else) when invalid.

    Its messages are in the current language (`bot.i18n.speaking`)."""
    if len(text) > MAX_TEXT_LENGTH:
        raise CommandSyntaxError(
            _(
                "That command is too long: {length} characters, and `/plan` takes at most {limit}."
            ).format(length=number(len(text)), limit=number(MAX_TEXT_LENGTH))
            + "\n"
            + _("Type `/plan help` to see what you can do.")
        )
    plain = _unescape_slack(text)
    try:
        tokens = _tokenize(plain)
    except _UnclosedQuoteError as exc:
        words = plain.split()
        subcommand = resolve_subcommand(words[0]) if words else None
        raise _error(
            subcommand,
            _(
                "A quote is not closed: {text}. Put the name between two double quotes, like "
                '`"My App"`.'
            ).format(text=_show(str(exc))),
        ) from None
    if not tokens:
        return Help(None)
    first, args = tokens[0], tokens[1:]
    subcommand = resolve_subcommand(first.text)
    if subcommand is None:
        raise _unknown_subcommand(first.text, args)
    if subcommand != "help" and len(args) == 1 and _keyword(args[0].word) in _HELP_WORDS:
        return Help(subcommand)
    return _PARSERS[subcommand](args)


def _unknown_subcommand(word: str, args: Sequence[_Token] = ()) -> Exception:
    if _APP_ID_RE.fullmatch(word):
        return _error(
            None,
            _("Unknown subcommand {word}. To see that app, type `/plan status {app}`.").format(
                word=_show(word), app=word
            ),
            "status",
        )
    typed = _keyboard_word(word, list(SUBCOMMANDS))
    if typed is not None:
        problem = _(
            "Unknown subcommand {word}: it looks typed with the Korean keyboard layout on. "
            "Did you mean `{command}`?"
        ).format(word=_show(word), command=escape(_keyboard_command(typed, args)))
        return CommandSyntaxError(f"{problem}\n{_usage_lines(typed)}", None, typed)
    suggestion = _nearest(word, list(_ALIASES))
    if suggestion is None:
        return _error(None, _("Unknown subcommand {word}.").format(word=_show(word)))
    canonical = _ALIASES[suggestion]
    problem = _("Unknown subcommand {word}. Did you mean `{subcommand}`?").format(
        word=_show(word), subcommand=canonical
    )
    return CommandSyntaxError(f"{problem}\n{_usage_lines(canonical)}", None, canonical)


def _too_many(subcommand: str, extra: list[_Token], *, names: bool = True) -> Exception:
    shown = ", ".join(_show(token.text) for token in extra[:3])
    if len(extra) <= 3:
        problem = _("Too many words for `/plan {subcommand}`: {words} not expected.")
    else:
        problem = _(
            "Too many words for `/plan {subcommand}`: {words} and {more} more not expected."
        )
    problem = problem.format(subcommand=subcommand, words=shown, more=len(extra) - 3)
    if names:
        problem += " " + _('If a name has spaces, put it in double quotes: `"My App"`.')
    return _error(subcommand, problem)


def _app(token: _Token, subcommand: str) -> str:
    if not token.text.strip():
        raise _error(subcommand, _("The app is empty: give its id or its exact name."))
    return token.text


def _parse_help(args: list[_Token]) -> Command:
    if not args:
        return Help(None)
    if len(args) > 1:
        raise _too_many("help", args[1:], names=False)
    topic = resolve_subcommand(args[0].text)
    if topic is None:
        suggestion = _nearest(args[0].text, list(_ALIASES))
        canonical = _ALIASES[suggestion] if suggestion else None
        problem = _("There is no subcommand {word}.").format(word=_show(args[0].text))
        raise _error("help", _did_you_mean(problem, canonical), canonical)
    return Help(topic)


_OPTION_WORDS = {
    "page": "page",
    "페이지": "page",
    "limit": "limit",
    "개수": "limit",
    "days": "days",
    "일수": "days",
    "기간": "days",
}


def _option(token: _Token) -> tuple[str, str]:
    """A `key=value` token: its key (Korean option words made English) and its value."""
    assert token.eq is not None
    key = _keyword(token.text[: token.eq])
    return _OPTION_WORDS.get(key, key), token.text[token.eq + 1 :]


def _parse_list(args: list[_Token]) -> Command:
    filter_: str | None = None
    page: int | None = None
    for token in args:
        if token.eq is not None:
            key, value = _option(token)
            if key != "page":
                near = _nearest(key, ["page"])
                problem = _did_you_mean(
                    _("Unknown option {option}.").format(option=_show(key)), near
                )
                raise _error(
                    "list", problem + " " + _("To filter by text with `=`, quote it."), near
                )
            if page is not None:
                raise _error("list", _("`page` is given twice; give it once."))
            page = _number(value, "list", N_("page"), 1, MAX_PAGE)
        elif filter_ is not None:
            raise _too_many("list", [token], names=False)
        else:
            word = "" if token.quoted else _keyword(token.text)
            filter_ = _FILTER_WORDS.get(word) or _PLAN_WORDS.get(word) or token.text
    return ListApps(filter_, 1 if page is None else page)


#: the Korean words for plans and statuses, as the list's filter (a quoted word stays as typed)
_FILTER_WORDS = {"개발": "developer", "개발버전": "developer", "활성": "active"}
_FILTER_WORDS |= {"일시중단": "suspended", "중단": "suspended", "비활성": "disabled"}
_FILTER_WORDS |= {"비활성화": "disabled", "영구삭제": "purged"}


def _number(value: str, subcommand: str, what: str, low: int, high: int) -> int:
    """`value` as a whole number from `low` to `high`; `what` (marked with N_) names it."""
    digits = value.strip()
    if not _NUMBER_RE.fullmatch(digits) or not low <= int(digits) <= high:
        raise _error(
            subcommand,
            _("{value} is not a valid {what}: give a whole number from {low} to {high}.").format(
                value=_show(value), what=_(what), low=number(low), high=number(high)
            ),
        )
    return int(digits)


def _one_app(command: type[_AppCommand]) -> _Parser:
    subcommand = command.subcommand

    def parse_one_app(args: list[_Token]) -> Command:
        if not args:
            raise _error(
                subcommand,
                _("`/plan {subcommand}` needs an app: its id or exact name.").format(
                    subcommand=subcommand
                ),
            )
        if len(args) > 1:
            raise _too_many(subcommand, args[1:])
        return command(_app(args[0], subcommand))

    return parse_one_app


#: the plans by every word for them (the core's paid plans, and their Korean names)
_PLAN_WORDS = {plan: plan for plan in PAID_PLANS}
_PLAN_WORDS |= {"스탠다드": "standard", "표준": "standard", "스탠다드버전": "standard"}
_PLAN_WORDS |= {"프리미엄": "premium", "프리미엄버전": "premium"}
_PLAN_WORDS = {word: plan for word, plan in _PLAN_WORDS.items() if plan in PAID_PLANS}


def _plan(token: _Token, subcommand: str, setting: str = "") -> str:
    word = _keyword(token.text)
    if word in _PLAN_WORDS:
        return _PLAN_WORDS[word]
    if word in _DEVELOPER_WORDS or _nearest(word, ["developer"], cutoff=0.8):
        raise _error(
            subcommand,
            _(
                "{word} can't be the target: there is no downgrade to the developer plan. "
                "Choose `standard` or `premium`; to use the developer plan again, create a "
                "new app with `/plan create &lt;name&gt;`."
            ).format(word=_show(token.text)),
        )
    near = _keyboard_word(word, PAID_PLANS) or _nearest(word, PAID_PLANS)
    if setting:
        what = _("{word} is not an edition").format(word=_show(token.text))
    else:
        what = _("{word} is not a plan").format(word=_show(token.text))
    if near:
        raise _error(
            subcommand, _("{problem}. Did you mean `{word}`?").format(problem=what, word=near), near
        )
    raise _error(subcommand, _("{problem}: choose `standard` or `premium`.").format(problem=what))


def _parse_upgrade(args: list[_Token]) -> Command:
    if not args:
        raise _error("upgrade", _("`/plan upgrade` needs an app and a plan."))
    if len(args) == 1:
        if _keyword(args[0].word) in _PLAN_WORDS:
            raise _error("upgrade", _("`/plan upgrade` needs the app before the plan."))
        raise _error(
            "upgrade", _("`/plan upgrade` needs a plan after the app: `standard` or `premium`.")
        )
    if len(args) > 2:
        raise _too_many("upgrade", args[2:])
    return Upgrade(_app(args[0], "upgrade"), _plan(args[1], "upgrade"))


def _parse_config(args: list[_Token]) -> Command:
    if not args or args[0].eq is not None:
        raise _error(
            "config",
            _("`/plan config` needs the app first (its id or exact name), then the changes."),
        )
    app = _app(args[0], "config")
    edition: str | None = None
    addons: list[tuple[str, str]] = []
    seen: set[str] = set()
    for token in args[1:]:
        if token.eq is None:
            if _keyword(token.word) in _PLAN_WORDS:
                plan = _PLAN_WORDS[_keyword(token.word)]
                raise _error(
                    "config",
                    _("Write the edition as a setting: `edition={plan}`.").format(plan=plan),
                    f"edition={plan}",
                )
            raise _error(
                "config",
                _(
                    "{word} is not a setting: write settings as `name=value`, "
                    "e.g. `edition=premium`."
                ).format(word=_show(token.text)),
            )
        raw_key, value = token.text[: token.eq].strip(), token.text[token.eq + 1 :]
        key = _keyword(raw_key)
        if key in _KOREAN_EDITION_KEYS:
            key = "edition"
        if not _KEY_RE.fullmatch(key):
            raise _error(
                "config",
                _(
                    "{word} is not a setting name: use letters, digits, `_` or `-`, "
                    "starting with a letter."
                ).format(word=_show(raw_key)),
            )
        if not value.strip():
            raise _error(
                "config",
                _("The setting `{key}` has no value: write `{key}=value`.").format(key=key),
            )
        canonical = "edition" if key in _EDITION_KEYS else key
        plain = _keyword(value)
        looks_like_edition = plain in _PLAN_WORDS or plain in _DEVELOPER_WORDS
        if canonical != "edition" and looks_like_edition and _nearest(key, ["edition"], 0.7):
            raise _error(
                "config",
                _("Unknown setting `{key}`. Did you mean `edition`?").format(key=key),
                "edition",
            )
        if canonical in seen:
            raise _error(
                "config",
                _("`{key}` is given twice; give each setting once.").format(key=canonical),
            )
        seen.add(canonical)
        if canonical == "edition":
            edition = _plan(_Token(value, True, None), "config", "edition")
        else:
            addons.append((key, value))
    if edition is None and not addons:
        raise _error(
            "config",
            _(
                "`/plan config` needs at least one change: `edition=standard|premium` or an "
                "add-on `name=value`."
            ),
        )
    return Configure(app, edition, tuple(addons))


_KOREAN_EDITION_KEYS = frozenset({"버전", "플랜", "에디션"})


def _parse_create(args: list[_Token]) -> Command:
    if not args:
        raise _error("create", _("`/plan create` needs a name for the new app."))
    # the rest of the line is the name, quoted or not: `create Support Chat`
    name = " ".join(token.text.strip() for token in args).strip()
    try:  # the core's one rule for names, worded as every refusal of it is
        return Create(app_name(name))
    except InvalidAppName as err:
        raise _error("create", refusal_text(Refusal.of(err))) from None


def _parse_history(args: list[_Token]) -> Command:
    app, limit = _app_and_count(
        args,
        "history",
        _("`/plan history` needs an app: its id or exact name."),
        ("limit", _("Unknown option {option}: give a number of changes.")),
        (N_("limit"), MAX_HISTORY_LIMIT),
    )
    return History(app) if limit is None else History(app, limit)


def _app_and_count(
    args: list[_Token],
    subcommand: str,
    needs_app: str,
    option: tuple[str, str],
    bound: tuple[str, int],
) -> tuple[str, int | None]:
    """An app, then an optional count given bare or as `<key>=N` (`option`: the key, and the
    refusal of any other key); the count from 1 to `bound`'s most (named by its label)."""
    if not args:
        raise _error(subcommand, needs_app)
    if len(args) > 2:
        raise _too_many(subcommand, args[2:])
    app = _app(args[0], subcommand)
    if len(args) == 1:
        return app, None
    token = args[1]
    value = token.text
    if token.eq is not None:
        key, value = _option(token)
        if key != option[0]:
            raise _error(subcommand, option[1].format(option=_show(key)))
    label, most = bound
    return app, _number(value, subcommand, label, 1, most)


def _parse_bill(args: list[_Token]) -> Command:
    if not args:
        raise _error("bill", _("`/plan bill` needs an app: its id or exact name."))
    if len(args) > 2:
        raise _too_many("bill", args[2:])
    app = _app(args[0], "bill")
    if len(args) == 1:
        return Bill(app)
    text = args[1].text.strip()
    match = _MONTH_RE.fullmatch(text)
    if match is None:
        raise _error(
            "bill",
            _("{text} is not a month: write it `YYYY-MM`, e.g. `2025-03`.").format(
                text=_show(text)
            ),
        )
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise _error(
            "bill",
            _(
                "{text} is not a month: the month must be 01 to 12 (`YYYY-MM`, e.g. `2025-03`)."
            ).format(text=_show(text)),
        )
    if year < 1970:
        raise _error(
            "bill",
            _("{text} is too far back: give a year from 1970 on.").format(text=_show(text)),
        )
    return Bill(app, (year, month))


def _parse_usage(args: list[_Token]) -> Command:
    app, days = _app_and_count(
        args,
        "usage",
        _("`/plan usage` needs an app: its id or exact name."),
        ("days", _("Unknown option {option}: give a number of days.")),
        (N_("number of days"), MAX_USAGE_DAYS),
    )
    return AppUsage(app) if days is None else AppUsage(app, days)


def _parse_lang(args: list[_Token]) -> Command:
    if not args:
        return Lang(None)
    if len(args) > 1:
        raise _too_many("lang", args[1:], names=False)
    word = _keyword(args[0].text)
    chosen = LANGUAGE_WORDS.get(word)
    if chosen is None:
        near = _keyboard_word(word, ["ko", "en", "auto"]) or _nearest(word, list(LANGUAGE_WORDS))
        problem = _("{word} is not a language planbot speaks: choose `ko`, `en` or `auto`.")
        problem = problem.format(word=_show(args[0].text))
        meant = LANGUAGE_WORDS.get(near) if near else None
        raise _error("lang", _did_you_mean(problem, meant), meant)
    return Lang(chosen)


def _parse_access(args: list[_Token]) -> Command:
    if not args:
        return AccessList()
    action = _ACCESS_ACTIONS.get(_keyword(args[0].word)) if args[0].word else None
    if action is None:
        near = _keyboard_word(args[0].text, ["list", "grant", "revoke"]) or _nearest(
            args[0].text, ["list", "grant", "revoke"]
        )
        problem = _("Unknown access action {word}.").format(word=_show(args[0].text))
        if near:
            problem = _did_you_mean(problem, near)
        else:
            problem += " " + _("Use `list`, `grant` or `revoke`.")
        raise _error("access", problem, near)
    rest = args[1:]
    if action == "list":
        if rest:
            raise _too_many("access", rest, names=False)
        return AccessList()
    if len(rest) < 2:
        raise _error(
            "access",
            _(
                "`/plan access {action}` needs a person or group and a role "
                "(`viewer`, `operator` or `admin`)."
            ).format(action=action),
        )
    if len(rest) > 3:
        raise _too_many("access", rest[3:], names=False)
    principal = _principal(rest[0])
    role = _role(rest[1])
    team = _team(rest[2]) if len(rest) == 3 else None
    if action == "grant":
        return AccessGrant(principal, role, team)
    return AccessRevoke(principal, role, team)


def _autocomplete_hint() -> str:
    return _(
        "Type `@` and pick the person or group from Slack's autocomplete list, so that Slack "
        "sends their id."
    )


def _principal(token: _Token) -> Principal:
    text = token.text.strip()
    if match := _USER_MENTION_RE.fullmatch(text):
        return Principal("user", match.group(1), match.group(2) or match.group(1))
    if match := _GROUP_MENTION_RE.fullmatch(text):
        label = match.group(2) or ""
        label = label[1:] if label.startswith("@") else label
        return Principal("group", match.group(1), label or match.group(1))
    if _RAW_USER_RE.fullmatch(text):
        return Principal("user", text, text)
    if _RAW_GROUP_RE.fullmatch(text):
        return Principal("group", text, text)
    if match := _SPECIAL_MENTION_RE.fullmatch(text):
        raise _error(
            "access",
            _("A role can't be given to `@{who}`: name one person or one user group.").format(
                who=match.group(1)
            ),
        )
    if _CHANNEL_MENTION_RE.fullmatch(text) or text.startswith("#"):
        raise _error(
            "access",
            _(
                "{text} is a channel, not a person or group. Give the person or group first, "
                "then the role, then the team channel."
            ).format(text=_show(text)),
        )
    if text.startswith("@"):
        raise _error(
            "access",
            _("{text} is plain text, so I can't tell who it is.").format(text=_show(text))
            + " "
            + _autocomplete_hint(),
        )
    if _keyword(token.word) in _ROLE_WORDS:
        raise _error("access", _("Give the person or group first, then the role."))
    raise _error(
        "access",
        _("{text} is not a person or group.").format(text=_show(text)) + " " + _autocomplete_hint(),
    )


#: the roles by every word for them (the core's labels, and their Korean names)
_ROLE_WORDS = {role: role for role in ROLES}
_ROLE_WORDS |= {"조회자": "viewer", "운영자": "operator", "관리자": "admin"}
_ROLE_WORDS = {word: role for word, role in _ROLE_WORDS.items() if role in _ROLE_RANK}


def _role(token: _Token) -> str:
    word = _keyword(token.text)
    if word in _ROLE_WORDS:
        return _ROLE_WORDS[word]
    near = _keyboard_word(word, ROLES) or _nearest(word, ROLES)
    if near:
        raise _error(
            "access",
            _("{word} is not a role. Did you mean `{role}`?").format(
                word=_show(token.text), role=near
            ),
            near,
        )
    raise _error(
        "access",
        _("{word} is not a role: choose `viewer`, `operator` or `admin`.").format(
            word=_show(token.text)
        ),
    )


def _team(token: _Token) -> str:
    text = token.text.strip()
    if match := _CHANNEL_MENTION_RE.fullmatch(text):
        return match.group(1)
    if _RAW_CHANNEL_RE.fullmatch(text):
        return text
    if text.startswith("#"):
        raise _error(
            "access",
            _(
                "{text} is plain text, so I can't tell which channel it is. Type `#` and pick "
                "the team's channel from Slack's autocomplete list."
            ).format(text=_show(text)),
        )
    raise _error(
        "access",
        _(
            "{text} is not a channel: give the team's channel (type `#` and pick it), "
            "or leave it out for every app."
        ).format(text=_show(text)),
    )


_PARSERS: dict[str, _Parser] = {
    "help": _parse_help,
    "list": _parse_list,
    "status": _one_app(Status),
    "history": _parse_history,
    "bill": _parse_bill,
    "usage": _parse_usage,
    "upgrade": _parse_upgrade,
    "config": _parse_config,
    "extend": _one_app(Extend),
    "create": _parse_create,
    "disable": _one_app(Disable),
    "enable": _one_app(Enable),
    "migrate": _one_app(Migrate),
    "access": _parse_access,
    "lang": _parse_lang,
}
