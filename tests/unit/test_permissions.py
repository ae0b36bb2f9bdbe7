"""Who may do what: roles per operation, grants, approvals, forged clicks.

Every test runs on the store's port in memory (`tests/support/fake_store.py`) with a hand-moved
clock; the same rules on a real database, under concurrent clicks, are in the integration tests. Refusals are checked the way a person meets them: the error's message, the state
of the app afterwards, and the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from core import (
    AccessPolicy,
    Actor,
    ApprovalRule,
    BillingMode,
    Catalog,
    ChangeRequest,
    CoreConfig,
    Grant,
    Operation,
    Plan,
    PlanService,
    Role,
    errors,
    load_catalog,
)
from core.importer import Imports
from tests.conftest import SHANGHAI, Clock
from tests.support.csvs import HEADER
from tests.support.fake_store import FakeStore
from tests.support.records import english, said

DEV, STD, OFF, OLD, OTHER_DEV, OTHER_STD = (
    "1400000001",
    "1400000002",
    "1400000003",
    "1400000004",
    "1400000011",
    "1400000012",
)
SEED = "\n".join(
    [
        HEADER,
        f"{DEV},dev-chat,developer,2026-11-01,,active,CTEAM,2026-12-01,",
        f"{STD},std-chat,standard,2026-01-15,,active,CTEAM,,",
        f"{OFF},off-chat,premium,2026-01-15,,disabled,CTEAM,,2026-11-01T00:00:00Z",
        f"{OLD},old-chat,standard,2021-06-01,,active,CTEAM,,",
        f"{OTHER_DEV},other-dev,developer,2026-11-01,,active,COTHER,2026-12-01,",
        f"{OTHER_STD},other-std,standard,2026-01-15,,active,COTHER,,",
    ]
)

ADMINS = ("UADMIN", "UBOB", "UCY")
ADA = Actor("UADMIN", "Ada")  # configured admins
BOB = Actor("UBOB", "Bob")
CY = Actor("UCY", "Cy")
NED = Actor("UNED", "Ned")  # no grant at all
VERA = Actor("UVERA", "Vera")  # granted viewer
OTTO = Actor("UOTTO", "Otto")  # granted operator
ARNE = Actor("UARNE", "Arne")  # granted admin (not configured)
TINA = Actor("UTINA", "Tina")  # operator for CTEAM's apps only
TEDDY = Actor("UTEDDY", "Teddy")  # admin for CTEAM's apps only
AUDIT = "CAUDIT"
APPROVALS = "CAPPROVALS"

WORDS = english(CoreConfig(catalog=load_catalog(), billing_tz=SHANGHAI))


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def store() -> FakeStore:
    """The store in memory, empty."""
    return FakeStore()


def load_apps(store: FakeStore, catalog: Catalog, clock: Clock) -> None:
    imports = Imports(store=store, catalog=catalog, tz=SHANGHAI, clock=clock)
    assert imports.from_csv(SEED, actor=Actor("cli", "importer")).imported == 6


@dataclass
class World:
    """A store with apps, a clock, and a way to build a service under any access policy."""

    store: FakeStore
    catalog: Catalog
    clock: Clock

    def service(
        self,
        *,
        default_role: Role = Role.VIEWER,
        approvals: dict[str, ApprovalRule] | None = None,
        allowed_channels: frozenset[str] = frozenset(),
        approvals_channel: str | None = APPROVALS,
    ) -> PlanService:
        return PlanService(
            store=self.store,
            config=CoreConfig(
                catalog=self.catalog,
                billing_tz=SHANGHAI,
                audit_channel=AUDIT,
                access=AccessPolicy(
                    admins=frozenset(ADMINS),
                    default_role=default_role,
                    approvals=approvals or {},
                    allowed_channels=allowed_channels,
                    approvals_channel=approvals_channel,
                ),
            ),
            clock=self.clock,
        )


@pytest.fixture
def world(store: FakeStore, catalog: Catalog, clock: Clock) -> World:
    load_apps(store, catalog, clock)
    return World(store, catalog, clock)


PEER = {"disable": ApprovalRule("peer", 1), "migrate": ApprovalRule("peer", 2)}


@pytest.fixture
def peer(world: World) -> PlanService:
    """disable=peer, migrate=peer:2, an approvals channel, viewer by default.

    Otto is granted operator and Arne admin (a grant, not the configured list, makes an approver).
    """
    service = world.service(approvals=PEER)
    service.grant(Grant("user", OTTO.user_id, Role.OPERATOR), label="otto", actor=ADA)
    service.grant(Grant("user", ARNE.user_id, Role.ADMIN), label="arne", actor=ADA)
    return service


# --- reading the records -----------------------------------------------------------------------


def app(store: FakeStore, app_id: str) -> Any:
    with store.unit_of_work(write=False) as uow:
        found = uow.apps.get(app_id)
    assert found is not None
    return found


def audit_log(store: FakeStore) -> list[dict[str, Any]]:
    return [dict(r) for r in store.tables.audit]


def about(store: FakeStore, request_id: str) -> list[tuple[str, str, str]]:
    """(outcome, actor, action) of every audit event about one request, oldest first."""
    return [
        (e["outcome"], e["actor_id"], e["action"])
        for e in audit_log(store)
        if e["request_id"] == request_id
    ]


def outbox(store: FakeStore) -> list[dict[str, Any]]:
    return [dict(r) for r in store.tables.outbox]


def state_of(store: FakeStore, request_id: str) -> str:
    with store.unit_of_work(write=False) as uow:
        found = uow.requests.get(request_id)
    assert found is not None
    return found.state.value


def changes_of(store: FakeStore, app_id: str, operation: str) -> int:
    with store.unit_of_work(write=False) as uow:
        return len([h for h in uow.history.of(app_id, limit=1000) if h.operation == operation])


def names(people: Any) -> list[str]:
    return [p.label for p in people]


def pending_requests(store: FakeStore) -> int:
    return len(store.tables.requests)


# --- each role on each operation -----------------------------------------------------------------

#: an attempt at one operation, asserting what shows it was done
Attempt = Callable[[PlanService, Actor], None]


def change(request: ChangeRequest, channel: str = "CTEAM") -> Attempt:
    def attempt(service: PlanService, actor: Actor) -> None:
        pending = service.request(request, actor=actor, channel_id=channel)
        assert service.confirm(pending.id, actor=actor).state == "applied"

    return attempt


def _list(service: PlanService, actor: Actor) -> None:
    assert service.list_apps(actor=actor).total == 6


def _status(service: PlanService, actor: Actor) -> None:
    assert service.status(DEV, actor=actor).app.plan is Plan.DEVELOPER


def _history(service: PlanService, actor: Actor) -> None:
    assert service.history(STD, actor=actor)[1], "the import is in the history"


def _bill(service: PlanService, actor: Actor) -> None:
    assert service.statement(STD, actor=actor)[1].total > 0


def _grant(service: PlanService, actor: Actor) -> None:
    service.grant(Grant("user", "UNEW", Role.VIEWER), label="new", actor=actor)


def _revoke(service: PlanService, actor: Actor) -> None:
    assert service.revoke(Grant("user", "UOLD", Role.VIEWER), label="old", actor=actor)


#: operation -> (the role it needs, the attempt)
OPERATIONS: dict[str, tuple[Role, Attempt]] = {
    "list": (Role.VIEWER, _list),
    "status": (Role.VIEWER, _status),
    "history": (Role.VIEWER, _history),
    "bill": (Role.VIEWER, _bill),
    "upgrade": (
        Role.OPERATOR,
        change(ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.PREMIUM)),
    ),
    "config": (
        Role.OPERATOR,
        change(ChangeRequest(Operation.CONFIGURE, app=STD, plan=Plan.PREMIUM)),
    ),
    "extend": (Role.OPERATOR, change(ChangeRequest(Operation.EXTEND, app=DEV))),
    "create": (Role.OPERATOR, change(ChangeRequest(Operation.CREATE, name="fresh-chat"))),
    "disable": (Role.ADMIN, change(ChangeRequest(Operation.DISABLE, app=STD))),
    "enable": (Role.ADMIN, change(ChangeRequest(Operation.ENABLE, app=OFF))),
    "migrate": (Role.ADMIN, change(ChangeRequest(Operation.MIGRATE, app=OLD))),
    "access grant": (Role.ADMIN, _grant),
    "access revoke": (Role.ADMIN, _revoke),
}


def effect(store: FakeStore, service: PlanService) -> dict[str, Any]:
    """Everything an operation could have changed, to compare before and after."""
    with store.unit_of_work(write=False) as uow:
        apps = {
            a: (r.plan, r.status, r.billing_mode, r.dev_expires_at, r.version)
            for a in (DEV, STD, OFF, OLD)
            if (r := uow.apps.get(a)) is not None
        }
        created = [r.app_id for r in uow.apps.by_name("fresh-chat")]
    grants = {(g.principal_id, g.role.label) for g, _ in service.grants(actor=ADA)}
    return {
        "apps": apps,
        "created": created,
        "grants": grants,
        "requests": pending_requests(store),
    }


ROLES = {
    "nobody": NED,
    "viewer": VERA,
    "operator": OTTO,
    "admin (granted)": ARNE,
    "admin (configured)": ADA,
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("who", list(ROLES))
def test_each_role_on_each_operation(world: World, who: str, operation: str) -> None:
    service = world.service(default_role=Role.NOBODY)
    for actor, role in ((VERA, Role.VIEWER), (OTTO, Role.OPERATOR), (ARNE, Role.ADMIN)):
        service.grant(Grant("user", actor.user_id, role), label=actor.name, actor=ADA)
    service.grant(Grant("user", "UOLD", Role.VIEWER), label="old", actor=ADA)
    actor, (needed, attempt) = ROLES[who], OPERATIONS[operation]
    has = {NED: Role.NOBODY, VERA: Role.VIEWER, OTTO: Role.OPERATOR}.get(actor, Role.ADMIN)
    assert service.role_of(actor) is has
    before = effect(world.store, service)

    if has >= needed:
        attempt(service, actor)
        assert effect(world.store, service) != before or needed is Role.VIEWER
        return
    with pytest.raises(errors.PermissionDenied) as refused:
        attempt(service, actor)
    message = refused.value.message
    assert f"it needs the `{needed.label}` role" in message, message
    assert f"/plan access grant @you {needed.label}" in message
    assert refused.value.admins == ADMINS, "the refusal names the admins who can grant it"
    assert effect(world.store, service) == before, "a refusal changes nothing"


def test_the_default_role_is_viewer_unless_configured(world: World) -> None:
    stranger = Actor("USTRANGER", "Stranger")
    viewers = world.service()
    assert viewers.status(DEV, actor=stranger).app.app_id == DEV
    with pytest.raises(errors.PermissionDenied) as refused:
        viewers.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=stranger)
    assert "`operator` role" in refused.value.message

    nobody = world.service(default_role=Role.NOBODY)
    with pytest.raises(errors.PermissionDenied) as refused:
        nobody.status(DEV, actor=stranger)
    assert "You can't see this app: it needs the `viewer` role" in refused.value.message
    with pytest.raises(errors.PermissionDenied):
        nobody.list_apps(actor=stranger)
    assert nobody.role_of(ADA) is Role.ADMIN, "configured admins are admins whatever the default"


# --- grants: to groups, for one team, revoked ---------------------------------------------------


def test_a_grant_to_a_user_group_covers_its_members(world: World) -> None:
    service = world.service()
    service.grant(Grant("group", "SOPS", Role.OPERATOR), label="ops", actor=ADA)
    member = Actor("UGUS", "Gus", groups=frozenset({"SOPS"}))
    outsider = Actor("UGUS", "Gus", groups=frozenset({"SOTHER"}))
    assert service.granted_groups() == {"SOPS"}

    with pytest.raises(errors.PermissionDenied):
        service.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=outsider)
    pending = service.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=member)
    assert service.confirm(pending.id, actor=member).state == "applied"
    assert changes_of(world.store, DEV, "extend") == 1


def test_someone_whose_groups_are_not_read_yet_is_asked_to_wait_not_refused(
    world: World,
) -> None:
    service = world.service(default_role=Role.NOBODY)
    service.grant(Grant("group", "SOPS", Role.OPERATOR), label="ops", actor=ADA)
    pending_member = Actor("UGUS", "Gus", pending_groups=frozenset({"SOPS"}))
    with pytest.raises(errors.GroupsNotYetKnown):  # SOPS could give the role: not decided yet
        service.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=pending_member)
    with pytest.raises(errors.GroupsNotYetKnown):
        service.list_apps(actor=pending_member)
    # a group that could not give the role changes nothing: refused at once
    service.grant(Grant("group", "SVIEW", Role.VIEWER), label="view", actor=ADA)
    viewer_maybe = Actor("UGUS", "Gus", pending_groups=frozenset({"SVIEW"}))
    with pytest.raises(errors.PermissionDenied):
        service.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=viewer_maybe)
    # a click waits too, and nothing is decided: the same click works once the groups are read
    member = Actor("UGUS", "Gus", groups=frozenset({"SOPS"}))
    pending = service.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=member)
    with pytest.raises(errors.GroupsNotYetKnown):
        service.confirm(pending.id, actor=pending_member)
    assert changes_of(world.store, DEV, "extend") == 0
    assert service.confirm(pending.id, actor=member).state == "applied"


def test_a_team_grant_covers_only_that_teams_apps(world: World) -> None:
    service = world.service(default_role=Role.NOBODY)
    service.grant(Grant("user", TINA.user_id, Role.OPERATOR, team="CTEAM"), label="t", actor=ADA)

    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.STANDARD), actor=TINA
    )
    assert service.confirm(pending.id, actor=TINA).state == "applied"
    assert app(world.store, DEV).plan == "standard"

    with pytest.raises(errors.PermissionDenied) as refused:
        service.request(
            ChangeRequest(Operation.UPGRADE, app=OTHER_DEV, plan=Plan.STANDARD), actor=TINA
        )
    assert "`operator` role" in refused.value.message
    with pytest.raises(errors.PermissionDenied):
        service.status(OTHER_DEV, actor=TINA)
    assert app(world.store, OTHER_DEV).plan == "developer"

    # creating: the new app belongs to the channel it is created from
    service.request(
        ChangeRequest(Operation.CREATE, name="tina-new"), actor=TINA, channel_id="CTEAM"
    )
    with pytest.raises(errors.PermissionDenied):
        service.request(
            ChangeRequest(Operation.CREATE, name="tina-other"), actor=TINA, channel_id="COTHER"
        )

    # with no global role she lists only her team's apps
    listed = {a.app_id for a in service.list_apps(actor=TINA).apps}
    assert listed == {DEV, STD, OFF, OLD}
    assert service.role_of(TINA) is Role.NOBODY
    assert service.role_of(TINA, team="CTEAM") is Role.OPERATOR
    assert service.highest_role(TINA) is Role.OPERATOR, "so her help lists upgrade"


def test_a_team_group_grant_and_a_team_admin_manages_only_that_team(world: World) -> None:
    service = world.service()
    service.grant(Grant("group", "SLEADS", Role.ADMIN, team="CTEAM"), label="leads", actor=ADA)
    lead = Actor("ULEAD", "Lee", groups=frozenset({"SLEADS"}))

    assert service.request(ChangeRequest(Operation.DISABLE, app=STD), actor=lead)
    with pytest.raises(errors.PermissionDenied) as refused:
        service.request(ChangeRequest(Operation.DISABLE, app=OTHER_STD), actor=lead)
    assert "`admin` role" in refused.value.message

    service.grant(Grant("user", "UNEW", Role.OPERATOR, team="CTEAM"), label="n", actor=lead)
    with pytest.raises(errors.PermissionDenied):
        service.grant(Grant("user", "UNEW", Role.OPERATOR), label="n", actor=lead)
    with pytest.raises(errors.PermissionDenied):
        service.grant(Grant("user", "UNEW", Role.OPERATOR, team="COTHER"), label="n", actor=lead)
    granted = {(g.principal_id, g.role, g.team) for g, _ in service.grants(actor=lead)}
    assert ("UNEW", Role.OPERATOR, "CTEAM") in granted
    assert ("UNEW", Role.OPERATOR, None) not in granted


def test_a_revoke_takes_effect_at_once_even_on_a_pending_request(
    world: World, store: FakeStore
) -> None:
    service = world.service()
    grant = Grant("user", OTTO.user_id, Role.OPERATOR)
    service.grant(grant, label="otto", actor=ADA)
    pending = service.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=OTTO)

    assert service.revoke(grant, label="otto", actor=ADA) is True
    assert service.role_of(OTTO) is Role.VIEWER
    with pytest.raises(errors.PermissionDenied):
        service.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=OTTO)
    with pytest.raises(errors.PermissionDenied) as refused:
        service.confirm(pending.id, actor=OTTO)
    assert "`operator` role" in refused.value.message
    assert changes_of(store, DEV, "extend") == 0
    assert about(store, pending.id) == [("refused", OTTO.user_id, "extend")]
    assert service.revoke(grant, label="otto", actor=ADA) is False, "nothing left to revoke"


def test_every_grant_and_revoke_is_audited_once(world: World, store: FakeStore) -> None:
    service = world.service()
    grant = Grant("group", "SOPS", Role.OPERATOR, team="CTEAM")
    service.grant(grant, label="ops", actor=ADA)
    service.grant(grant, label="ops", actor=BOB)  # already there: nothing new
    service.revoke(grant, label="ops", actor=BOB)
    service.revoke(grant, label="ops", actor=BOB)  # nothing left: nothing to audit

    events = [e for e in audit_log(store) if e["action"].startswith("access.")]
    assert [(e["action"], e["actor_id"], e["outcome"]) for e in events] == [
        ("access.grant", ADA.user_id, "applied"),
        ("access.revoke", BOB.user_id, "applied"),
    ]
    assert events[0]["after"] == {
        "principal": "group:SOPS",
        "label": "ops",
        "role": "operator",
        "team": "CTEAM",
    }
    messages = [e for e in outbox(store) if e["payload"].get("kind") == "access_changed"]
    assert [
        (m["destination"], m["payload"]["granted"], m["payload"]["actor"]["user_id"])
        for m in messages
    ] == [
        (AUDIT, True, ADA.user_id),
        (AUDIT, False, BOB.user_id),
    ]


def test_refused_access_changes_are_not_made(world: World, store: FakeStore) -> None:
    service = world.service()
    with pytest.raises(errors.PermissionDenied) as refused:
        service.grant(Grant("user", VERA.user_id, Role.ADMIN), label="me", actor=VERA)
    assert "`admin` role" in refused.value.message and refused.value.admins == ADMINS
    assert service.role_of(VERA) is Role.VIEWER
    assert not [e for e in audit_log(store) if e["action"].startswith("access.")]


# --- the approval policy ---------------------------------------------------------------------


def test_a_peer_request_waits_and_asks_the_approvals_channel(
    peer: PlanService, store: FakeStore
) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    assert pending.approval == ApprovalRule("peer", 1)
    assert pending.expires_at - pending.created_at == timedelta(hours=24)
    cards = [e for e in outbox(store) if e["topic"] == "approval"]
    assert [(c["destination"], c["key"]) for c in cards] == [(APPROVALS, f"approval:{pending.id}")]
    card = cards[0]["payload"]
    assert card["requester"]["user_id"] == ADA.user_id and card["approvals_needed"] == 1
    assert (card["preview"]["operation"], card["preview"]["app_id"]) == ("disable", STD)
    assert app(store, STD).status == "active", "asking changes nothing"

    # operations without a peer rule stay with their requester
    own = peer.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=OTTO)
    assert not own.approval.needs_peer
    assert [e for e in outbox(store) if e["topic"] == "approval"] == cards


def test_the_requester_cannot_approve_or_confirm_their_own_request(
    peer: PlanService, store: FakeStore
) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    with pytest.raises(errors.SelfApprovalNotAllowed) as refused:
        peer.approve(pending.id, actor=ADA)
    assert "needs approval by someone else" in refused.value.message
    with pytest.raises(errors.AwaitingApproval) as direct:
        peer.confirm(pending.id, actor=ADA)
    assert "can't be confirmed directly" in direct.value.message

    assert app(store, STD).status == "active"
    assert state_of(store, pending.id) == "pending", "still waiting for a real approver"
    assert about(store, pending.id) == [
        ("refused", ADA.user_id, "disable"),
        ("refused", ADA.user_id, "disable"),
    ]
    refusal = next(e for e in audit_log(store) if e["request_id"] == pending.id)
    assert "someone else" in refusal["detail"]
    audit_cards = [e for e in outbox(store) if e["payload"].get("request_id") == pending.id]
    assert {(c["destination"], c["payload"]["kind"]) for c in audit_cards} == {
        (APPROVALS, "approval_requested"),
        (AUDIT, "request_event"),
    }


def test_a_second_admin_approves_and_it_applies_once(peer: PlanService, store: FakeStore) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    outcome = peer.approve(pending.id, actor=BOB)
    assert outcome.state == "applied" and names(outcome.approvals) == ["Bob"]
    assert app(store, STD).status == "disabled"

    with pytest.raises(errors.RequestAlreadyDecided) as again:
        peer.approve(pending.id, actor=CY)
    assert "already done by Bob" in again.value.message
    assert app(store, STD).status == "disabled"
    assert changes_of(store, STD, "disable") == 1
    assert about(store, pending.id) == [("applied", BOB.user_id, "disable")]
    change = next(
        e["payload"]
        for e in outbox(store)
        if e["payload"].get("kind") == "change_applied"
        and e["payload"].get("request_id") == pending.id
    )
    assert change["actor"]["user_id"] == BOB.user_id
    assert change["requester"]["user_id"] == ADA.user_id


def test_an_approver_needs_the_operations_role(peer: PlanService, store: FakeStore) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    for actor in (OTTO, VERA):
        with pytest.raises(errors.PermissionDenied) as refused:
            peer.approve(pending.id, actor=actor)
        assert "`admin` role" in refused.value.message
        assert refused.value.admins == ADMINS
        with pytest.raises(errors.PermissionDenied):
            peer.reject(pending.id, actor=actor)
    assert app(store, STD).status == "active"
    assert state_of(store, pending.id) == "pending"
    refused_by = [(o, who) for o, who, _ in about(store, pending.id)]
    assert refused_by == [
        ("refused", OTTO.user_id),
        ("refused", OTTO.user_id),
        ("refused", VERA.user_id),
        ("refused", VERA.user_id),
    ]
    assert peer.approve(pending.id, actor=BOB).state == "applied"


def test_with_two_approvers_the_first_records_and_the_second_applies(
    peer: PlanService, store: FakeStore
) -> None:
    pending = peer.request(ChangeRequest(Operation.MIGRATE, app=OLD), actor=ADA)
    assert pending.approval.approvers == 2

    first = peer.approve(pending.id, actor=BOB)
    assert first.state == "approved"
    assert said(first, WORDS) == "Approved by <@UBOB>; 1 of 2 approvals: <@UBOB>."
    assert app(store, OLD).billing_mode == "legacy"
    with pytest.raises(errors.AlreadyApproved, match="still waits for 1 more"):
        peer.approve(pending.id, actor=BOB)  # the same person twice is not two approvals
    assert app(store, OLD).billing_mode == "legacy"

    second = peer.approve(pending.id, actor=ARNE)
    assert second.state == "applied" and names(second.approvals) == ["Bob", "Arne"]
    assert app(store, OLD).billing_mode == BillingMode.CURRENT.value
    assert changes_of(store, OLD, "migrate") == 1
    assert [o for o, _, _ in about(store, pending.id)] == ["approved", "applied"]


def test_a_peer_rejects_and_nothing_is_applied(peer: PlanService, store: FakeStore) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    outcome = peer.reject(pending.id, actor=BOB)
    assert outcome.state == "rejected"
    assert said(outcome, WORDS) == "Rejected by <@UBOB>; nothing was changed."
    assert state_of(store, pending.id) == "rejected"
    with pytest.raises(errors.RequestAlreadyDecided) as late:
        peer.approve(pending.id, actor=CY)
    assert "rejected by Bob" in late.value.message
    assert app(store, STD).status == "active"
    assert changes_of(store, STD, "disable") == 0
    assert about(store, pending.id) == [("rejected", BOB.user_id, "disable")]
    assert any(
        e["destination"] == AUDIT and e["payload"].get("event") == "rejected" for e in outbox(store)
    )


def test_the_requester_may_withdraw_a_waiting_request(peer: PlanService, store: FakeStore) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    assert peer.withdraw(pending.id, actor=ADA).state == "cancelled"
    with pytest.raises(errors.RequestAlreadyDecided):
        peer.approve(pending.id, actor=BOB)
    assert app(store, STD).status == "active"


def test_a_group_admin_requester_is_approved_by_a_peer(peer: PlanService, store: FakeStore) -> None:
    """The requester's role comes through a group: the approved request still applies."""
    peer.grant(Grant("group", "SLEADS", Role.ADMIN), label="leads", actor=ADA)
    lead = Actor("ULEAD", "Lee", groups=frozenset({"SLEADS"}))
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=lead)
    assert peer.approve(pending.id, actor=BOB).state == "applied"
    assert app(store, STD).status == "disabled"


