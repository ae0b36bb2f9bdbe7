"""Whose language: people's in memory (read behind, never on the way to an answer), channels',
the settings that choose the defaults, and deliveries rendered in their reader's language."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from bot import delivery
from bot.app import SpeakingApp
from bot.edge import ResponseUrls
from bot.i18n import language, speaking
from bot.people import Languages, is_person, user_of
from bot.settings import Settings, SettingsError
from core import People
from tests.conftest import Clock
from tests.support.fake_store import FakeStore
from tests.support.waiting import eventually


class Slack:
    """users.info, with a locale per user; `gate` holds answers back until it is set."""

    def __init__(self, locales: dict[str, str]) -> None:
        self.locales = locales
        self.asked: list[str] = []
        self.gate = threading.Event()
        self.gate.set()

    def users_info(self, *, user: str, include_locale: bool = False) -> dict[str, Any]:
        self.gate.wait(5)
        self.asked.append(user)
        found: dict[str, Any] = {"id": user}
        if include_locale and user in self.locales:
            found["locale"] = self.locales[user]
        return {"ok": True, "user": found}


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 30, 8, tzinfo=UTC))


def languages(slack: Slack | None, clock: Clock, **kwargs: Any) -> tuple[Languages, People]:
    people = People(store=FakeStore(), clock=clock)
    settings = {"default": "en", "channel": "ko", **kwargs}
    return Languages(people, slack, **settings), people  # type: ignore[arg-type]


def test_a_new_person_gets_the_default_at_once_and_their_own_once_read(clock: Clock) -> None:
    slack = Slack({"UKIM": "ko-KR", "UANN": "en-US", "UFR": "fr-FR"})
    slack.gate.clear()  # Slack is slow: the answer must not wait for it
    found, people = languages(slack, clock)
    try:
        assert found.of("UKIM") == "en" and slack.asked == []
        slack.gate.set()
        eventually(lambda: found.of("UKIM") == "ko")
        assert people.get("UKIM") is not None  # noted for every process
        for user in ("UANN", "UFR"):  # French: a language planbot does not speak
            found.of(user)
        eventually(lambda: {"UANN", "UFR"} <= set(slack.asked))
        eventually(lambda: found.choice("UFR").locale_language is None)
        assert found.of("UANN") == "en" and found.of("UFR") == "en"
        assert slack.asked.count("UKIM") == 1, "a locale is read once, not per command"
    finally:
        found.close()


class Unreachable(Slack):
    def users_info(self, *, user: str, include_locale: bool = False) -> dict[str, Any]:
        self.asked.append(user)
        raise OSError("Slack is down")


def test_a_person_slack_cannot_tell_about_is_looked_up_once_until_the_refresh(
    clock: Clock,
) -> None:
    slack = Unreachable({})
    found, _ = languages(slack, clock, ttl=3600)
    try:
        found.of("UKIM")
        eventually(lambda: slack.asked == ["UKIM"] and not found._pending)
        assert found.choice("UKIM").language == "en"
        for _n in range(50):  # answered from memory: no lookup per command
            assert found.of("UKIM") == "en"
        found._reload()  # the next refresh tries Slack again
        assert slack.asked == ["UKIM", "UKIM"]
    finally:
        found.close()


def test_a_choice_wins_over_the_locale_until_auto(clock: Clock) -> None:
    slack = Slack({"UKIM": "ko-KR"})
    found, _ = languages(slack, clock)
    try:
        found.of("UKIM")
        eventually(lambda: found.of("UKIM") == "ko")
        assert found.choose("UKIM", "en").language == "en"
        assert found.of("UKIM") == "en"
        choice = found.choose("UKIM", "auto")
        assert (choice.chosen, choice.locale_language, choice.language) == (None, "ko", "ko")
    finally:
        found.close()


def test_without_slack_the_default_or_the_choice(clock: Clock) -> None:
    found, _ = languages(None, clock, default="ko")
    try:
        assert found.of("UKIM") == "ko" and found.of(None) == "ko"
        found.choose("UKIM", "en")
        assert found.of("UKIM") == "en"
    finally:
        found.close()


def test_warming_reads_everyone_known_and_the_admins(clock: Clock) -> None:
    slack = Slack({"UADMIN": "ko-KR"})
    found, people = languages(slack, clock)
    people.choose("UANN", "ko")
    people.read_locale("UANN", "en-US")
    try:
        found.warm(also=["UADMIN"])
        eventually(lambda: found.of("UADMIN") == "ko" and found.of("UANN") == "ko")
        assert slack.asked == ["UADMIN"], "a locale read today is not read again"
    finally:
        found.close()


def test_deliveries_read_the_database_for_people_and_use_the_channel_language(
    clock: Clock,
) -> None:
    found, people = languages(None, clock, channel="ko", fresh_for=0.0)
    try:
        assert found.reading("CAUDIT") == "ko" and found.reading(None) == "ko"
        assert found.reading("UKIM") == "en"
        people.choose("UKIM", "ko")  # chosen on another process
        assert found.reading("UKIM") == "ko"
    finally:
        found.close()


def test_who_a_payload_is_from_and_who_a_destination_is() -> None:
    assert user_of({"user_id": "U1"}) == "U1"  # a slash command
    assert user_of({"user": {"id": "U2"}}) == "U2"  # a click, a view, a shortcut
    assert user_of({"event": {"user": "U3"}}) == "U3"  # an event
    assert user_of({"type": "url_verification"}) is None and user_of("x") is None
    assert is_person("U0123ABC") and is_person("W0123ABC")
    assert not is_person("C0123ABC") and not is_person("home:U1")


def test_settings_choose_the_default_and_the_channels_language() -> None:
    assert (Settings.from_env({}).language, Settings.from_env({}).channel_language) == ("en", "en")
    korean = Settings.from_env({"PLANBOT_LANGUAGE": "ko"})
    assert (korean.language, korean.channel_language) == ("ko", "ko")
    mixed = Settings.from_env({"PLANBOT_LANGUAGE": "KO", "PLANBOT_CHANNEL_LANGUAGE": "en"})
    assert (mixed.language, mixed.channel_language) == ("ko", "en")
    assert Settings.from_env({"PLANBOT_LANGUAGE": "ko-KR"}).language == "ko"
    for name in ("PLANBOT_LANGUAGE", "PLANBOT_CHANNEL_LANGUAGE"):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: "fr"})


def test_a_bad_setting_is_named_in_the_language_spoken() -> None:
    with speaking("ko"), pytest.raises(SettingsError) as caught:
        Settings.from_env({"PLANBOT_AUDIT_CHANNEL": "general"})
    assert (
        str(caught.value)
        == "PLANBOT_AUDIT_CHANNEL: 'general'은(는) 채널 ID(예: C0123ABCD)가 아닙니다"
    )
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"PLANBOT_AUDIT_CHANNEL": "general"})
    assert (
        str(caught.value) == "PLANBOT_AUDIT_CHANNEL: 'general' is not a channel id (like C0123ABCD)"
    )


def test_deliveries_render_in_their_readers_language(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoken: list[str] = []

    def rendered(payload: Any, words: Any) -> dict[str, Any]:
        spoken.append(language())
        return {}

    monkeypatch.setattr(delivery, "rendered", rendered)
    found, people = languages(None, clock, channel="ko")
    people.choose("UANN", "en")
    people.choose("UKIM", "ko")
    try:
        notifier = delivery.SlackNotifier(None, None, languages=found)  # type: ignore[arg-type]
        notifier.render({}, "CAUDIT")
        notifier.render({}, "UANN")
        replier = delivery.SlackReplier(  # type: ignore[arg-type]
            None, response_urls=ResponseUrls(("127.0.0.1",)), languages=found
        )
        monkeypatch.setattr(delivery, "WebhookClient", _Posted)
        replier.reply("http://127.0.0.1/response", {"kind": "card_decided", "reader": "UKIM"})
        replier.reply("http://127.0.0.1/response", {"kind": "card_decided", "reader": "UANN"})
        assert spoken == ["ko", "en", "ko", "en"]
    finally:
        found.close()


class _Posted:
    def __init__(self, url: str, **kwargs: Any) -> None:
        pass

    def send_dict(self, body: Any) -> Any:
        return type("Response", (), {"status_code": 200, "headers": {}})()


def test_the_bolt_app_dispatches_in_the_persons_language(clock: Clock) -> None:
    found, people = languages(None, clock)
    people.choose("UKIM", "ko")
    found.choose("UKIM", "ko")
    from slack_bolt.authorization import AuthorizeResult

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-t")

    app = SpeakingApp(
        languages=found,
        authorize=authorize,
        signing_secret="secret",
        token_verification_enabled=False,
        request_verification_enabled=False,
    )
    heard: list[str] = []

    @app.command("/plan")
    def on_plan(ack: Any) -> None:
        heard.append(language())
        ack("ok")

    from slack_bolt import BoltRequest

    for user in ("UKIM", "UANN"):
        body = f"command=%2Fplan&text=help&user_id={user}&team_id=T1&channel_id=C1"
        app.dispatch(BoltRequest(body=body, headers={}))
    assert heard == ["ko", "en"] and language() == "en"
    found.close()
