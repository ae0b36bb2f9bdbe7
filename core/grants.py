"""Managing access: granting and revoking roles (admins only), each audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core.access import Grant
from core.audit import AuditRecord
from core.config import CoreConfig
from core.domain import Actor
from core.home import home_changed
from core.messages import AccessChanged, person
from core.records import enqueue
from core.roles import Roles
from core.store.ports import Store, UnitOfWork

__all__ = ["AccessAdmin"]


class AccessAdmin:
    """Who may do what, changed by admins."""

    def __init__(
        self,
        *,
        store: Store,
        config: CoreConfig,
        roles: Roles,
        clock: Callable[[], datetime],
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.roles = roles
        self.clock = clock
        self.wake = wake or (lambda: None)

    def grant(self, grant: Grant, *, label: str, actor: Actor) -> bool:
        """Give a role to a user or group; False when they already had it."""
        self.roles.require(actor, "access", grant.team, "manage access")
        now = self.clock()
        with self.store.unit_of_work() as uow:
            if not uow.grants.add(grant, label=label, by=actor.user_id, at=now):
                return False
            self._audit(uow, True, grant, label, actor, now)
            uow.after_commit(self.roles.forget)
            uow.commit()
        return True

    def revoke(self, grant: Grant, *, label: str, actor: Actor) -> bool:
        """Take a role back; False when there was no such grant."""
        self.roles.require(actor, "access", grant.team, "manage access")
        now = self.clock()
        with self.store.unit_of_work() as uow:
            stored = uow.grants.remove(grant)
            if stored is None:
                return False
            self._audit(uow, False, grant, label or stored, actor, now)
            uow.after_commit(self.roles.forget)
            uow.commit()
        return True

    def grants(self, *, actor: Actor) -> list[tuple[Grant, str]]:
        """Every grant with its label (viewers may look)."""
        self.roles.require(actor, "view", None, "see who has access")
        with self.store.unit_of_work(fast=True) as uow:
            return uow.grants.all()

    def _audit(
        self, uow: UnitOfWork, granted: bool, grant: Grant, label: str, actor: Actor, now: datetime
    ) -> None:
        subject = {
            "principal": f"{grant.principal_kind}:{grant.principal_id}",
            "label": label,
            "role": grant.role.label,
            "team": grant.team or "(all apps)",
        }
        to_user = grant.principal_kind == "user"  # a group's: whoever may be in it
        users = [grant.principal_id] if to_user else []
        home_changed(uow, now=now, users=users, everyone=not to_user)
        seq = uow.audit.append(
            AuditRecord(
                at=now,
                actor_id=actor.user_id,
                actor_name=actor.name,
                action="access.grant" if granted else "access.revoke",
                outcome="applied",
                after=subject,
            )
        )
        if self.config.audit_channel:
            message = AccessChanged(
                granted=granted,
                actor=person(actor),
                principal_kind=grant.principal_kind,
                principal_id=grant.principal_id,
                label=label,
                role=grant.role.label,
                team=grant.team,
                at=now,
                audit_seq=seq,
            )
            enqueue(
                uow,
                message,
                destination=self.config.audit_channel,
                app_id=None,
                now=now,
                topic="audit",
            )
            uow.after_commit(self.wake)
