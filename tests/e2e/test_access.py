"""Who may do what, through the real server: roles, grants, approvals, forged clicks, channels.

Three `planbot serve` processes, each with its own fake Slack:

- `peer`: disable needs one peer, migrate two, approval cards go to CAPPROVALS, viewer by default;
- `locked`: nobody by default, plan changes only from COPS;
- `expiring`: approvals expire after one second, and the server's own sweep is far away, so a test
  decides when the sweep (`planbot tick`) runs.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core import SqlStore, make_engine
from core.store.statements import OUTBOX
from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    ADMIN,
    AUDIT,
    PLANBOT,
    SECRET,
    TEAM,
    Served,
    card_text,
    start_planbot,
    stop_planbot,
)
from tests.support.waiting import eventually, settled

pytestmark = pytest.mark.e2e

BOB, CY = "UBOB", "UCY"
ADMINS = f"{ADMIN},{BOB},{CY}"
ADMINS_LINE = f"Admins: <@{ADMIN}>, <@{BOB}>, <@{CY}>"
APPROVALS = "CAPPROVALS"
OPS = "COPS"
OPERATOR = "UOPER"  # granted operator (all apps) when the peer server starts
GROUP, MEMBER = "SOPS", "UGRP"


def serve(tmp: Path, slack: FakeSlack, env: dict[str, str]) -> Served:
    return start_planbot(tmp, slack, extra={"PLANBOT_ADMINS": ADMINS, **env})


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {
        "PLANBOT_APPROVALS": "disable=peer,migrate=peer:2",
        "PLANBOT_APPROVALS_CHANNEL": APPROVALS,
        "PLANBOT_DEFAULT_ROLE": "viewer",
    }
    with FakeSlack() as slack:
        slack.usergroups[GROUP] = [MEMBER]
        served = serve(tmp_path_factory.mktemp("peer"), slack, env)
        try:
            granted = served.command(f"access grant <@{OPERATOR}|oper> operator").json()
            assert "now has the `operator` role" in card_text(granted)
            yield served
        finally:
            stop_planbot(served)


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {"PLANBOT_DEFAULT_ROLE": "nobody", "PLANBOT_ALLOWED_CHANNELS": OPS}
    with FakeSlack() as slack:
        served = serve(tmp_path_factory.mktemp("locked"), slack, env)
        try:
            yield served
        finally:
            stop_planbot(served)


EXPIRING = {
    "PLANBOT_APPROVALS": "disable=peer",
    "PLANBOT_APPROVALS_CHANNEL": APPROVALS,
    "PLANBOT_APPROVAL_TTL": "1",
    "PLANBOT_SWEEP_INTERVAL": "3600",
}


@pytest.fixture(scope="module")
def expiring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    with FakeSlack() as slack:
        tmp = tmp_path_factory.mktemp("expiring")
        served = serve(tmp, slack, EXPIRING)
        try:
            yield served, tmp
        finally:
            stop_planbot(served)


# --- helpers ---------------------------------------------------------------------------------


def say(served: Served, text: str, *, user: str = ADMIN, channel: str = TEAM) -> str:
    """The text of the bot's answer to `/plan <text>`."""
    response = served.command(text, user=user, channel=channel)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("response_type") == "ephemeral"
    return card_text(body)


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id -> value of every button in a message."""
    return {
        e["action_id"]: e["value"]
        for b in message.get("blocks", [])
        for e in b.get("elements", [])
        if e.get("type") == "button"
    }


def press(
    served: Served, action: str, request_id: str, *, user: str, response: str
) -> dict[str, Any]:
    """Click a button; the message the bot sent back to that click's response_url."""
    assert served.click(action, request_id, user=user, response=response).status_code == 200
    return served.slack.wait_for_response(response, timeout=10)


def approval_card(served: Served, request_id: str) -> dict[str, Any]:
    """The approval card posted for a request (waits for the outbox to deliver it)."""
    call = served.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and request_id in str(c.body.get("blocks")),
        timeout=10,
    )
    return call.body


def audit_about(served: Served, needle: str, *, count: int = 1) -> list[str]:
    """The audit channel's messages mentioning `needle` (waits until `count` have arrived)."""

    def found() -> list[str]:
        return [card_text(m) for m in served.slack.messages(AUDIT) if needle in str(m)]

    return settled(found, 10, until=lambda said: len(said) >= count)


