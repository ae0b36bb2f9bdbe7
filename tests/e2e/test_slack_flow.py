"""Every operation through real HTTP: preview, confirmation, audit message, state afterwards."""

from __future__ import annotations

import concurrent.futures
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import AUDIT, TEAM, Served, button_value, card_text
from tests.support.waiting import settled

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the billing zone `planbot serve` runs with by default


def confirm_and_wait(planbot: Served, request_id: str, response: str) -> dict:
    """Click Confirm and return what replaced the card."""
    assert planbot.click("plan_confirm", request_id, response=response).status_code == 200
    return planbot.slack.wait_for_response(response, timeout=10)


def audit_for(
    planbot: Served, app_id: str, channel: str = AUDIT, timeout: float = 10
) -> list[dict]:
    """The audit messages about an app in a channel (waits for the first one)."""
    planbot.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.body.get("channel") == channel
            and app_id in str(c.body)
        ),
        timeout=timeout,
    )
    return [m for m in planbot.slack.messages(channel) if app_id in str(m)]


def test_help_lists_the_subcommands(planbot: Served) -> None:
    for text in ("help", " help "):  # (`/plan` alone opens the modal: tests/e2e/test_home.py)
        response = planbot.command(text)
        assert response.status_code == 200
        body = response.json()
        assert body["response_type"] == "ephemeral"
        assert "upgrade" in card_text(body) and "bill" in card_text(body)


def test_a_typo_gets_the_nearest_subcommand_and_its_usage(planbot: Served) -> None:
    body = planbot.command("upgarde 1400000001 premium").json()
    text = card_text(body)
    assert "upgrade" in text and "Did you mean" in text
    assert planbot.app("1400000001").plan == "developer"


def test_upgrade_preview_confirm_audit_and_status(planbot: Served) -> None:
    card, request_id = planbot.preview("upgrade 1400000001 premium", response="up1")
    text = card_text(card)
    assert "developer" in text and "premium" in text
    assert "$" in text and "billed on" in text
    assert "can't be undone" in text
    confirm = next(
        e
        for b in card["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == "plan_confirm"
    )
    assert confirm["style"] == "primary" and "confirm" not in confirm
    assert planbot.app("1400000001").plan == "developer", "a preview changes nothing"

    outcome = confirm_and_wait(planbot, request_id, "up1")
    assert outcome["replace_original"] is True
    assert "upgraded" in card_text(outcome)
    assert planbot.app("1400000001").plan == "premium"

    audit = audit_for(planbot, "1400000001")
    assert len(audit) == 1 and "upgraded" in card_text(audit[0])
    assert audit_for(planbot, "1400000001", channel=TEAM), "the owner channel hears of it too"
    status = card_text(planbot.command("status 1400000001").json())
    assert "premium" in status and "active" in status


def test_disable_needs_a_danger_confirmation_and_stops_service(planbot: Served) -> None:
    card, request_id = planbot.preview("disable e2e-std-1", response="dis1")
    confirm = next(
        e
        for b in card["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == "plan_confirm"
    )
    assert confirm["style"] == "danger" and confirm["confirm"]["title"]["text"]
    text = card_text(card)
    assert "stops at once" in text and "purged" in text
    outcome = confirm_and_wait(planbot, request_id, "dis1")
    assert "disabled" in card_text(outcome)
    assert planbot.app("1400000101").status == "disabled"
    status = card_text(planbot.command("status 1400000101").json())
    assert "Purged after" in status


def test_migrate_is_one_way_and_said_so(planbot: Served) -> None:
    card, request_id = planbot.preview("migrate e2e-legacy-1", response="mig1")
    assert "One-way" in card_text(card)
    confirm_and_wait(planbot, request_id, "mig1")
    assert planbot.app("1400000401").billing_mode == "current"
    again = card_text(planbot.command("migrate e2e-legacy-1").json())
    assert "already on the current billing mode" in again


def test_extend_reactivates_a_suspended_app(planbot: Served) -> None:
    before = planbot.app("1400000501")
    _, request_id = planbot.preview("extend e2e-suspended-1", response="ext1")
    confirm_and_wait(planbot, request_id, "ext1")
    after = planbot.app("1400000501")
    assert after.status == "active"
    assert after.dev_expires_at is not None and before.dev_expires_at is not None
    assert after.dev_expires_at > before.dev_expires_at


def test_enable_restores_a_disabled_app(planbot: Served) -> None:
    _, request_id = planbot.preview("enable e2e-disabled-1", response="en1")
    confirm_and_wait(planbot, request_id, "en1")
    assert planbot.app("1400000301").status == "active"
    assert planbot.app("1400000301").plan == "standard"


def test_configure_once_a_month(planbot: Served) -> None:
    card, request_id = planbot.preview(
        "config e2e-prem-1 edition=standard history_retention=90d", response="cfg1"
    )
    assert "once per calendar month" in card_text(card)
    confirm_and_wait(planbot, request_id, "cfg1")
    row = planbot.app("1400000201")
    assert row.plan == "standard" and row.config == {"history_retention": "90d"}
    second = card_text(planbot.command("config e2e-prem-1 edition=premium").json())
    assert "once per calendar month" in second and "next change is possible from" in second
    assert "used" in card_text(planbot.command("status e2e-prem-1").json())


def test_create_makes_a_developer_app_owned_by_the_channel(planbot: Served) -> None:
    _, request_id = planbot.preview("create brand-new-chat", channel="CNEWTEAM", response="cr1")
    outcome = card_text(confirm_and_wait(planbot, request_id, "cr1"))
    assert "Created developer app" in outcome
    listing = card_text(planbot.command("list brand-new").json())
    assert "brand-new-chat" in listing and "developer" in listing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("upgrade e2e-std-2 premium", "only developer apps can be upgraded"),
        ("upgrade 1400000002 developer", "standard"),
        ("config e2e-legacy-2 edition=premium", "/plan migrate"),
        ("extend e2e-std-2", "only developer apps"),
        ("disable e2e-suspended-2", "left to expire"),
        ("disable 1400000003", "developer app"),
        ("enable e2e-std-2", "not disabled"),
        ("config 1400000004 edition=premium", "Upgrade it first"),
        ("config e2e-std-2 colour=blue", "no add-on `colour`"),
        ("status no-such-app", "No app `no-such-app`"),
        ("bill e2e-std-2 2025-13", "month"),
    ],
)
def test_every_refusal_is_readable_and_changes_nothing(
    planbot: Served, text: str, expected: str
) -> None:
    response = planbot.command(text)
    assert response.status_code == 200
    body = card_text(response.json())
    assert expected in body, body
    assert "Traceback" not in body
    assert "plan_confirm" not in str(response.json())


