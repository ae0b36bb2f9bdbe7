"""The home tab and the modal as Slack views: within Slack's limits, escaped, and read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import home, modals
from bot.words import Words
from core import (
    Actor,
    AppLine,
    AppState,
    BillingMode,
    ChangeRequest,
    ComingUp,
    HomeBoard,
    InvalidAddonValue,
    NothingToChange,
    Operation,
    Plan,
    Request,
    Status,
    WaitingRequest,
    load_catalog,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 26, 3, tzinfo=UTC)
CATALOG = load_catalog()
WORDS = Words(CATALOG, TZ)
NASTY = "<!channel> & <@U123|boss>"


def app(
    n: int, name: str = "", team: str | None = "CTEAM", plan: Plan = Plan.DEVELOPER
) -> AppState:
    return AppState(
        app_id=f"14{n:08d}",
        name=name or f"app-{n}",
        plan=plan,
        billing_mode=BillingMode.CURRENT,
        status=Status.ACTIVE,
        created_at=NOW - timedelta(days=3),
        owner_channel=team,
        dev_expires_at=NOW + timedelta(days=20) if plan is Plan.DEVELOPER else None,
    )


def request(n: int, name: str = "") -> Request:
    return Request(
        id=f"req{n:04d}" + "x" * 20,
        change=ChangeRequest(Operation.DISABLE, app=f"14{n:08d}"),
        requester=Actor("UASKER", name or "asker"),
        app_id=f"14{n:08d}",
        app_name=name or f"app-{n}",
        app_version=1,
        channel_id="CTEAM",
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
        approvals_needed=2,
    )


def board(apps: int, requests: int, name: str = "", coming: int = 8) -> HomeBoard:
    listed = [app(n, name) for n in range(apps)]
    return HomeBoard(
        viewer=Actor("UME"),
        needs_you=tuple(WaitingRequest(request(n, name), "CTEAM", True) for n in range(requests)),
        yours=tuple(WaitingRequest(request(n + 50, name), "CTEAM", False) for n in range(requests)),
        coming_up=tuple(
            ComingUp(app(n, name), NOW + timedelta(days=n), Operation.EXTEND, n % 2 == 0)
            for n in range(coming)
        ),
        apps=tuple(AppLine(a, Decimal("12.34"), Decimal("699.00")) for a in listed),
        team=None,
        teams=("CTEAM", "COTHER"),
        page=2,
        pages=3,
        total=52,
        more=False,
        sees_apps=True,
        currency="USD",
        month=(2026, 11),
        at=NOW,
    )


def texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "text" and isinstance(v, str)] + [
            t for k, v in node.items() if not (k == "text" and isinstance(v, str)) for t in texts(v)
        ]
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    return []


def within_limits(view: dict[str, Any]) -> None:
    json.dumps(view)
    assert 1 <= len(view["blocks"]) <= 100
    for block in view["blocks"]:
        assert len(block.get("block_id", "")) <= 255
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("type") == "button":
                assert len(element["value"]) <= 2000 and len(element["text"]["text"]) <= 75
    if view["type"] == "modal":
        assert len(view["title"]["text"]) <= 24 and len(view["private_metadata"]) <= 3000


def test_the_home_tab_shows_what_needs_the_person_and_their_apps() -> None:
    view = home.home_view(board(3, 1, coming=2), WORDS)
    within_limits(view)
    text = "\n".join(texts(view))
    assert "Disable app-0 (1400000000)" in text and "0 of 2 approvals" in text
    assert "Your request: Disable app-50 (1400000050)" in text
    assert "Developer app *app-0* (`1400000000`) expires on 2026-11-26" in text
    assert "$12.34 charged so far, $699.00 for the month if nothing changes" in text
    assert "Page 2 of 3 · 52 apps" in text
    ids = {e.get("action_id") for b in view["blocks"] for e in b.get("elements", [])}
    assert {home.HOME_APPROVE, home.HOME_REJECT, home.HOME_WITHDRAW, home.HOME_PAGE} <= ids
    approve = next(
        e
        for b in view["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == "home_approve"
    )
    assert approve["style"] == "danger" and approve["confirm"]  # disabling: a second thought
    pages = [
        e["value"]
        for b in view["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == "home_page"
    ]
    assert [home.page_of(v) for v in pages] == [(1, None), (3, None)]


@settings(max_examples=60, deadline=None)
@given(
    apps=st.integers(0, 20),
    requests=st.integers(0, 8),
    coming=st.integers(0, 8),
    name=st.text(min_size=1, max_size=80),
)
def test_any_home_tab_fits_in_a_home_view_and_is_escaped(
    apps: int, requests: int, coming: int, name: str
) -> None:
    view = home.home_view(board(apps, requests, name, coming), WORDS)
    within_limits(view)
    if "<" in name:
        assert "<!channel>" not in json.dumps([t for t in texts(view) if name[:3] in t])


def test_names_are_escaped_on_the_home_tab() -> None:
    view = home.home_view(board(1, 1, NASTY, coming=1), WORDS)
    dumped = json.dumps(view)
    assert "<!channel>" not in dumped and "<@U123" not in dumped


def test_someone_who_sees_nothing_is_told_how_to_get_a_role() -> None:
    seen = board(0, 0, coming=0)
    nothing = HomeBoard(**{**seen.__dict__, "sees_apps": False, "teams": ()})
    text = "\n".join(texts(home.home_view(nothing, WORDS)))
    assert "You may not see any app yet" in text and "Coming up" not in text


# --- the modal ------------------------------------------------------------------------------


def state(values: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A submitted view's state, as Slack sends it."""
    found: dict[str, Any] = {}
    for block, value in values.items():
        action = {
            modals.APP_BLOCK: modals.PICK_APP,
            modals.OPERATION_BLOCK: modals.PICK_OPERATION,
            modals.EDITION_BLOCK: modals.PICK_EDITION,
        }.get(block, modals.PICK_ADDON)
        found[block] = {action: {"selected_option": {"value": value}}}
    return {"state": {"values": found}, **extra}