def card_updates(served: Served, request_id: str) -> list[dict[str, Any]]:
    """Every update of the approval card of a request (chat.update), oldest first."""
    return [c.body for c in served.slack.calls("chat.update") if request_id in str(c.body)]


def card_update(served: Served, request_id: str, needle: str) -> dict[str, Any]:
    """The update of a request's approval card that says `needle` (waits for it)."""
    return served.slack.wait_for(
        lambda c: (
            c.method == "chat.update" and request_id in str(c.body) and needle in card_text(c.body)
        ),
        timeout=10,
    ).body


def request_state(served: Served, request_id: str) -> str:
    engine = make_engine(served.database_url)
    try:
        with SqlStore(engine).unit_of_work(write=False) as uow:
            row = uow.requests.get(request_id)
            assert row is not None
            return row.state.value
    finally:
        engine.dispose()


def receipt(served: Served, key: str) -> dict[str, Any]:
    """Where the outbox entry with that key was posted (channel and ts), once it is marked
    delivered (a moment after Slack took it)."""
    engine = make_engine(served.database_url)

    def found() -> dict[str, Any]:
        with engine.connect() as connection:
            query = sa.select(OUTBOX.c.receipt).where(OUTBOX.c.key == key)
            return dict(connection.execute(query).scalar_one())

    try:
        return settled(found, 10, until=lambda said: said.get("ts"))
    finally:
        engine.dispose()


def history_count(served: Served, app_id: str, operation: str) -> int:
    engine = make_engine(served.database_url)
    try:
        with SqlStore(engine).unit_of_work(write=False) as uow:
            rows = uow.history.of(app_id, limit=100)
            return len([r for r in rows if r.operation == operation])
    finally:
        engine.dispose()


def refused_for(text: str, role: str) -> bool:
    return (
        text.startswith(":no_entry: You can't")
        and f"it needs the `{role}` role" in text
        and ADMINS_LINE in text
    )


# --- each role on each operation -----------------------------------------------------------------

#: operation -> (the role it needs, the command, what an allowed answer shows)
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "list": ("viewer", "list", "apps"),
    "status": ("viewer", "status e2e-dev-1", "Developer validity until"),
    "history": ("viewer", "history e2e-dev-1", "History of e2e-dev-1"),
    "bill": ("viewer", "bill e2e-std-1", "Total for"),
    "upgrade": ("operator", "upgrade e2e-dev-2 premium", "plan_confirm"),
    "config": ("operator", "config e2e-std-2 edition=premium", "plan_confirm"),
    "extend": ("operator", "extend e2e-dev-3", "plan_confirm"),
    "create": ("operator", "create matrix-new", "plan_confirm"),
    "disable": ("admin", "disable e2e-std-3", "needs approval by 1 other person"),
    "enable": ("admin", "enable e2e-disabled-1", "plan_confirm"),
    "migrate": ("admin", "migrate e2e-legacy-1", "needs approval by 2 other people"),
    "access grant": ("admin", "access grant <@UNEWBIE|newbie> viewer", "now has the `viewer`"),
    "access revoke": ("admin", "access revoke <@UNOONE|noone> operator", "nothing changed"),
}
RANK = {"nobody": 0, "viewer": 1, "operator": 2, "admin": 3}
PEOPLE = {"viewer": "UVIEWER", "operator": OPERATOR, "admin": ADMIN}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("role", list(PEOPLE))
def test_each_role_on_each_operation(peer: Served, role: str, operation: str) -> None:
    needed, command, allowed = OPERATIONS[operation]
    response = peer.command(command, user=PEOPLE[role])
    assert response.status_code == 200
    answer = response.json()
    text = card_text(answer)
    if RANK[role] >= RANK[needed]:
        assert ":no_entry:" not in text, text
        assert allowed in text or allowed in buttons(answer), text
    else:
        assert refused_for(text, needed), text
        assert "plan_confirm" not in buttons(answer)


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_nobody_by_default_may_do_nothing(locked: Served, operation: str) -> None:
    needed, command, _ = OPERATIONS[operation]
    text = say(locked, command, user="USTRANGER", channel=OPS)
    assert refused_for(text, "viewer" if needed == "viewer" else needed), text