def test_cancel_then_confirm_is_refused(planbot: Served) -> None:
    _, request_id = planbot.preview("upgrade 1400000005 standard", response="can1")
    planbot.click("plan_cancel", request_id, response="can1")
    assert "Cancelled" in card_text(planbot.slack.wait_for_response("can1"))
    planbot.click("plan_confirm", request_id, response="can1")
    answer = planbot.slack.wait_for_response("can1", predicate=lambda b: "cancelled" in str(b))
    assert answer["replace_original"] is False
    assert planbot.app("1400000005").plan == "developer"


def test_someone_else_cannot_confirm_my_request(planbot: Served) -> None:
    _, request_id = planbot.preview("upgrade 1400000006 premium", response="own1")
    planbot.click("plan_confirm", request_id, user="UINTRUDER", response="own2")
    refusal = planbot.slack.wait_for_response("own2")
    assert "belongs to" in card_text(refusal) and refusal["replace_original"] is False
    assert planbot.app("1400000006").plan == "developer"
    refused = audit_for(planbot, request_id)
    assert any("Refused" in card_text(m) for m in refused)
    confirm_and_wait(planbot, request_id, "own1")
    assert planbot.app("1400000006").plan == "premium"


def test_a_request_id_that_never_existed_is_refused(planbot: Served) -> None:
    planbot.click("plan_confirm", "never-existed-123", response="ghost")
    assert "doesn't exist" in card_text(planbot.slack.wait_for_response("ghost"))


def test_ten_concurrent_clicks_change_once_and_audit_once(planbot: Served) -> None:
    _, request_id = planbot.preview("upgrade 1400000007 premium", response="race")
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = list(
            pool.map(
                lambda _: planbot.click("plan_confirm", request_id, response="race").status_code,
                range(10),
            )
        )
    assert statuses == [200] * 10
    replies = settled(lambda: planbot.slack.responses("race"), 10, until=lambda r: len(r) >= 10)
    assert len(replies) == 10
    assert sum("upgraded" in card_text(r) for r in replies) == 1
    assert sum("already done" in card_text(r) for r in replies) == 9
    assert planbot.app("1400000007").version == 2
    time.sleep(0.5)
    assert len(audit_for(planbot, "1400000007")) == 1


def test_user_text_is_escaped(planbot: Served) -> None:
    body = planbot.command("status 1400000900").json()
    # Headers are plain_text, which Slack never parses for mentions; everything else is mrkdwn.
    mrkdwn = str([b for b in body["blocks"] if b["type"] != "header"]) + body["text"]
    assert "<!channel>" not in mrkdwn
    assert "&lt;!channel&gt; &amp; co" in body["text"]


def bill_rows(message: dict) -> list[str]:
    """The lines of a bill's table, as Slack shows them."""
    rows: list[str] = []
    for block in message["blocks"]:
        text = block.get("text", {}).get("text", "")
        if text.startswith("```"):
            rows += [" ".join(row.split()) for row in text.strip("`\n").split("\n")]
    return rows


