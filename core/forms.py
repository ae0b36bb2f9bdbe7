"""What a form offers a person: the apps they may pick, and what they may do to the one picked.

The app picker searches by name or id as the person types (prefix first, then substring), among
the apps of the teams they may see, on indexes (`Apps.search`). Once an app is picked, the form
offers only the operations this person may do to it now: those their role allows and the rules
would accept (an upgrade for a developer app, a re-enable for a disabled one, ...). Whatever is
then submitted goes through `Changes.request`, as the slash command does, which checks it all
again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core import errors
from core.access import ROLE_FOR
from core.config import CoreConfig
from core.domain import Actor, AppState, Operation, Plan
from core.previews import rule
from core.queries import resolve
from core.requests import ChangeRequest
from core.roles import Roles
from core.store.ports import Store

__all__ = ["FORM_OPERATIONS", "PICKER_LIMIT", "Forms"]

#: the options a picker offers at once (Slack shows at most 100)
PICKER_LIMIT = 25
#: the operations a form can ask for on an existing app, in the order offered
FORM_OPERATIONS = (
    Operation.UPGRADE,
    Operation.CONFIGURE,
    Operation.EXTEND,
    Operation.DISABLE,
    Operation.ENABLE,
    Operation.MIGRATE,
)


class Forms:
    """The choices a form offers."""

    def __init__(
        self, *, store: Store, config: CoreConfig, roles: Roles, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.config = config
        self.roles = roles
        self.clock = clock

    def apps(self, text: str, *, actor: Actor, limit: int = PICKER_LIMIT) -> list[AppState]:
        """The apps the person may see whose name or id starts with or contains `text`."""
        try:
            channels = self.roles.visible_teams(actor)
        except (errors.PermissionDenied, errors.GroupsNotYetKnown):  # none yet: none offered
            return []
        # every app: compiled statements, no transaction; some teams': read-only, deferred
        with self.store.unit_of_work(fast=channels is None, write=False) as uow:
            return uow.apps.search(text[:80], channels=channels, limit=limit)

    def operations(self, ref: str, *, actor: Actor) -> tuple[AppState, tuple[Operation, ...]]:
        """The app and what this person may do to it now (raises when they may not see it)."""
        with self.store.unit_of_work(fast=True) as uow:
            app = resolve(uow, ref)
        self.roles.require(actor, "view", app.owner_channel, "see this app")
        now = self.clock()
        role = self.roles.role_of(actor, app.owner_channel)
        allowed = tuple(
            op for op in FORM_OPERATIONS if role >= ROLE_FOR[op] and self._possible(app, op, now)
        )
        return app, allowed

    def _possible(self, app: AppState, operation: Operation, now: datetime) -> bool:
        """Whether the rules accept the operation on the app now (for some choice of fields)."""
        if operation is Operation.UPGRADE:
            changes = [ChangeRequest(operation, plan=Plan.STANDARD)]
        elif operation is Operation.CONFIGURE:
            other = Plan.PREMIUM if app.plan is Plan.STANDARD else Plan.STANDARD
            changes = [ChangeRequest(operation, plan=other)]
        else:
            changes = [ChangeRequest(operation)]
        for change in changes:
            try:
                rule(app, change, now, self.config)
            except errors.PlanError:
                continue
            return True
        return False
