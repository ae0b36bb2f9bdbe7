"""Whose role is what: the configured policy and the stored grants, read through a short cache.

Every request needs the actor's role, and the grant table is small, so it is kept in memory and
re-read at most every `ttl` seconds (at once after a grant or revoke here); another replica's
change is seen within `ttl`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from core import errors
from core.access import ROLE_FOR, Grant, Role, effective_role
from core.config import CoreConfig
from core.domain import Actor
from core.store.ports import Store

__all__ = ["Roles"]


class Roles:
    """The roles of people, for an owner team's apps or anywhere."""

    def __init__(self, *, store: Store, config: CoreConfig, ttl: float = 2.0) -> None:
        self.store = store
        self.config = config
        self.ttl = ttl
        self._cache: tuple[float, tuple[Grant, ...]] | None = None

    def all_grants(self) -> tuple[Grant, ...]:
        """Every grant (cached for `ttl` seconds)."""
        cached = self._cache
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        with self.store.unit_of_work(fast=True) as uow:
            grants = tuple(g for g, _ in uow.grants.all())
        self._cache = (time.monotonic(), grants)
        return grants

    def forget(self) -> None:
        """Re-read the grants on the next question (after a grant or revoke)."""
        self._cache = None

    def grants_of(self, actor: Actor) -> list[Grant]:
        """The grants to the actor or a group they are in."""
        mine = {actor.user_id, *actor.groups}
        return [g for g in self.all_grants() if g.principal_id in mine]

    def role_of(self, actor: Actor, team: str | None = None) -> Role:
        """The actor's role for the apps of `team` (None: no particular app)."""
        return effective_role(
            user_id=actor.user_id,
            groups=actor.groups,
            team=team,
            policy=self.config.access,
            grants=self.grants_of(actor),
        )

    def highest(self, actor: Actor) -> Role:
        """The actor's highest role anywhere: global, or for the apps of any one team."""
        teams = {g.team for g in self.grants_of(actor)}
        return max(self.role_of(actor, team) for team in {None, *teams})

    def admins(self) -> list[str]:
        """The configured admins to name in a refusal (at most five)."""
        return sorted(self.config.access.admins)[:5]

    def require(self, actor: Actor, action: str, team: str | None, what: str) -> None:
        """Raise PermissionDenied unless the actor has the role `action` needs."""
        needed = ROLE_FOR[action]
        if self.role_of(actor, team) < needed:
            self.unless_groups_pending(actor, lambda who: self.role_of(who, team) >= needed)
            raise errors.PermissionDenied(what, needed.label, self.admins())

    def visible_teams(self, actor: Actor) -> Sequence[str] | None:
        """None when the actor sees every app; else the owner teams they may see."""
        if self.role_of(actor) >= Role.VIEWER:
            return None
        teams = [g.team for g in self.grants_of(actor) if g.team and g.role >= Role.VIEWER]
        if not teams:
            self.unless_groups_pending(actor, lambda who: self.highest(who) >= Role.VIEWER)
            raise errors.PermissionDenied("list apps", Role.VIEWER.label, self.admins())
        return teams

    @staticmethod
    def unless_groups_pending(actor: Actor, would_do: Callable[[Actor], bool]) -> None:
        """Before refusing the actor for their role: GroupsNotYetKnown if a group whose members
        are not known yet could give them what they lack (`would_do`)."""
        if actor.pending_groups and would_do(actor.in_pending_groups()):
            raise errors.GroupsNotYetKnown(sorted(actor.pending_groups))

    def suggestable_teams(self, actor: Actor) -> Sequence[str] | None:
        """The owner teams whose app names may be suggested to the actor (None: every team)."""
        try:
            return self.visible_teams(actor)
        except (errors.PermissionDenied, errors.GroupsNotYetKnown):
            return ()

    def granted_groups(self) -> set[str]:
        """The user groups that hold any grant (the only ones worth resolving)."""
        return {g.principal_id for g in self.all_grants() if g.principal_kind == "group"}
