"""The app picker's search and the home tab's reads, on SQLite and PostgreSQL.

The search finds what the store in memory finds (the same port, the same answers), on the
indexes it was built for: a name prefix on `ix_app_name_key`, a substring through the trigram
index (pg_trgm's GIN on PostgreSQL, the FTS5 table on SQLite, kept up to date by triggers).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from core import Actor, AppState, BillingMode, Plan, SqlStore, Status
from core.store import statements as S
from tests.conftest import Clock
from tests.support.fake_store import FakeStore

NAMES = [
    "chat",
    "Chat-Prod",
    "chat_staging",
    "my_app",
    "myxapp",
    "50%off",
    "payments",
    "pay-later",
    "ÉCOLE",
    "école-2",
    "support desk",
    "desk",
    "a\\b",
    'quote"d',
    "bench-app-1",
    "bench-app-12",
    "bench-app-123",
    "채팅",
    "채팅-운영",
]
TEAMS = ("CTEAM", "COTHER", None)


def fleet(clock: Clock) -> list[AppState]:
    """The apps every search test looks through: ids in order, names with LIKE's wildcards."""
    rng = random.Random(3)
    return [
        AppState(
            app_id=f"14{n:08d}",
            name=name,
            plan=Plan.DEVELOPER,
            billing_mode=BillingMode.CURRENT,
            status=Status.ACTIVE,
            created_at=clock() - timedelta(days=3),
            owner_channel=rng.choice(TEAMS),
            dev_expires_at=clock() + timedelta(days=20),
        )
        for n, name in enumerate(NAMES, start=1)
    ]


@pytest.fixture
def stores(engine: Engine, clock: Clock) -> tuple[SqlStore, FakeStore]:
    """The same apps in the database and in memory."""
    apps = fleet(clock)
    sql, fake = SqlStore(engine), FakeStore()
    for store in (sql, fake):
        with store.unit_of_work() as uow:
            uow.apps.add_many(apps, clock())
            uow.commit()
    return sql, fake


def search(store: SqlStore | FakeStore, text: str, channels: Sequence[str] | None) -> list[str]:
    with store.unit_of_work(write=False) as uow:
        return [a.name for a in uow.apps.search(text, channels=channels, limit=100)]


def test_prefix_first_then_substring_case_insensitive(stores: tuple[SqlStore, FakeStore]) -> None:
    sql, _ = stores
    assert search(sql, "chat", None) == ["chat", "Chat-Prod", "chat_staging"]
    assert search(sql, "desk", None) == ["desk", "support desk"]  # the prefix match first
    assert search(sql, "app", None) == [
        "bench-app-1",
        "bench-app-12",
        "bench-app-123",
        "my_app",
        "myxapp",
    ]
    assert search(sql, "ch", None) == ["chat", "Chat-Prod", "chat_staging"]  # short: prefix only
    assert search(sql, "y_a", None) == ["my_app"]  # `_` is a character, not a wildcard
    assert search(sql, "0%o", None) == ["50%off"]
    assert search(sql, "a\\", None) == ["a\\b"]
    assert search(sql, 'e"d', None) == ['quote"d']
    assert search(sql, "140000000", None)[:2] == ["chat", "Chat-Prod"]  # an id prefix
    assert search(sql, "0000014", None) == ['quote"d']  # inside an id (14 00000014)
    assert search(sql, "채팅", None) == ["채팅", "채팅-운영"]
    assert search(sql, "", None)[:3] == ["50%off", "a\\b", "bench-app-1"]


def test_only_the_apps_of_the_teams_one_sees(stores: tuple[SqlStore, FakeStore]) -> None:
    sql, _ = stores
    everyone = search(sql, "chat", None)
    team = search(sql, "chat", ["CTEAM"])
    with sql.unit_of_work(write=False) as uow:
        owners = {a.name: a.owner_channel for a in uow.apps.search("chat", channels=None, limit=9)}
    assert team == [n for n in everyone if owners[n] == "CTEAM"]
    assert search(sql, "chat", []) == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.sampled_from(["chat", "app", "a", "12", "1400", "desk", "é", "É", "_", "%", "pay"]),
        st.text(alphabet="abchpt-_%12éÉ채 ", max_size=5),
    ),
    channels=st.sampled_from([None, ["CTEAM"], ["CTEAM", "COTHER"], ["CNONE"]]),
    few=st.booleans(),
)
def test_the_database_finds_what_the_store_in_memory_finds(
    stores: tuple[SqlStore, FakeStore],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    channels: list[str] | None,
    few: bool,
) -> None:
    sql, fake = stores
    # both ways of a team's substring search: a scan of its apps, or the trigram index
    monkeypatch.setattr(S, "FEW_VISIBLE", 10_000 if few else 0)
    found, expected = search(sql, text, channels), search(fake, text, channels)
    if any(not ch.isascii() for ch in text) and sql.dialect == "sqlite":
        # SQLite's lower() folds ASCII only ("É" is not "é" there): the same apps, but which
        # of them match by prefix can differ
        assert set(found) <= set(search(fake, text.lower(), channels)) | set(expected)
        return
    assert found == expected


