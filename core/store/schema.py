"""Schema upgrades through Alembic, run at start or by `planbot db upgrade`."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.store.waits import BACKGROUND_WAITS

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade_schema"]

_LOCK_KEY = 0x706C616E  # "plan": serializes concurrent upgrades on PostgreSQL


def alembic_config() -> Config:
    """The Alembic configuration of the shipped migrations."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("core").joinpath("migrations")))
    return config


def head_revision() -> str | None:
    """The newest revision shipped."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(engine: Engine) -> str | None:
    """Bring the schema to the newest revision (safe when several replicas start at once).

    An upgrade may take long and wait for another process's: it runs on an engine of its own
    that waits as background work does (`BACKGROUND_WAITS`), whatever `engine` allows.
    """
    if current_revision(engine) == head_revision():
        return head_revision()
    if engine.url.database in (None, "", ":memory:") and engine.dialect.name == "sqlite":
        return _upgrade(engine)  # one database in memory: only this engine reaches it
    from core.store.db import make_engine  # (db imports nothing of the schema)

    patient = make_engine(engine.url.render_as_string(hide_password=False), waits=BACKGROUND_WAITS)
    try:
        return _upgrade(patient)
    finally:
        patient.dispose()


def _upgrade(engine: Engine) -> str | None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return head_revision()
