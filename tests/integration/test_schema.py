"""Schema upgrades: replicas starting together on a fresh database all come up."""

from __future__ import annotations

import contextlib
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import SqlStore, current_revision, head_revision, make_engine, upgrade_schema


def _upgrade(url: str) -> None:
    upgrade_schema(make_engine(url))


def test_four_processes_upgrading_one_fresh_sqlite_file_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_upgrade, args=(url,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert current_revision(make_engine(url)) == head_revision()


def test_apps_stored_before_the_upgrade_are_known_since_the_first_evidence(
    tmp_path: Path,
) -> None:
    from alembic import command

    from core.store.schema import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    app = (
        "INSERT INTO app (app_id, name, plan, billing_mode, status, created_at, config, "
        "version, updated_at) VALUES (:id, :id, 'standard', 'current', 'active', "
        "'2025-01-01 00:00:00', '{}', 1, :updated)"
    )
    history = (
        "INSERT INTO plan_history (app_id, effective_at, operation, plan, billing_mode, status, "
        "config, monthly_price, actor_id, actor_name) VALUES (:id, :at, :op, 'standard', "
        "'current', 'active', '{}', '399', 'cli', '')"
    )
    with engine.begin() as connection:
        for app_id, updated in (("1", "2026-03-01 00:00:00"), ("2", "2026-05-01 00:00:00")):
            connection.execute(sa.text(app), {"id": app_id, "updated": updated})
            connection.execute(
                sa.text(history), {"id": app_id, "at": "2025-01-01 00:00:00", "op": "import"}
            )
        # app 2 was changed in April (planbot knew it then), and written again in May
        connection.execute(
            sa.text(history), {"id": "2", "at": "2026-04-02 00:00:00", "op": "upgrade"}
        )
    upgrade_schema(engine)
    with SqlStore(engine).unit_of_work(write=False) as uow:
        known = {i: getattr(uow.apps.get(i), "known_since", None) for i in ("1", "2")}
    assert known == {
        "1": datetime(2026, 3, 1, tzinfo=UTC),  # imported, never changed: its row's last write
        "2": datetime(2026, 4, 2, tzinfo=UTC),  # its first change
    }
    engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_names_stored_before_the_name_rule_are_cleaned_and_made_unique(
    tmp_path: Path, backend: str
) -> None:
    from alembic import command

    from core.store.schema import alembic_config
    from tests.support.postgres import scratch_databases

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        else:
            url = stack.enter_context(scratch_databases("planbot_names"))()
        engine = make_engine(url)
        stack.callback(engine.dispose)
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005_home")
        app = (
            "INSERT INTO app (app_id, name, plan, billing_mode, status, created_at, config, "
            "version, updated_at) VALUES (:id, :name, 'standard', 'current', 'active', "
            ":created, '{}', 1, '2026-01-01 00:00:00')"
        )
        stored = [
            ("1400000001", "dev-1", "2025-01-01 00:00:00"),
            ("1400000002", "DEV-1", "2025-02-01 00:00:00"),  # the same name, another case
            ("1400000003", "dev-1\u200b", "2025-03-01 00:00:00"),  # the same once cleaned
            ("1400000004", "pay\n:rotating_light: URGENT", "2025-01-01 00:00:00"),
            ("1400000005", "\u200b\u202e", "2025-01-01 00:00:00"),  # nothing usable left
            ("1400000006", "ok name", "2025-01-01 00:00:00"),
        ]
        with engine.begin() as connection:
            for app_id, name, created in stored:
                connection.execute(sa.text(app), {"id": app_id, "name": name, "created": created})
        upgrade_schema(engine)
        with engine.connect() as connection:
            names = dict(connection.execute(sa.text("SELECT app_id, name FROM app")).all())
        assert names == {
            "1400000001": "dev-1",  # the oldest keeps the name
            "1400000002": "DEV-1 (1400000002)",
            "1400000003": "dev-1 (1400000003)",
            "1400000004": "pay:rotating_light: URGENT",
            "1400000005": "app-1400000005",
            "1400000006": "ok name",
        }
        keyed = app.replace("name, plan", "name, name_key, plan").replace(":name,", ":name, :key,")
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            values = {"name": "OK NAME", "key": "ok name", "created": "2025-01-01 00:00:00"}
            connection.execute(sa.text(keyed), {"id": "1400000007", **values})
