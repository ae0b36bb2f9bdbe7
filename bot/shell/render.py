"""Block Kit drawn as terminal text, for `planbot shell` (pure: no I/O, no terminal queries).

`render_message` takes what the bot would send to Slack (a `chat.postMessage` body, an ephemeral
ack body, a `response_url` payload) and returns its text for a terminal, with every button numbered
so a person can press it by typing its number. Input is trusted to be nothing in particular: any
JSON-like value renders to something, never an exception; unknown blocks become a short placeholder.
Control characters in the input (an app named with an escape sequence, say) are shown as `�`, so
the only escape codes in the output are the colours this module adds, and none when `color=False`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.i18n import _

__all__ = ["Button", "Rendered", "confirm_prompt", "render_message", "render_mrkdwn"]

_MIN_WIDTH = 20
_MAX_WIDTH = 1000
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_PRIVATE_RE = re.compile("[\ue000-\ue01f]")
_SLOT_RE = re.compile("\ue000([0-9]+)\ue001")
_ENTITY_RE = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_CODE_SPAN_RE = re.compile(r"`([^`\n]+)`")
_CONTROL_RE = re.compile(r"<([^<>\n]+)>")
_EMOJI_RE = re.compile(r":([a-z0-9_+\-]+):")
_BULLET_RE = re.compile(r"( *)([•◦▪▫‣∙·*\-]|[0-9]{1,3}[.)]) +(?=\S)")
_QUOTE_RE = re.compile(r"(?:>|&gt;) ?")

# Emphasis: Slack's rule is that the marker hugs the text and sits at a word boundary.
_EMPHASIS = (
    ("bold", re.compile(r"(?<![^\W_])(?<!\*)\*(?=\S)([^*\n]+?)(?<=\S)\*(?!\*)(?![^\W_])")),
    ("italic", re.compile(r"(?<!\w)_(?=\S)([^_\n]+?)(?<=\S)_(?!\w)")),
    ("strike", re.compile(r"(?<![^\W_])(?<!~)~(?=\S)([^~\n]+?)(?<=\S)~(?!~)(?![^\W_])")),
)
# Emphasis is first marked with private-use characters (not word characters, so the boundary rule
# still sees nested markers), then drawn.
_MARKS = {
    "bold": ("\ue010", "\ue018"),
    "italic": ("\ue011", "\ue019"),
    "strike": ("\ue012", "\ue01a"),
}
# SGR codes, each closed by its own reset so styles nest.
_SGR = {
    "bold": ("1", "22"),
    "dim": ("2", "22"),
    "italic": ("3", "23"),
    "underline": ("4", "24"),
    "strike": ("9", "29"),
    "red": ("31", "39"),
    "green": ("32", "39"),
    "yellow": ("33", "39"),
    "blue": ("34", "39"),
    "cyan": ("36", "39"),
}
_ATTACHMENT_COLORS = {"good": "green", "warning": "yellow", "danger": "red"}

_EMOJI = {
    "warning": "⚠️",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "lock": "🔒",
    "unlock": "🔓",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "rocket": "🚀",
    "tada": "🎉",
    "moneybag": "💰",
    "money_with_wings": "💸",
    "calendar": "📆",
    "date": "📅",
    "information_source": "ℹ️",
    "bulb": "💡",
    "arrow_right": "➡️",
    "arrow_up": "⬆️",
    "recycle": "♻️",
    "zzz": "💤",
    "red_circle": "🔴",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "white_circle": "⚪",
    "bell": "🔔",
    "clipboard": "📋",
    "receipt": "🧾",
    "gear": "⚙️",
    "stopwatch": "⏱️",
    "wave": "👋",
    "eyes": "👀",
    "sparkles": "✨",
    "construction": "🚧",
    "busts_in_silhouette": "👥",
    "bust_in_silhouette": "👤",
    "pencil2": "✏️",
    "wastebasket": "🗑️",
    "leftwards_arrow_with_hook": "↩️",
    "heavy_multiplication_x": "✖️",
    "ballot_box_with_check": "☑️",
    "key": "🔑",
}


@dataclass(frozen=True)
class Button:
    """A button found in a message, numbered so the person can press it by typing the number."""

    number: int
    text: str
    action_id: str
    value: str | None
    style: str | None
    confirm: dict[str, Any] | None
    block_id: str | None
    url: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A message drawn as terminal text, and its buttons in the order they are numbered."""

    text: str
    buttons: list[Button] = field(default_factory=list)


