"""The store on both backends: a fresh SQLite file per test, and a PostgreSQL database per session.

PostgreSQL comes from PLANBOT_TEST_POSTGRES_URL (default: the local server's `test` database). A
database `planbot_test_<random>` is created for the session (so parallel workers never meet),
migrated once, emptied before each test (the audit head reset to its genesis) and dropped at the
end. When no server is reachable the
PostgreSQL cases are skipped with the reason, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import (
    AccessPolicy,
    Actor,
    Catalog,
    CoreConfig,
    PlanService,
    make_engine,
    upgrade_schema,
)
from core.audit import GENESIS
from tests.conftest import SHANGHAI, Clock
from tests.support.postgres import scratch_databases

TABLES = (
    "approval",
    "pending_request",
    "plan_history",
    "audit_event",
    "outbox",
    "access_grant",
    "lifecycle_mark",
    "home_viewer",
    "inbound_event",
    "person",
    "provider_usage",
    "provider_drift",
    "provider_reconciliation",
    "provider_mark",
    "app",
)

ADA = Actor("UADMIN", "Ada")
BOB = Actor("UBOB", "Bob")
EVE = Actor("UEVE", "Eve")
CLI = Actor("cli", "importer")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, migrated database for this session (worker)."""
    with scratch_databases("planbot_test") as create:
        url = create()
        engine = make_engine(url)
        upgrade_schema(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "planbot.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    return path


def empty_postgres(engine: Engine) -> None:
    """Every table emptied; the audit head back at its genesis.

    DELETE, not TRUNCATE: on tables this small it is over ten times faster. Ids keep counting,
    and no test depends on their absolute values.
    """
    with engine.begin() as connection:
        for table in TABLES:
            connection.execute(sa.text(f"DELETE FROM {table}"))
        connection.execute(
            sa.text("UPDATE audit_head SET seq = 0, hash = :genesis WHERE id = 1"),
            {"genesis": GENESIS},
        )


def sqlite_engine_for(template: Path, directory: Path) -> Engine:
    path = directory / "planbot.sqlite3"
    shutil.copyfile(template, path)
    return make_engine(f"sqlite:///{path}")


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    engine = sqlite_engine_for(sqlite_template, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_session_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(postgres_session_engine: Engine) -> Engine:
    empty_postgres(postgres_session_engine)
    return postgres_session_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated, empty database on each backend."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def config(catalog: Catalog) -> CoreConfig:
    """Two admins (Ada and Bob), an audit channel, the default catalog and zone."""
    return CoreConfig(
        catalog=catalog,
        billing_tz=SHANGHAI,
        audit_channel="CAUDIT",
        access=AccessPolicy(admins=frozenset({ADA.user_id, BOB.user_id})),
    )


@pytest.fixture
def service(engine: Engine, config: CoreConfig, clock: Clock) -> PlanService:
    return PlanService(engine=engine, config=config, clock=clock)


@pytest.fixture
def seed(engine: Engine, config: CoreConfig, clock: Clock) -> Callable[..., int]:
    """Import apps from CSV rows (header `app_id,name,plan,created_at,...`)."""

    def load(text: str, **kwargs: Any) -> int:
        imports = PlanService(engine=engine, config=config, clock=clock).imports
        return imports.from_csv(text, actor=CLI, now=kwargs.get("now", clock())).imported

    return load
