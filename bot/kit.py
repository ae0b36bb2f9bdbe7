"""Block Kit primitives, one family for every message planbot builds.

Every piece of user-supplied text (app names, display names, what was typed) goes through
`escape`, so an app named `<!channel>` pings nobody. Slack's limits are kept here: at most 50
blocks a message, 3000 characters a section, 10 fields of 2000, 150 a header, 75 a button.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "MAX_BLOCKS",
    "MAX_BUTTON",
    "MAX_HEADER",
    "MAX_SECTION",
    "Message",
    "actions",
    "button",
    "chunks",
    "clip",
    "context",
    "danger_dialog",
    "date_token",
    "escape",
    "fields",
    "header",
    "message",
    "section",
    "text_message",
]

Message = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_BUTTON = 75


def escape(text: object) -> str:
    """Text made safe for Slack mrkdwn: `&`, `<` and `>` escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """The text cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section (text already escaped)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def header(text: str) -> dict[str, Any]:
    """A header (plain text)."""
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": clip(text, MAX_HEADER), "emoji": True},
    }


def context(*texts: str) -> dict[str, Any]:
    """A context block of mrkdwn texts (at most 10)."""
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(t, MAX_SECTION)} for t in texts[:10]],
    }


def fields(pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Sections of `*label*\\nvalue` fields, ten a section."""
    blocks = []
    for start in range(0, len(pairs), 10):
        chunk = pairs[start : start + 10]
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": clip(f"*{k}*\n{v}", 2000)} for k, v in chunk],
            }
        )
    return blocks


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    """A button carrying `value`."""
    found: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, MAX_BUTTON), "emoji": True},
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        found["style"] = style
    return found


def actions(block_id: str, *elements: dict[str, Any]) -> dict[str, Any]:
    """An actions block."""
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def danger_dialog(title: str, text: str, *, yes: str, no: str) -> dict[str, Any]:
    """Slack's confirm dialog for a danger button (`text` is mrkdwn, already escaped)."""
    return {
        "title": {"type": "plain_text", "text": clip(title, 100)},
        "text": {"type": "mrkdwn", "text": clip(text, 300)},
        "confirm": {"type": "plain_text", "text": yes},
        "deny": {"type": "plain_text", "text": no},
        "style": "danger",
    }


def message(text: str, blocks: list[dict[str, Any]], **extra: Any) -> Message:
    """A message: its notification text and its blocks (at most 50)."""
    return {"text": clip(text, 3000), "blocks": blocks[:MAX_BLOCKS], **extra}


def text_message(text: str, **extra: Any) -> Message:
    """A one-section message (the text is mrkdwn the caller already escaped)."""
    return message(text, [section(text)], **extra)


def chunks(text: str, size: int = MAX_SECTION) -> list[str]:
    """The text cut into pieces of at most `size` characters, at line ends where possible."""
    found, current = [], ""
    for line in text.splitlines(keepends=True):
        if len(current) + len(line) > size and current:
            found.append(current)
            current = ""
        current += line[:size]
    return [*found, current] if current else found or [""]


def date_token(
    moment: datetime, fallback: str, *, style: str = "{date_short_pretty} at {time}"
) -> str:
    """A Slack date token: shown in each reader's own time zone, `fallback` where it can't be."""
    return f"<!date^{int(moment.timestamp())}^{style}|{escape(fallback)}>"
