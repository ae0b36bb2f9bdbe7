"""The home tab and the plan modal through real HTTP: signed events, shortcuts, option requests and
view submissions to `planbot serve`, its delivery worker drawing home tabs on the fake Slack.

- `app_home_opened` publishes (from the worker) a view listing the person's team's apps and the
  request waiting for their approval; approving from it applies the change once;
- the app picker's options are the matching apps the person may see, none they may not;
- the shortcut opens the modal with its trigger id; picking an app fills it in; a submission
  previews; Confirm applies, the audit message is posted;
- `url_verification` is answered; a retried event changes nothing twice.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from core import make_engine
from fakes.signing import (
    block_suggestion_body,
    event_body,
    home_action_body,
    shortcut_body,
    sign,
    signed_headers,
    signed_json_headers,
    view_action_body,
    view_submission_body,
)
from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    ADMIN,
    AUDIT,
    PLANBOT,
    SECRET,
    TEAM,
    Served,
    card_text,
    planbot_env,
    start_planbot,
    stop_planbot,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

TEAM_ADMIN = "UTADMIN"  # admin of CTEAM's apps: approves what the configured admin asks
TEAM_VIEWER = "UTEAMV"  # sees CTEAM's apps only (everyone else sees nothing)
OTHER = "COTHER"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Disabling needs a peer's approval; nobody sees anything unless granted."""
    tmp = tmp_path_factory.mktemp("home")
    env = {
        "PLANBOT_ADMINS": ADMIN,
        "PLANBOT_APPROVALS": "disable=peer",
        "PLANBOT_DEFAULT_ROLE": "nobody",
    }
    with FakeSlack() as slack:
        served = start_planbot(tmp, slack, extra=env)
        try:
            other = tmp / "other.csv"
            other.write_text(
                "app_id,name,plan,created_at,owner_channel\n"
                f"1400000950,e2e-other-1,standard,2025-01-01,{OTHER}\n"
            )
            subprocess.run(
                [PLANBOT, "apps", "import", str(other)],
                env=planbot_env(slack, served.database_url, env),
                check=True,
                cwd=tmp,
                capture_output=True,
            )
            for who, role in ((TEAM_VIEWER, "viewer"), (TEAM_ADMIN, "admin")):
                granted = served.command(f"access grant <@{who}|{who}> {role} <#{TEAM}|team>")
                assert f"now has the `{role}` role" in card_text(granted.json())
            settled(served)
            yield served
        finally:
            stop_planbot(served)