def render_message(
    message: dict[str, Any], *, color: bool, width: int = 80, start: int = 1
) -> Rendered:
    """Draw a Slack message body (`text`, `blocks`, `attachments`) as text, numbering buttons."""
    painter = _Painter(color, _clamp_width(width), start)
    msg = message if isinstance(message, dict) else {}
    lines: list[str] = []
    blocks = _as_list(msg.get("blocks"))
    if blocks:
        lines += painter.blocks(blocks, painter.width)
    else:
        text = msg.get("text")
        if isinstance(text, str) and text:
            if msg.get("mrkdwn") is False:
                lines += painter.plain(text, painter.width)
            else:
                lines += painter.mrkdwn(text, painter.width)
    for attachment in _as_list(msg.get("attachments")):
        if isinstance(attachment, dict):
            lines += painter.attachment(attachment)
    if not lines:
        gone = msg.get("delete_original") is True
        lines.append(painter.paint(_("(message deleted)") if gone else _("(empty message)"), "dim"))
    return Rendered("\n".join(lines), painter.buttons)


def render_mrkdwn(text: str, *, color: bool, width: int = 80) -> str:
    """Draw one mrkdwn string as terminal text, wrapped to `width`."""
    painter = _Painter(color, _clamp_width(width), 1)
    return "\n".join(painter.mrkdwn(text if isinstance(text, str) else "", painter.width))


def confirm_prompt(button: Button, *, color: bool = False, width: int = 80) -> str | None:
    """The button's Slack `confirm` dialog as a yes/no question (ending `[y/N] `), or None."""
    dialog = button.confirm
    if not isinstance(dialog, dict):
        return None
    painter = _Painter(color, _clamp_width(width), 1)
    title = _plain_text(dialog.get("title")) or _("Are you sure?")
    yes = _plain_text(dialog.get("confirm")) or _("Yes")
    no = _plain_text(dialog.get("deny")) or _("Cancel")
    lines = painter.plain(title, painter.width, "bold")
    lines += painter.text_object(dialog.get("text"), painter.width)
    yes_style = "red" if dialog.get("style") == "danger" else None
    yes_shown = painter.paint(_clean(yes), yes_style) if yes_style else _clean(yes)
    # Translators: the last line of a yes/no question; y and n stay the keys to type
    lines.append(_("{yes} (y) or {no} (n)? [y/N] ").format(yes=yes_shown, no=_clean(no)))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Small helpers over untrusted JSON


def _clamp_width(width: object) -> int:
    if not isinstance(width, int) or isinstance(width, bool):
        return 80
    return min(max(_MIN_WIDTH, width), _MAX_WIDTH)


def _as_list(value: object) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return []
    return value if isinstance(value, list) else []


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _plain_text(value: object) -> str:
    """The text of a text object (or a bare string), without rendering it."""
    if isinstance(value, dict):
        value = value.get("text")
    return value if isinstance(value, str) else ""


def _clean(text: str) -> str:
    """Make input safe for a terminal: tabs to spaces, other control characters to `�`."""
    text = _PRIVATE_RE.sub("", text.replace("\r\n", "\n").replace("\t", "    "))
    return "".join(
        ch
        if ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cs")
        else "\N{REPLACEMENT CHARACTER}"
        for ch in text
    )


def _unescape(text: str) -> str:
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group(1)], text)


def _emoji(text: str) -> str:
    return _EMOJI_RE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), text)


