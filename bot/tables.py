"""Monospace tables for Slack code blocks (and the shell, which draws them as they are).

Columns are padded by display width, not by `len`: a Hangul or CJK character takes two columns in
a monospace font (Unicode East Asian Width `W` or `F`) and a combining mark none, so a wide app
name would otherwise push every column after it out of line. The line of a bill (a run of days
charged alike) is drawn here once, for `/plan bill` and for the posted statements alike.
Rows are plain text: the caller escapes them for mrkdwn after padding, since Slack shows `&amp;`
as one column.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date

from bot.kit import clip, units

__all__ = [
    "LINE_WIDTH",
    "cell",
    "charge_rows",
    "fences",
    "fit",
    "pad",
    "span",
    "width",
]

#: the width of a bill line: span, days, plan, amount (the add-ons wrap to it)
LINE_WIDTH = 62
_SPAN = 9  # "Nov 01–30"
_DAYS = 7  # "30 days"
_LABEL = 24  # "premium (legacy billing)"
_AMOUNT = LINE_WIDTH - _SPAN - _DAYS - _LABEL - 6
_ADDON_INDENT = _SPAN + 2 + _DAYS + 2


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width(text: str) -> int:
    """The columns `text` takes in a monospace font."""
    return sum(_char_width(ch) for ch in text)


def fit(text: str, size: int) -> str:
    """`text` cut to at most `size` columns, with an ellipsis when cut."""
    if width(text) <= size:
        return text
    kept, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > size - 1:
            break
        kept.append(ch)
        used += w
    return "".join(kept) + "…"


def pad(text: str, size: int, *, right: bool = False) -> str:
    """`text` padded with spaces to `size` columns (on the left when `right`-aligned)."""
    room = " " * max(0, size - width(text))
    return room + text if right else text + room


def cell(value: object) -> str:
    """Text for a code block: one line, no backticks (which would end the block)."""
    return " ".join(str(value).split()).replace("`", "'")


def span(first: date | None, last: date | None) -> str:
    """'Nov 05', 'Nov 01–14', 'Nov 28–Dec 02' ('' when not known)."""
    if first is None or last is None:
        return ""
    if first == last:
        return f"{first:%b %d}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first:%b %d}–{last:%d}"
    return f"{first:%b %d}–{last:%b %d}"


def charge_rows(
    *,
    first: date | None,
    last: date | None,
    days: int,
    label: str,
    addons: Sequence[str],
    amount: str,
    projected: bool = False,
    indent: str = "",
) -> list[str]:
    """One line of a bill: dates, days, plan, amount (and 'projected'), with each add-on on a
    line of its own under the plan."""
    head = (
        f"{indent}{pad(span(first, last), _SPAN)}  {days:>2} day{'s' if days != 1 else ' '}  "
        f"{pad(fit(cell(label), _LABEL), _LABEL)}  {pad(fit(cell(amount), _AMOUNT), _AMOUNT, right=True)}"
    )
    rows = [head + ("  projected" if projected else "")]
    room = LINE_WIDTH - _ADDON_INDENT - 2
    rows += [f"{indent}{' ' * _ADDON_INDENT}+ {fit(cell(a), room)}" for a in addons if a]
    return rows


def fences(rows: Sequence[str], limit: int) -> list[str]:
    """The rows as code blocks of at most `limit` UTF-16 code units each (fences included)."""
    blocks: list[str] = []
    current: list[str] = []
    size = limit - 8  # the fences and their newlines
    for row in rows:
        row = clip(row, size)
        if current and units("\n".join([*current, row])) > size:
            blocks.append("```\n" + "\n".join(current) + "\n```")
            current = []
        current.append(row)
    if current:
        blocks.append("```\n" + "\n".join(current) + "\n```")
    return blocks
