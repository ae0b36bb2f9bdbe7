"""The people planbot talks to, and the language each of them reads.

The edge decides what language a person reads: the one they chose, else the one of their chat
account's locale, else the workspace's default. The core only keeps, by user id, what it was
told: the locale read from the chat platform (and when it was read) and the language chosen
(None: follow the locale). Nothing here is read on the way to an answer: the edge keeps what it
needs in memory and refreshes it in the background.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core import domain
from core.store.ports import Person, Store

__all__ = ["MAX_PEOPLE", "People", "Person"]

#: the most people read at once (the edge keeps them all in memory)
MAX_PEOPLE = 100_000


class People:
    """Read and note people's locales and chosen languages."""

    def __init__(self, *, store: Store, clock: Callable[[], datetime] = domain.utcnow) -> None:
        self.store = store
        self.clock = clock

    def get(self, user_id: str) -> Person | None:
        """What is known of one person (None: nothing yet)."""
        with self.store.unit_of_work(write=False) as uow:
            return uow.people.get(user_id)

    def everyone(self, *, limit: int = MAX_PEOPLE) -> list[Person]:
        """Everyone known, by user id."""
        with self.store.unit_of_work(write=False) as uow:
            return uow.people.all(limit=limit)

    def read_locale(self, user_id: str, locale: str | None) -> Person:
        """Note the locale just read for a person (None: their account has none)."""
        with self.store.unit_of_work(durable=False) as uow:
            uow.people.read_locale(user_id, locale, self.clock())
            person = uow.people.get(user_id)
            uow.commit()
        assert person is not None
        return person

    def choose(self, user_id: str, language: str | None) -> Person:
        """Note the language a person chose (None: follow their locale again)."""
        with self.store.unit_of_work() as uow:
            uow.people.choose(user_id, language, self.clock())
            person = uow.people.get(user_id)
            uow.commit()
        assert person is not None
        return person