def _char_width(ch: str) -> int:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _width(text: str) -> int:
    return sum(_char_width(ch) for ch in _ANSI_RE.sub("", text))


def _split_long(word: str, room: int) -> list[str]:
    """Cut a word wider than `room` into pieces that fit, keeping escape codes whole."""
    pieces: list[str] = []
    current, used = "", 0
    for part in re.split(r"(\x1b\[[0-9;]*m)", word):
        if part.startswith("\x1b["):
            current += part
            continue
        for ch in part:
            w = _char_width(ch)
            if used + w > room and used > 0:
                pieces.append(current)
                current, used = "", 0
            current += ch
            used += w
    if current:
        pieces.append(current)
    return pieces


def _wrap(line: str, width: int, first: str = "", rest: str | None = None) -> list[str]:
    """Wrap one line of (possibly coloured) text to `width`, with prefixes for first/other lines."""
    rest = first if rest is None else rest
    stripped = line.lstrip(" ")
    indent = " " * (len(line) - len(stripped))
    words = [word for word in stripped.split(" ") if word]
    out: list[str] = []
    current = first + indent
    has_word = False
    for word in words:
        room = width - _width(current) - (1 if has_word else 0)
        if _width(word) <= room:
            current += (" " if has_word else "") + word
            has_word = True
            continue
        if has_word:
            out.append(current)
            current, has_word = rest + indent, False
            room = width - _width(current)
        room = max(room, 1)
        pieces = _split_long(word, room)
        for piece in pieces[:-1]:
            out.append(current + piece)
            current = rest + indent
        current += pieces[-1] if pieces else ""
        has_word = True
    out.append(current.rstrip(" "))
    return out


# --------------------------------------------------------------------------------------------------
# The painter: one render pass, with its colour choice, width and button counter