def test_help_lists_only_what_the_role_allows(peer: Served, locked: Served) -> None:
    def forms(text: str) -> set[str]:
        return set(re.findall(r"^• `/plan (\w+)", text, re.MULTILINE)) - {"help"}

    viewer = say(peer, "help", user="UVIEWER")
    assert forms(viewer) == {"list", "status", "history", "bill", "usage", "lang"}
    operator = say(peer, "help", user=OPERATOR)
    assert forms(operator) == {"list", "status", "history", "bill", "usage", "lang"} | {
        "upgrade",
        "config",
        "extend",
        "create",
    }
    admin = say(peer, "help")
    assert forms(admin) == forms(operator) | {"disable", "enable", "migrate", "access"}
    assert "`/plan disable" not in operator and "`/plan upgrade" not in viewer

    stranger = say(locked, "help", user="USTRANGER")
    assert "You can't use `/plan` yet" in stranger and not forms(stranger)


# --- grants ------------------------------------------------------------------------------------


def test_grant_then_revoke_a_user_is_audited_and_takes_effect(peer: Served) -> None:
    before = say(peer, "upgrade e2e-dev-11 standard", user="UREV")
    assert refused_for(before, "operator")

    granted = say(peer, "access grant <@UREV|rev> operator").splitlines()[0]
    assert granted == ":key: <@UREV> now has the `operator` role for all apps."
    card, request_id = peer.preview("upgrade e2e-dev-11 standard", user="UREV")
    assert "Upgrade e2e-dev-11" in card_text(card)
    assert "• <@UREV>: operator (rev)" in say(peer, "access list", user="UVIEWER")

    revoked = say(peer, "access revoke <@UREV|rev> operator").splitlines()[0]
    assert revoked == ":key: <@UREV> no longer has the `operator` role for all apps."
    assert refused_for(say(peer, "upgrade e2e-dev-11 standard", user="UREV"), "operator")
    # the card shown before the revoke no longer works either
    answer = press(peer, "plan_confirm", request_id, user="UREV", response="rev-confirm")
    assert refused_for(card_text(answer), "operator")
    assert answer["replace_original"] is False
    assert peer.app("1400000011").plan == "developer"

    grant, revoke = audit_about(peer, "UREV", count=3)[:2]
    assert grant.startswith(f":key: <@{ADMIN}> granted *operator* to <@UREV> (all apps)")
    assert revoke.startswith(f":key: <@{ADMIN}> revoked *operator* from <@UREV> (all apps)")
    refusal = audit_about(peer, request_id)
    assert len(refusal) == 1 and "Refused: <@UREV> on upgrade" in refusal[0]


def test_a_grant_to_a_user_group_covers_its_members(peer: Served) -> None:
    assert refused_for(say(peer, "extend e2e-dev-12", user=MEMBER), "operator")
    granted = say(peer, f"access grant <!subteam^{GROUP}|@ops> operator").splitlines()[0]
    assert granted == f":key: <!subteam^{GROUP}> now has the `operator` role for all apps."

    # the group's members are read in the background: until then its members are asked to
    # try again in a few seconds (not refused for the role)
    deadline = time.monotonic() + 15
    while "still reading your user groups" in (said := say(peer, "extend e2e-dev-12", user=MEMBER)):
        assert time.monotonic() < deadline, said
        time.sleep(0.1)
    _, request_id = peer.preview("extend e2e-dev-12", user=MEMBER)
    outcome = press(peer, "plan_confirm", request_id, user=MEMBER, response="grp")
    assert "e2e-dev-12 (1400000012) extended." in card_text(outcome)
    assert peer.slack.calls("usergroups.users.list"), "membership comes from Slack"
    assert refused_for(say(peer, "extend e2e-dev-12", user="UOUTSIDER"), "operator")

    audit = audit_about(peer, f"`{GROUP}`")
    assert audit[0].startswith(f":key: <@{ADMIN}> granted *operator* to group ops (`{GROUP}`)")


