"""The plan service: the core's services assembled over one store, for the edge to call.

Each concern is its own small service: `Queries` (reading), `Changes` (previews, requests and
the clicks that decide them), `AccessAdmin` (grants), `Imports` (CSV), `Lifecycle` (the sweep),
`People` (who reads which language), sharing the store, the configuration, the roles and the clock. `PlanService` builds them once
and hands them out; its methods are theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from core import domain
from core.changes import Changes, PendingRequest
from core.config import CoreConfig
from core.forms import Forms
from core.grants import AccessAdmin
from core.home import Home
from core.importer import Imports
from core.lifecycle import Lifecycle
from core.messages import Message
from core.people import People
from core.queries import Queries
from core.records import reply
from core.roles import Roles
from core.store.ports import Store
from core.store.sql import SqlStore

__all__ = ["PendingRequest", "PlanService"]


class PlanService:
    """The core's services over one database."""

    def __init__(
        self,
        *,
        config: CoreConfig,
        engine: Engine | None = None,
        store: Store | None = None,
        clock: Callable[[], datetime] = domain.utcnow,
        on_outbox: Callable[[], None] | None = None,
        grants_ttl: float = 2.0,
    ) -> None:
        if store is None:
            if engine is None:
                raise ValueError("a PlanService needs an engine or a store")
            store = SqlStore(engine)
        self.engine = engine
        self.config = config
        self.clock = clock
        self.on_outbox = on_outbox
        self.store = store
        self.roles = Roles(store=self.store, config=config, ttl=grants_ttl)
        store, roles, now, wake = self.store, self.roles, self._now, self._wake
        self.queries = Queries(store=store, config=config, roles=roles, clock=now)
        self.changes = Changes(store=store, config=config, roles=roles, clock=now, wake=wake)
        self.access = AccessAdmin(store=store, config=config, roles=roles, clock=now, wake=wake)
        self.lifecycle = Lifecycle(store=store, config=config, roles=roles, clock=now, wake=wake)
        self.imports = Imports(
            store=self.store, catalog=config.catalog, tz=config.billing_tz, clock=self._now
        )
        self.home = Home(store=store, config=config, roles=roles, clock=now, wake=wake)
        self.forms = Forms(store=store, config=config, roles=roles, clock=now)
        self.people = People(store=store, clock=now)
        # the edge's verbs, straight from the services that own them
        self.status = self.queries.status
        self.list_apps = self.queries.list_apps
        self.history = self.queries.history
        self.statement = self.queries.statement
        self.preview = self.changes.preview
        self.request = self.changes.request
        self.confirm = self.changes.confirm
        self.approve = self.changes.approve
        self.reject = self.changes.reject
        self.withdraw = self.changes.withdraw
        self.grant = self.access.grant
        self.revoke = self.access.revoke
        self.grants = self.access.grants
        self.role_of = self.roles.role_of
        self.highest_role = self.roles.highest
        self.granted_groups = self.roles.granted_groups

    def reply(self, url: str, message: Message) -> None:
        """Queue an answer to a reply URL (delivered from the outbox, in order per URL).

        A reply to a refused click: losing it in a crash of the database only leaves the card
        as it was, so its commit need not wait for the disk.
        """
        with self.store.unit_of_work(fast=True, durable=False) as uow:
            uow.outbox.add(reply(url, message, self.clock()))
            uow.after_commit(self._wake)
            uow.commit()

    def _now(self) -> datetime:
        return self.clock()

    def _wake(self) -> None:
        if self.on_outbox is not None:
            self.on_outbox()

    def close(self) -> None:
        """Stop the sweep's timer and give the database connections back."""
        self.lifecycle.stop()
        if isinstance(self.store, SqlStore):
            self.store.close()