def test_a_requester_who_lost_the_role_is_not_approved_into_it(
    peer: PlanService, store: FakeStore
) -> None:
    ray = Actor("URAY", "Ray")
    grant = Grant("user", ray.user_id, Role.ADMIN)
    peer.grant(grant, label="ray", actor=ADA)
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ray)
    peer.revoke(grant, label="ray", actor=ADA)
    with pytest.raises(errors.PermissionDenied):
        peer.approve(pending.id, actor=BOB)
    assert app(store, STD).status == "active"


# --- expiry ------------------------------------------------------------------------------------


def test_an_approval_after_expiry_is_refused_and_audited(
    peer: PlanService, store: FakeStore, clock: Clock
) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    clock.advance(hours=23, minutes=59)
    assert state_of(store, pending.id) == "pending"
    clock.advance(minutes=1)
    with pytest.raises(errors.RequestExpired) as refused:
        peer.approve(pending.id, actor=BOB)
    assert "expired at 2026-11-11 04:00 UTC" in refused.value.message
    assert state_of(store, pending.id) == "expired"
    with pytest.raises(errors.RequestAlreadyDecided) as again:
        peer.approve(pending.id, actor=CY)
    assert "expired before it was confirmed" in again.value.message
    assert app(store, STD).status == "active"
    assert about(store, pending.id) == [("refused", BOB.user_id, "disable")]


