"""Managing access: granting and revoking roles (admins only), each audited.

A grant or revoke may carry `once`, the request's own signature: it is recorded in the change's
transaction, and the same request arriving again (a replay, on any replica) changes nothing and
raises `RequestReplayed`, even after the grant was revoked meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from core.access import Grant
from core.audit import AuditRecord
from core.config import CoreConfig
from core.domain import Actor
from core.errors import RequestReplayed
from core.home import home_changed
from core.messages import AccessChanged, person
from core.records import enqueue
from core.roles import Roles
from core.store.ports import Store, UnitOfWork

__all__ = ["REPLAYS_KEPT", "AccessAdmin"]

log = logging.getLogger(__name__)

#: how long a request's signature is kept: a signature is good for 5 minutes either side of its
#: timestamp, so after 10 minutes no replay of it can arrive (15, for clocks that differ)
REPLAYS_KEPT = timedelta(minutes=15)


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

    def grant(self, grant: Grant, *, label: str, actor: Actor, once: str | None = None) -> bool:
        """Give a role to a user or group; False when they already had it."""
        self.roles.require(actor, "access", grant.team, "manage access")
        now = self.clock()
        with self.store.unit_of_work() as uow:
            _first_time(uow, once, now)
            if not uow.grants.add(grant, label=label, by=actor.user_id, at=now):
                uow.commit()  # the request is recorded all the same
                return False
            self._audit(uow, True, grant, label, actor, now)
            uow.after_commit(self.roles.forget)
            uow.commit()
        return True

    def revoke(self, grant: Grant, *, label: str, actor: Actor, once: str | None = None) -> bool:
        """Take a role back; False when there was no such grant."""
        self.roles.require(actor, "access", grant.team, "manage access")
        now = self.clock()
        with self.store.unit_of_work() as uow:
            _first_time(uow, once, now)
            stored = uow.grants.remove(grant)
            if stored is None:
                uow.commit()  # the request is recorded all the same
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


def _first_time(uow: UnitOfWork, once: str | None, now: datetime) -> None:
    """Record the request `once`; RequestReplayed when it was received before."""
    if once is not None and not uow.replays.first(once, now):
        log.warning("a request received before arrived again (a replay): nothing was changed")
        raise RequestReplayed()
