"""Whose language: each person is answered in the language they chose (`/plan lang`), else in
the language of their Slack locale, else in the workspace's default (`PLANBOT_LANGUAGE`);
channels in `PLANBOT_CHANNEL_LANGUAGE`.

The ack path never waits on Slack or the database for it: `Languages.of` answers from memory.
A person seen for the first time gets the default while one background thread reads what the
database knows of them and, when their locale was never read (or was read more than a day ago),
asks Slack (`users.info` with `include_locale`), then notes it for every process. The same
thread re-reads everyone from the database every `ttl` seconds (a choice made on another replica
arrives within that), as the group memberships are refreshed (`bot.delivery.GroupDirectory`).

The delivery worker, off the ack path, asks `Languages.reading` for the person it writes to:
what memory knows if it was checked in the last few seconds, else the database's row (and Slack
once, if the locale was never read).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient

from bot.i18n import LANGUAGES, language_of_locale
from core import People, Person

__all__ = ["AUTO", "Choice", "Languages", "is_person", "user_of"]

log = logging.getLogger(__name__)

#: what `/plan lang auto` stores: no choice, follow the Slack locale
AUTO = "auto"
#: a person's Slack locale is read again after this long
LOCALE_TTL = timedelta(days=1)
#: the delivery worker trusts what it knows of a person for this long (seconds)
READING_TTL = 5.0
_PERSON = re.compile(r"[UW][A-Z0-9]{2,}")


def is_person(destination: str) -> bool:
    """Whether an outbox destination is a person (a Slack user id), not a channel."""
    return _PERSON.fullmatch(destination) is not None


def user_of(body: Any) -> str | None:
    """The Slack user id of whoever a Bolt payload is from (a command, a click, an event)."""
    if not isinstance(body, dict):
        return None
    user = body.get("user_id")
    if isinstance(user, str) and user:
        return user
    who = body.get("user")
    if isinstance(who, dict) and isinstance(who.get("id"), str):
        return str(who["id"])
    if isinstance(who, str) and who:
        return who
    event = body.get("event")
    if isinstance(event, dict) and isinstance(event.get("user"), str):
        return str(event["user"])
    return None


@dataclass(frozen=True)
class Choice:
    """What decides a person's language: their choice (None: auto), their Slack locale's
    language (None: unknown or not one planbot speaks), and the language that results."""

    chosen: str | None
    locale_language: str | None
    language: str


class Languages:
    """The language each person reads, kept in memory; the channels' language."""

    def __init__(
        self,
        people: People,
        client: WebClient | None,
        *,
        default: str,
        channel: str,
        ttl: float = 60.0,
        fresh_for: float = READING_TTL,
    ) -> None:
        self.people = people
        self.client = client
        self.default = default
        self.channel = channel
        self.ttl = ttl
        self.fresh_for = fresh_for
        self._known: dict[str, Person] = {}
        self._checked: dict[str, float] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="languages")
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    # -- the ack path: memory only -----------------------------------------------------------

    def of(self, user_id: str | None) -> str:
        """The language `user_id` reads (the default when unknown: then looked up behind)."""
        if not user_id:
            return self.default
        person = self._known.get(user_id)
        if person is None:
            self._look_up(user_id)
            return self.default
        return self._resolve(person)

    def choice(self, user_id: str) -> Choice:
        """What decides the person's language, as known now."""
        person = self._known.get(user_id) or Person(user_id=user_id)
        return Choice(person.language, language_of_locale(person.locale), self._resolve(person))

    def choose(self, user_id: str, language: str | None) -> Choice:
        """Note the person's choice (None or `auto`: follow their Slack locale); what results."""
        chosen = language if language in LANGUAGES else None
        person = self.people.choose(user_id, chosen)
        self._remember(person)
        if person.locale_read_at is None:
            self._look_up(user_id)
        return self.choice(user_id)

    def _resolve(self, person: Person) -> str:
        if person.language in LANGUAGES:
            return person.language
        return language_of_locale(person.locale) or self.default

    # -- the delivery worker: memory, else the database, else Slack ---------------------------

    def reading(self, destination: str | None) -> str:
        """The language of whoever reads at `destination`: a person's, or the channels'."""
        if not destination or not is_person(destination):
            return self.channel
        checked = self._checked.get(destination)
        if checked is None or time.monotonic() - checked > self.fresh_for:
            self._read(destination, ask_slack=True)
        person = self._known.get(destination)
        return self.default if person is None else self._resolve(person)

    # -- in the background --------------------------------------------------------------------

    def warm(self, also: Iterable[str] = ()) -> None:
        """Read everyone known (and look up `also`, the admins and granted people, whose
        languages are then known before they first ask), then refresh every `ttl` seconds."""
        wanted = [u for u in also if is_person(u)]

        def first() -> None:
            self._reload()
            for user_id in wanted:
                if user_id not in self._known:
                    self._read(user_id, ask_slack=True)

        self._pool.submit(self._safely, first)
        if self._timer is None:
            self._timer = threading.Thread(target=self._every_ttl, name="languages", daemon=True)
            self._timer.start()

    def _every_ttl(self) -> None:
        while not self._stop.wait(self.ttl):
            self._pool.submit(self._safely, self._reload)

    def _look_up(self, user_id: str) -> None:
        with self._lock:
            if user_id in self._pending or self._stop.is_set():
                return
            self._pending.add(user_id)
        with contextlib.suppress(RuntimeError):  # shut down
            self._pool.submit(self._safely, self._read, user_id, True)

    @staticmethod
    def _safely(job: Any, *args: Any) -> None:
        try:
            job(*args)
        except Exception:  # a failed read leaves the default; the next one tries again
            log.exception("could not read people's languages")

    def _reload(self) -> None:
        """Everyone from the database; a locale never read (Slack did not answer) or read more
        than a day ago is read again."""
        people = self.people.everyone()
        now = time.monotonic()
        with self._lock:
            for person in people:
                self._known[person.user_id] = person
                self._checked[person.user_id] = now
        with self._lock:  # and anyone whose locale could not be read yet
            known = list(self._known.values())
        stale = [p.user_id for p in known if self._stale(p)]
        for user_id in stale[:50]:  # a few at a time: the next refresh takes the next ones
            self._read(user_id, ask_slack=True)

    def _stale(self, person: Person) -> bool:
        if self.client is None:
            return False
        read = person.locale_read_at
        return read is None or self.people.clock() - read > LOCALE_TTL

    def _read(self, user_id: str, ask_slack: bool) -> None:
        """What the database knows of a person, and their Slack locale when it is not known."""
        try:
            person = self.people.get(user_id)
            if ask_slack and (person is None or self._stale(person)):
                locale = self._slack_locale(user_id)
                if locale is not None:
                    person = self.people.read_locale(user_id, locale or None)
            # someone nothing is known of is remembered as such (the default), so that the
            # next answer does not look them up again; the next refresh reads them again
            self._remember(person or Person(user_id=user_id))
        finally:
            with self._lock:
                self._pending.discard(user_id)

    def _slack_locale(self, user_id: str) -> str | None:
        """The user's locale from Slack ("" when they have none; None when it can't be read)."""
        if self.client is None:
            return None
        try:
            answer = self.client.users_info(user=user_id, include_locale=True)
        except Exception as err:  # read again at the next refresh
            log.warning("could not read the locale of %s: %s", user_id, err)
            return None
        user = answer.get("user") or {}
        locale = user.get("locale") if isinstance(user, dict) else None
        return locale if isinstance(locale, str) else ""

    def _remember(self, person: Person) -> None:
        with self._lock:
            self._known[person.user_id] = person
            self._checked[person.user_id] = time.monotonic()

    def close(self) -> None:
        """Stop the background reads."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
