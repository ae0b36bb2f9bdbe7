"""The home tab's data and the form's choices, on the store in memory.

What a person's home tab shows (requests they may decide, their own, what is coming up, their
apps with this month's charges), whose tab is drawn again when something changes, events
processed once, and what the modal's picker and operation list offer to whom.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core import (
    AccessPolicy,
    Actor,
    ApprovalRule,
    Catalog,
    ChangeRequest,
    CoreConfig,
    Grant,
    HomeChanged,
    Operation,
    Plan,
    PlanService,
    Role,
    load_message,
)
from core.home import APPS_PER_PAGE, AUDIENCE_WINDOW, home_destination
from core.importer import Imports
from tests.conftest import SHANGHAI, Clock
from tests.support.csvs import HEADER
from tests.support.fake_store import FakeStore

SEED = "\n".join(
    [
        HEADER,
        # clock: 2026-11-10 12:00 (UTC+8)
        "1400000001,dev-chat,developer,2026-11-01,,active,CTEAM,2026-11-20,",
        "1400000002,std-chat,standard,2026-01-15,,active,CTEAM,,",
        "1400000003,off-chat,premium,2026-01-15,,disabled,CTEAM,,2026-08-20T00:00:00Z",
        "1400000004,late-dev,developer,2026-11-01,,active,CTEAM,2027-01-20,",
        "1400000011,other-dev,developer,2026-11-01,,active,COTHER,2026-11-25,",
        "1400000012,other-std,standard,2026-01-15,,active,COTHER,,",
        "1400000021,stray-chat,developer,2026-11-01,,active,,2026-12-01,",
    ]
)
ADA = Actor("UADMIN", "Ada")  # configured admin
BOB = Actor("UBOB", "Bob")  # configured admin
OTTO = Actor("UOTTO", "Otto")  # operator everywhere
TINA = Actor("UTINA", "Tina")  # viewer of CTEAM's apps only (default role: nobody)
OLGA = Actor("UOLGA", "Olga")  # viewer of COTHER's apps only
NED = Actor("UNED", "Ned")  # nothing at all


def home_entries(store: FakeStore, kind: str) -> list[dict[str, Any]]:
    return [r for r in store.tables.outbox if r["payload"].get("kind") == kind]


def publishes(store: FakeStore) -> list[str]:
    """The people whose home tab is queued for drawing."""
    return [r["payload"]["user_id"] for r in home_entries(store, "home_publish")]


@pytest.fixture
def store(catalog: Catalog, clock: Clock) -> FakeStore:
    store = FakeStore()
    imports = Imports(store=store, catalog=catalog, tz=SHANGHAI, clock=clock)
    assert imports.from_csv(SEED, actor=Actor("cli", "importer")).imported == 7
    return store


@pytest.fixture
def service(store: FakeStore, catalog: Catalog, clock: Clock) -> PlanService:
    """disable=peer; nobody by default: Otto is an operator, Tina and Olga see one team each."""
    service = PlanService(
        store=store,
        config=CoreConfig(
            catalog=catalog,
            billing_tz=SHANGHAI,
            audit_channel="CAUDIT",
            access=AccessPolicy(
                admins=frozenset({ADA.user_id, BOB.user_id}),
                default_role=Role.NOBODY,
                approvals={"disable": ApprovalRule("peer", 1)},
            ),
        ),
        clock=clock,
    )
    service.grant(Grant("user", OTTO.user_id, Role.OPERATOR), label="otto", actor=ADA)
    service.grant(Grant("user", TINA.user_id, Role.VIEWER, "CTEAM"), label="tina", actor=ADA)
    service.grant(Grant("user", OLGA.user_id, Role.VIEWER, "COTHER"), label="olga", actor=ADA)
    return service


def expand_all(service: PlanService, store: FakeStore) -> None:
    """Deliver every queued `HomeChanged` as the delivery worker does."""
    for row in home_entries(store, "home_changed"):
        if row["status"] == "pending":
            message = load_message(row["payload"])
            assert isinstance(message, HomeChanged)
            service.home.expand(message)
            with store.unit_of_work() as uow:
                uow.outbox.update(row["id"], {"status": "delivered"})
                uow.commit()


def deliver_publishes(store: FakeStore) -> None:
    with store.unit_of_work() as uow:
        for row in home_entries(store, "home_publish"):
            uow.outbox.update(row["id"], {"status": "delivered"})
        uow.commit()


# --- what the tab shows ------------------------------------------------------------------------


def test_a_peer_request_needs_those_who_may_approve_it_and_waits_for_its_requester(
    service: PlanService,
) -> None:
    pending = service.request(ChangeRequest(Operation.DISABLE, app="1400000002"), actor=ADA)

    mine = service.home.board(ADA.user_id)
    assert [w.request.id for w in mine.yours] == [pending.id]
    assert mine.needs_you == ()
    bobs = service.home.board(BOB.user_id)
    assert [(w.request.id, w.decidable, w.team) for w in bobs.needs_you] == [
        (pending.id, True, "CTEAM")
    ]
    # an operator can't approve a disable (admins only); a viewer neither
    assert service.home.board(OTTO.user_id).needs_you == ()
    assert service.home.board(TINA.user_id).needs_you == ()

    service.reject(pending.id, actor=BOB)
    assert service.home.board(BOB.user_id).needs_you == ()
    assert service.home.board(ADA.user_id).yours == ()


def test_coming_up_lists_expiries_and_purges_within_30_days_of_the_teams_one_sees(
    service: PlanService, clock: Clock
) -> None:
    board = service.home.board(ADA.user_id)
    coming = [(c.app.app_id, c.operation, c.allowed) for c in board.coming_up]
    # dev-chat expires on 11-20, other-dev on 11-25, stray-chat on 12-01; off-chat (disabled on
    # 08-20) is purged on 11-18; late-dev expires after 30 days
    assert coming == [
        ("1400000003", Operation.ENABLE, True),
        ("1400000001", Operation.EXTEND, True),
        ("1400000011", Operation.EXTEND, True),
        ("1400000021", Operation.EXTEND, True),
    ]
    tinas = service.home.board(TINA.user_id).coming_up
    assert [(c.app.app_id, c.allowed) for c in tinas] == [
        ("1400000003", False),  # a viewer sees it coming, but may not re-enable it
        ("1400000001", False),
    ]
    ottos = {c.app.app_id: c.allowed for c in service.home.board(OTTO.user_id).coming_up}
    assert ottos["1400000001"] is True and ottos["1400000003"] is False  # extend: yes; enable: no


def test_your_apps_come_by_team_with_this_months_charges_as_the_bill_says(
    service: PlanService,
) -> None:
    board = service.home.board(ADA.user_id)
    assert [(line.app.owner_channel, line.app.app_id) for line in board.apps] == [
        (None, "1400000021"),
        ("COTHER", "1400000011"),
        ("COTHER", "1400000012"),
        ("CTEAM", "1400000001"),
        ("CTEAM", "1400000004"),
        ("CTEAM", "1400000003"),
        ("CTEAM", "1400000002"),
    ]
    assert (board.total, board.pages, board.more) == (7, 1, False)
    assert board.teams == ("COTHER", "CTEAM")
    std = next(line for line in board.apps if line.app.app_id == "1400000002")
    _, bill = service.statement("1400000002", actor=ADA)
    assert (std.to_date, std.projected) == (bill.to_date, bill.total)
    assert std.projected == Decimal("399.00")  # held all month: its monthly price

    tinas = service.home.board(TINA.user_id)
    assert {line.app.owner_channel for line in tinas.apps} == {"CTEAM"}
    assert tinas.teams == ("CTEAM",)
    assert service.home.board(NED.user_id).sees_apps is False


def test_the_list_is_paged_and_filtered_by_team_as_the_person_left_it(
    service: PlanService, store: FakeStore, catalog: Catalog, clock: Clock
) -> None:
    rows = [HEADER] + [
        f"15{n:08d},bulk-{n:03d},standard,2026-01-15,,active,CBULK,," for n in range(45)
    ]
    Imports(store=store, catalog=catalog, tz=SHANGHAI, clock=clock).from_csv(
        "\n".join(rows), actor=Actor("cli")
    )
    service.home.opened(ADA)
    assert service.home.board(ADA.user_id).pages == -(-52 // APPS_PER_PAGE)

    service.home.browse(ADA, team="CBULK", page=3)
    board = service.home.board(ADA.user_id)
    assert (board.team, board.page, board.pages, board.total) == ("CBULK", 3, 3, 45)
    assert [line.app.name for line in board.apps] == [f"bulk-{n:03d}" for n in range(40, 45)]

    service.home.browse(ADA, team="CBULK", page=9)  # past the end: the last page
    assert service.home.board(ADA.user_id).page == 3
    service.home.browse(TINA, team="COTHER", page=1)  # not one of hers: every team she sees
    assert service.home.board(TINA.user_id).team is None


# --- who sees it again ---------------------------------------------------------------------------


def test_a_change_redraws_the_tabs_of_recent_viewers_who_see_it_and_no_others(
    service: PlanService, store: FakeStore, clock: Clock
) -> None:
    for person in (ADA, TINA, OLGA, NED):
        service.home.opened(person)
    expand_all(service, store)  # (the grants of the fixture)
    deliver_publishes(store)
    clock.advance(hours=1)
    before = len(publishes(store))
    pending = service.request(ChangeRequest(Operation.EXTEND, app="1400000001"), actor=OTTO)
    service.confirm(pending.id, actor=OTTO)
    expand_all(service, store)
    assert sorted(publishes(store)[before:]) == ["UADMIN", "UTINA"]  # not Olga, not Ned

    clock.advance(seconds=AUDIENCE_WINDOW.total_seconds())  # nobody opened it since
    before = len(publishes(store))
    pending = service.request(ChangeRequest(Operation.EXTEND, app="1400000001"), actor=OTTO)
    service.confirm(pending.id, actor=OTTO)
    expand_all(service, store)
    assert len(publishes(store)) == before


def test_a_publish_still_waiting_is_not_queued_twice(
    service: PlanService, store: FakeStore
) -> None:
    service.home.opened(ADA)
    service.home.opened(ADA)
    service.home.browse(ADA, team="CTEAM", page=1)
    assert publishes(store) == ["UADMIN"]  # the one waiting draws what is true when delivered
    deliver_publishes(store)
    service.home.opened(ADA)
    assert publishes(store) == ["UADMIN", "UADMIN"]
    assert {r["destination"] for r in home_entries(store, "home_publish")} == {
        home_destination("UADMIN")
    }


def test_requests_waiting_for_peers_redraw_tabs_when_they_come_and_go(
    service: PlanService, store: FakeStore
) -> None:
    pending = service.request(ChangeRequest(Operation.DISABLE, app="1400000002"), actor=ADA)
    service.withdraw(pending.id, actor=ADA)
    plain = service.request(ChangeRequest(Operation.EXTEND, app="1400000001"), actor=ADA)
    service.withdraw(plain.id, actor=ADA)  # never shown on a home tab: nothing to redraw
    changes = [load_message(r["payload"]) for r in home_entries(store, "home_changed")]
    assert [(c.app_ids, c.users) for c in changes if isinstance(c, HomeChanged)][-2:] == [
        (("1400000002",), ("UADMIN",)),
        (("1400000002",), ("UADMIN",)),
    ]


def test_a_groups_new_role_redraws_every_recent_tab(service: PlanService, store: FakeStore) -> None:
    service.home.opened(NED)
    expand_all(service, store)
    deliver_publishes(store)
    service.grant(Grant("group", "S0OPS", Role.VIEWER), label="ops", actor=ADA)
    expand_all(service, store)
    assert publishes(store)[-1] == "UNED"


def test_an_event_is_processed_once(service: PlanService, store: FakeStore) -> None:
    assert service.home.opened(ADA, event_id="Ev1") is True
    rows = len(store.tables.outbox)
    assert service.home.opened(ADA, event_id="Ev1") is False
    assert len(store.tables.outbox) == rows
    assert service.home.opened(ADA, event_id="Ev2") is True


def test_event_ids_are_forgotten_after_a_day(service: PlanService, clock: Clock) -> None:
    service.home.opened(ADA, event_id="Ev1")
    clock.advance(days=1, seconds=1)
    assert service.home.forget_events() == 1


# --- the form's choices ----------------------------------------------------------------------------


def test_the_picker_finds_by_prefix_then_substring_among_the_apps_one_sees(
    service: PlanService,
) -> None:
    def names(text: str, actor: Actor) -> list[str]:
        return [a.name for a in service.forms.apps(text, actor=actor)]

    assert names("other", ADA) == ["other-dev", "other-std"]
    assert names("chat", ADA) == ["dev-chat", "off-chat", "std-chat", "stray-chat"]
    assert names("ST", ADA) == ["std-chat", "stray-chat"]  # two letters: a prefix only
    assert names("14000000", ADA)[:3] == ["dev-chat", "std-chat", "off-chat"]  # an id prefix
    assert names("0000012", ADA) == ["other-std"]  # inside an id
    assert names("chat", TINA) == ["dev-chat", "off-chat", "std-chat"]
    assert names("other", TINA) == []
    assert names("chat", NED) == []


def test_the_form_offers_what_this_person_may_do_to_the_app_now(service: PlanService) -> None:
    def offered(ref: str, actor: Actor) -> tuple[Operation, ...]:
        return service.forms.operations(ref, actor=actor)[1]

    assert offered("dev-chat", OTTO) == (Operation.UPGRADE, Operation.EXTEND)
    assert offered("std-chat", OTTO) == (Operation.CONFIGURE,)
    assert offered("std-chat", ADA) == (Operation.CONFIGURE, Operation.DISABLE)
    assert offered("off-chat", ADA) == (Operation.ENABLE,)
    assert offered("off-chat", OTTO) == ()
    assert offered("dev-chat", TINA) == ()
    with pytest.raises(Exception, match="see this app"):
        offered("other-dev", TINA)


def test_an_upgrade_from_the_form_is_the_slash_commands_request(service: PlanService) -> None:
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.PREMIUM), actor=OTTO
    )
    outcome = service.confirm(pending.id, actor=OTTO)
    assert outcome.state == "applied"
    assert service.forms.operations("dev-chat", actor=OTTO)[1] == (Operation.CONFIGURE,)
