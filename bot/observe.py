"""What is known of the request being answered, for the logs and the metrics; and the log format.

The server edge opens a record for each Slack request (`begin`), the listeners fill in what they
learn on the way (`note`: the kind of request, who, which app, how it ended; every payload's kind
is noted from its type and ids before the listeners run, `payload_kind`), and the log formatter
and the metrics read it. The record lives in a context variable, so it follows the
request through the listeners (which run on the server's event loop, in the request's own
context) and is gone with it. Outside a request `note` does nothing.

Kinds and outcomes are words from fixed lists (`command:status`, `action:confirm`; `ok`,
`refused`), never anything a person typed: they label metrics, and labels carry no user data.
The user id and the app are for log lines only.

`PLANBOT_LOG_FORMAT=json` writes each log line as one JSON object (`JsonFormatter`), with the
request's fields when the line was written while answering one; plain text is the default.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from bot.edge import Redactor
from core import RequestAlreadyDecided

__all__ = [
    "LOG_FORMATS",
    "OUTCOMES",
    "JsonFormatter",
    "RequestInfo",
    "action_kind",
    "begin",
    "command_kind",
    "configure_logging",
    "current",
    "end",
    "note",
    "payload_kind",
    "refused",
]

#: what `/plan <word>` is called in kinds (`command:<word>`), by the grammar's command class
_COMMAND_WORDS = {
    "Help": "help",
    "ListApps": "list",
    "Status": "status",
    "History": "history",
    "Bill": "bill",
    "AppUsage": "usage",
    "Upgrade": "upgrade",
    "Configure": "config",
    "Extend": "extend",
    "Disable": "disable",
    "Enable": "enable",
    "Migrate": "migrate",
    "Create": "create",
    "AccessList": "access",
    "AccessGrant": "access",
    "AccessRevoke": "access",
    "Lang": "lang",
}
#: the buttons, by action id
_ACTION_WORDS = {
    "plan_confirm": "confirm",
    "plan_cancel": "cancel",
    "plan_approve": "approve",
    "plan_reject": "reject",
    "plan_start_extend": "extend",
    "plan_start_enable": "enable",
    # the home tab's
    "home_approve": "home_approve",
    "home_reject": "home_reject",
    "home_withdraw": "home_withdraw",
    "home_extend": "home_extend",
    "home_enable": "home_enable",
    "home_page": "home_page",
    "home_team": "home_team",
    "home_all_teams": "home_all_teams",
    "home_new": "home_new",
    # the plan modal's pickers
    "plan_pick_app": "pick_app",
    "plan_pick_operation": "pick_operation",
}
#: the other payloads Slack sends, by type and the id it sends back (a view's or a shortcut's
#: callback id, a picker's action id, an event's type): their kinds
_PAYLOAD_WORDS = {
    ("view_submission", "plan_form"): "view:form",
    ("view_submission", "plan_form_confirm"): "view:confirm",
    ("view_closed", "plan_form_confirm"): "view_closed:confirm",
    ("shortcut", "plan_shortcut"): "shortcut:plan",
    ("block_suggestion", "plan_pick_app"): "options:app",
    ("event_callback", "app_home_opened"): "event:app_home_opened",
}
#: every kind a request can be counted under
KINDS = frozenset(
    {f"command:{w}" for w in _COMMAND_WORDS.values()}
    | {"command:invalid", "command:other"}
    | {f"action:{w}" for w in _ACTION_WORDS.values()}
    | set(_PAYLOAD_WORDS.values())
    | {f"{t}:other" for t in ("action", "view", "view_closed", "shortcut", "options", "event")}
    | {"other"}
)
#: how a request ended: answered (`ok`), refused by a rule or a typo, a click on something already
#: decided, a failure of planbot's own (`error`), or turned away at the door
OUTCOMES = frozenset(
    {
        "ok",
        "refused",
        "already_done",
        "error",
        "unsigned",
        "malformed",
        "too_large",
        "timeout",
        "unavailable",
        "unhandled",
    }
)
#: outcomes of requests turned away before a listener saw them, by HTTP status (else `error`)
_BY_STATUS = {
    200: "ok",
    400: "malformed",
    401: "unsigned",
    404: "unhandled",
    408: "timeout",
    413: "too_large",
    503: "unavailable",
    504: "timeout",
}

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def command_kind(command: object) -> str:
    """`command:<word>` for a parsed `/plan` command."""
    return "command:" + _COMMAND_WORDS.get(type(command).__name__, "other")


def action_kind(action_id: str) -> str:
    """`action:<word>` for a button's action id."""
    return "action:" + _ACTION_WORDS.get(action_id, "other")