def test_a_team_grant_covers_only_that_teams_apps(peer: Served) -> None:
    _, created = peer.preview("create tina-elsewhere", channel="COTHER")
    outcome = press(peer, "plan_confirm", created, user=ADMIN, response="tina-create")
    other = re.search(r"\((14\d{8})\)", card_text(outcome))
    assert other, card_text(outcome)

    granted = say(peer, "access grant <@UTINA|tina> operator <#CTEAM|team>").splitlines()[0]
    assert granted == ":key: <@UTINA> now has the `operator` role for the apps of <#CTEAM>."
    assert audit_about(peer, "UTINA")[0].startswith(
        f":key: <@{ADMIN}> granted *operator* to <@UTINA> (<#CTEAM>)"
    )

    _, request_id = peer.preview("upgrade e2e-dev-13 standard", user="UTINA")
    press(peer, "plan_confirm", request_id, user="UTINA", response="tina-up")
    assert peer.app("1400000013").plan == "standard"

    refused = say(peer, "upgrade tina-elsewhere standard", user="UTINA")
    assert refused_for(refused, "operator")
    assert peer.app(other.group(1)).plan == "developer"
    assert refused_for(say(peer, "create tina-new", user="UTINA", channel="COTHER"), "operator")

    help_text = say(peer, "help", user="UTINA")
    assert "`/plan upgrade" in help_text and "`/plan disable" not in help_text


# --- the approval policy ---------------------------------------------------------------------


def test_a_peer_request_waits_and_the_requester_cannot_approve_it(peer: Served) -> None:
    waiting = peer.command("disable e2e-std-4", response="ada-std-4").json()
    text = card_text(waiting)
    assert "needs approval by 1 other person with the *admin* role" in text
    assert f"An approval card is being posted in <#{APPROVALS}>" in text
    assert "planbot will message you the outcome" in text
    assert set(buttons(waiting)) == {"plan_cancel"}, "no Confirm for the requester"
    request_id = buttons(waiting)["plan_cancel"]

    card = approval_card(peer, request_id)
    assert card["channel"] == APPROVALS
    assert buttons(card) == {"plan_approve": request_id, "plan_reject": request_id}
    assert f"<@{ADMIN}> asks to disable" in card_text(card)
    assert "needs the approval of someone else with the *admin* role" in card_text(card)
    # the requester's card again, once the approval card is posted: with a link to it
    posted = receipt(peer, f"approval:{request_id}")
    link = f"https://fake.slack.test/archives/{APPROVALS}/p{posted['ts'].replace('.', '')}"
    linked = peer.slack.wait_for_response("ada-std-4", 10, lambda b: link in card_text(b))
    assert linked["replace_original"] is True
    assert buttons(linked) == {"plan_cancel": request_id}

    own = press(peer, "plan_approve", request_id, user=ADMIN, response="self-approve")
    assert "needs approval by someone else" in card_text(own)
    assert own["replace_original"] is False, "the card stays for the real approvers"
    assert peer.app("1400000104").status == "active"
    assert request_state(peer, request_id) == "pending"
    refusal = audit_about(peer, request_id)
    assert len(refusal) == 1 and f"Refused: <@{ADMIN}> on disable" in refusal[0]

    assert peer.click("plan_approve", request_id, user=BOB, response="bob-ok").status_code == 200
    update = card_update(peer, request_id, "Applied")
    assert (update["channel"], update["ts"]) == (APPROVALS, posted["ts"])
    assert f"with the approval of <@{BOB}>" in card_text(update)
    assert not buttons(update), "nothing is left to press"
    assert peer.app("1400000104").status == "disabled"
    assert peer.slack.responses("bob-ok") == [], "the card the approver pressed is updated"
    change = audit_about(peer, request_id, count=2)[1]
    assert f"<@{BOB}> disabled" in change and f"requested by <@{ADMIN}>" in change
    assert history_count(peer, "1400000104", "disable") == 1
    # the requester: their card without Withdraw, and a message
    final = peer.slack.wait_for_response("ada-std-4", 10, lambda b: "disabled." in card_text(b))
    assert final["replace_original"] is True and not buttons(final)
    told = peer.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.body.get("channel") == ADMIN
            and request_id in str(c.body)
        )
    )
    assert f"<@{BOB}> disabled" in card_text(told.body)


