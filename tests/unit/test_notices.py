"""The lifecycle notices as Slack messages: content, buttons, escaping and Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.notices import (
    ENABLE_ACTION,
    EXTEND_ACTION,
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    escape,
    notice_message,
)
from core.domain import BillingMode, Plan, Status
from core.lifecycle import AppCharges, TeamStatement, statement_payload
from core.money import RateSegment, statement
from tests.conftest import SHANGHAI

NASTY = "<!channel> & <@U123|boss> `code` *bold*"


def reminder(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "dev_expiry_reminder",
        "app_id": "1400000001",
        "app_name": "dev-chat",
        "billing_mode": "current",
        "reminder": "7d",
        "expires_at": "2028-01-30T16:00:00+00:00",
        "expires_local": "2028-01-31 00:00 (Asia/Shanghai)",
        "days_left": 7,
        "hours_left": 168,
    }
    return {**payload, **overrides}


def warning(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "purge_warning",
        "app_id": "1400000003",
        "app_name": "off-chat",
        "warning": "30d",
        "disabled_at": "2028-01-01T00:00:00+00:00",
        "disabled_local": "2028-01-01 08:00 (Asia/Shanghai)",
        "purge_at": "2028-03-31T00:00:00+00:00",
        "purge_local": "2028-03-31 08:00 (Asia/Shanghai)",
        "days_left": 30,
        "hours_left": 720,
    }
    return {**payload, **overrides}


def expired_card(**overrides: Any) -> dict[str, Any]:
    payload = {
        "type": "approval_expired",
        "update_of": 17,
        "request_id": "abc123",
        "operation": "disable",
        "app_id": "1400000002",
        "app_name": "std-chat",
        "summary": "Disable std-chat (1400000002)",
        "requester_id": "UADA",
        "requester_name": "Ada",
        "expired_at": "2028-05-11T04:00:00+00:00",
        "expired_local": "2028-05-11 12:00 (Asia/Shanghai)",
    }
    return {**payload, **overrides}


def team_statement(apps: int, *, name: str = "chat", upgraded: bool = False) -> dict[str, Any]:
    """The payload the sweep would post for `apps` such apps in February 2028."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    if upgraded:  # developer until 20 February, premium from then
        segments = [
            RateSegment(start, Plan.DEVELOPER, Status.ACTIVE, BillingMode.CURRENT, Decimal(0)),
            RateSegment(
                datetime(2028, 2, 20, tzinfo=UTC),
                Plan.PREMIUM,
                Status.ACTIVE,
                BillingMode.CURRENT,
                Decimal(699),
            ),
        ]
    else:
        segments = [
            RateSegment(start, Plan.STANDARD, Status.ACTIVE, BillingMode.CURRENT, Decimal(399))
        ]
    bill = statement(
        segments, year=2028, month=2, tz=SHANGHAI, now=datetime(2028, 3, 1, tzinfo=UTC)
    )
    charges = tuple(
        AppCharges.of(
            app_id=f"14{i:08d}",
            name=f"{name}-{i}",
            plan=Plan.PREMIUM,
            status=Status.ACTIVE,
            statement=bill,
        )
        for i in range(apps)
    )
    team = TeamStatement("CTEAM", 2028, 2, "USD", charges)
    return statement_payload(team, now=datetime(2028, 3, 1, 1, tzinfo=UTC), tz=SHANGHAI)


def texts(message: dict[str, Any]) -> list[str]:
    found = [message["text"]]
    for block in message["blocks"]:
        if block["type"] in ("section", "header"):
            found.append(block["text"]["text"])
        elif block["type"] == "context":
            found.extend(e["text"] for e in block["elements"])
    return found


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def within_limits(message: dict[str, Any]) -> None:
    json.dumps(message)
    assert isinstance(message["text"], str) and message["text"]
    assert 1 <= len(message["blocks"]) <= MAX_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["value"]) <= 2000
                assert len(element["text"]["text"]) <= 75


# --- reminders and warnings --------------------------------------------------------------------


def test_reminder_says_when_and_offers_extend() -> None:
    message = notice_message(reminder())
    assert message is not None
    within_limits(message)
    assert "expires in 7 days" in message["text"]
    assert "2028-01-31 00:00 (Asia/Shanghai)" in message["text"]
    [extend] = buttons(message)
    assert (extend["action_id"], extend["value"]) == (EXTEND_ACTION, "1400000001")
    body = "\n".join(texts(message))
    assert "<!date^1832860800^" in body  # shown in the reader's own time zone
    assert "suspended" in body


@pytest.mark.parametrize(
    ("days", "hours", "words"),
    [(2, 50, "in 2 days"), (1, 30, "in 1 day"), (0, 12, "in 12 hours"), (0, 0, "within the hour")],
)
def test_reminder_says_what_is_true_now(days: int, hours: int, words: str) -> None:
    message = notice_message(reminder(days_left=days, hours_left=hours, reminder="7d"))
    assert message is not None
    assert f"expires {words}" in message["text"]


def test_reminder_for_a_legacy_app_points_to_migration() -> None:
    message = notice_message(reminder(billing_mode="legacy"))
    assert message is not None
    assert "/plan migrate 1400000001" in "\n".join(texts(message))