def test_the_sweep_expires_a_waiting_request_and_replaces_its_card(
    peer: PlanService, store: FakeStore, clock: Clock
) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    card = next(e for e in outbox(store) if e["key"] == f"approval:{pending.id}")
    lifecycle = peer.lifecycle
    assert lifecycle.sweep().requests_expired == 0

    clock.advance(hours=24, seconds=1)
    report = lifecycle.sweep()
    assert (report.requests_expired, report.approval_cards_expired) == (1, 1)
    assert lifecycle.sweep().approval_cards_expired == 0, "replaced once"
    replacement = next(e for e in outbox(store) if e["key"] == f"approval-expired:{pending.id}")
    assert replacement["destination"] == APPROVALS
    assert replacement["payload"]["kind"] == "approval_card_update"
    assert replacement["payload"]["state"] == "expired"
    assert replacement["payload"]["update_of"] == card["id"]

    with pytest.raises(errors.RequestAlreadyDecided) as refused:
        peer.approve(pending.id, actor=BOB)
    assert "expired before it was confirmed" in refused.value.message
    assert app(store, STD).status == "active"


# --- forged clicks ---------------------------------------------------------------------------


def test_a_forged_confirm_on_someone_elses_request_is_refused_and_audited(
    peer: PlanService, store: FakeStore
) -> None:
    own = peer.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=OTTO)
    waiting = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    mallory = Actor("UMAL", "Mallory")
    not_yours, awaiting = errors.NotYourRequest, errors.AwaitingApproval
    attempts: list[tuple[Callable[..., Any], str, Actor, type[errors.PlanError]]] = [
        (peer.confirm, own.id, mallory, not_yours),  # a viewer who never saw the card
        (peer.confirm, own.id, BOB, not_yours),  # even an admin can't confirm another's request
        (peer.approve, own.id, mallory, not_yours),  # Approve on a request that needs none
        (peer.reject, own.id, mallory, not_yours),  # Reject on a request that needs none
        (peer.withdraw, own.id, mallory, not_yours),
        (peer.confirm, waiting.id, mallory, awaiting),  # a confirm can't stand in for approval
        (peer.confirm, waiting.id, BOB, awaiting),
        (peer.withdraw, waiting.id, BOB, not_yours),
    ]
    for step, request_id, actor, refusal in attempts:
        with pytest.raises(refusal):
            step(request_id, actor=actor)

    assert state_of(store, own.id) == "pending" and state_of(store, waiting.id) == "pending"
    assert changes_of(store, DEV, "extend") == 0 and app(store, STD).status == "active"
    assert [who for _, who, _ in about(store, own.id)] == [
        mallory.user_id,
        BOB.user_id,
        mallory.user_id,
        mallory.user_id,
        mallory.user_id,
    ]
    assert len(about(store, waiting.id)) == 3
    # the real owners are not locked out by the forgeries
    assert peer.confirm(own.id, actor=OTTO).state == "applied"
    assert peer.approve(waiting.id, actor=BOB).state == "applied"