def test_two_admins_approving_at_once_apply_it_once(peer: Served) -> None:
    request_id = buttons(peer.command("disable e2e-std-5").json())["plan_cancel"]
    approval_card(peer, request_id)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        clicks = [
            pool.submit(peer.click, "plan_approve", request_id, user=who, response=f"race-{who}")
            for who in (BOB, CY)
        ]
        assert [c.result().status_code for c in clicks] == [200, 200]
    card_update(peer, request_id, "Applied")
    eventually(  # the later click's answer goes to whichever clicked later
        lambda: peer.slack.responses("race-UBOB") or peer.slack.responses("race-UCY"),
        10,
        "an answer to the later click",
    )
    late = peer.slack.wait_for_response(
        "race-UBOB" if peer.slack.responses("race-UBOB") else "race-UCY", 10
    )
    assert "This request was already done by <@U" in card_text(late)
    assert history_count(peer, "1400000105", "disable") == 1
    time.sleep(0.5)  # a second audit message, or a second answer, would have arrived by now
    assert len(audit_about(peer, request_id)) == 1
    assert len(peer.slack.responses("race-UBOB") + peer.slack.responses("race-UCY")) == 1
    assert len(card_updates(peer, request_id)) == 1


def test_two_approvers_are_needed_for_a_migration(peer: Served) -> None:
    request_id = buttons(peer.command("migrate e2e-legacy-2").json())["plan_cancel"]
    assert "needs the approval of 2 other people" in card_text(approval_card(peer, request_id))

    assert peer.click("plan_approve", request_id, user=BOB, response="mig-1").status_code == 200
    first = card_update(peer, request_id, "1 of 2 approvals")
    text = card_text(first)
    assert f"1 of 2 approvals: <@{BOB}>" in text
    assert "*Changes*" in text and "Billing mode" in text, "the card keeps its whole preview"
    assert "asks to migrate" in text and "approval(s)" not in text
    assert buttons(first) == {"plan_approve": request_id, "plan_reject": request_id}, (
        "the card still lets the next approver approve"
    )
    assert peer.app("1400000402").billing_mode == "legacy"
    again = press(peer, "plan_approve", request_id, user=BOB, response="mig-1-again")
    assert "You already approved this request; it still waits for 1 more approval" in card_text(
        again
    )
    assert again["replace_original"] is False

    assert peer.click("plan_approve", request_id, user=CY, response="mig-2").status_code == 200
    second = card_update(peer, request_id, "Applied")
    assert f"with the approval of <@{BOB}>, <@{CY}>" in card_text(second)
    assert not buttons(second)
    assert peer.app("1400000402").billing_mode == "current"
    assert history_count(peer, "1400000402", "migrate") == 1


def test_a_peer_rejects_and_nothing_is_applied(peer: Served) -> None:
    request_id = buttons(peer.command("disable e2e-std-6", response="ada-std-6").json())[
        "plan_cancel"
    ]
    approval_card(peer, request_id)
    assert peer.click("plan_reject", request_id, user=BOB, response="reject").status_code == 200
    update = card_update(peer, request_id, "Rejected")
    assert f"Rejected by <@{BOB}>" in card_text(update) and not buttons(update)
    late = press(peer, "plan_approve", request_id, user=CY, response="after-reject")
    assert f"This request was rejected by <@{BOB}>" in card_text(late)
    assert peer.app("1400000106").status == "active"
    assert request_state(peer, request_id) == "rejected"
    audit = audit_about(peer, request_id)
    assert len(audit) == 1 and f"Rejected: <@{BOB}> on disable" in audit[0]
    assert f"requested by <@{ADMIN}>" in audit[0]
    # the requester hears who rejected it, and their card offers no Withdraw any more
    told = peer.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.body.get("channel") == ADMIN
            and request_id in str(c.body)
        )
    )
    assert f"Your request was rejected by <@{BOB}>" in card_text(told.body)
    final = peer.slack.wait_for_response("ada-std-6", 10, lambda b: "Rejected by" in card_text(b))
    assert final["replace_original"] is True and not buttons(final)


