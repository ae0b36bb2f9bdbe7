"""Build correctly signed Slack HTTP requests (slash commands, block actions) as Slack sends them.

Slack signs ``v0:{timestamp}:{raw body}`` with HMAC-SHA256 and the app's signing secret, and sends
the hex digest as ``X-Slack-Signature: v0=...`` beside ``X-Slack-Request-Timestamp``. Slash commands
arrive form-encoded; interactivity arrives form-encoded as one ``payload`` field holding JSON.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

__all__ = [
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "block_action_body",
    "block_suggestion_body",
    "event_body",
    "home_action_body",
    "shortcut_body",
    "sign",
    "signed_headers",
    "signed_json_headers",
    "slash_command_body",
    "view_action_body",
    "view_closed_body",
    "view_submission_body",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

_counter = itertools.count(1)


def _trigger_id() -> str:
    """A unique trigger id shaped like Slack's (``digits.digits.hex``)."""
    n = next(_counter)
    return f"{time.time_ns() // 1000}.{n}.{n:032x}"


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The two Slack signature headers for `body`, at `timestamp` (default now)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.decode("utf-8") if isinstance(body, bytes) else body
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=raw)
    if signature is None:
        raise ValueError("a signing secret is needed to sign a Slack request")
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def signed_headers(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """`sign` plus the form Content-Type Slack sends with commands and interactivity."""
    return {"Content-Type": FORM_CONTENT_TYPE, **sign(body, secret, timestamp)}


def signed_json_headers(
    body: bytes | str, secret: str, timestamp: int | None = None, *, retry: int | None = None
) -> dict[str, str]:
    """`sign` plus the JSON Content-Type of the Events API (and Slack's retry headers when
    `retry` is the attempt's number)."""
    headers = {"Content-Type": JSON_CONTENT_TYPE, **sign(body, secret, timestamp)}
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return headers


def event_body(
    event: dict[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = "T1",
    api_app_id: str = "A1",
    token: str = "verification-token",
) -> bytes:
    """An Events API callback's JSON body (``event_callback``) carrying `event`."""
    n = next(_counter)
    now = int(time.time())
    body = {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": {"event_ts": f"{now}.{n:06d}", **event},
        "type": "event_callback",
        "event_id": event_id or f"Ev{now}{n:08d}",
        "event_time": now,
        "authorizations": [{"team_id": team_id, "user_id": "UBOT", "is_bot": True}],
        "is_ext_shared_channel": False,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _interaction(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def _user(user_id: str, team_id: str) -> dict[str, Any]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def shortcut_body(
    callback_id: str,
    user_id: str,
    *,
    trigger_id: str | None = None,
    team_id: str = "T1",
    api_app_id: str = "A1",
    token: str = "verification-token",
) -> bytes:
    """A global shortcut's form-encoded ``payload=<json>`` body (type ``shortcut``)."""
    return _interaction(
        {
            "type": "shortcut",
            "token": token,
            "action_ts": f"{time.time():.6f}",
            "team": {"id": team_id, "domain": "fake"},
            "user": _user(user_id, team_id),
            "is_enterprise_install": False,
            "enterprise": None,
            "api_app_id": api_app_id,
            "callback_id": callback_id,
            "trigger_id": trigger_id or _trigger_id(),
        }
    )


def _view(view: dict[str, Any], values: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "V0FAKE",
        "hash": "1.fake",
        "team_id": "T1",
        "private_metadata": "",
        **view,
        "state": {"values": values or {}},
    }


def block_suggestion_body(
    action_id: str,
    value: str,
    user_id: str,
    *,
    block_id: str = "block",
    view: dict[str, Any] | None = None,
    team_id: str = "T1",
    api_app_id: str = "A1",
    token: str = "verification-token",
) -> bytes:
    """What an ``external_select`` sends as the person types (type ``block_suggestion``)."""
    return _interaction(
        {
            "type": "block_suggestion",
            "user": _user(user_id, team_id),
            "container": {"type": "view", "view_id": "V0FAKE"},
            "api_app_id": api_app_id,
            "token": token,
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "team": {"id": team_id, "domain": "fake"},
            "view": _view(view or {"type": "modal"}, None),
        }
    )


def view_submission_body(
    view: dict[str, Any],
    user_id: str,
    values: dict[str, Any] | None = None,
    *,
    team_id: str = "T1",
    api_app_id: str = "A1",
    token: str = "verification-token",
) -> bytes:
    """A modal's submission (type ``view_submission``) with its input `values` (Slack's
    ``state.values``: block id -> action id -> the element's value)."""
    return _interaction(
        {
            "type": "view_submission",
            "team": {"id": team_id, "domain": "fake"},
            "user": _user(user_id, team_id),
            "api_app_id": api_app_id,
            "token": token,
            "trigger_id": _trigger_id(),
            "view": _view(view, values),
            "response_urls": [],
            "is_enterprise_install": False,
        }
    )


def view_closed_body(
    view: dict[str, Any],
    user_id: str,
    *,
    team_id: str = "T1",
    api_app_id: str = "A1",
    token: str = "verification-token",
) -> bytes:
    """A modal closed with its Close button, for a view with ``notify_on_close``."""
    return _interaction(
        {
            "type": "view_closed",
            "team": {"id": team_id, "domain": "fake"},
            "user": _user(user_id, team_id),
            "api_app_id": api_app_id,
            "token": token,
            "view": _view(view, None),
            "is_cleared": False,
            "is_enterprise_install": False,
        }
    )


def view_action_body(
    action: dict[str, Any],
    view: dict[str, Any],
    user_id: str,
    values: dict[str, Any] | None = None,
    *,
    trigger_id: str | None = None,
    team_id: str = "T1",
    api_app_id: str = "A1",
    token: str = "verification-token",
) -> bytes:
    """A ``block_actions`` payload from a modal or a home tab (`view`), with no response_url."""
    return _interaction(
        {
            "type": "block_actions",
            "user": _user(user_id, team_id),
            "api_app_id": api_app_id,
            "token": token,
            "container": {"type": "view", "view_id": view.get("id", "V0FAKE")},
            "trigger_id": trigger_id or _trigger_id(),
            "team": {"id": team_id, "domain": "fake"},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": _view(view, values),
            "actions": [{"action_ts": f"{time.time():.6f}", "block_id": "block", **action}],
        }
    )


def home_action_body(
    action_id: str, value: str, user_id: str, *, trigger_id: str | None = None
) -> bytes:
    """A button pressed on a home tab."""
    action = {
        "action_id": action_id,
        "type": "button",
        "value": value,
        "text": {"type": "plain_text", "text": "Button", "emoji": True},
    }
    home = {"id": "VHOME", "type": "home", "hash": "1.home"}
    return view_action_body(action, home, user_id, trigger_id=trigger_id)


def slash_command_body(
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/plan",
    team_id: str = "T1",
    user_name: str | None = None,
    trigger_id: str | None = None,
    *,
    channel_name: str = "general",
    team_domain: str = "fake",
    api_app_id: str = "A1",
    token: str = "verification-token",
) -> bytes:
    """A slash command's form-encoded body, with the fields Slack sends."""
    fields = {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name if user_name is not None else user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id if trigger_id is not None else _trigger_id(),
    }
    return urlencode(fields).encode()


def block_action_body(
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    message: dict[str, Any] | None = None,
    container: dict[str, Any] | None = None,
    *,
    block_id: str = "actions",
    team_id: str = "T1",
    user_name: str | None = None,
    trigger_id: str | None = None,
    button_text: str = "Confirm",
    api_app_id: str = "A1",
    token: str = "verification-token",
) -> bytes:
    """A button click's form-encoded ``payload=<json>`` body (type ``block_actions``).

    Without `message` the click is on an ephemeral message, as Slack sends it: no ``message``
    field and a container with ``is_ephemeral: true``.
    """
    now = time.time()
    message_ts = str(message["ts"]) if message and "ts" in message else f"{now:.6f}"
    name = user_name if user_name is not None else user_id.lower()
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": container
        or {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": message is None,
        },
        "trigger_id": trigger_id if trigger_id is not None else _trigger_id(),
        "team": {"id": team_id, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{now:.6f}",
            }
        ],
    }
    if message is not None:
        payload["message"] = message
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