def test_the_form_offers_the_operations_and_their_fields_with_prices() -> None:
    std = app(1, plan=Plan.STANDARD)
    form = modals.form_view(
        catalog=CATALOG,
        words=WORDS,
        channel="CTEAM",
        app=std,
        operations=(Operation.CONFIGURE, Operation.DISABLE),
        operation=Operation.CONFIGURE,
    )
    within_limits(form)
    blocks = {b.get("block_id"): b for b in form["blocks"]}
    assert [o["value"] for o in blocks[modals.OPERATION_BLOCK]["element"]["options"]] == [
        "configure",
        "disable",
    ]
    editions = [o["text"]["text"] for o in blocks[modals.EDITION_BLOCK]["element"]["options"]]
    assert editions == [
        "Standard (postpaid): $399.00 a month",
        "Premium (postpaid): $699.00 a month",
    ]
    retention = blocks[f"{modals.ADDON_BLOCK}history_retention"]["element"]
    assert "90d: +$99.00 a month" in [o["text"]["text"] for o in retention["options"]]
    assert retention["initial_option"]["value"] == "plan"
    assert json.loads(form["private_metadata"]) == {"channel": "CTEAM", "app": std.app_id}


def test_a_submitted_form_asks_for_what_changed_only() -> None:
    std = AppState(**{**app(1, plan=Plan.STANDARD).__dict__, "config": {"mau_pack": "50k"}})
    submitted = state(
        {
            modals.APP_BLOCK: std.app_id,
            modals.OPERATION_BLOCK: "configure",
            modals.EDITION_BLOCK: "standard",
            f"{modals.ADDON_BLOCK}history_retention": "90d",
            f"{modals.ADDON_BLOCK}group_members": "plan",
            f"{modals.ADDON_BLOCK}mau_pack": "50k",
        },
        private_metadata=json.dumps({"channel": "CTEAM"}),
    )
    read = modals.form_state(submitted)
    assert (read.app_id, read.operation, read.channel) == (std.app_id, Operation.CONFIGURE, "CTEAM")
    change = modals.change_of(read, std, CATALOG)
    assert change.plan is None and dict(change.addons) == {"history_retention": "90d"}


def test_refusals_land_under_the_field_they_concern() -> None:
    read = modals.form_state(
        state(
            {
                modals.APP_BLOCK: "1",
                modals.OPERATION_BLOCK: "configure",
                f"{modals.ADDON_BLOCK}mau_pack": "9k",
            }
        )
    )
    assert list(modals.field_errors(NothingToChange("1", "that"), read)) == [modals.OPERATION_BLOCK]
    addon = InvalidAddonValue("mau_pack", "9k", ["none"])
    assert list(modals.field_errors(addon, read)) == [f"{modals.ADDON_BLOCK}mau_pack"]
    nothing = modals.form_state(state({}))
    assert list(modals.field_errors(NothingToChange("1", "that"), nothing)) == [modals.APP_BLOCK]


def test_the_picker_options_name_the_app_within_slacks_limits() -> None:
    options = modals.app_options([app(1, "x" * 80), app(2, NASTY)])
    assert [o["value"] for o in options] == ["1400000001", "1400000002"]
    assert all(len(o["text"]["text"]) <= 75 for o in options)
    assert options[1]["description"]["text"] == "developer, active"