def test_a_forged_request_id_is_refused_and_audited(peer: PlanService, store: FakeStore) -> None:
    with pytest.raises(errors.RequestNotFound):
        peer.approve("made-up-id", actor=BOB)
    assert about(store, "made-up-id") == [("refused", BOB.user_id, "confirm")]


# --- channel restriction -----------------------------------------------------------------------


def test_plan_changes_only_from_allowed_channels_but_viewing_anywhere(
    world: World, store: FakeStore
) -> None:
    service = world.service(allowed_channels=frozenset({"COPS"}))
    upgrade = ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.STANDARD)
    for channel in ("CTEAM", None):
        with pytest.raises(errors.ChannelNotAllowed) as refused:
            service.request(upgrade, actor=ADA, channel_id=channel)
        assert refused.value.channels == ("COPS",)
        assert "only be made from the allowed channels" in refused.value.message
    assert pending_requests(store) == 0

    assert service.status(DEV, actor=VERA).app.plan is Plan.DEVELOPER
    assert service.list_apps(actor=VERA).total == 6
    assert service.history(DEV, actor=VERA)[1]
    assert service.statement(STD, actor=VERA)[1].total > 0

    pending = service.request(upgrade, actor=ADA, channel_id="COPS")
    assert service.confirm(pending.id, actor=ADA).state == "applied"
    assert app(store, DEV).plan == "standard"


