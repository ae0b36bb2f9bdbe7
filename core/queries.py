"""Reading: an app's status, the app list, an app's history and its bill for a month."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core import domain, errors
from core.config import CoreConfig
from core.domain import Actor, AppState, HistoryEntry, Plan
from core.facts import Refusal
from core.money import RateSegment, Statement, bill_month, statement
from core.requests import Request
from core.roles import Roles
from core.store.ports import Store, UnitOfWork

__all__ = [
    "AppPage",
    "AppStatus",
    "Queries",
    "nearest_names",
    "resolve",
    "resolve_with_segments",
]


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
    #: why the configuration can't be changed at all now (disabled, legacy billing, purged)
    config_change_blocked: Refusal | None = None


@dataclass(frozen=True)
class AppPage:
    """One page of the app list."""

    apps: tuple[AppState, ...]
    total: int
    page: int
    pages: int


#: a mistyped name is compared with at most this many names (two index ranges of names)
_NEAR_PREFIX_NAMES = 50
_NEAR_INITIAL_NAMES = 300


def nearest_names(
    uow: UnitOfWork, ref: str, *, teams: Sequence[str] | None = None, count: int = 3
) -> list[str]:
    """The names nearest a mistyped one, best first (none when nothing is near).

    Never reads every name: the candidates are the names sharing its first three characters,
    and those sharing its first character with about its length, both read from the index on
    the lower-cased name, a few hundred at most.
    """
    typed = ref.strip()
    if not typed or typed.isdigit():
        return []
    candidates = set(uow.apps.names_starting(typed[:3], teams=teams, limit=_NEAR_PREFIX_NAMES))
    lengths = (max(1, len(typed) - 2), len(typed) + 2)
    candidates.update(
        uow.apps.names_starting(typed[:1], teams=teams, lengths=lengths, limit=_NEAR_INITIAL_NAMES)
    )
    by_lower = {name.lower(): name for name in sorted(candidates)}
    near = difflib.get_close_matches(typed.lower(), list(by_lower), n=count, cutoff=0.75)
    return [by_lower[n] for n in near]


def resolve(uow: UnitOfWork, ref: str, *, teams: Sequence[str] | None = None) -> AppState:
    """The app a person means: by id (digits), else by name (case-insensitively); when none,
    AppNotFound with the nearest names (among the apps of `teams`, when given)."""
    ref = ref.strip()
    if domain.is_app_id(ref):
        state = uow.apps.get(ref)
        if state is not None:
            return state
    states = uow.apps.by_name(ref)
    if not states:
        raise errors.AppNotFound(ref, nearest_names(uow, ref, teams=teams))
    if len(states) > 1:
        raise errors.AmbiguousAppName(ref, [s.app_id for s in states])
    return states[0]


def resolve_with_segments(
    uow: UnitOfWork, ref: str, *, until: datetime, teams: Sequence[str] | None = None
) -> tuple[AppState, list[RateSegment]]:
    """The app a person means and its rate segments before `until` (one read, when by id)."""
    ref = ref.strip()
    if domain.is_app_id(ref):
        found = uow.apps.with_segments(ref, until=until)
        if found is not None:
            return found
    state = resolve(uow, ref, teams=teams)
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
            state = resolve(uow, ref, teams=self.roles.suggestable_teams(actor))
        self.roles.require(actor, "view", state.owner_channel, "see this app")
        return self.status_of(state)

    def status_of(self, state: AppState) -> AppStatus:
        """What a person wants to know about an app's state."""
        catalog, tz, now = self.config.catalog, self.config.billing_tz, self.clock()
        used, blocked = False, None
        if state.plan.paid:
            # the rule itself says whether a change could be made now: asked for the other
            # edition, it refuses for the month's change used, or for what blocks any change
            other = Plan.STANDARD if state.plan is Plan.PREMIUM else Plan.PREMIUM
            try:
                domain.configure(state, edition=other, addons={}, now=now, tz=tz)
            except errors.ConfigChangeLimitReached:
                used = True
            except errors.PlanError as err:
                blocked = Refusal.of(err)
        return AppStatus(
            app=state,
            monthly_price=catalog.monthly_price(state.plan, state.config),
            currency=catalog.currency,
            config_text=catalog.describe_config(state.config) if state.plan.paid else "-",
            config_change_used=used,
            next_config_change=domain.next_month_start(now, tz) if used else None,
            purge_at=state.purge_at,
            limits=catalog.limits(state.plan, state.config),
            config_change_blocked=blocked,
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
            state = resolve(uow, ref, teams=self.roles.suggestable_teams(actor))
            self.roles.require(actor, "view", state.owner_channel, "see this app")
            return state, uow.history.of(state.app_id, limit=limit)

    def statement(
        self, ref: str, *, actor: Actor, year: int | None = None, month: int | None = None
    ) -> tuple[AppState, Statement]:
        """The app's statement for a month (this month by default), in runs of days."""
        now = self.clock()
        tz = self.config.billing_tz
        with self.store.unit_of_work(fast=True) as uow:
            state = resolve(uow, ref, teams=self.roles.suggestable_teams(actor))
            self.roles.require(actor, "view", state.owner_channel, "see this app's bill")
            year, month = bill_month(year, month, now=now, tz=tz, created=state.created_at)
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