def test_purge_warning_offers_enable_and_says_only_admins_can() -> None:
    message = notice_message(warning(days_left=7, hours_left=170))
    assert message is not None
    within_limits(message)
    assert "purged in 7 days" in message["text"]
    [enable] = buttons(message)
    assert (enable["action_id"], enable["value"]) == (ENABLE_ACTION, "1400000003")
    body = "\n".join(texts(message))
    assert "Only planbot admins can re-enable" in body
    assert "can't be recovered" in body


# --- escaping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        reminder(app_name=NASTY),
        warning(app_name=NASTY),
        expired_card(summary=NASTY, requester_id="not-a-user", requester_name=NASTY),
    ],
    ids=["reminder", "warning", "approval_expired"],
)
def test_user_text_is_escaped(payload: dict[str, Any]) -> None:
    message = notice_message(payload)
    assert message is not None
    dumped = json.dumps(message)
    assert "<!channel>" not in dumped and "<@U123" not in dumped
    assert escape("<!channel> & <@U123|boss>") in dumped


def test_statement_names_are_escaped_and_cannot_close_the_code_block() -> None:
    payload = team_statement(2, name="```<!channel> & co")
    message = notice_message(payload)
    assert message is not None
    tables = [t for t in texts(message) if t.startswith("```")]
    assert tables
    for table in tables:
        assert table.count("```") == 2
        assert "<!channel>" not in table
        assert "&lt;!channel&gt; &amp; co" in table


# --- statements --------------------------------------------------------------------------------


def test_statement_lists_each_app_with_plan_days_and_total() -> None:
    payload = team_statement(2, upgraded=True)
    message = notice_message(payload)
    assert message is not None
    within_limits(message)
    body = "\n".join(texts(message))
    assert "Statement for February 2028" in body
    assert f"*Total: {payload['total_text']}* for 2 apps" in body
    assert "billed on 2028-03-01 to 2028-03-03" in body
    assert "developer" in body and "premium" in body
    assert "Feb 01–19" in body and "Feb 20–29" in body
    for app in payload["apps"]:
        assert app["total_text"] in body
    assert "late" not in message["text"]


def test_a_late_statement_says_so() -> None:
    payload = {**team_statement(1), "late": True, "issued_on": "2028-03-05"}
    message = notice_message(payload)
    assert message is not None
    assert "(late)" in message["text"]
    assert "This statement is late: it was due on 2028-03-01" in "\n".join(texts(message))


def test_a_month_in_progress_says_what_is_projected() -> None:
    payload = {**team_statement(1), "projected": True, "to_date_text": "$100.00"}
    message = notice_message(payload)
    assert message is not None
    assert "$100.00 so far" in "\n".join(texts(message))


@pytest.mark.parametrize("apps", [1, 40, 300, 2000])
def test_big_statements_stay_within_slack_limits(apps: int) -> None:
    payload = team_statement(apps, upgraded=True)
    message = notice_message(payload)
    assert message is not None
    within_limits(message)
    tables = [t for t in texts(message) if t.startswith("```")]
    rows = [row for t in tables for row in t.split("\n")[1:-1]]
    shown = len([row for row in rows if not row.startswith("  ")])  # one title row per app
    more = [t for t in texts(message) if "more app" in t]
    if shown < apps:
        [note] = more
        assert f"{apps - shown} more app" in note
    else:
        assert more == []
    assert shown >= min(apps, 300)


def test_an_app_with_very_many_periods_is_cut_with_a_mark() -> None:
    periods = [
        {"label": f"plan-{i}", "first": "2028-02-01", "last": "2028-02-01", "days": 1}
        for i in range(400)
    ]
    payload = {"type": "statement", "apps": [{"app_id": "1", "name": "x", "periods": periods}]}
    message = notice_message(payload)
    assert message is not None
    within_limits(message)
    assert "  …" in "\n".join(texts(message))


# --- the expired approval card -----------------------------------------------------------------


def test_approval_expired_replaces_the_card_without_buttons() -> None:
    message = notice_message(expired_card())
    assert message is not None
    within_limits(message)
    assert buttons(message) == []
    body = "\n".join(texts(message))
    assert "*Expired:* Disable std-chat (1400000002), requested by <@UADA>" in body
    assert "nothing was changed" in body
    assert "`/plan disable 1400000002`" in body
    assert message["text"].startswith("Expired:")


# --- only its own types, and never a crash -----------------------------------------------------


@pytest.mark.parametrize("kind", ["change", "approval", "refusal", "", None, 3])
def test_other_payloads_are_not_notices(kind: Any) -> None:
    assert notice_message({"type": kind, "app_id": "1"}) is None
    assert notice_message({}) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
FIELDS = [
    "app_id",
    "app_name",
    "days_left",
    "hours_left",
    "expires_at",
    "expires_local",
    "purge_at",
    "disabled_at",
    "apps",
    "app_count",
    "bill_window",
    "late",
    "projected",
    "summary",
    "requester_id",
    "expired_at",
    "operation",
    "total_text",
    "month_name",
]


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["dev_expiry_reminder", "purge_warning", "statement", "approval_expired"]),
    fields=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8),
)
def test_any_payload_of_a_known_type_renders_within_limits(
    kind: str, fields: dict[str, Any]
) -> None:
    message = notice_message({**fields, "type": kind})
    assert message is not None
    within_limits(message)
