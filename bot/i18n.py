"""The language planbot speaks to each reader: gettext catalogs, and numbers, money and days.

Every sentence for people is written in English in the code and marked for translation:

    _("{app} was upgraded to {plan}.").format(app=..., plan=...)
    ngettext("{n} day", "{n} days", n).format(n=n)
    LABELS = {Field.PLAN: N_("Plan")}     # marked where it is defined, translated where used: _(LABELS[f])

`_` translates into the language of the current context, set with `speaking(language)` by
whoever knows the reader (a listener for the person who asked, the delivery worker for a
channel or a person it writes to). Outside any `speaking`, English.

The catalogs are gettext `.po` files in `bot/locale/<language>/LC_MESSAGES/planbot.po`,
managed with Babel (`python3 tasks.py i18n`: extract the messages from the code, update each
catalog); they are compiled in memory the first time a language is spoken, so no compiled
catalog is ever committed or stale. Fuzzy entries are not used.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

from core import format_money

__all__ = [
    "DOMAIN",
    "ENGLISH",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "_",
    "day",
    "language",
    "language_of_locale",
    "money",
    "ngettext",
    "number",
    "speaking",
]

#: the languages planbot speaks; the first is the language of the code's own sentences
LANGUAGES: tuple[str, ...] = ("en", "ko")
ENGLISH = "en"
DOMAIN = "planbot"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_current: ContextVar[str] = ContextVar("planbot_language", default=ENGLISH)


def N_(message: str) -> str:
    """Mark `message` for translation where it is defined; `_` translates it where it is used."""
    return message


def _(message: str) -> str:
    """`message` in the current language (itself in English, or when it has no translation)."""
    spoken = _current.get()
    if spoken == ENGLISH:
        return message
    return _translations(spoken).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for `n` things, in the current language."""
    spoken = _current.get()
    if spoken == ENGLISH:
        return singular if n == 1 else plural
    return _translations(spoken).ngettext(singular, plural, n)


def language() -> str:
    """The language of the current context."""
    return _current.get()


@contextmanager
def speaking(spoken: str | None) -> Iterator[str]:
    """Speak `spoken` (one of `LANGUAGES`; English when None or unknown) inside the block."""
    chosen = spoken if spoken in LANGUAGES else ENGLISH
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def language_of_locale(locale: str | None) -> str | None:
    """The language planbot speaks for a Slack locale (`ko-KR` is `ko`), None when it speaks none."""
    if not locale:
        return None
    base = locale.replace("_", "-").split("-", 1)[0].strip().lower()
    return base if base in LANGUAGES else None


@cache
def _translations(spoken: str) -> gettext.NullTranslations:
    """The catalog of `spoken`, compiled in memory from its `.po` on first use."""
    path = LOCALE_DIR / spoken / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=spoken, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@cache
def _locale(spoken: str) -> Locale:
    return Locale.parse({"en": "en_US", "ko": "ko_KR"}.get(spoken, spoken))


def number(value: int | Decimal | float) -> str:
    """A number as the current language writes it (`12,345`)."""
    return format_decimal(value, locale=_locale(_current.get()))


def money(amount: Decimal, currency: str = "USD") -> str:
    """An amount in its currency, rounded to cents, as the current language writes it."""
    spoken = _current.get()
    if spoken == ENGLISH:
        return format_money(amount, currency)
    cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return format_currency(cents, currency, locale=_locale(spoken))


def day(value: date) -> str:
    """A calendar day as the current language writes it (`Nov 30, 2026`, `2026. 11. 30.`)."""
    return format_date(value, format="medium", locale=_locale(_current.get()))
