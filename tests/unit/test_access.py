"""Who may do what: admins, grants to users and groups, per-team grants, the default role."""

from __future__ import annotations

import pytest

from core import AccessPolicy, ApprovalRule, Grant, Operation, Role, effective_role
from core.access import ROLE_FOR

GRANTS = [
    Grant("user", "UOPS", Role.OPERATOR),
    Grant("group", "SOPS", Role.OPERATOR),
    Grant("user", "UTEAMADMIN", Role.ADMIN, team="CTEAM"),
    Grant("group", "SLEADS", Role.ADMIN, team="CTEAM"),
    Grant("user", "UVIEW", Role.VIEWER),
]


def role(
    user: str,
    *,
    groups: tuple[str, ...] = (),
    team: str | None = "CTEAM",
    policy: AccessPolicy | None = None,
) -> Role:
    return effective_role(
        user_id=user,
        groups=groups,
        team=team,
        policy=policy or AccessPolicy(admins=frozenset({"UADMIN"})),
        grants=GRANTS,
    )


def test_configured_admins_are_admins_everywhere() -> None:
    assert role("UADMIN") is Role.ADMIN
    assert role("UADMIN", team=None) is Role.ADMIN
    assert (
        role("UADMIN", policy=AccessPolicy(admins=frozenset({"UADMIN"}), default_role=Role.NOBODY))
        is Role.ADMIN
    )


def test_a_grant_to_a_user() -> None:
    assert role("UOPS") is Role.OPERATOR
    assert role("UOPS", team="COTHER") is Role.OPERATOR  # a global grant covers every team


def test_a_grant_to_a_group_reaches_its_members() -> None:
    assert role("UALICE", groups=("SOPS",)) is Role.OPERATOR
    assert role("UALICE", groups=("SOTHER",)) is Role.VIEWER


def test_a_per_team_grant_counts_only_for_that_teams_apps() -> None:
    assert role("UTEAMADMIN", team="CTEAM") is Role.ADMIN
    assert role("UTEAMADMIN", team="COTHER") is Role.VIEWER
    assert role("UTEAMADMIN", team=None) is Role.VIEWER  # not for "no particular app"
    assert role("UBOB", groups=("SLEADS",), team="CTEAM") is Role.ADMIN
    assert role("UBOB", groups=("SLEADS",), team="COTHER") is Role.VIEWER


def test_the_highest_role_wins() -> None:
    assert role("UOPS", groups=("SLEADS",), team="CTEAM") is Role.ADMIN
    assert role("UOPS", groups=("SLEADS",), team="COTHER") is Role.OPERATOR


def test_default_role_for_everyone_else() -> None:
    assert role("USTRANGER") is Role.VIEWER
    nobody = AccessPolicy(default_role=Role.NOBODY)
    assert role("USTRANGER", policy=nobody) is Role.NOBODY
    assert role("UVIEW", policy=nobody) is Role.VIEWER
    operators = AccessPolicy(default_role=Role.OPERATOR)
    assert role("UVIEW", policy=operators) is Role.OPERATOR  # a grant never lowers a role


def test_roles_are_ordered_and_parsed() -> None:
    assert Role.NOBODY < Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert Role.parse(" Operator ") is Role.OPERATOR
    assert Role.ADMIN.label == "admin"
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("owner")


def test_the_roles_each_operation_needs() -> None:
    assert ROLE_FOR["view"] is Role.VIEWER
    for op in (Operation.CREATE, Operation.UPGRADE, Operation.CONFIGURE, Operation.EXTEND):
        assert ROLE_FOR[op] is Role.OPERATOR
    for op in (Operation.DISABLE, Operation.ENABLE, Operation.MIGRATE):
        assert ROLE_FOR[op] is Role.ADMIN


def test_approval_rules_default_to_self() -> None:
    policy = AccessPolicy(approvals={"disable": ApprovalRule("peer", 2)})
    assert policy.approval_for(Operation.DISABLE).needs_peer
    assert policy.approval_for(Operation.DISABLE).approvers == 2
    assert not policy.approval_for(Operation.UPGRADE).needs_peer
