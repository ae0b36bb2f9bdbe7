"""Block Kit primitives, one family for every message planbot builds.

Every piece of user-supplied text (app names, display names, what was typed) goes through
`escape`, so an app named `<!channel>` pings nobody. Slack's limits are kept here: at most 50
blocks a message, 3000 characters a section, 10 fields of 2000, 150 a header, 75 a button;
counted, as Slack may count them, in UTF-16 code units (an emoji or a rare CJK character beyond
the Basic Multilingual Plane takes two), and never cut between the two halves of one.

Times are shown with Slack's date token (`date_token`): each reader sees their own time zone,
and the fallback text (shown where the token is not rendered, and by the local shell) names the
zone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.i18n import _

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
    "plain_dates",
    "section",
    "text_message",
    "units",
]

Message = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_BUTTON = 75


def escape(text: object) -> str:
    """Text made safe for Slack mrkdwn: `&`, `<` and `>` escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def units(text: str) -> int:
    """The length of `text` in UTF-16 code units, as Slack counts it."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _cut(text: str, limit: int) -> str:
    """The longest start of `text` of at most `limit` UTF-16 code units."""
    if len(text) * 2 <= limit:
        return text
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return text[:index]
    return text


def clip(text: str, limit: int) -> str:
    """The text cut to `limit` UTF-16 code units, with an ellipsis when cut."""
    return text if units(text) <= limit else _cut(text, limit - 1) + "…"


_DATE_TOKEN = re.compile(r"<!date\^[0-9]+\^[^|>]*\|([^>]*)>")


def plain_dates(text: str) -> str:
    """The text with each date token replaced by its fallback (for plain-text places)."""
    return _DATE_TOKEN.sub(lambda match: match.group(1), text)


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
        "value": _cut(value, 2000),
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
        "text": {"type": "mrkdwn", "text": clip(plain_dates(text), 300)},
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
    """The text cut into pieces of at most `size` UTF-16 code units, at line ends where
    possible."""
    found, current, used = [], "", 0
    for line in text.splitlines(keepends=True):
        line = _cut(line, size)
        length = units(line)
        if used + length > size and current:
            found.append(current)
            current, used = "", 0
        current += line
        used += length
    return [*found, current] if current else found or [""]


def date_token(moment: datetime, fallback: str, *, style: str | None = None) -> str:
    """A Slack date token: shown in each reader's own time zone, `fallback` where it can't be
    (`style`: Slack's, by default the day and the time as the current language says them)."""
    if style is None:
        # Translators: Slack's date token format; keep {date_short_pretty} and {time} as they are
        style = _("{date_short_pretty} at {time}")
    return f"<!date^{int(moment.timestamp())}^{style}|{escape(fallback)}>"