def test_the_requester_hears_how_a_peer_decided(peer: PlanService, store: FakeStore) -> None:
    applied = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    peer.approve(applied.id, actor=BOB)
    rejected = peer.request(ChangeRequest(Operation.MIGRATE, app=OLD), actor=ADA)
    peer.reject(rejected.id, actor=BOB)
    to_requester = [e["payload"] for e in outbox(store) if e["destination"] == ADA.user_id]
    assert [(p["request_id"], p["kind"], p.get("event")) for p in to_requester] == [
        (applied.id, "change_applied", None),
        (rejected.id, "request_event", "rejected"),
    ]


# --- both cards of a peer request, kept true ---------------------------------------------------

REPLY = "https://hooks.slack.com/actions/T1/ada"


def card_entries(store: FakeStore, request_id: str) -> list[dict[str, Any]]:
    """The approval card and its updates (outbox payloads), oldest first."""
    return [
        e["payload"]
        for e in outbox(store)
        if e["kind"] == "message"
        and e["payload"].get("request_id") == request_id
        and e["payload"]["kind"] in ("approval_requested", "approval_card_update")
    ]


def replies_to(store: FakeStore, url: str) -> list[dict[str, Any]]:
    """What was queued for a reply URL, oldest first (the message, with `after_key` if any)."""
    return [
        {**e["payload"]["message"], "after_key": e["payload"].get("after_key")}
        for e in outbox(store)
        if e["kind"] == "reply" and e["payload"]["url"] == url
    ]


