"""when planbot came to know each app; app names looked up case-insensitively by index

Revision ID: 0004_first_week
Revises: 0001
Create Date: 2026-12-07

`app.known_since`: the moment planbot came to know the app (created or imported); monthly
statements cover only the months that ended after it. For apps already stored, the earliest
moment there is evidence of: the first change planbot recorded for the app (its plan history
written at the moment of a change: every operation but an import, whose rows carry the app's own
past dates), or the app row's last write, whichever is earlier.

`ix_app_name_lower`: an index on `lower(name)`, for names typed in any case and for the nearest
names suggested when one is mistyped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision: str = "0004_first_week"
down_revision: str | None = "0003_provider"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("known_since", core.store.tables.UTCDateTime(timezone=True), nullable=True)
        )
    first_change = (
        "SELECT min(h.effective_at) FROM plan_history h "
        "WHERE h.app_id = app.app_id AND h.operation <> 'import'"
    )
    op.execute(
        f"UPDATE app SET known_since = CASE WHEN ({first_change}) < updated_at "
        f"THEN ({first_change}) ELSE updated_at END"
    )
    op.create_index("ix_app_name_lower", "app", [sa.text("lower(name)")], unique=False)


def downgrade() -> None:
    op.drop_index("ix_app_name_lower", table_name="app")
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.drop_column("known_since")