def test_a_withdrawn_request_replaces_the_approval_card_at_once(peer: Served) -> None:
    waiting = peer.command("disable e2e-std-9", response="ada-std-9").json()
    request_id = buttons(waiting)["plan_cancel"]
    approval_card(peer, request_id)

    mine = press(peer, "plan_cancel", request_id, user=ADMIN, response="ada-std-9-withdraw")
    assert "Cancelled; nothing was changed." in card_text(mine) and not buttons(mine)
    update = card_update(peer, request_id, "Withdrawn")
    assert f"Withdrawn by <@{ADMIN}>" in card_text(update)
    assert not buttons(update), "no Approve or Reject left on a withdrawn request"

    late = press(peer, "plan_approve", request_id, user=BOB, response="after-withdraw")
    assert f"This request was cancelled by <@{ADMIN}>" in card_text(late)
    assert peer.app("1400000109").status == "active"
    assert request_state(peer, request_id) == "cancelled"


def test_an_operator_cannot_approve_an_admin_operation(peer: Served) -> None:
    request_id = buttons(peer.command("disable e2e-std-7").json())["plan_cancel"]
    approval_card(peer, request_id)
    for action in ("plan_approve", "plan_reject"):
        answer = press(peer, action, request_id, user=OPERATOR, response=f"op-{action}")
        assert refused_for(card_text(answer), "admin")
        assert answer["replace_original"] is False
    assert peer.app("1400000107").status == "active"
    assert request_state(peer, request_id) == "pending"
    assert len(audit_about(peer, request_id, count=2)) == 2


# --- forged clicks ---------------------------------------------------------------------------


def test_a_forged_click_from_someone_never_shown_the_card(peer: Served) -> None:
    _, request_id = peer.preview("upgrade e2e-dev-14 premium", user=OPERATOR)
    for action in ("plan_confirm", "plan_cancel", "plan_reject", "plan_approve"):
        forged = press(peer, action, request_id, user="UMALLORY", response=f"forged-{action}")
        assert f"This request belongs to <@{OPERATOR}>" in card_text(forged), action
        assert forged["replace_original"] is False
    admin = press(peer, "plan_confirm", request_id, user=ADMIN, response="forged-admin")
    assert f"This request belongs to <@{OPERATOR}>" in card_text(admin), "not even an admin"

    assert peer.app("1400000014").plan == "developer"
    assert request_state(peer, request_id) == "pending"
    audit = audit_about(peer, request_id, count=5)
    assert len(audit) == 5
    assert sum("Refused: <@UMALLORY> on upgrade" in a for a in audit) == 4
    outcome = press(peer, "plan_confirm", request_id, user=OPERATOR, response="forged-owner")
    assert "upgraded" in card_text(outcome)
    assert peer.app("1400000014").plan == "premium"


def test_a_plain_confirm_cannot_stand_in_for_an_approval(peer: Served) -> None:
    request_id = buttons(peer.command("disable e2e-std-8").json())["plan_cancel"]
    for user in (ADMIN, BOB):
        answer = press(peer, "plan_confirm", request_id, user=user, response=f"plain-{user}")
        assert "needs approval by another person" in card_text(answer)
        assert answer["replace_original"] is False
    assert peer.app("1400000108").status == "active"
    assert len(audit_about(peer, request_id, count=2)) == 2


def test_a_made_up_request_id_is_refused_and_audited(peer: Served) -> None:
    answer = press(peer, "plan_approve", "made-up-request", user=BOB, response="made-up")
    assert "That request doesn't exist" in card_text(answer)
    engine = make_engine(peer.database_url)
    try:
        with SqlStore(engine).unit_of_work(write=False) as uow:
            events = [e for e in uow.audit.records() if e["request_id"] == "made-up-request"]
    finally:
        engine.dispose()
    assert [(e["actor_id"], e["outcome"]) for e in events] == [(BOB, "refused")]


# --- channel restriction ---------------------------------------------------------------------


def test_plan_changes_only_from_allowed_channels_but_viewing_anywhere(locked: Served) -> None:
    refused = say(locked, "upgrade e2e-dev-20 standard", channel=TEAM)
    assert "Plan changes can only be made from the allowed channels" in refused
    assert f"Allowed: <#{OPS}>" in refused
    assert "Developer validity until" in say(locked, "status e2e-dev-20", channel=TEAM)
    assert "History of e2e-dev-20" in say(locked, "history e2e-dev-20", channel=TEAM)

    _, request_id = locked.preview("upgrade e2e-dev-20 standard", channel=OPS)
    outcome = press(locked, "plan_confirm", request_id, user=ADMIN, response="ops")
    assert "upgraded" in card_text(outcome)
    assert locked.app("1400000020").plan == "standard"


