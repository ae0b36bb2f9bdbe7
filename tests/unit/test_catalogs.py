"""The translation catalogs: complete, with the same placeholders, and up to date with the code."""

from __future__ import annotations

from decimal import Decimal

from bot.catalogs import problems
from bot.i18n import _, language_of_locale, money, ngettext, speaking


def test_every_message_in_the_code_is_translated_with_the_same_placeholders() -> None:
    found = problems()
    assert not found, "\n".join(["run `python3 tasks.py i18n`, then translate:", *found[:60]])


def test_a_slack_locale_names_the_language_spoken() -> None:
    assert language_of_locale("ko-KR") == "ko"
    assert language_of_locale("en-GB") == "en"
    assert language_of_locale("fr-FR") is None
    assert language_of_locale(None) is None


def test_english_is_the_code_itself_and_unknown_languages_fall_back_to_it() -> None:
    with speaking("xx") as spoken:
        assert spoken == "en"
        assert _("Plan") == "Plan"
        assert ngettext("{n} day", "{n} days", 2) == "{n} days"
        assert money(Decimal("699")) == "$699.00"


def test_korean_writes_amounts_in_dollars_its_own_way() -> None:
    with speaking("ko"):
        assert money(Decimal("1234.5")) == "US$1,234.50"