def test_the_requester_card_comes_again_once_the_approval_card_is_posted(
    peer: PlanService, store: FakeStore
) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA, reply_url=REPLY)
    assert pending.approval_channel == APPROVALS and pending.role == "admin"
    [card] = card_entries(store, pending.id)
    assert card["kind"] == "approval_requested" and card["role"] == "admin"
    [again] = replies_to(store, REPLY)
    assert again["kind"] == "approval_card_posted" and again["channel"] == APPROVALS
    assert again["after_key"] == f"approval:{pending.id}", "delivered after the card, with where"


@pytest.mark.parametrize("ending", ["applied", "rejected", "withdrawn"])
def test_every_ending_replaces_the_approval_card_and_tells_the_requester(
    peer: PlanService, store: FakeStore, ending: str
) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA, reply_url=REPLY)
    {"applied": peer.approve, "rejected": peer.reject, "withdrawn": peer.withdraw}[ending](
        pending.id, actor=ADA if ending == "withdrawn" else BOB
    )
    _, update = card_entries(store, pending.id)
    assert update["kind"] == "approval_card_update" and update["state"] == ending
    assert update["by"]["user_id"] == (ADA if ending == "withdrawn" else BOB).user_id
    last = replies_to(store, REPLY)[-1]
    if ending == "withdrawn":  # the requester pressed Withdraw on their own card: answered there
        assert last["kind"] == "approval_card_posted"
    else:  # their card is replaced by the outcome: no Withdraw left
        assert (last["kind"], last["outcome"]["state"]) == ("card_decided", ending)
    assert last["reader"] == ADA.user_id, "read by the requester, in their language"


