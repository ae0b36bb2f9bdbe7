"""Two languages in one workspace, end to end: a person whose Slack speaks Korean runs a whole
upgrade in Korean command words and reads every answer in Korean, while a person whose Slack
speaks English, at the same time, reads English; channel messages follow
`PLANBOT_CHANNEL_LANGUAGE`, whoever asked."""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Iterator
from typing import Any

import pytest

from fakes.slack import FakeSlack
from tests.e2e.conftest import AUDIT, Served, button_value, card_text, start_planbot, stop_planbot
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

KIM = "UKIM"  # Slack in Korean
ANN = "UANN"  # Slack in English
HANGUL = re.compile(r"[\uac00-\ud7a3]")
#: words of English sentences that no Korean text should hold (ids, amounts and code aside)
ENGLISH = frozenset(
    [
        "the",
        "a",
        "an",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "will",
        "would",
        "your",
        "you",
        "this",
        "that",
        "these",
        "to",
        "of",
        "and",
        "or",
        "for",
        "with",
        "by",
        "on",
        "at",
        "in",
        "from",
        "it",
        "its",
        "has",
        "have",
        "had",
        "not",
        "no",
        "can",
        "can't",
        "cannot",
        "nothing",
        "changed",
        "change",
        "changes",
        "upgraded",
        "upgrade",
        "confirm",
        "cancel",
        "preview",
        "cost",
        "costs",
        "billed",
        "bill",
        "month",
        "monthly",
        "day",
        "days",
        "now",
        "what",
        "before",
        "after",
        "plan",
        "app",
        "apps",
        "developer",
        "standard",
        "premium",
        "validity",
        "undone",
        "requested",
        "approved",
        "done",
    ]
)
#: words of Korean sentences an English text holds none of
KOREAN = re.compile(r"[\uac00-\ud7a3]")


def visible(message: dict[str, Any]) -> str:
    """What a person reads in a message, ids, mentions, dates, code and amounts aside."""
    text = card_text(message)
    text = re.sub(r"<[^>]*>", " ", text)  # mentions, channels, links, date tokens
    text = re.sub(r"`[^`]*`", " ", text)  # code: commands, ids, settings
    text = re.sub(r":[a-z0-9_+\-]+:", " ", text)  # emoji
    text = re.sub(r"(US)?\$[0-9][0-9,.]*|[0-9][0-9,.:\-/]*", " ", text)  # amounts, numbers
    return text.replace("planbot", " ")


def english_words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z']+", text)} & ENGLISH


def assert_korean(message: dict[str, Any]) -> None:
    text = visible(message)
    assert HANGUL.search(text), text
    assert not english_words(text), (english_words(text), text)


def assert_english(message: dict[str, Any]) -> None:
    text = visible(message)
    assert not KOREAN.search(text), text
    assert english_words(text), text


@pytest.fixture(scope="module", params=["ko", "en"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, str]]:
    """`planbot serve` whose channel messages are in `request.param`, Kim and Ann its admins."""
    channel_language = str(request.param)
    with FakeSlack() as slack:
        slack.users[KIM] = {"locale": "ko-KR"}
        slack.users[ANN] = {"locale": "en-US"}
        extra = {
            "PLANBOT_ADMINS": f"UADMIN,{KIM},{ANN}",
            "PLANBOT_CHANNEL_LANGUAGE": channel_language,
        }
        planbot = start_planbot(tmp_path_factory.mktemp("languages"), slack, extra=extra)
        try:
            # their locales are read in the background at start: wait until Kim is answered in
            # Korean (until then, the workspace's default)
            eventually(
                lambda: visible(planbot.command("도움말", user=KIM).json()),
                15,
                "Kim's locale read",
                until=HANGUL.search,
            )
            yield planbot, channel_language
        finally:
            stop_planbot(planbot)


def upgrade(planbot: Served, user: str, text: str, app_id: str, response: str) -> dict[str, Any]:
    """Preview and confirm an upgrade; what each step showed the person, and the audit."""
    answer = planbot.command(text, user=user, response=response)
    assert answer.status_code == 200, answer.text
    card = answer.json()
    request_id = button_value(card, "plan_confirm")
    assert (
        planbot.click("plan_confirm", request_id, user=user, response=response).status_code == 200
    )
    outcome = planbot.slack.wait_for_response(response, timeout=10)
    planbot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.body.get("channel") == AUDIT
            and app_id in str(c.body)
        ),
        timeout=10,
    )
    audit = [m for m in planbot.slack.messages(AUDIT) if app_id in str(m)]
    return {"card": card, "outcome": outcome, "audit": audit[0]}


def test_each_person_reads_their_own_language_and_channels_the_workspaces(
    served: tuple[Served, str],
) -> None:
    planbot, channel_language = served
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        korean = pool.submit(
            upgrade, planbot, KIM, "업그레이드 1400000021 프리미엄", "1400000021", "kim"
        )
        english = pool.submit(
            upgrade, planbot, ANN, "upgrade 1400000022 standard", "1400000022", "ann"
        )
        kim, ann = korean.result(), english.result()

    assert_korean(kim["card"])
    assert {"확인", "취소"} <= set(card_text(kim["card"]).split("\n")), "the buttons too"
    assert_korean(kim["outcome"])
    assert planbot.app("1400000021").plan == "premium"

    assert_english(ann["card"])
    assert_english(ann["outcome"])
    assert planbot.app("1400000022").plan == "standard"

    for audit in (kim["audit"], ann["audit"]):  # whoever asked: the channel's language
        if channel_language == "ko":
            assert_korean(audit)
        else:
            assert_english(audit)


def test_refusals_help_and_the_keyboard_layout_in_the_persons_language(
    served: tuple[Served, str],
) -> None:
    planbot, _ = served
    slip = planbot.command("ㅕㅔㅎㄱㅁㅇㄷ 1400000023 ㅔㄱ드ㅑㅕㅡ", user=KIM).json()
    assert "/plan upgrade 1400000023 premium" in card_text(slip)
    assert_korean(slip)
    assert planbot.app("1400000023").plan == "developer", "a refusal changes nothing"
    assert_korean(planbot.command("업그레이드 1400000023 개발", user=KIM).json())
    assert_korean(planbot.command("상태 1400000023", user=KIM).json())
    assert_english(planbot.command("upgrade 1400000023 developer", user=ANN).json())
    assert_english(planbot.command("status 1400000023", user=ANN).json())


def test_a_person_may_choose_their_language(served: tuple[Served, str]) -> None:
    planbot, _ = served
    chosen = planbot.command("lang ko", user=ANN).json()
    assert_korean(chosen)
    assert_korean(planbot.command("help", user=ANN).json())
    assert_korean(planbot.command("언어", user=ANN).json())
    assert_english(planbot.command("언어 auto", user=ANN).json())  # back to their Slack's
    assert_english(planbot.command("help", user=ANN).json())
