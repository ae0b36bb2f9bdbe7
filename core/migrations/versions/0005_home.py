"""the home tab and the app picker: viewers, inbound events, search indexes

Revision ID: 0005_home
Revises: 0003_provider
Create Date: 2026-12-02

- `home_viewer`: who opened the home tab, with the groups they had then and their filter.
- `inbound_event`: the ids of events received, so that a retried event is not processed twice.
- `ix_outbox_waiting`: the pending outbox entries by destination (is a home tab's drawing
  already waiting?).
- Indexes for the app picker and the home tab's app list: `lower(name)` (prefix search, in
  byte order on PostgreSQL), `(owner_channel, lower(name), app_id)` (a team's apps in name
  order, and name prefixes within teams), `(owner_channel, app_id, name)` (id prefixes within
  teams, and a scan of a few teams' names that never reads the table), and a trigram index for substring search: pg_trgm's GIN on PostgreSQL, an FTS5
  trigram table kept by triggers on SQLite. Where neither can be
  made (no pg_trgm, an SQLite without the trigram tokenizer), substring search scans instead.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.store.tables

revision: str = "0005_home"
down_revision: str | None = "0004_first_week"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

#: the text substring search looks in: the name, then (after a separator nobody types) the id
PG_SEARCH_KEY = "(lower(name) || chr(31) || app_id)"


def upgrade() -> None:
    op.create_table(
        "home_viewer",
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("opened_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_index("ix_home_viewer_opened_at", "home_viewer", ["opened_at"])
    op.create_table(
        "inbound_event",
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("received_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_inbound_event_received_at", "inbound_event", ["received_at"])
    # whether a person's home tab already has a publish waiting (checked at each change)
    op.create_index(
        "ix_outbox_waiting",
        "outbox",
        ["destination"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _postgresql(bind)
    else:
        _sqlite(bind)


def _postgresql(bind: sa.Connection) -> None:
    op.execute('CREATE INDEX ix_app_name_key ON app ((lower(name) COLLATE "C"), app_id)')
    op.execute(
        "CREATE INDEX ix_app_team_name ON app "
        '(owner_channel NULLS FIRST, (lower(name) COLLATE "C"), app_id)'
    )
    op.execute("CREATE INDEX ix_app_team_id ON app (owner_channel, app_id, name)")
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            bind.exec_driver_sql(
                f"CREATE INDEX ix_app_search ON app USING gin ({PG_SEARCH_KEY} gin_trgm_ops)"
            )
    except sa.exc.DBAPIError as err:  # no right to add the extension: substring search scans
        log.warning("no trigram index for the app picker (%s); it will scan", err.orig)


def _sqlite(bind: sa.Connection) -> None:
    op.execute("CREATE INDEX ix_app_name_key ON app (lower(name), app_id)")
    op.execute("CREATE INDEX ix_app_team_name ON app (owner_channel, lower(name), app_id)")
    op.execute("CREATE INDEX ix_app_team_id ON app (owner_channel, app_id, name)")
    try:
        with bind.begin_nested():
            bind.exec_driver_sql(
                "CREATE VIRTUAL TABLE app_search USING fts5(key, app_id UNINDEXED, "
                "tokenize='trigram')"
            )
    except sa.exc.DBAPIError as err:  # an SQLite older than 3.34: substring search scans
        log.warning("no trigram index for the app picker (%s); it will scan", err.orig)
        return
    key = "new.name || char(31) || new.app_id"
    for statement in (
        "INSERT INTO app_search (key, app_id) SELECT name || char(31) || app_id, app_id FROM app",
        "CREATE TRIGGER app_search_insert AFTER INSERT ON app BEGIN "
        f"INSERT INTO app_search (key, app_id) VALUES ({key}, new.app_id); END",
        "CREATE TRIGGER app_search_rename AFTER UPDATE OF name ON app "
        "WHEN new.name IS NOT old.name BEGIN "
        "DELETE FROM app_search WHERE app_id = old.app_id; "
        f"INSERT INTO app_search (key, app_id) VALUES ({key}, new.app_id); END",
        "CREATE TRIGGER app_search_delete AFTER DELETE ON app BEGIN "
        "DELETE FROM app_search WHERE app_id = old.app_id; END",
    ):
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_app_search")
    else:
        for trigger in ("app_search_insert", "app_search_rename", "app_search_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS app_search")
    op.execute("DROP INDEX IF EXISTS ix_app_team_id")
    op.execute("DROP INDEX IF EXISTS ix_app_team_name")
    op.execute("DROP INDEX IF EXISTS ix_app_name_key")
    op.drop_index("ix_outbox_waiting", table_name="outbox")
    op.drop_index("ix_inbound_event_received_at", table_name="inbound_event")
    op.drop_table("inbound_event")
    op.drop_index("ix_home_viewer_opened_at", table_name="home_viewer")
    op.drop_table("home_viewer")
