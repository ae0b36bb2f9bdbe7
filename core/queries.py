"""Reading: an app's status, the app list, an app's history and its bill for a month."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core import domain, errors
from core.config import CoreConfig
from core.domain import Actor, AppState, HistoryEntry
from core.money import RateSegment, Statement, bill_month, statement
from core.requests import Request
from core.roles import Roles
from core.store.ports import Store, UnitOfWork

__all__ = ["AppPage", "AppStatus", "Queries", "resolve", "resolve_with_segments"]


@dataclass(frozen=True)
class AppStatus:
    """An app's state with what a person wants to know about it."""

    app: AppState
    monthly_price: Decimal
    currency: str
    config_text: str
    config_change_used: bool
    next_config_change: datetime | None
    purge_at: datetime | None
    limits: Mapping[str, int]


@dataclass(frozen=True)
class AppPage:
    """One page of the app list."""

    apps: tuple[AppState, ...]
    total: int
    page: int
    pages: int


def resolve(uow: UnitOfWork, ref: str) -> AppState:
    """The app a person means: by id (digits), else by name (case-insensitively)."""
    ref = ref.strip()
    if ref.isdigit():
        state = uow.apps.get(ref)
        if state is not None:
            return state
    states = uow.apps.by_name(ref)
    if not states:
        raise errors.AppNotFound(ref)
    if len(states) > 1:
        raise errors.AmbiguousAppName(ref, [s.app_id for s in states])
    return states[0]


def resolve_with_segments(
    uow: UnitOfWork, ref: str, *, until: datetime
) -> tuple[AppState, list[RateSegment]]:
    """The app a person means and its rate segments before `until` (one read, when by id)."""
    ref = ref.strip()
    if ref.isdigit():
        found = uow.apps.with_segments(ref, until=until)
        if found is not None:
            return found
    state = resolve(uow, ref)
    return state, uow.history.segments(state.app_id, until=until)


class Queries:
    """What people may look at."""

    def __init__(
        self, *, store: Store, config: CoreConfig, roles: Roles, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.config = config
        self.roles = roles
        self.clock = clock

    def status(self, ref: str, *, actor: Actor) -> AppStatus:
        """An app's status, for viewers."""
        with self.store.unit_of_work(fast=True) as uow:
            state = resolve(uow, ref)
        self.roles.require(actor, "view", state.owner_channel, "see this app")
        return self.status_of(state)

    def status_of(self, state: AppState) -> AppStatus:
        """What a person wants to know about an app's state."""
        catalog, tz, now = self.config.catalog, self.config.billing_tz, self.clock()
        used = False
        if state.config_changed_at is not None:
            changed, local = state.config_changed_at.astimezone(tz), now.astimezone(tz)
            used = (changed.year, changed.month) == (local.year, local.month)
        return AppStatus(
            app=state,
            monthly_price=catalog.monthly_price(state.plan, state.config),
            currency=catalog.currency,
            config_text=catalog.describe_config(state.config) if state.plan.paid else "-",
            config_change_used=used,
            next_config_change=domain.next_month_start(now, tz) if used else None,
            purge_at=state.purge_at,
            limits=catalog.plans[state.plan].limits,
        )

    def list_apps(
        self, *, actor: Actor, contains: str | None = None, page: int = 1, per_page: int = 20
    ) -> AppPage:
        """A page of the apps the actor may see, optionally filtered."""
        channels = self.roles.visible_teams(actor)
        with self.store.unit_of_work(write=False) as uow:
            offset = (max(page, 1) - 1) * per_page
            apps, total = uow.apps.page(
                contains=contains, channels=channels, offset=offset, limit=per_page
            )
        pages = max(1, -(-total // per_page))
        return AppPage(tuple(apps), total, max(page, 1), pages)

    def history(
        self, ref: str, *, actor: Actor, limit: int = 20
    ) -> tuple[AppState, list[HistoryEntry]]:
        """The app's plan history, newest first."""
        with self.store.unit_of_work(fast=True) as uow:
            state = resolve(uow, ref)
            self.roles.require(actor, "view", state.owner_channel, "see this app")
            return state, uow.history.of(state.app_id, limit=limit)

    def statement(
        self, ref: str, *, actor: Actor, year: int | None = None, month: int | None = None
    ) -> tuple[AppState, Statement]:
        """The app's statement for a month (this month by default), in runs of days."""
        now = self.clock()
        tz = self.config.billing_tz
        year, month = bill_month(year, month, now=now, tz=tz)
        with self.store.unit_of_work(fast=True) as uow:
            state = resolve(uow, ref)
            self.roles.require(actor, "view", state.owner_channel, "see this app's bill")
            _, end = domain.month_bounds(year, month, tz)
            segments = uow.history.segments(state.app_id, until=end)
        return state, statement(
            segments,
            year=year,
            month=month,
            tz=tz,
            now=now,
            currency=self.config.catalog.currency,
            catalog=self.config.catalog,
            created=state.created_at,
        )

    def request(self, request_id: str) -> Request | None:
        """A request as stored (for the edge to redraw a card)."""
        with self.store.unit_of_work(fast=True) as uow:
            return uow.requests.get(request_id)
