"""The `/plan` grammar in Korean: Korean command words (in any mix with English ones), commands
typed with the Korean keyboard layout left on, and its messages and help in either language."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.grammar import (
    SUBCOMMANDS,
    AccessGrant,
    AccessList,
    AccessRevoke,
    AppUsage,
    Bill,
    CommandSyntaxError,
    Configure,
    Create,
    Disable,
    Enable,
    Extend,
    Help,
    History,
    Lang,
    ListApps,
    Migrate,
    Principal,
    Status,
    Upgrade,
    help_text,
    parse,
    qwerty,
    resolve_subcommand,
)
from bot.i18n import speaking
from tests.unit.test_reading import addon_help

HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")

#: every Korean word for each subcommand, as the Korean help lists them
KOREAN = {
    "help": ("도움말", "도움"),
    "list": ("목록",),
    "status": ("상태", "정보"),
    "history": ("이력", "기록"),
    "bill": ("청구", "청구서", "명세서"),
    "usage": ("사용량",),
    "upgrade": ("업그레이드",),
    "config": ("구성", "설정", "기능구성"),
    "extend": ("연장",),
    "create": ("생성", "만들기"),
    "disable": ("비활성화",),
    "enable": ("활성화", "재활성화"),
    "migrate": ("전환", "과금전환"),
    "access": ("권한",),
    "lang": ("언어",),
}

#: the English words of a command, each beside the Korean words that mean the same
WORDS = {
    "upgrade": KOREAN["upgrade"],
    "config": KOREAN["config"],
    "standard": ("스탠다드", "표준", "스탠다드버전"),
    "premium": ("프리미엄", "프리미엄버전"),
    "edition": ("버전", "플랜", "에디션"),
    "access": KOREAN["access"],
    "grant": ("부여", "추가"),
    "revoke": ("회수", "제거", "삭제"),
    "list": ("목록",),
    "viewer": ("조회자",),
    "operator": ("운영자",),
    "admin": ("관리자",),
    "page": ("페이지",),
    "limit": ("개수",),
    "days": ("일수", "기간"),
    "history": KOREAN["history"],
    "usage": KOREAN["usage"],
    "lang": KOREAN["lang"],
    "ko": ("한국어", "한글", "korean"),
    "en": ("영어", "english"),
    "auto": ("자동",),
}

ALICE = "<@U0123ABC|alice>"
#: English commands and what each means
COMMANDS = [
    ("upgrade 1400123456 premium", Upgrade("1400123456", "premium")),
    ("upgrade demo-chat standard", Upgrade("demo-chat", "standard")),
    ("config demo-chat edition=premium", Configure("demo-chat", "premium")),
    (
        "config demo-chat edition=standard retention=30",
        Configure("demo-chat", "standard", (("retention", "30"),)),
    ),
    (
        "access grant <@U0123ABC|alice> operator",
        AccessGrant(Principal("user", "U0123ABC", "alice"), "operator"),
    ),
    (
        "access revoke <@U0123ABC|alice> admin",
        AccessRevoke(Principal("user", "U0123ABC", "alice"), "admin"),
    ),
    ("access list", AccessList()),
    ("list premium page=2", ListApps("premium", 2)),
    ("list standard", ListApps("standard")),
    ("history demo-chat limit=5", History("demo-chat", 5)),
    ("usage demo-chat days=30", AppUsage("demo-chat", 30)),
    ("lang ko", Lang("ko")),
    ("lang en", Lang("en")),
    ("lang auto", Lang("auto")),
]


@pytest.mark.parametrize("name", sorted(KOREAN))
def test_every_korean_subcommand_word_is_the_subcommand(name: str) -> None:
    assert set(SUBCOMMANDS[name].korean) == set(KOREAN[name])
    for word in KOREAN[name]:
        assert resolve_subcommand(word) == name
        # as macOS may send it: decomposed into jamo
        assert resolve_subcommand(unicodedata.normalize("NFD", word)) == name


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("업그레이드 1400123456 프리미엄", Upgrade("1400123456", "premium")),
        ("업그레이드 1400123456 표준", Upgrade("1400123456", "standard")),
        ("구성 demo-chat 버전=프리미엄", Configure("demo-chat", "premium")),
        ("설정 demo-chat edition=스탠다드", Configure("demo-chat", "standard")),
        ("연장 demo-dev", Extend("demo-dev")),
        ("비활성화 demo-chat", Disable("demo-chat")),
        ("활성화 demo-old", Enable("demo-old")),
        ("재활성화 demo-old", Enable("demo-old")),
        ("전환 demo-legacy", Migrate("demo-legacy")),
        ("생성 고객 지원", Create("고객 지원")),
        ("목록", ListApps()),
        ("목록 프리미엄", ListApps("premium")),
        ("목록 개발", ListApps("developer")),
        ("목록 일시중단 페이지=3", ListApps("suspended", 3)),
        ("목록 고객", ListApps("고객")),
        ("상태 1400123456", Status("1400123456")),
        ("이력 demo-chat 50", History("demo-chat", 50)),
        ("청구 demo-chat 2025-03", Bill("demo-chat", (2025, 3))),
        ("사용량 demo-chat 30", AppUsage("demo-chat", 30)),
        ("도움말", Help(None)),
        ("도움말 업그레이드", Help("upgrade")),
        ("업그레이드 도움말", Help("upgrade")),
        ("권한", AccessList()),
        (
            "권한 부여 <@U0123ABC|alice> 운영자",
            AccessGrant(Principal("user", "U0123ABC", "alice"), "operator"),
        ),
        ("언어", Lang(None)),
        ("언어 한국어", Lang("ko")),
        ("lang 자동", Lang("auto")),
        ("language EN", Lang("en")),
    ],
)
def test_korean_commands(text: str, command: object) -> None:
    assert parse(text) == command


@st.composite
def _mixed(draw: st.DrawFn) -> tuple[str, object]:
    english, meant = draw(st.sampled_from(COMMANDS))
    words = []
    for word in english.split(" "):
        key, eq, value = word.partition("=")
        if eq:
            key = draw(st.sampled_from((key, *WORDS.get(key, ()))))
            value = draw(st.sampled_from((value, *WORDS.get(value, ()))))
            words.append(f"{key}={value}")
        else:
            words.append(draw(st.sampled_from((word, *WORDS.get(word, ())))))
    return " ".join(words), meant


@given(_mixed())
def test_any_mix_of_korean_and_english_words_means_the_same(case: tuple[str, object]) -> None:
    text, meant = case
    assert parse(text) == meant


def test_developer_in_korean_is_refused_as_the_english_is() -> None:
    for word in ("개발", "developer"):
        with speaking("ko"), pytest.raises(CommandSyntaxError) as caught:
            parse(f"업그레이드 1400123456 {word}")
        assert "/plan create" in caught.value.message and HANGUL.search(caught.value.message)


# --------------------------------------------------------------------------------------------------
# The Korean keyboard layout left on

#: each Latin key of the 2-set layout and the jamo it types
_KEYS = dict(
    zip(
        "qwertyuiopasdfghjklzxcvbnm",
        "ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔㅁㄴㅇㄹㅎㅗㅓㅏㅣㅋㅌㅊㅍㅠㅜㅡ",
        strict=True,
    )
)
_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_FINALS = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"


def typed_on_korean_layout(text: str, *, composed: bool) -> str:
    """What typing `text` (lower-case letters) sends with the 2-set layout on: the jamo one by
    one, or (`composed`) as an input method composes them: a consonant and the vowel after it
    make a syllable, which takes the next consonant as its final unless a vowel follows it."""
    jamo = [_KEYS.get(ch, ch) for ch in text]
    if not composed:
        return "".join(jamo)
    out: list[str] = []
    i = 0
    while i < len(jamo):
        ch = jamo[i]
        vowel = jamo[i + 1] if i + 1 < len(jamo) else ""
        if ch and ch in _INITIALS and vowel and vowel in _MEDIALS:
            final = jamo[i + 2] if i + 2 < len(jamo) else ""
            after = jamo[i + 3] if i + 3 < len(jamo) else ""
            takes = bool(final) and final in _FINALS.strip() and not (after and after in _MEDIALS)
            code = 0xAC00 + (_INITIALS.index(ch) * 21 + _MEDIALS.index(vowel)) * 28
            code += _FINALS.index(final) if takes else 0
            out.append(chr(code))
            i += 3 if takes else 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def test_the_examples() -> None:
    assert typed_on_korean_layout("upgrade", composed=False) == "ㅕㅔㅎㄱㅁㅇㄷ"
    assert typed_on_korean_layout("bill", composed=False) == "ㅠㅑㅣㅣ"
    assert typed_on_korean_layout("status", composed=True) == "ㄴㅅㅁ션"
    assert typed_on_korean_layout("config", composed=True) == "채ㅜ럏"
    for typed, meant in (
        ("ㅕㅔㅎㄱㅁㅇㄷ", "upgrade"),
        ("ㅠㅑㅣㅣ", "bill"),
        ("ㄴㅅㅁ션", "status"),
        ("채ㅜ럏", "config"),
        ("ㅔㄱ드ㅑㅕㅡ", "premium"),
        ("ㅕㅔㅎ개ㅇㄷ", "upgrode"),  # a slip on top: still read key by key
    ):
        assert qwerty(typed) == meant
    assert qwerty("upgrade") is None and qwerty("업그레이드!") is None


@given(
    st.sampled_from(sorted(SUBCOMMANDS)),
    st.booleans(),
    st.sampled_from(["", " 1400123456 ㅔㄱ드ㅑㅕㅡ", " demo-chat", ' "고객 지원"']),
)
def test_a_subcommand_typed_on_the_korean_layout_gets_did_you_mean(
    name: str, composed: bool, rest: str
) -> None:
    typed = typed_on_korean_layout(name, composed=composed)
    with pytest.raises(CommandSyntaxError) as caught:
        parse(typed + rest)
    error = caught.value
    assert error.suggestion == name
    assert f"`/plan {name}" in error.message and "Korean keyboard layout" in error.message
    if "ㅔㄱ드" in rest:  # an argument that is one of the grammar's words is given back meant
        assert f"`/plan {name} 1400123456 premium`" in error.message
    if "고객" in rest:  # an app name stays as typed
        assert "고객 지원" in error.message


def test_the_suggestion_speaks_the_persons_language() -> None:
    with speaking("ko"), pytest.raises(CommandSyntaxError) as caught:
        parse("ㅕㅔㅎㄱㅁㅇㄷ 1400123456 ㅔㄱ드ㅑㅕㅡ")
    message = caught.value.message
    assert "한글 자판" in message and "`/plan upgrade 1400123456 premium`" in message
    assert "Korean keyboard" not in message


def test_settings_and_mentions_are_given_back_as_meant() -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse("ㅊㅐㅜ랴ㅎ demo-chat ㄷ얏ㅑㅐㅜ=ㅔㄱ드ㅑㅕㅡ")
    assert "`/plan config demo-chat edition=premium`" in caught.value.message
    with pytest.raises(CommandSyntaxError) as caught:
        parse("ㅁㅊㅊㄷㄴㄴ ㅎㄱ무ㅅ <@U0123ABC|alice> ㅐㅔㄷㄱㅁ색")
    message = caught.value.message
    assert "`/plan access grant &lt;@U0123ABC|alice&gt; operator`" in message, message


def test_plans_and_roles_typed_on_the_korean_layout_are_suggested() -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse("upgrade 1400123456 ㅔㄱ드ㅑㅕㅡ")
    assert caught.value.suggestion == "premium"
    with pytest.raises(CommandSyntaxError) as caught:
        parse("access grant <@U0123ABC|alice> ㅐㅔㄷㄱㅁ색")
    assert caught.value.suggestion == "operator"


# --------------------------------------------------------------------------------------------------
# Refusals and help, in each language


@pytest.mark.parametrize(
    "text",
    [
        "frobnicate",
        "업그레드",
        "1400123456",
        "upgrade",
        "업그레이드 1400123456",
        "구성 demo-chat",
        "이력 demo-chat 0",
        "청구 demo-chat 2025-13",
        "언어 klingon",
        "권한 부여 @alice 운영자",
        "업그레이드 1400123456 골드",
    ],
)
def test_refusals_say_what_to_do_instead_in_each_language(text: str) -> None:
    with pytest.raises(CommandSyntaxError) as english:
        parse(text)
    with speaking("ko"), pytest.raises(CommandSyntaxError) as korean:
        parse(text)
    assert "`/plan" in english.value.message and "`/plan" in korean.value.message
    assert english.value.suggestion == korean.value.suggestion
    shown = re.sub(r"`[^`]*`|“[^”]*”", "", korean.value.message)  # what was typed, syntax aside
    assert HANGUL.search(shown), korean.value.message
    assert not re.search(r"\b(the|is|not|give|type|unknown|needs)\b", shown, re.I), shown
    assert not HANGUL.search(re.sub(r"`[^`]*`|“[^”]*”", "", english.value.message))


def test_the_korean_help_lists_the_korean_words() -> None:
    with speaking("ko"):
        overview = help_text()
        upgrade = help_text(topic="업그레이드")
        configure = help_text(topic="구성", addons=addon_help())
    for name, words in KOREAN.items():
        assert all(f"`{word}`" in overview for word in words), name
    assert "`업그레이드`" in upgrade and "/plan upgrade" in upgrade
    assert "역할이 필요합니다" in upgrade
    # the shipped catalog's add-ons by their Korean names, typed by their own
    assert "`history_retention` (메시지 이력 보관 기간)" in configure
    assert "`group_members` (그룹당 멤버 수)" in configure
    assert "(Members per group)" in help_text(topic="config", addons=addon_help())
    english = help_text()
    assert "업그레이드" not in re.sub(r"`[^`]*`", "", english)
    assert "`업그레이드`" not in english and "Upgrade a developer app" in english
