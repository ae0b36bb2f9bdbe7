"""The home tab: what a person sees on it, and whose home tab is drawn again when something changes.

A person's home tab shows, as of when it is drawn:

- *needs you*: requests waiting for peer approval that this person may decide, and their own
  requests waiting for others;
- *coming up*: developer apps expiring and disabled apps being purged in the next 30 days, of the
  teams they may see, each with the operation that prevents it (extend, enable);
- *your apps*: the apps of the teams they may see, by team, a page at a time (optionally one
  team's), with plan, status, expiry, this month's charges to date and the month's projection.

Drawing it is the bot's, in the delivery worker, never on the ack path: opening the tab, turning
a page or choosing a team records what the person looks at and queues a `HomePublish` for them;
a change anyone may see writes a `HomeChanged` in its own transaction (`home_changed`), whose
delivery (`Home.expand`) queues a `HomePublish` for each person who opened their home tab
recently and sees what changed. A person with a publish still waiting gets no second one: the one
waiting draws what is true when it is delivered.

Events are processed once: `opened` records the event's id in the transaction that acts on it,
so a retried event (the chat platform retries what it thinks went unanswered), on any replica,
is acknowledged and changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core import domain, errors
from core.access import ROLE_FOR, Role
from core.config import CoreConfig
from core.domain import PURGE_AFTER, Actor, AppState, Operation, Status
from core.messages import HomeChanged, HomePublish, dump
from core.money import statement
from core.requests import Request
from core.roles import Roles
from core.store.ports import HomeViewer, OutboxEntry, Store, UnitOfWork

__all__ = [
    "APPS_PER_PAGE",
    "AppLine",
    "ComingUp",
    "Home",
    "HomeBoard",
    "WaitingRequest",
    "home_changed",
    "home_destination",
]

#: people who opened their home tab this recently have it drawn again when what they see changes
#: (anyone else's is drawn afresh when they next open it)
AUDIENCE_WINDOW = timedelta(hours=12)
#: at most this many of them (the latest) per change
AUDIENCE_LIMIT = 1000
#: how far ahead *coming up* looks
COMING_UP = timedelta(days=30)
#: requests and coming events listed per section
LISTED = 8
#: apps per page of *your apps*
APPS_PER_PAGE = 20
#: apps are counted up to this (a page count beyond it says "more")
COUNT_CAP = 10_000
#: teams offered by the filter
TEAMS_LISTED = 100
#: event ids are remembered this long (the chat platform retries for minutes, not hours)
EVENTS_KEPT = timedelta(days=1)
#: about one opening in this many forgets the event ids older than EVENTS_KEPT
FORGET_EVERY = 100


def home_destination(user_id: str) -> str:
    """The outbox destination of a person's home tab (its publishes are delivered in order)."""
    return f"home:{user_id}"


def home_changed(
    uow: UnitOfWork,
    *,
    now: datetime,
    app_ids: Iterable[str | None] = (),
    teams: Iterable[str | None] = (),
    users: Iterable[str] = (),
    everyone: bool = False,
) -> None:
    """Queue, in the caller's transaction, the redrawing of the home tabs that show this."""
    change = HomeChanged(
        app_ids=tuple(sorted({a for a in app_ids if a})),
        teams=tuple(sorted({t for t in teams if t})),
        users=tuple(sorted(set(users))),
        everyone=everyone,
        at=now,
    )
    uow.outbox.add(
        OutboxEntry(
            kind="message",
            topic="home",
            destination="home",
            app_id=None,  # each its own queue: expanding one does not wait for another
            payload=dump(change),
            created_at=now,
        )
    )


@dataclass(frozen=True)
class WaitingRequest:
    """A request waiting for peer approval, as one person sees it."""

    request: Request
    team: str | None
    #: whether this person may approve or reject it
    decidable: bool


@dataclass(frozen=True)
class ComingUp:
    """Something the lifecycle will do to an app soon, and the operation that prevents it."""

    app: AppState
    at: datetime
    #: EXTEND (a developer app expires) or ENABLE (a disabled app is purged)
    operation: Operation
    #: whether this person may start that operation
    allowed: bool


@dataclass(frozen=True)
class AppLine:
    """An app in the list, with this month's charges to date and the month's projection."""

    app: AppState
    to_date: Decimal
    projected: Decimal