def payload_kind(body: Mapping[str, Any]) -> str | None:
    """The kind of a Slack payload other than `/plan`, from its type and the id it carries
    (None for a slash command, whose listener says which it was)."""
    if "command" in body:
        return None
    kind = str(body.get("type") or "")
    if kind == "block_actions":
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else {}
        return action_kind(str(first.get("action_id", "")) if isinstance(first, dict) else "")
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        key = str(view.get("callback_id", "")) if isinstance(view, dict) else ""
    elif kind == "block_suggestion":
        key = str(body.get("action_id", ""))
    elif kind == "event_callback":
        event = body.get("event")
        key = str(event.get("type", "")) if isinstance(event, dict) else ""
    else:
        key = str(body.get("callback_id", ""))
    prefix = {"block_suggestion": "options", "event_callback": "event"}.get(kind, kind)
    found = _PAYLOAD_WORDS.get((kind, key))
    if found is not None:
        return found
    return f"{prefix}:other" if f"{prefix}:other" in KINDS else "other"


def refused(err: Exception) -> None:
    """Note how a refused request ended: a click on something already decided, or refused."""
    note(outcome="already_done" if isinstance(err, RequestAlreadyDecided) else "refused")


def outcome_of_status(status: int) -> str:
    """The outcome of a request no listener described, from its HTTP status."""
    return _BY_STATUS.get(status, "error")


_PREFIX = f"{os.getpid():x}"
_numbers = itertools.count(1)


class RequestInfo:
    """One request: its id, when it started, and what the listeners noted."""

    __slots__ = ("app", "id", "kind", "outcome", "started", "user")

    def __init__(self) -> None:
        self.id = f"{_PREFIX}-{next(_numbers):x}"  # unique in the process, cheap, no user data
        self.started = time.perf_counter()
        self.kind = "other"
        self.outcome: str | None = None
        self.user: str | None = None
        self.app: str | None = None

    def finish(self, status: int) -> str:
        """Settle the outcome: what a listener noted, unless the HTTP status says otherwise."""
        if status != 200:
            self.outcome = outcome_of_status(status)
        elif self.outcome is None:
            self.outcome = "ok"
        return self.outcome

    def fields(self) -> dict[str, Any]:
        """The fields a log line carries (those known)."""
        found: dict[str, Any] = {"request_id": self.id, "kind": self.kind}
        for name in ("user", "app", "outcome"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found


_current: ContextVar[RequestInfo | None] = ContextVar("planbot_request", default=None)


def begin() -> tuple[RequestInfo, Token[RequestInfo | None]]:
    """Open the record of a request (at the server edge); `end` it with the token."""
    info = RequestInfo()
    return info, _current.set(info)


def end(token: Token[RequestInfo | None]) -> None:
    """Close the record opened by `begin`."""
    _current.reset(token)


def current() -> RequestInfo | None:
    """The request being answered, if any."""
    return _current.get()


def note(
    *,
    kind: str | None = None,
    outcome: str | None = None,
    user: str | None = None,
    app: str | None = None,
) -> None:
    """Record what a listener learned about the request being answered (nothing outside one)."""
    info = _current.get()
    if info is None:
        return
    if kind is not None:
        info.kind = kind
    if outcome is not None:
        info.outcome = outcome
    if user is not None:
        info.user = user
    if app is not None:
        info.app = app


# --- log lines -------------------------------------------------------------------------------

#: LogRecord attributes that are not `extra` fields
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
#: `extra` fields not written: the request (written as its fields), uvicorn's colored duplicate
_DROPPED = frozenset({"request", "color_message"})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the request's fields if any.

    The request's fields come from `extra={"request": info}` when given, else from the request
    being answered when the line was written. Other `extra` fields are kept as they are (made
    text when JSON can't hold them); an exception's traceback is the `exception` field.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        info = record.__dict__.get("request")
        if not isinstance(info, RequestInfo):
            info = _current.get()
        if info is not None:
            entry.update(info.fields())
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _DROPPED and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Log to standard error in `fmt` (`text` or `json`; anything else: text) at `level`.

    Every logger's lines (uvicorn's too, which the server routes to the root logger) come out
    in the one format, at `level` or above. Called again, it replaces what it set up.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name("planbot")
    handler.addFilter(Redactor())  # response_urls and tokens never reach a log line
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "planbot":  # configured before: replaced, not doubled
            root.removeHandler(old)
    root.addHandler(handler)
    try:
        root.setLevel(level.upper())
    except ValueError:
        root.setLevel(logging.INFO)
    handler.setLevel(root.level)  # also for loggers that set their own level (uvicorn's)
