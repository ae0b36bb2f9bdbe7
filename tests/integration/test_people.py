"""People's locales and chosen languages, on each database and in the memory fake alike."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from core import People, Person, SqlStore
from tests.conftest import Clock
from tests.support.fake_store import FakeStore


def _remember(people: People, clock: Clock) -> None:
    people.read_locale("UKIM", "ko-KR")
    people.choose("UANN", "ko")
    clock.advance(hours=1)
    people.choose("UKIM", "en")  # a choice keeps the locale read before it
    people.read_locale("UANN", "en-US")  # and a locale read keeps the choice
    people.choose("UKIM", None)  # back to following the locale


def test_locales_and_choices_on_the_database(engine: Engine, clock: Clock) -> None:
    people = People(store=SqlStore(engine), clock=clock)
    assert people.get("UKIM") is None and people.everyone() == []
    _remember(people, clock)
    kim = people.get("UKIM")
    read_at = clock() - timedelta(hours=1)
    assert kim == Person(user_id="UKIM", locale="ko-KR", locale_read_at=read_at)
    ann = people.get("UANN")
    assert ann is not None and (ann.locale, ann.language) == ("en-US", "ko")
    assert [p.user_id for p in people.everyone()] == ["UANN", "UKIM"]
    assert [p.user_id for p in people.everyone(limit=1)] == ["UANN"]


def test_the_memory_fake_keeps_the_same(engine: Engine, clock: Clock) -> None:
    on_database = People(store=SqlStore(engine), clock=clock)
    in_memory = People(store=FakeStore(), clock=clock)
    start = clock()
    for people in (on_database, in_memory):
        clock.set(start)
        _remember(people, clock)
    assert on_database.everyone() == in_memory.everyone()