def test_a_partial_approval_updates_the_card_with_its_whole_preview(
    peer: PlanService, store: FakeStore
) -> None:
    pending = peer.request(ChangeRequest(Operation.MIGRATE, app=OLD), actor=ADA)
    peer.approve(pending.id, actor=BOB)
    card, progress = card_entries(store, pending.id)
    assert progress["kind"] == "approval_requested" and progress["update_of"] is not None
    assert progress["preview"] == card["preview"], "the preview is kept"
    assert [a["user_id"] for a in progress["approvals"]] == [BOB.user_id]


def test_an_expiry_is_audited_and_told_to_the_requester(
    peer: PlanService, store: FakeStore, clock: Clock
) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA, reply_url=REPLY)
    plain = peer.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=ADA)
    clock.advance(days=1, seconds=1)
    report = peer.lifecycle.sweep()
    assert report.requests_expired == 2 and report.approval_cards_expired == 1
    assert about(store, pending.id) == [("expired", "planbot", "disable")]
    assert about(store, plain.id) == [], "a preview nobody confirmed is no event"
    told = [e["payload"] for e in outbox(store) if e["destination"] == ADA.user_id]
    assert [(p["kind"], p["event"], p["audience"]) for p in told] == [
        ("request_event", "expired", "requester")
    ]
    assert card_entries(store, pending.id)[-1]["state"] == "expired"