def test_new_and_renamed_apps_are_found_by_substring(
    stores: tuple[SqlStore, FakeStore], clock: Clock
) -> None:
    sql, _ = stores
    app = fleet(clock)[0]
    new = AppState(**{**app.__dict__, "app_id": "1500000001", "name": "brand-newcomer"})
    with sql.unit_of_work() as uow:
        uow.apps.add(new, clock())
        uow.commit()
    assert search(sql, "newcom", None) == ["brand-newcomer"]
    with sql.unit_of_work() as uow:
        uow.apps.save(new, AppState(**{**new.__dict__, "name": "renamed", "version": 2}), clock())
        uow.commit()
    assert search(sql, "newcom", None) == []
    assert search(sql, "enamed", None) == ["renamed"]


def test_the_searches_run_on_their_indexes(
    stores: tuple[SqlStore, FakeStore], engine: Engine
) -> None:
    dialect = engine.dialect.name
    values = S.search_values("chat", 20)
    prefix = S.APPS_BY_NAME.params(values)
    if dialect == "postgresql":
        substring = S.apps_containing_trigram(values["pattern"], 20)
    else:
        substring = S.APPS_CONTAINING_FTS.params(values)
    team = S.team_page(None, "CTEAM", 0, 20)
    with engine.connect() as connection:
        if dialect == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")  # a small table: force it
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "

        def plan(query: sa.Select) -> str:
            compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
            rows = connection.exec_driver_sql(explain + str(compiled)).fetchall()
            return "\n".join(str(r[-1]) for r in rows)

        assert "ix_app_name_key" in plan(prefix)
        if dialect == "postgresql":  # a tiny table: any index on the team will do
            assert "Index Cond: ((owner_channel)" in plan(team)
        else:
            assert "ix_app_team_" in plan(team)
        if dialect == "postgresql":
            assert "ix_app_search" in plan(substring)
        else:
            assert "VIRTUAL TABLE" in plan(substring)


def test_viewers_and_events_on_the_database(engine: Engine, clock: Clock) -> None:
    from core.store.ports import HomeViewer

    store = SqlStore(engine)
    ada = HomeViewer(user_id="UADA", name="Ada", groups=frozenset({"S1"}), opened_at=clock())
    with store.unit_of_work() as uow:
        uow.homes.opened(ada)
        uow.homes.browse("UADA", team="CTEAM", page=3)
        assert uow.events.first("Ev1", clock()) is True
        assert uow.events.first("Ev1", clock()) is False
        uow.commit()
    clock.advance(hours=1)
    with store.unit_of_work() as uow:
        uow.homes.opened(HomeViewer(user_id="UADA", name="Ada L.", opened_at=clock()))
        uow.commit()
    with store.unit_of_work(write=False) as uow:
        found = uow.homes.get("UADA")
        assert found is not None
        assert (found.name, found.groups, found.team, found.page) == (
            "Ada L.",
            frozenset(),
            "CTEAM",
            3,
        )
        assert [v.user_id for v in uow.homes.recent(clock() - timedelta(minutes=1), limit=5)] == [
            "UADA"
        ]
        assert uow.homes.recent(clock(), limit=5) == []
    with store.unit_of_work() as uow:
        assert uow.events.forget(clock()) == 1
        uow.commit()


def test_the_home_tab_reads_on_the_database(
    stores: tuple[SqlStore, FakeStore], engine: Engine, clock: Clock
) -> None:
    sql, fake = stores
    for store in (sql, fake):
        with store.unit_of_work(write=False) as uow:
            teams = uow.apps.teams(limit=10)
            page = [a.name for a in uow.apps.team_page(channels=None, team=None, offset=0, limit=5)]
            counted = uow.apps.count(channels=["CTEAM", "COTHER"], team=None, cap=100)
            capped = uow.apps.count(channels=None, team=None, cap=4)
            soon = uow.apps.upcoming(
                Status.ACTIVE,
                "dev_expires_at",
                clock(),
                clock() + timedelta(days=30),
                channels=["CTEAM"],
                limit=3,
            )
            found = (teams, page, counted, capped, [a.app_id for a in soon])
        if store is sql:
            in_database = found
    assert in_database == found
    assert in_database[0] == ["COTHER", "CTEAM"] and in_database[3] == 4
    _ = Actor  # (who sees what: tests/unit/test_home.py)
