"""What an operator's tools read of the store: the outbox's backlog and the owners' channels.

The metrics read the backlog each time they are scraped (one indexed statement per status: the
outbox's pending and dead entries are few, whatever the number delivered); `planbot doctor`
reads which channels own apps, to check that the bot can post in each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.db import read_only
from core.store.tables import AppRow, OutboxRow

__all__ = ["OutboxBacklog", "outbox_backlog", "owner_channels"]

_OUTBOX: sa.Table = OutboxRow.__table__  # type: ignore[attr-defined]
_APP: sa.Table = AppRow.__table__  # type: ignore[attr-defined]
_PENDING = sa.select(sa.func.count(), sa.func.min(_OUTBOX.c.created_at)).where(
    _OUTBOX.c.status == "pending"
)
_DEAD = sa.select(sa.func.count()).where(_OUTBOX.c.status == "dead")
_OWNERS = (
    sa.select(_APP.c.owner_channel)
    .where(_APP.c.owner_channel.is_not(None), _APP.c.status != "purged")
    .distinct()
    .order_by(_APP.c.owner_channel)
)


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


def outbox_backlog(engine: Engine) -> OutboxBacklog:
    """The outbox's backlog now (a read: it takes no write lock)."""
    with read_only(engine).connect() as connection:
        pending, oldest = connection.execute(_PENDING).one()
        dead = connection.execute(_DEAD).scalar_one()
    return OutboxBacklog(int(pending or 0), oldest, int(dead or 0))


def owner_channels(engine: Engine) -> list[str]:
    """The channels that own apps not purged, each once, sorted."""
    with read_only(engine).connect() as connection:
        return [str(c) for c in connection.execute(_OWNERS).scalars()]