def test_a_late_click_is_recorded_but_not_announced(
    peer: PlanService, store: FakeStore, clock: Clock
) -> None:
    pending = peer.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    clock.advance(days=1, seconds=1)
    with pytest.raises(errors.RequestExpired):
        peer.approve(pending.id, actor=BOB)
    assert about(store, pending.id) == [("refused", BOB.user_id, "disable")]
    to_audit = [e for e in outbox(store) if e["destination"] == AUDIT]
    assert not [e for e in to_audit if e["payload"].get("request_id") == pending.id]
    assert card_entries(store, pending.id)[-1]["state"] == "expired"
    with pytest.raises(errors.NotYourRequest):
        peer.confirm(
            peer.request(ChangeRequest(Operation.EXTEND, app=DEV), actor=ADA).id, actor=BOB
        )
    assert [e for e in outbox(store) if e["destination"] == AUDIT][-1]["payload"]["event"] == (
        "refused"
    ), "someone pressing another's button is announced"


def test_a_request_nobody_else_could_approve_is_refused_at_once(
    world: World, store: FakeStore
) -> None:
    service = world.service(approvals={"create": ApprovalRule("peer", 1), **PEER})
    service.grant(Grant("user", OTTO.user_id, Role.OPERATOR), label="otto", actor=ADA)
    # three configured admins: two others are enough
    waiting = service.request(ChangeRequest(Operation.MIGRATE, app=OLD), actor=ADA)
    assert waiting.approvers is not None and waiting.approvers.users == ("UBOB", "UCY")
    # an operator's create: the admins hold the role too
    created = service.request(
        ChangeRequest(Operation.CREATE, name="peer-new"), actor=OTTO, channel_id="CTEAM"
    )
    assert created.approvers is not None and created.approvers.users == ADMINS
    lonely = World(FakeStore(), world.catalog, world.clock)
    load_apps(lonely.store, lonely.catalog, lonely.clock)
    alone = PlanService(
        store=lonely.store,
        config=CoreConfig(
            catalog=world.catalog,
            billing_tz=SHANGHAI,
            access=AccessPolicy(admins=frozenset({ADA.user_id}), approvals=PEER),
        ),
        clock=world.clock,
    )
    with pytest.raises(errors.NoApproverAvailable) as refused:
        alone.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    assert refused.value.holders == () and "nobody else has that role" in refused.value.message
    assert pending_requests(lonely.store) == 0 and outbox(lonely.store) == []
    alone.grant(Grant("user", BOB.user_id, Role.ADMIN), label="bob", actor=ADA)
    assert alone.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    with pytest.raises(errors.NoApproverAvailable) as two:
        alone.request(ChangeRequest(Operation.MIGRATE, app=OLD), actor=ADA)
    assert two.value.holders == (BOB.user_id,) and "only 1 other person" in two.value.message
    # a group's members are unknown: not refused, and the pending request says so
    alone.grant(Grant("group", "SLEADS", Role.ADMIN), label="leads", actor=ADA)
    waiting = alone.request(ChangeRequest(Operation.MIGRATE, app=OLD), actor=ADA)
    assert waiting.approvers is not None and waiting.approvers.groups == ("SLEADS",)
