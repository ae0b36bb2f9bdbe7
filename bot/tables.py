"""Monospace tables for Slack code blocks (and the shell, which draws them as they are).

Columns are padded by display width, not by `len`: a Hangul or CJK character takes two columns in
a monospace font (Unicode East Asian Width `W` or `F`) and a combining mark none, so a wide app
name would otherwise push every column after it out of line. The line of a bill (a run of days
charged alike) is drawn here once, for `/plan bill` and for the posted statements alike.
Rows are plain text: the caller escapes them for mrkdwn after padding, since Slack shows `&amp;`
as one column.

A bill line reads in the current language: its days and the projected mark are translated
and its columns are sized for them (in Korean the span is written `11/28~12/02` and the days
`30일`, a Hangul syllable taking two columns), so that every line is `LINE_WIDTH` wide.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date

from bot import i18n
from bot.i18n import _, ngettext
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
#: the columns in other languages: span, days, label, amount (the same line width)
_KOREAN_SPAN = 11  # "11/28~12/02"
_KOREAN_DAYS = 4  # "30일"


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
    if i18n.language() != i18n.ENGLISH:
        if first == last:
            return f"{first:%m/%d}"
        if (first.year, first.month) == (last.year, last.month):
            return f"{first:%m/%d}~{last:%d}"
        return f"{first:%m/%d}~{last:%m/%d}"
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
    english = i18n.language() == i18n.ENGLISH
    span_width, days_width = (_SPAN, _DAYS) if english else (_KOREAN_SPAN, _KOREAN_DAYS)
    amount_width = LINE_WIDTH - span_width - days_width - _LABEL - 6
    # Translators: the days of a bill's line, in a table column ("30 days", " 1 day ")
    counted = ngettext("{n:>2} day ", "{n:>2} days", days).format(n=days)
    head = (
        f"{indent}{pad(fit(span(first, last), span_width), span_width)}  "
        f"{pad(fit(counted, days_width), days_width)}  "
        f"{pad(fit(cell(label), _LABEL), _LABEL)}  "
        f"{pad(fit(cell(amount), amount_width), amount_width, right=True)}"
    )
    # Translators: marks a bill's line whose days are still to come
    rows = [head + ("  " + _("projected") if projected else "")]
    addon_indent = span_width + 2 + days_width + 2
    room = LINE_WIDTH - addon_indent - 2
    rows += [f"{indent}{' ' * addon_indent}+ {fit(cell(a), room)}" for a in addons if a]
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