def post(served: Served, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return served.http.post(f"{served.url}/slack/events", content=body, headers=headers)


def interact(served: Served, body: bytes) -> httpx.Response:
    """A signed interaction (form-encoded `payload`)."""
    response = post(served, body, signed_headers(body, SECRET))
    assert response.status_code == 200, response.text
    return response


def opened_home(served: Served, user: str, event_id: str, retry: int | None = None) -> None:
    body = event_body(
        {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"},
        event_id=event_id,
    )
    response = post(served, body, signed_json_headers(body, SECRET, retry=retry))
    assert response.status_code == 200, response.text


def settled(served: Served) -> None:
    """Wait until the worker has delivered what concerns home tabs (so a test counts its own)."""
    query = "SELECT count(*) FROM outbox WHERE topic = 'home' AND status = 'pending'"
    eventually(
        lambda: rows(served, query)[0][0],
        10,
        "the home tab's entries delivered",
        until=lambda n: not n,
    )


def texts(view: dict[str, Any]) -> str:
    return card_text({"blocks": view.get("blocks", [])})


def buttons(view: dict[str, Any], action_id: str) -> list[str]:
    return [
        element["value"]
        for block in view.get("blocks", [])
        for element in [*block.get("elements", []), block.get("accessory") or {}]
        if element.get("action_id") == action_id
    ]


def rows(served: Served, query: str) -> list[Any]:
    engine = make_engine(served.database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(query)))
    finally:
        engine.dispose()


# --- the home tab --------------------------------------------------------------------------------


def test_the_home_tab_lists_the_team_apps_and_a_request_to_approve_and_approving_applies_once(
    served: Served,
) -> None:
    slack = served.slack
    card = served.command("disable e2e-std-2").json()
    assert "needs approval" in card_text(card)
    opened_home(served, TEAM_ADMIN, "EvHomeTeamAdmin1")
    home = slack.home_of(TEAM_ADMIN, timeout=10)
    text = texts(home)
    assert "Needs you" in text and "Disable e2e-std-2 (1400000102)" in text
    assert "Team <#CTEAM>" in text and "e2e-bill-1" in text and "e2e-dev-1" in text
    assert "e2e-other-1" not in text  # not their team's
    [request_id] = buttons(home, "home_approve")

    approve = home_action_body("home_approve", request_id, TEAM_ADMIN)
    assert interact(served, approve).text == ""
    assert served.app("1400000102").status == "disabled"
    again = interact(served, home_action_body("home_approve", request_id, TEAM_ADMIN))
    assert again.status_code == 200
    audit = slack.wait_for(
        lambda c: (
            c.body.get("channel") == AUDIT
            and "1400000102" in str(c.body)
            and "disabled" in card_text(c.body)
        ),
        timeout=10,
        method="chat.postMessage",
    )
    assert audit
    # the second click is answered in a modal (already done), and changed nothing
    refused = slack.wait_for(
        lambda c: "already" in texts(c.body["view"]), timeout=10, method="views.open"
    )
    assert refused
    applied = rows(
        served,
        "SELECT count(*) FROM plan_history WHERE app_id = '1400000102' AND operation = 'disable'",
    )
    assert applied[0][0] == 1
    disabled = [
        m for m in slack.messages(AUDIT) if "1400000102" in str(m) and "disabled" in card_text(m)
    ]
    assert len(disabled) == 1
    # and the tab is drawn again without the request
    slack.wait_for(
        lambda c: c.body.get("user_id") == TEAM_ADMIN and "home_approve" not in json.dumps(c.body),
        timeout=10,
        method="views.publish",
    )


def test_the_picker_offers_the_matching_apps_one_may_see_and_none_other(served: Served) -> None:
    def options(user: str, typed: str) -> list[str]:
        body = block_suggestion_body("plan_pick_app", typed, user, block_id="plan_app")
        return [o["value"] for o in interact(served, body).json()["options"]]

    mine = options(TEAM_VIEWER, "e2e-std")
    assert mine[:3] == ["1400000101", "1400000102", "1400000103"]
    assert options(TEAM_VIEWER, "std-4") == ["1400000104"]  # inside a name
    assert options(TEAM_VIEWER, "e2e-other") == []  # another team's
    assert options(TEAM_VIEWER, "channel") == []  # an app of no team
    assert options(ADMIN, "e2e-other") == ["1400000950"]
    assert options("UNOBODY", "e2e") == []


# --- the modal ----------------------------------------------------------------------------------


def test_the_shortcut_opens_the_modal_a_submission_previews_and_confirm_applies(
    served: Served,
) -> None:
    slack = served.slack
    response = interact(served, shortcut_body("plan_shortcut", ADMIN, trigger_id="T-home-1"))
    assert response.text == ""
    opened = slack.wait_for(
        lambda c: c.body.get("trigger_id") == "T-home-1", timeout=10, method="views.open"
    )
    form = {**opened.body["view"], "id": "VFORM1", "hash": "1.form"}
    assert form["callback_id"] == "plan_form"

    picked = {"type": "external_select", "selected_option": {"value": "1400000003"}}
    values: dict[str, Any] = {"plan_app": {"plan_pick_app": picked}}
    action = {"action_id": "plan_pick_app", "type": "external_select", **picked}
    interact(served, view_action_body(action, form, ADMIN, values))
    updated = slack.wait_for(
        lambda c: c.body.get("view_id") == "VFORM1", timeout=10, method="views.update"
    )
    form = {**updated.body["view"], "id": "VFORM1"}
    offered = [
        o["value"]
        for b in form["blocks"]
        if b.get("block_id") == "plan_operation"
        for o in b["element"]["options"]
    ]
    assert offered == ["upgrade", "extend"]  # a developer app: nothing else applies

    # an operation that does not apply is refused under its field, and the modal stays
    values["plan_operation"] = {"plan_pick_operation": {"selected_option": {"value": "disable"}}}
    refused = interact(served, view_submission_body(form, ADMIN, values)).json()
    assert refused["response_action"] == "errors"
    assert "disabl" in refused["errors"]["plan_operation"]

    values["plan_operation"] = {"plan_pick_operation": {"selected_option": {"value": "upgrade"}}}
    values["plan_edition"] = {"plan_pick_edition": {"selected_option": {"value": "premium"}}}
    preview = interact(served, view_submission_body(form, ADMIN, values)).json()
    assert preview["response_action"] == "update"
    confirm = preview["view"]
    assert confirm["callback_id"] == "plan_form_confirm"
    assert "developer" in texts(confirm) and "premium" in texts(confirm) and "$" in texts(confirm)
    assert served.app("1400000003").plan == "developer", "a preview changes nothing"

    done = interact(served, view_submission_body(confirm, ADMIN)).json()
    assert done["response_action"] == "update"
    assert "upgraded" in texts(done["view"])
    assert served.app("1400000003").plan == "premium"
    slack.wait_for(
        lambda c: c.body.get("channel") == AUDIT and "1400000003" in str(c.body),
        timeout=10,
        method="chat.postMessage",
    )
    again = interact(served, view_submission_body(confirm, ADMIN)).json()
    assert "already" in texts(again["view"])  # a second Confirm applies nothing
    upgraded = [m for m in slack.messages(AUDIT) if "1400000003" in str(m)]
    assert len(upgraded) == 1


def test_plan_alone_opens_the_modal(served: Served) -> None:
    response = served.command("")
    assert response.status_code == 200 and response.text == ""
    served.slack.wait_for(
        lambda c: c.body["view"]["callback_id"] == "plan_form", timeout=10, method="views.open"
    )


# --- events -------------------------------------------------------------------------------------


def test_url_verification_is_answered(served: Served) -> None:
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"}).encode()
    response = post(served, body, signed_json_headers(body, SECRET))
    assert response.status_code == 200 and response.json() == {"challenge": "c-123"}
    unsigned = post(served, body, {"Content-Type": "application/json", **sign(body, "wrong")})
    assert unsigned.status_code == 401


def test_a_retried_event_changes_nothing_twice(served: Served) -> None:
    opened_home(served, TEAM_VIEWER, "EvRetried1")
    opened_home(served, TEAM_VIEWER, "EvRetried1", retry=1)
    opened_home(served, TEAM_VIEWER, "EvRetried1", retry=2)
    served.slack.home_of(TEAM_VIEWER, timeout=10)
    assert (
        rows(served, "SELECT count(*) FROM inbound_event WHERE event_id = 'EvRetried1'")[0][0] == 1
    )
    queued = rows(
        served,
        "SELECT count(*) FROM outbox WHERE destination = 'home:UTEAMV' AND topic = 'home'",
    )
    assert queued[0][0] == 1
    opened_home(served, TEAM_VIEWER, "EvRetried2")  # a new event is a new opening
    assert (
        rows(served, "SELECT count(*) FROM inbound_event WHERE event_id = 'EvRetried2'")[0][0] == 1
    )


def test_the_pager_and_the_team_filter_are_drawn_again_by_the_worker(served: Served) -> None:
    slack = served.slack
    opened_home(served, TEAM_ADMIN, "EvPager1")
    first = slack.home_of(TEAM_ADMIN, timeout=10)
    [following] = buttons(first, "home_page")
    interact(served, home_action_body("home_page", following, TEAM_ADMIN))
    second = slack.wait_for(
        lambda c: c.body.get("user_id") == TEAM_ADMIN and "Page 2 of" in texts(c.body["view"]),
        timeout=10,
        method="views.publish",
    )
    assert "*e2e-bill-1*" not in texts(second.body["view"])  # the first page's first app

    picked = {"action_id": "home_team", "type": "conversations_select"}
    other = view_action_body(
        {**picked, "selected_conversation": OTHER}, {"id": "VHOME", "type": "home"}, ADMIN
    )
    opened_home(served, ADMIN, "EvPager2")
    interact(served, other)
    only = slack.wait_for(
        lambda c: (
            c.body.get("user_id") == ADMIN
            and "Team <#COTHER>" in texts(c.body["view"])
            and "Team <#CTEAM>" not in texts(c.body["view"])
        ),
        timeout=10,
        method="views.publish",
    )
    assert buttons(only.body["view"], "home_all_teams") == [""]