def test_a_full_month_bill_is_one_line_at_exactly_the_monthly_price(planbot: Served) -> None:
    response = planbot.command("bill e2e-prem-2 2025-03")
    assert response.status_code == 200
    bill = response.json()
    assert bill["response_type"] == "ephemeral"
    assert bill_rows(bill) == ["Mar 01–31 31 days premium $699.00"]  # not 31 x $22.55
    assert "Total for 2025-03: $699.00" in card_text(bill)


def test_a_bill_has_one_line_per_run_of_days_adding_up_to_the_total(planbot: Served) -> None:
    bill = planbot.command("bill e2e-bill-1 2025-03").json()
    assert bill_rows(bill) == [
        "Mar 01–10 10 days standard $128.71",  # 399 x 10/31, the last day included
        "Mar 11–31 21 days standard (purged) $0.00",
    ]
    assert "Total for 2025-03: $128.71" in card_text(bill)
    # this month, whatever the day: the days charged so far and the projection of the rest
    asked = datetime.now(SHANGHAI)
    current = planbot.command("bill e2e-std-3").json()
    months = {f"{moment:%Y-%m}" for moment in (asked, datetime.now(SHANGHAI))}  # at midnight
    assert 1 <= len(bill_rows(current)) <= 2
    assert any(f"Total for {month}: $399.00" in card_text(current) for month in months)


def test_a_bill_before_the_app_or_for_a_month_to_come_says_so(planbot: Served) -> None:
    before = card_text(planbot.command("bill e2e-prem-2 2025-01").json())
    assert "was created on 2025-02-01, after 2025-01: there is nothing to bill" in before
    later = datetime.now(SHANGHAI).replace(day=1) + timedelta(days=95)
    month = f"{later:%Y-%m}"
    ahead = card_text(planbot.command(f"bill e2e-prem-2 {month}").json())
    assert f"{month} has not started yet" in ahead and "$699.00" in ahead


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        ("9999-12", "There is no bill for 9999-12: that is more than 12 months ahead"),
        ("2025-13", "the month must be 01 to 12"),  # the grammar's own refusal
        ("1969-12", "give a year from 1970 on"),
    ],
)
def test_a_bill_for_an_impossible_month_is_a_clear_refusal(
    planbot: Served, month: str, expected: str
) -> None:
    response = planbot.command(f"bill e2e-prem-2 {month}")
    assert response.status_code == 200
    text = card_text(response.json())
    assert expected in text, text
    assert "Something went wrong" not in text and "Total" not in text


def test_history_lists_changes(planbot: Served) -> None:
    _, request_id = planbot.preview("upgrade 1400000008 standard", response="hist")
    confirm_and_wait(planbot, request_id, "hist")
    text = card_text(planbot.command("history 1400000008").json())
    assert "upgrade" in text and "import" in text


@pytest.mark.parametrize("forgery", ["bad-signature", "stale", "replayed"])
def test_forged_requests_get_401_and_change_nothing(planbot: Served, forgery: str) -> None:
    from fakes.signing import signed_headers, slash_command_body

    body = slash_command_body(
        "upgrade 1400000009 premium", "UADMIN", TEAM, planbot.slack.response_url("f")
    )
    if forgery == "bad-signature":
        headers = signed_headers(body, "not-the-secret")
    elif forgery == "stale":
        headers = signed_headers(body, "e2e-signing-secret", int(time.time()) - 600)
    else:
        old = signed_headers(body, "e2e-signing-secret", int(time.time()) - 60)
        headers = {**old, "X-Slack-Request-Timestamp": str(int(time.time()))}
    response = planbot.http.post(f"{planbot.url}/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert planbot.app("1400000009").plan == "developer"


def test_audit_messages_survive_a_slack_outage(planbot: Served) -> None:
    planbot.slack.fail_next(3, status=429, retry_after=1, methods=["chat.postMessage"])
    planbot.slack.fail_next(2, status=500, methods=["chat.postMessage"])
    _, request_id = planbot.preview("upgrade 1400000010 standard", response="out1")
    confirm_and_wait(planbot, request_id, "out1")
    audit = audit_for(planbot, "1400000010", timeout=30)
    assert len(audit) == 1
    time.sleep(1)
    assert len([m for m in planbot.slack.messages(AUDIT) if "1400000010" in str(m)]) == 1


def test_expired_button_value_is_harmless(planbot: Served) -> None:
    response = planbot.click("plan_confirm", "x" * 3000, response="huge")
    assert response.status_code == 200
    assert "doesn't exist" in card_text(planbot.slack.wait_for_response("huge"))


def test_unknown_action_is_not_a_server_error(planbot: Served) -> None:
    response = planbot.click("plan_explode", "whatever", response="unk")
    assert response.status_code < 500
    _ = button_value  # imported for other modules' use
