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
    "block_action_body",
    "sign",
    "signed_headers",
    "slash_command_body",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

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
