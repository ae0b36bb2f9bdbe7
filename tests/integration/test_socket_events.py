"""Events in Socket Mode reach the same listeners: `app_home_opened` as a Socket Mode request (and
its retry, numbered as Slack numbers it) opens the home tab once, and the worker draws it. What
comes through the socket from another workspace or app is refused, as at the HTTP edge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_bolt.request import BoltRequest

from bot.app import Planbot, build
from bot.settings import Settings
from core import Actor
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
                "PLANBOT_ALLOWED_TEAMS": "T1",
                "PLANBOT_APP_ID": "A1",
            }
        )
        planbot = build(settings, signing_secret="socket-mode")
        planbot.only_from_its_workspace()
        try:
            yield planbot, slack
        finally:
            planbot.close()


def socket_request(
    event_id: str, retry: int | None, *, team: str = "T1", app: str = "A1"
) -> BoltRequest:
    """What Bolt's Socket Mode adapter makes of an events_api envelope."""
    body = {
        "type": "event_callback",
        "team_id": team,
        "api_app_id": app,
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


def command(text: str, *, team: str, app: str = "A1") -> BoltRequest:
    """What Bolt's Socket Mode adapter makes of a slash_commands envelope."""
    body = {
        "command": "/plan",
        "text": text,
        "team_id": team,
        "api_app_id": app,
        "user_id": "UADMIN",
        "user_name": "ada",
        "channel_id": "CTEAM",
        "response_url": "https://hooks.slack.com/commands/T1/1/x",
        "trigger_id": "1.2.3",
    }
    return BoltRequest(body=body, mode="socket_mode")


def test_socket_mode_refuses_another_workspace_or_app_as_the_http_edge_does(
    socket_bot: tuple[Planbot, FakeSlack],
) -> None:
    planbot, slack = socket_bot
    for team, app in (("T2", "A1"), ("T1", "A9")):
        refused = planbot.app.dispatch(command("access grant <@UEVIL> admin", team=team, app=app))
        assert refused.status == 200
        assert "does not answer this workspace or app" in str(refused.body)
    assert planbot.service.access.grants(actor=Actor("UADMIN", "Ada")) == []
    opened = planbot.app.dispatch(socket_request("EvOther", None, team="T2"))
    assert (opened.status, opened.body) == (200, "")
    planbot.dispatcher.deliver_due()
    assert slack.views("views.publish") == []  # no home tab drawn for the other workspace
    ours = planbot.app.dispatch(command("help", team="T1"))
    assert ours.status == 200 and "/plan status" in str(ours.body)
