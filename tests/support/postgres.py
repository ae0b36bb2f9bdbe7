"""Scratch PostgreSQL databases for tests: made fresh, dropped afterwards.

The server is `PLANBOT_TEST_POSTGRES_URL` (default the local one). When it can't be reached the
test is skipped with the reason, except under `CI=true`, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from core import normalize_url

__all__ = ["DEFAULT_POSTGRES_URL", "admin_url", "scratch_databases"]

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def admin_url() -> sa.URL:
    """The URL of the database used to create and drop the scratch ones."""
    return make_url(
        normalize_url(os.environ.get("PLANBOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    )


@contextlib.contextmanager
def scratch_databases(prefix: str) -> Iterator[Callable[[], str]]:
    """A function making empty databases named `<prefix>_<random>`; all dropped on exit."""
    url = admin_url()
    admin = sa.create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 3},
    )
    try:
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as err:
        admin.dispose()
        where = url.render_as_string(hide_password=True)
        cause = str(err.orig or err).strip().splitlines()[0]
        reason = f"PostgreSQL is not reachable at {where} (set PLANBOT_TEST_POSTGRES_URL): {cause}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    names: list[str] = []

    def create() -> str:
        name = f"{prefix}_{secrets.token_hex(6)}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return url.set(database=name).render_as_string(hide_password=False)

    try:
        yield create
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
