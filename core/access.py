"""Who may do what: roles, grants to users and groups (global or per owner team), approvals.

Roles are ordered: viewer < operator < admin. A person's role on an app is the highest of: admin
when listed in the configured admins, any grant to them or to a group they belong to (global, or
for the app's owner team), and the default role for everyone else ("nobody" means no role).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.domain import Operation

__all__ = [
    "ROLE_FOR",
    "AccessPolicy",
    "ApprovalRule",
    "Approvers",
    "Grant",
    "Role",
    "approvers",
    "effective_role",
]


class Role(enum.IntEnum):
    """A role; higher includes lower."""

    NOBODY = 0
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        """'viewer' -> Role.VIEWER (raises ValueError on an unknown name)."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}") from None

    @property
    def label(self) -> str:
        """'operator'."""
        return self.name.lower()


#: the minimum role each action needs
ROLE_FOR: Mapping[str, Role] = {
    "view": Role.VIEWER,
    Operation.CREATE: Role.OPERATOR,
    Operation.UPGRADE: Role.OPERATOR,
    Operation.CONFIGURE: Role.OPERATOR,
    Operation.EXTEND: Role.OPERATOR,
    Operation.DISABLE: Role.ADMIN,
    Operation.ENABLE: Role.ADMIN,
    Operation.MIGRATE: Role.ADMIN,
    "access": Role.ADMIN,
}


@dataclass(frozen=True)
class ApprovalRule:
    """How a request for one operation is confirmed: by its requester, or by N other people."""

    mode: str = "self"  # "self" or "peer"
    approvers: int = 1

    @property
    def needs_peer(self) -> bool:
        """Whether someone other than the requester must approve."""
        return self.mode == "peer"


@dataclass(frozen=True)
class Grant:
    """A role given to a user or a group, globally (team None) or for one owner team."""

    principal_kind: str
    principal_id: str
    role: Role
    team: str | None = None


@dataclass(frozen=True)
class AccessPolicy:
    """The access settings: admins, default role, approval rules, where changes may be made."""

    admins: frozenset[str] = frozenset()
    default_role: Role = Role.VIEWER
    approvals: Mapping[str, ApprovalRule] = field(default_factory=dict)
    allowed_channels: frozenset[str] = frozenset()
    approvals_channel: str | None = None
    #: a user group mentioned on approval cards (the people expected to approve)
    approver_group: str | None = None

    def approval_for(self, operation: Operation) -> ApprovalRule:
        """The approval rule of an operation (self when not configured)."""
        return self.approvals.get(operation.value, ApprovalRule())


def effective_role(
    *,
    user_id: str,
    groups: Iterable[str],
    team: str | None,
    policy: AccessPolicy,
    grants: Iterable[Grant],
) -> Role:
    """The highest role the person has for an app owned by `team` (None: no particular app)."""
    if user_id in policy.admins:
        return Role.ADMIN
    mine = {user_id, *groups}
    best = policy.default_role
    for grant in grants:
        if grant.principal_id not in mine:
            continue
        if grant.team is None or (team is not None and grant.team == team):
            best = max(best, grant.role)
    return best


@dataclass(frozen=True)
class Approvers:
    """Who could approve a request besides its requester, as far as planbot can tell.

    `users`: people known to hold the role (configured admins, users granted it); `groups`: user
    groups granted it, whose members planbot does not know in advance; `anyone`: the default
    role is enough, so anyone could.
    """

    role: Role
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    anyone: bool = False

    def enough_for(self, needed: int) -> bool:
        """Whether `needed` approvals could be given (True when it can't be ruled out)."""
        return self.anyone or bool(self.groups) or len(self.users) >= needed


def approvers(
    *,
    role: Role,
    team: str | None,
    requester: str,
    policy: AccessPolicy,
    grants: Iterable[Grant],
) -> Approvers:
    """The people and groups that hold `role` for an app of `team`, but the requester."""
    if policy.default_role >= role:
        return Approvers(role, anyone=True)
    users = {a for a in policy.admins if a != requester}
    groups: set[str] = set()
    for grant in grants:
        if grant.role < role or (grant.team is not None and grant.team != team):
            continue
        if grant.principal_kind == "group":
            groups.add(grant.principal_id)
        elif grant.principal_id != requester:
            users.add(grant.principal_id)
    return Approvers(role, users=tuple(sorted(users)), groups=tuple(sorted(groups)))
