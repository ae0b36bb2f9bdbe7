"""What every listener needs: the core's services, the ways to talk back, the words."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot import observe
from bot.channels import ChannelDirectory
from bot.delivery import GroupDirectory, Responder
from bot.surfaces import Surfaces
from bot.words import Words
from core import Actor, PlanService, ProviderView

__all__ = ["Bot"]


@dataclass
class Bot:
    """What the listeners need: the core service and the ways to talk back."""

    service: PlanService
    responder: Responder
    groups: GroupDirectory
    words: Words
    #: where modals open and home tabs are drawn (None: nowhere, `/plan` alone shows help)
    surfaces: Surfaces | None = None
    #: the provider's stored figures, for `/plan usage` and the status card (None: not wired)
    provider: ProviderView | None = None
    channels: ChannelDirectory = field(default_factory=lambda: ChannelDirectory(None))
    #: replies that must not wait on the database (the error handler's), straight to Slack
    #: (None: the responder itself does not go through the database)
    direct: Responder | None = None

    @property
    def tz(self) -> ZoneInfo:
        """The billing time zone, for dates shown."""
        return self.service.config.billing_tz

    def actor(self, user_id: str, name: str | None) -> Actor:
        """The person acting, with the granted groups they belong to."""
        observe.note(user=user_id)
        return Actor(
            user_id=user_id,
            name=name or "",
            groups=self.groups.groups_of(user_id),
            pending_groups=self.groups.unknown(),
        )
