"""What an operator's tools read of the store: the outbox's backlog and the owners' channels.

The metrics read the backlog each time they are scraped (through the outbox repository: the
pending and dead entries are counted, an index range each, so a scrape costs the same whatever
the number delivered); `planbot doctor` reads which channels own apps, to check that the bot can
post in each. Both are reads: they take no write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.store.ports import Store

__all__ = ["OutboxBacklog", "outbox_backlog", "owner_channels"]


@dataclass(frozen=True)
class OutboxBacklog:
    """Entries waiting for delivery, since when the oldest has waited, and those given up."""

    pending: int
    oldest: datetime | None
    dead: int

    def oldest_age(self, now: datetime) -> float:
        """Seconds the oldest pending entry has waited (0 when none waits)."""
        if self.oldest is None:
            return 0.0
        return max(0.0, (now - self.oldest).total_seconds())


def outbox_backlog(store: Store) -> OutboxBacklog:
    """The outbox's backlog now."""
    with store.unit_of_work(write=False) as uow:
        counts = uow.outbox.counts(("pending", "dead"))
        oldest = uow.outbox.oldest_pending() if counts.get("pending") else None
    return OutboxBacklog(counts.get("pending", 0), oldest, counts.get("dead", 0))


def owner_channels(store: Store) -> list[str]:
    """The channels that own apps not purged, each once, sorted."""
    with store.unit_of_work(write=False) as uow:
        return uow.apps.owner_channels()
