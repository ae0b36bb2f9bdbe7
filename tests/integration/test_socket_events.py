"""Events in Socket Mode reach the same listeners: `app_home_opened` as a Socket Mode request (and
its retry, numbered as Slack numbers it) opens the home tab once, and the worker draws it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_bolt.request import BoltRequest

from bot.app import Planbot, build
from bot.settings import Settings
from fakes.slack import FakeSlack


@pytest.fixture
def socket_bot(tmp_path: Path) -> Iterator[tuple[Planbot, FakeSlack]]:
    with FakeSlack() as slack:
        settings = Settings.from_env(
            {
                "SLACK_BOT_TOKEN": "xoxb-socket",
                "SLACK_APP_TOKEN": "xapp-socket",
                "SLACK_API_URL": slack.api_url,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.sqlite3'}",
                "PLANBOT_ADMINS": "UADMIN",
            }
        )
        planbot = build(settings, signing_secret="socket-mode")
        try:
            yield planbot, slack
        finally:
            planbot.close()


def socket_request(event_id: str, retry: int | None) -> BoltRequest:
    """What Bolt's Socket Mode adapter makes of an events_api envelope."""
    body = {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event_id": event_id,
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": "UADMIN", "tab": "home"},
    }
    headers = {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "timeout"} if retry else {}
    return BoltRequest(body=body, mode="socket_mode", headers=headers)


def test_a_socket_mode_event_and_its_retry_open_the_home_tab_once(
    socket_bot: tuple[Planbot, FakeSlack],
) -> None:
    planbot, slack = socket_bot
    for retry in (None, 1, 2):
        assert planbot.app.dispatch(socket_request("EvSocket1", retry)).status == 200
    planbot.dispatcher.deliver_due()
    assert len(slack.views("views.publish")) == 1
    assert "Your apps" in str(slack.home_of("UADMIN"))
    assert planbot.app.dispatch(socket_request("EvSocket2", None)).status == 200
    planbot.dispatcher.deliver_due()
    assert len(slack.views("views.publish")) == 2  # a new opening is drawn again
