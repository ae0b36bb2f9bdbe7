"""Self-checks of the test support: the fake Slack speaks to a real slack_sdk, signatures verify."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.signature import SignatureVerifier

from fakes.signing import block_action_body, sign, signed_headers, slash_command_body
from fakes.slack import FakeSlack

SECRET = "test-signing-secret"
NO_WAIT = FixedValueRetryIntervalCalculator(0.0)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def client(slack: FakeSlack, *handlers: RetryHandler) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.api_url, retry_handlers=list(handlers))


def test_records_post_message_from_a_real_web_client(slack: FakeSlack) -> None:
    web = client(slack)
    first = web.chat_postMessage(channel="C1", text="hello", blocks=[{"type": "divider"}])
    second = web.chat_postMessage(channel="C2", text="again")

    assert first["ok"] and first["channel"] == "C1"
    assert float(second["ts"]) > float(first["ts"])
    assert [m["text"] for m in slack.messages()] == ["hello", "again"]
    assert slack.messages("C1")[0]["blocks"] == [{"type": "divider"}]
    assert slack.counts()["chat.postMessage@C1"] == 1
    call = slack.calls("chat.postMessage")[0]
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert call.token == "xoxb-test"


def test_answers_the_methods_a_bot_uses(slack: FakeSlack) -> None:
    web = client(slack)
    slack.usergroups["S123"] = ["U1", "U2"]

    assert web.auth_test()["user_id"] == slack.bot_user_id
    assert web.users_info(user="U42")["user"]["real_name"] == "User U42"
    assert web.usergroups_users_list(usergroup="S123")["users"] == ["U1", "U2"]
    assert web.chat_postEphemeral(channel="C1", user="U1", text="psst")["message_ts"]
    assert web.chat_update(channel="C1", ts="1.000001", text="edited")["ts"] == "1.000001"
    assert web.reactions_add(channel="C1", timestamp="1.000001", name="tada")["ok"]
    with pytest.raises(SlackApiError):
        web.usergroups_users_list(usergroup="S_UNKNOWN")
    # form-encoded bodies are parsed like JSON ones
    web.api_call("chat.postMessage", data={"channel": "C9", "text": "form"})
    assert slack.messages("C9")[0]["text"] == "form"


def test_tells_the_scopes_refuses_revoked_tokens_and_describes_channels(slack: FakeSlack) -> None:
    web = client(slack)
    answer = web.auth_test()
    granted = {k.lower(): v for k, v in answer.headers.items()}["x-oauth-scopes"]
    assert "chat:write" in granted.split(",")
    slack.scopes = ["commands"]
    assert {k.lower(): v for k, v in web.auth_test().headers.items()}["x-oauth-scopes"] == (
        "commands"
    )

    assert web.conversations_info(channel="C1")["channel"]["is_member"] is True
    slack.channels["C2"] = {"is_member": False, "name": "audit"}
    slack.channels["C3"] = None
    assert web.conversations_info(channel="C2")["channel"]["name"] == "audit"
    assert web.conversations_info(channel="C2")["channel"]["is_member"] is False
    with pytest.raises(SlackApiError) as missing:
        web.conversations_info(channel="C3")
    assert missing.value.response["error"] == "channel_not_found"

    slack.refused_tokens.add("xoxb-test")
    with pytest.raises(SlackApiError) as refused:
        web.auth_test()
    assert refused.value.response["error"] == "invalid_auth"


def test_rate_limit_is_seen_by_the_sdk_retry_handler_then_succeeds(slack: FakeSlack) -> None:
    slack.fail_next(1, status=429, retry_after=0, methods=["chat.postMessage"])
    web = client(slack, RateLimitErrorRetryHandler(max_retry_count=1))

    assert web.chat_postMessage(channel="C1", text="after the storm")["ok"]

    failures = slack.failures("chat.postMessage")
    assert [f.status for f in failures] == [429]
    assert len(slack.messages("C1")) == 1


def test_rate_limit_answer_looks_like_slack(slack: FakeSlack) -> None:
    slack.fail_next(1, status=429, retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        client(slack).chat_postMessage(channel="C1", text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"
    assert slack.messages() == []


def test_server_errors_and_resets_are_failures_not_deliveries(slack: FakeSlack) -> None:
    slack.fail_next(1, status=500)
    with pytest.raises(SlackApiError):
        client(slack).chat_postMessage(channel="C1", text="x")

    slack.fail_next(1, reset=True)
    web = client(slack, ConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=NO_WAIT))
    assert web.chat_postMessage(channel="C1", text="y")["ok"]

    assert [f.status for f in slack.failures()] == [500, 0]
    assert [m["text"] for m in slack.messages()] == ["y"]


def test_outage_fails_every_call_for_a_while(slack: FakeSlack) -> None:
    slack.outage(0.3, mode="ratelimited", retry_after=0)
    web = client(slack)
    with pytest.raises(SlackApiError):
        web.chat_postMessage(channel="C1", text="x")
    time.sleep(0.35)
    assert web.chat_postMessage(channel="C1", text="later")["ok"]
    assert len(slack.failures()) == 1


def test_wait_for_returns_the_call_or_says_what_was_seen(slack: FakeSlack) -> None:
    client(slack).chat_postMessage(channel="C1", text="seen")
    assert slack.wait_for(lambda c: c.body["channel"] == "C1", timeout=1).body["text"] == "seen"
    with pytest.raises(AssertionError, match="seen"):
        slack.wait_for("chat.update", timeout=0.2)


def test_response_url_receiver(slack: FakeSlack) -> None:
    url = slack.response_url("card-1")
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(
        url,
        data=json.dumps({"replace_original": True, "text": "done"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=2) as answer:
        assert answer.status == 200

    assert slack.wait_for_response("card-1", timeout=1)["text"] == "done"
    assert slack.responses("card-1") == [{"replace_original": True, "text": "done"}]
    assert slack.responses("other") == []
    with pytest.raises(AssertionError):
        slack.wait_for_response("other", timeout=0.1)


def test_signatures_verify_with_the_sdk_verifier() -> None:
    verifier = SignatureVerifier(SECRET)
    body = slash_command_body("status 1400000001", "U1", "C1", "http://127.0.0.1:1/response/x")
    headers = sign(body, SECRET)
    assert verifier.is_valid(
        body=body.decode(),
        timestamp=headers["X-Slack-Request-Timestamp"],
        signature=headers["X-Slack-Signature"],
    )
    stale = sign(body, SECRET, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(body.decode(), stale)
    forged = sign(body, "another-secret")
    assert not verifier.is_valid_request(body.decode(), forged)
    assert signed_headers(body, SECRET)["Content-Type"] == "application/x-www-form-urlencoded"


def test_bodies_have_slack_shapes() -> None:
    command = parse_qs(slash_command_body("help", "U1", "C1", "http://r", user_name="ann").decode())
    assert command["command"] == ["/plan"] and command["text"] == ["help"]
    assert command["user_name"] == ["ann"] and command["trigger_id"][0]

    click = block_action_body("plan_confirm", "req-1", "U1", "C1", "http://r")
    payload = json.loads(parse_qs(click.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U1" and payload["channel"]["id"] == "C1"
    assert payload["container"]["is_ephemeral"] is True and "message" not in payload
    action = payload["actions"][0]
    assert action["action_id"] == "plan_confirm" and action["value"] == "req-1"
    assert action["type"] == "button" and action["action_ts"]

    message = {"type": "message", "ts": "123.000001", "text": "card"}
    on_message = json.loads(
        parse_qs(block_action_body("a", "v", "U1", "C1", "http://r", message=message).decode())[
            "payload"
        ][0]
    )
    assert on_message["message"] == message
    assert on_message["container"]["message_ts"] == "123.000001"


def test_public_names_are_exported() -> None:
    from fakes import signing, slack

    for module in (slack, signing):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__