@dataclass(frozen=True)
class HomeBoard:
    """What one person's home tab shows now."""

    viewer: Actor
    needs_you: tuple[WaitingRequest, ...]
    yours: tuple[WaitingRequest, ...]
    coming_up: tuple[ComingUp, ...]
    apps: tuple[AppLine, ...]
    #: the team the list is filtered to (None: every team they see)
    team: str | None
    #: the teams the filter offers
    teams: tuple[str, ...]
    page: int
    pages: int
    #: apps in the list (counted up to COUNT_CAP; `more` when there are more)
    total: int
    more: bool
    #: whether they may see any app at all
    sees_apps: bool
    currency: str
    month: tuple[int, int]
    at: datetime


class Home:
    """The home tab's data, and who must see it again."""

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

    # --- what people do ------------------------------------------------------------------

    def opened(self, actor: Actor, *, event_id: str | None = None) -> bool:
        """The person opened their home tab: remember them (with their groups) and queue its
        drawing; False, changing nothing, when the event `event_id` was already processed."""
        now = self.clock()
        with self.store.unit_of_work() as uow:
            if event_id and not uow.events.first(event_id, now):
                return False
            if event_id and secrets.randbelow(FORGET_EVERY) == 0:
                uow.events.forget(now - EVENTS_KEPT)  # now and then: the old ids, at once
            uow.homes.opened(
                HomeViewer(
                    user_id=actor.user_id, name=actor.name, groups=actor.groups, opened_at=now
                )
            )
            self._publish(uow, [actor.user_id], now)
            uow.commit()
        return True

    def browse(self, actor: Actor, *, team: str | None, page: int) -> None:
        """The person turned a page or chose a team: remember it and queue the drawing."""
        now = self.clock()
        with self.store.unit_of_work() as uow:
            if uow.homes.get(actor.user_id) is None:
                uow.homes.opened(
                    HomeViewer(
                        user_id=actor.user_id, name=actor.name, groups=actor.groups, opened_at=now
                    )
                )
            uow.homes.browse(actor.user_id, team=team, page=max(1, page))
            self._publish(uow, [actor.user_id], now)
            uow.commit()

    def viewing(self, user_id: str) -> HomeViewer | None:
        """What the person last looked at (None when they never opened the tab)."""
        with self.store.unit_of_work(write=False) as uow:
            return uow.homes.get(user_id)

    # --- delivering ----------------------------------------------------------------------

    def expand(self, change: HomeChanged) -> int:
        """Queue the drawing of the home tab of each recent viewer who sees the change; how
        many were queued (those with one waiting already are not)."""
        now = self.clock()
        with self.store.unit_of_work() as uow:
            viewers = uow.homes.recent(now - AUDIENCE_WINDOW, limit=AUDIENCE_LIMIT)
            if not viewers:
                return 0
            teams: set[str | None] = set(change.teams)
            teams.update(a.owner_channel for a in uow.apps.many(change.app_ids))
            users = set(change.users)
            audience = [
                v.user_id
                for v in viewers
                if change.everyone
                or v.user_id in users
                or any(self.roles.role_of(_actor(v), t) >= Role.VIEWER for t in teams)
            ]
            queued = self._publish(uow, audience, now)
            uow.commit()
        return queued

    def _publish(self, uow: UnitOfWork, users: Sequence[str], now: datetime) -> int:
        destinations = {home_destination(u): u for u in users}
        waiting: set[str] = set()
        names = list(destinations)
        for start in range(0, len(names), 500):
            waiting |= uow.outbox.waiting(names[start : start + 500], now)
        queued = 0
        for destination, user in destinations.items():
            if destination in waiting:
                continue
            uow.outbox.add(
                OutboxEntry(
                    kind="message",
                    topic="home",
                    destination=destination,
                    app_id="",  # not NULL: one person's publishes go one after another
                    payload=dump(HomePublish(user_id=user, at=now)),
                    created_at=now,
                )
            )
            queued += 1
        if queued:
            uow.after_commit(self.wake)
        return queued

    def forget_events(self) -> int:
        """Forget event ids older than a retry can be; how many."""
        with self.store.unit_of_work() as uow:
            forgotten = uow.events.forget(self.clock() - EVENTS_KEPT)
            uow.commit()
        return forgotten

    # --- what the tab shows --------------------------------------------------------------

    def board(self, user_id: str) -> HomeBoard:
        """What the person's home tab shows now (as they last filtered it)."""
        now = self.clock()
        with self.store.unit_of_work(write=False) as uow:
            viewer = uow.homes.get(user_id)
            actor = _actor(viewer) if viewer else Actor(user_id)
            try:
                channels = self.roles.visible_teams(actor)
            except (errors.PermissionDenied, errors.GroupsNotYetKnown):
                channels = []
            team = viewer.team if viewer else None
            if team is not None and channels is not None and team not in channels:
                team = None  # they may no longer see it
            needs_you, yours = self._requests(uow, actor, now)
            coming = self._coming_up(uow, actor, channels, now)
            teams = tuple(uow.apps.teams(limit=TEAMS_LISTED)) if channels is None else ()
            if channels is not None:
                teams = tuple(sorted(channels)[:TEAMS_LISTED])
            counted = uow.apps.count(channels=channels, team=team, cap=COUNT_CAP + 1)
            pages = max(1, -(-min(counted, COUNT_CAP) // APPS_PER_PAGE))
            page = min(max(1, viewer.page if viewer else 1), pages)
            apps = uow.apps.team_page(
                channels=channels,
                team=team,
                offset=(page - 1) * APPS_PER_PAGE,
                limit=APPS_PER_PAGE,
            )
            lines = self._charges(uow, apps, now)
        local = now.astimezone(self.config.billing_tz)
        return HomeBoard(
            viewer=actor,
            needs_you=needs_you,
            yours=yours,
            coming_up=coming,
            apps=lines,
            team=team,
            teams=teams,
            page=page,
            pages=pages,
            total=min(counted, COUNT_CAP),
            more=counted > COUNT_CAP,
            sees_apps=channels is None or bool(channels),
            currency=self.config.catalog.currency,
            month=(local.year, local.month),
            at=now,
        )

    def _requests(
        self, uow: UnitOfWork, actor: Actor, now: datetime
    ) -> tuple[tuple[WaitingRequest, ...], tuple[WaitingRequest, ...]]:
        """The requests waiting for approval this person may decide, and their own."""
        waiting = uow.requests.awaiting_approval(now, limit=200)
        owners = {
            a.app_id: a.owner_channel
            for a in uow.apps.many([r.app_id for r in waiting if r.app_id])
        }
        needs_you: list[WaitingRequest] = []
        yours: list[WaitingRequest] = []
        for request in waiting:
            team = owners.get(request.app_id) if request.app_id else request.owner_team
            if request.requester.user_id == actor.user_id:
                yours.append(WaitingRequest(request, team, decidable=False))
                continue
            if any(a.approver.user_id == actor.user_id for a in request.approvals):
                continue
            if self.roles.role_of(actor, team) >= ROLE_FOR[request.operation]:
                needs_you.append(WaitingRequest(request, team, decidable=True))
        return tuple(needs_you[:LISTED]), tuple(yours[:LISTED])

    def _coming_up(
        self, uow: UnitOfWork, actor: Actor, channels: Sequence[str] | None, now: datetime
    ) -> tuple[ComingUp, ...]:
        """Expiries and purges in the next 30 days, soonest first."""
        if channels is not None and not channels:
            return ()
        expiring = uow.apps.upcoming(
            Status.ACTIVE,
            "dev_expires_at",
            now,
            now + COMING_UP,
            channels=channels,
            limit=LISTED,
        )
        purged = uow.apps.upcoming(
            Status.DISABLED,
            "disabled_at",
            now - PURGE_AFTER,
            now - PURGE_AFTER + COMING_UP,
            channels=channels,
            limit=LISTED,
        )
        found = [
            ComingUp(
                app, app.dev_expires_at, Operation.EXTEND, self._may(actor, Operation.EXTEND, app)
            )
            for app in expiring
            if app.dev_expires_at is not None
        ]
        found += [
            ComingUp(app, app.purge_at, Operation.ENABLE, self._may(actor, Operation.ENABLE, app))
            for app in purged
            if app.purge_at is not None
        ]
        found.sort(key=lambda c: (c.at, c.app.app_id))
        return tuple(found[:LISTED])

    def _may(self, actor: Actor, operation: Operation, app: AppState) -> bool:
        return self.roles.role_of(actor, app.owner_channel) >= ROLE_FOR[operation]

    def _charges(
        self, uow: UnitOfWork, apps: Sequence[AppState], now: datetime
    ) -> tuple[AppLine, ...]:
        """This month's charges to date and projection of each app (as `/plan bill` says)."""
        tz = self.config.billing_tz
        local = now.astimezone(tz)
        _, end = domain.month_bounds(local.year, local.month, tz)
        segments = uow.history.segments_of([a.app_id for a in apps], until=end)
        lines = []
        for app in apps:
            month = statement(
                segments.get(app.app_id, []),
                year=local.year,
                month=local.month,
                tz=tz,
                now=now,
                currency=self.config.catalog.currency,
            )
            lines.append(AppLine(app, month.to_date, month.total))
        return tuple(lines)


def _actor(viewer: HomeViewer) -> Actor:
    return Actor(viewer.user_id, viewer.name, viewer.groups)
