"""What every listener needs: the core's services, the ways to talk back, the words, and the
language of the person who asked.

Every payload is handled speaking its person's language (`bot.app.SpeakingApp` wraps Bolt's
dispatch in `speaking(bot.language_of(user))`), so a listener's `_()` is already theirs; a
listener that speaks to someone else (or to a person after they chose another language) uses
`bot.speaking_to(user_id)` for that part.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot import observe
from bot.channels import ChannelDirectory
from bot.delivery import GroupDirectory, Responder
from bot.i18n import ENGLISH, speaking
from bot.people import Languages
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
    #: the language each person reads (None: English for everyone)
    languages: Languages | None = None

    def language_of(self, user_id: str | None) -> str:
        """The language `user_id` reads (from memory: never waits on Slack)."""
        return ENGLISH if self.languages is None else self.languages.of(user_id)

    def speaking_to(self, user_id: str | None) -> AbstractContextManager[str]:
        """Speak the language `user_id` reads inside the block."""
        return speaking(self.language_of(user_id))

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
