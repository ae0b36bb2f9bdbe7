"""people: the locale of each person planbot talks to, and the language they chose

Revision ID: 0008_people
Revises: 0007_replays
Create Date: 2026-11-30

- `person`: by chat user id, the locale their account has (empty until read, with the moment
  it was read) and the language they chose (empty: follow the locale).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.store.tables

revision: str = "0008_people"
down_revision: str | None = "0007_replays"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
        sa.Column("locale_read_at", core.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("person")