def test_a_team_viewer_sees_only_that_teams_apps(locked: Served) -> None:
    say(locked, "access grant <@UTEAMV|tv> viewer <#CTEAM|team>")
    listed = say(locked, "list", user="UTEAMV")
    assert "e2e-dev-1" in listed and "1400000900" not in listed
    assert "1400000900" in say(locked, "list channel"), "the admin sees the unowned app"
    assert refused_for(say(locked, "status 1400000900", user="UTEAMV"), "viewer")


# --- expiry ------------------------------------------------------------------------------------


def tick(served: Served, tmp: Path) -> str:
    """`planbot tick` against the same database and fake Slack: one sweep, then delivery."""
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-e2e",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": served.slack.api_url,
        "DATABASE_URL": served.database_url,
        "PLANBOT_AUDIT_CHANNEL": AUDIT,
        "PLANBOT_ADMINS": ADMINS,
        **EXPIRING,
    }
    done = subprocess.run(
        [PLANBOT, "tick"], env=env, cwd=tmp, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_approval_after_expiry_is_refused(expiring: tuple[Served, Path]) -> None:
    served, _ = expiring
    waiting = served.command("disable e2e-std-1", response="ada-std-1").json()
    request_id = buttons(waiting)["plan_cancel"]
    approval_card(served, request_id)
    time.sleep(1.2)
    answer = press(served, "plan_approve", request_id, user=BOB, response="late")
    assert "This request expired on <!date^" in card_text(answer)
    assert "nothing was changed" in card_text(answer)
    assert served.app("1400000101").status == "active"
    assert request_state(served, request_id) == "expired"
    # in the audit trail, but not announced: a click that came too late is nobody's fault
    assert [e["outcome"] for e in audit_records(served, request_id)] == ["refused"]
    time.sleep(0.5)
    assert audit_about(served, request_id, count=0) == []
    # the card and the requester know at once
    update = card_update(served, request_id, "Expired")
    assert not buttons(update)
    told = served.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.body.get("channel") == ADMIN
            and request_id in str(c.body)
        )
    )
    assert "Your request expired without the approvals it needed" in card_text(told.body)


def test_the_sweep_replaces_an_expired_approval_card(expiring: tuple[Served, Path]) -> None:
    served, tmp = expiring
    request_id = buttons(served.command("disable e2e-std-2").json())["plan_cancel"]
    card = approval_card(served, request_id)
    time.sleep(1.2)
    assert "1 requests expired" in tick(served, tmp)

    update = served.slack.wait_for(
        lambda c: c.method == "chat.update" and request_id in str(c.body), timeout=10
    )
    posted = receipt(served, f"approval:{request_id}")
    assert (update.body["channel"], update.body["ts"]) == (APPROVALS, posted["ts"])
    assert "expired" in card_text(update.body).lower()
    assert "0 of 1 approval" in card_text(update.body)
    assert not buttons(update.body), "an expired card has nothing left to press"
    assert card["channel"] == APPROVALS
    # recorded in the audit trail, and told to the requester
    [expiry] = audit_records(served, request_id)
    assert (expiry["outcome"], expiry["actor_id"]) == ("expired", "planbot")
    told = served.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.body.get("channel") == ADMIN
            and request_id in str(c.body)
        )
    )
    assert "Your request expired" in card_text(told.body)

    answer = press(served, "plan_approve", request_id, user=BOB, response="after-sweep")
    assert "expired before it was confirmed" in card_text(answer)
    assert served.app("1400000102").status == "active"


def audit_records(served: Served, request_id: str) -> list[dict[str, Any]]:
    """The audit trail's records about a request."""
    engine = make_engine(served.database_url)
    try:
        with SqlStore(engine).unit_of_work(write=False) as uow:
            return [e for e in uow.audit.records() if e["request_id"] == request_id]
    finally:
        engine.dispose()