class _Painter:
    """Draws blocks and text for one `render_message` call and collects its buttons."""

    def __init__(self, color: bool, width: int, start: int) -> None:
        self.color = color
        self.width = width
        self.next_number = start if isinstance(start, int) else 1
        self.buttons: list[Button] = []

    def paint(self, text: str, *styles: str | None) -> str:
        if not self.color or not text:
            return text
        for style in styles:
            if style in _SGR:
                on, off = _SGR[style]
                text = f"\x1b[{on}m{text}\x1b[{off}m"
        return text

    # -- text ---------------------------------------------------------------------------------

    def plain(
        self, text: str, width: int, style: str | None = None, emoji: bool = True
    ) -> list[str]:
        """Plain text: no formatting, wrapped."""
        cleaned = _clean(text)
        if emoji:
            cleaned = _emoji(cleaned)
        return [
            wrapped
            for line in cleaned.split("\n")
            for wrapped in _wrap(self.paint(line, style), width)
        ]

    def text_object(self, obj: object, width: int, style: str | None = None) -> list[str]:
        """A composition text object: `plain_text` as is, anything else as mrkdwn."""
        if isinstance(obj, str):
            return self.mrkdwn(obj, width)
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"]:
            return []
        if obj.get("type") == "plain_text":
            return self.plain(obj["text"], width, style, emoji=obj.get("emoji") is not False)
        lines = self.mrkdwn(obj["text"], width)
        return [self.paint(line, style) for line in lines] if style else lines

    def mrkdwn(self, text: str, width: int) -> list[str]:
        """Slack mrkdwn: code blocks, quotes, bullets, inline formatting, links and mentions."""
        parts = _clean(text).split("```")
        if len(parts) % 2 == 0:  # an unclosed fence is literal text
            parts[-2:] = [parts[-2] + "```" + parts[-1]]
        lines: list[str] = []
        for index, part in enumerate(parts):
            if index % 2:
                lines += self._code_block(part)
            else:
                if index:  # text right after a fence starts on a new line
                    part = part.lstrip(" ").removeprefix("\n")
                if index < len(parts) - 1:
                    part = part.rstrip(" ").removesuffix("\n")
                if part or len(parts) == 1:
                    lines += self._mrkdwn_lines(part, width)
        return lines

    def _code_block(self, code: str) -> list[str]:
        code = code[1:] if code.startswith("\n") else code
        code = code[:-1] if code.endswith("\n") else code
        return ["  " + self.paint(_unescape(line), "cyan") for line in code.split("\n")]

    def _mrkdwn_lines(self, text: str, width: int) -> list[str]:
        lines: list[str] = []
        for line in text.split("\n"):
            quote = _QUOTE_RE.match(line)
            if quote:
                bar = self.paint("│", "dim") + " "
                lines += _wrap(self.inline(line[quote.end() :]), width, bar, bar)
                continue
            bullet = _BULLET_RE.match(line)
            if bullet and not (bullet.group(2) == "*" and line.count("*") > 1):
                marker = bullet.group(2)
                marker = "•" if marker in ("*", "-") else marker
                head = bullet.group(1) + marker + " "
                body = self.inline(line[bullet.end() :])
                lines += _wrap(body, width, head, " " * _width(head))
                continue
            lines += _wrap(self.inline(line), width)
        return lines

    def inline(self, text: str) -> str:
        """Inline mrkdwn of one line: emphasis, code spans, `<...>` controls, entities, emoji."""
        text = _PRIVATE_RE.sub("", text)
        slots: list[str] = []

        def keep(rendered: str) -> str:
            slots.append(rendered)
            return f"\ue000{len(slots) - 1}\ue001"

        def code(match: re.Match[str]) -> str:
            inner = _unescape(match.group(1))
            return keep(self.paint(inner, "cyan") if self.color else f"`{inner}`")

        text = _CODE_SPAN_RE.sub(code, text)
        text = _CONTROL_RE.sub(lambda m: keep(self.control(m.group(1))), text)
        for name, pattern in _EMPHASIS:
            on, off = _MARKS[name]
            text = pattern.sub(f"{on}\\1{off}", text)
        for name, (on, off) in _MARKS.items():
            shown_on, shown_off = self._emphasis_codes(name)
            text = text.replace(on, shown_on).replace(off, shown_off)
        text = _emoji(_unescape(text))
        return _SLOT_RE.sub(lambda m: slots[int(m.group(1))], text)

    def _emphasis_codes(self, name: str) -> tuple[str, str]:
        """What opens and closes bold/italic/strike: SGR codes, or `~` / nothing without colour."""
        if self.color:
            on, off = _SGR[name]
            return f"\x1b[{on}m", f"\x1b[{off}m"
        return ("~", "~") if name == "strike" else ("", "")

    def _emphasis(self, name: str, inner: str) -> str:
        on, off = self._emphasis_codes(name)
        return f"{on}{inner}{off}"

    def control(self, body: str) -> str:
        """A `<...>` control sequence: mention, channel, special mention, date or link."""
        target, _sep, label = body.partition("|")
        target, label = _unescape(target), _unescape(label)
        if target.startswith("@"):
            return self.paint("@" + (label or target[1:]), "blue")
        if target.startswith("#"):
            return self.paint("#" + (label or target[1:]), "blue")
        if target.startswith("!"):
            command = target[1:]
            if command.startswith("subteam^"):
                name = label or command.removeprefix("subteam^")
                return self.paint(name if name.startswith("@") else "@" + name, "blue")
            if command.startswith("date^"):
                return label or command
            return self.paint("@" + (label or command), "blue")
        if not label or label == target or target == f"mailto:{label}":
            return self.paint(label or target, "underline")
        return f"{self.paint(label, 'underline')} ({target})"

    # -- blocks -------------------------------------------------------------------------------

    def blocks(self, blocks: list[Any], width: int) -> list[str]:
        lines: list[str] = []
        for block in blocks:
            if not isinstance(block, dict):
                lines.append(self.paint(_("[not a block]"), "dim"))
                continue
            kind = block.get("type")
            draw = _BLOCK_PAINTERS.get(kind) if isinstance(kind, str) else None
            if draw is None:
                name = _clean(kind)[:30] if isinstance(kind, str) else "?"
                lines.append(self.paint(_("[{name} block]").format(name=name), "dim"))
            else:
                lines += draw(self, block, width)
        return lines

    def _header(self, block: dict[str, Any], width: int) -> list[str]:
        lines = self.plain(_plain_text(block.get("text")), width, "bold")
        rule = "═" * min(width, max((_width(line) for line in lines), default=0))
        return [*lines, rule] if rule else lines

    def _section(self, block: dict[str, Any], width: int) -> list[str]:
        lines = self.text_object(block.get("text"), width)
        fields = [f for f in _as_list(block.get("fields")) if isinstance(f, (dict, str))]
        if fields:
            lines += self._fields(fields, width)
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            shown = self.element(accessory, _as_str(block.get("block_id")))
            lines += _wrap(shown, width, "  ", "  ")
        return lines

    def _fields(self, fields: list[Any], width: int) -> list[str]:
        if width < 40:
            return [line for f in fields for line in self.text_object(f, width)]
        gap = 3
        column = (width - gap) // 2
        lines: list[str] = []
        for i in range(0, len(fields), 2):
            left = self.text_object(fields[i], column)
            right = self.text_object(fields[i + 1], column) if i + 1 < len(fields) else []
            for row in range(max(len(left), len(right))):
                cell = left[row] if row < len(left) else ""
                if row < len(right):
                    cell += " " * (column - _width(cell) + gap) + right[row]
                lines.append(cell)
        return lines

    def _context(self, block: dict[str, Any], width: int) -> list[str]:
        pieces: list[str] = []
        for element in _as_list(block.get("elements")):
            if not isinstance(element, dict):
                continue
            if element.get("type") == "image":
                alt = _clean(_as_str(element.get("alt_text")) or "image")
                pieces.append(f"[{alt}]")
            elif element.get("type") == "plain_text":
                pieces.append(_emoji(_clean(_plain_text(element))))
            else:
                pieces.append(self.inline(_clean(_plain_text(element))))
        joined = " · ".join(piece for piece in pieces if piece)
        if not joined:
            return []
        return [
            self.paint(wrapped, "dim")
            for line in joined.split("\n")
            for wrapped in _wrap(line, width)
        ]

    def _divider(self, block: dict[str, Any], width: int) -> list[str]:
        return [self.paint("─" * width, "dim")]

    def _actions(self, block: dict[str, Any], width: int) -> list[str]:
        block_id = _as_str(block.get("block_id"))
        shown = [
            self.element(element, block_id)
            for element in _as_list(block.get("elements"))
            if isinstance(element, dict)
        ]
        if not shown:
            return []
        # Keep each element whole on a line when it fits; break lines only between elements.
        lines: list[str] = []
        current = ""
        for item in shown:
            candidate = f"{current}  {item}" if current else item
            if current and _width(candidate) > width:
                lines.append(current)
                candidate = item
            current = candidate
        lines.append(current)
        # `_wrap` would squeeze the double spaces, so only a single too-wide element goes through it.
        return [
            part
            for line in lines
            for part in (_wrap(line, width) if _width(line) > width else [line])
        ]

    def element(self, element: dict[str, Any], block_id: str | None) -> str:
        """An interactive element: a numbered button, or a short placeholder for the others."""
        kind = element.get("type")
        if kind == "button":
            return self._button(element, block_id)
        if kind == "image":
            return _("[image: {text}]").format(text=_clean(_as_str(element.get("alt_text")) or ""))
        hint = _plain_text(element.get("placeholder")) or _plain_text(element.get("text"))
        name = _clean(kind)[:30] if isinstance(kind, str) else "element"
        return self.paint(f"[{name}{': ' + _clean(hint) if hint else ''}]", "dim")

    def _button(self, element: dict[str, Any], block_id: str | None) -> str:
        number = self.next_number
        self.next_number += 1
        label = _emoji(_clean(_plain_text(element.get("text")))).replace("\n", " ") or _("(button)")
        style = _as_str(element.get("style"))
        url = _as_str(element.get("url"))
        confirm = element.get("confirm")
        self.buttons.append(
            Button(
                number=number,
                text=label,
                action_id=_as_str(element.get("action_id")) or "",
                value=_as_str(element.get("value")),
                style=style,
                confirm=confirm if isinstance(confirm, dict) else None,
                block_id=block_id,
                url=url,
            )
        )
        colour = {"danger": "red", "primary": "green"}.get(style or "")
        shown = f"[{number}] " + (self.paint(label, "bold", colour) if colour else label)
        return f"{shown} ({_clean(url)})" if url else shown

    def _rich_text(self, block: dict[str, Any], width: int) -> list[str]:
        lines: list[str] = []
        for element in _as_list(block.get("elements")):
            if not isinstance(element, dict):
                continue
            kind = element.get("type")
            if kind == "rich_text_list":
                lines += self._rich_list(element, width)
            elif kind == "rich_text_preformatted":
                lines += self._code_block(self._rich_inline(element, code=True))
            elif kind == "rich_text_quote":
                bar = self.paint("│", "dim") + " "
                for line in self._rich_inline(element).split("\n"):
                    lines += _wrap(line, width, bar, bar)
            else:
                for line in self._rich_inline(element).split("\n"):
                    lines += _wrap(line, width)
        return lines

    def _rich_list(self, element: dict[str, Any], width: int) -> list[str]:
        indent = element.get("indent")
        depth = indent if isinstance(indent, int) and 0 <= indent <= 8 else 0
        offset = element.get("offset")
        first = offset if isinstance(offset, int) and 0 <= offset < 10**6 else 0
        ordered = element.get("style") == "ordered"
        lines: list[str] = []
        items = [item for item in _as_list(element.get("elements")) if isinstance(item, dict)]
        for number, item in enumerate(items, start=first + 1):
            head = "  " * depth + (f"{number}. " if ordered else "• ")
            for i, line in enumerate(self._rich_inline(item).split("\n")):
                lead = head if i == 0 else " " * len(head)
                lines += _wrap(line, width, lead, " " * len(head))
        return lines

    def _rich_inline(self, section: dict[str, Any], code: bool = False) -> str:
        out: list[str] = []
        for element in _as_list(section.get("elements")):
            if not isinstance(element, dict):
                continue
            text = self._rich_element(element)
            style = element.get("style")
            if isinstance(style, dict) and not code:
                if style.get("code") is True:
                    text = self.paint(text, "cyan") if self.color else f"`{text}`"
                for name in ("bold", "italic", "strike"):
                    if style.get(name) is True:
                        text = self._emphasis(name, text) if text else text
            out.append(text)
        return "".join(out)

    def _rich_element(self, element: dict[str, Any]) -> str:
        kind = element.get("type")
        if kind == "text":
            return _clean(_as_str(element.get("text")) or "")
        if kind == "link":
            url = _clean(_as_str(element.get("url")) or "")
            label = _clean(_as_str(element.get("text")) or "")
            if not label or label == url:
                return self.paint(url, "underline")
            return f"{self.paint(label, 'underline')} ({url})"
        if kind == "emoji":
            return _rich_emoji(element)
        if kind in ("user", "usergroup", "channel"):
            key = {"user": "user_id", "usergroup": "usergroup_id", "channel": "channel_id"}[kind]
            sigil = "#" if kind == "channel" else "@"
            return self.paint(sigil + _clean(_as_str(element.get(key)) or "?"), "blue")
        if kind == "broadcast":
            return self.paint("@" + _clean(_as_str(element.get("range")) or "here"), "blue")
        if kind == "date":
            return _rich_date(element)
        if kind == "color":
            return _clean(_as_str(element.get("value")) or "")
        return ""

    # -- attachments (legacy, but bots still send them) ---------------------------------------

    def attachment(self, attachment: dict[str, Any]) -> list[str]:
        inner = self.width - 2
        lines: list[str] = []
        pretext = _as_str(attachment.get("pretext"))
        body: list[str] = []
        for key in ("author_name", "title"):
            value = _as_str(attachment.get(key))
            if value:
                body += self.plain(value, inner, "bold" if key == "title" else None)
        text = _as_str(attachment.get("text"))
        if text:
            body += self.mrkdwn(text, inner)
        for f in _as_list(attachment.get("fields")):
            if isinstance(f, dict):
                title, value = _as_str(f.get("title")) or "", _as_str(f.get("value")) or ""
                body += self.mrkdwn(f"*{title}*\n{value}" if title else value, inner)
        blocks = _as_list(attachment.get("blocks"))
        if blocks:
            body += self.blocks(blocks, inner)
        for element in _as_list(attachment.get("actions")):
            if isinstance(element, dict) and element.get("type") == "button":
                body.append(self._button(element, None))
        footer = _as_str(attachment.get("footer"))
        if footer:
            body += [self.paint(line, "dim") for line in self.mrkdwn(footer, inner)]
        if not body:
            fallback = _as_str(attachment.get("fallback"))
            if fallback:
                body = self.plain(fallback, inner)
        if pretext:
            lines += self.mrkdwn(pretext, self.width)
        colour = _ATTACHMENT_COLORS.get(_as_str(attachment.get("color")) or "")
        bar = self.paint("┃", colour or "dim") + " "
        lines += [bar + line for line in body]
        return lines

    def _image(self, block: dict[str, Any], width: int) -> list[str]:
        alt = _clean(_as_str(block.get("alt_text")) or "")
        title = _plain_text(block.get("title"))
        return _wrap(
            self.paint(_("[image: {text}]").format(text=_clean(title) or alt), "dim"), width
        )

    def _input(self, block: dict[str, Any], width: int) -> list[str]:
        label = _clean(_plain_text(block.get("label")))
        return _wrap(self.paint(_("[input: {label}]").format(label=label), "dim"), width)

    def _markdown(self, block: dict[str, Any], width: int) -> list[str]:
        text = _as_str(block.get("text"))
        return self.mrkdwn(text, width) if text else []

    def _file(self, block: dict[str, Any], width: int) -> list[str]:
        return [self.paint(_("[file]"), "dim")]

    def _video(self, block: dict[str, Any], width: int) -> list[str]:
        title = _clean(_plain_text(block.get("title")))
        return _wrap(self.paint(_("[video: {title}]").format(title=title), "dim"), width)


_BLOCK_PAINTERS: dict[str, Callable[[_Painter, dict[str, Any], int], list[str]]] = {
    "header": _Painter._header,
    "section": _Painter._section,
    "context": _Painter._context,
    "divider": _Painter._divider,
    "actions": _Painter._actions,
    "rich_text": _Painter._rich_text,
    "image": _Painter._image,
    "input": _Painter._input,
    "markdown": _Painter._markdown,
    "file": _Painter._file,
    "video": _Painter._video,
}


def _rich_emoji(element: dict[str, Any]) -> str:
    code = _as_str(element.get("unicode"))
    if code:
        try:
            return _clean("".join(chr(int(point, 16)) for point in code.split("-")))
        except (ValueError, OverflowError):
            pass
    name = _clean(_as_str(element.get("name")) or "")
    return _EMOJI.get(name, f":{name}:")


def _rich_date(element: dict[str, Any]) -> str:
    fallback = _as_str(element.get("fallback"))
    if fallback:
        return _clean(fallback)
    stamp = element.get("timestamp")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        try:
            return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
        except (ValueError, OverflowError, OSError):
            pass
    return _("(date)")
