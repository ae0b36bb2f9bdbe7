"""replays: the signatures of state-changing requests received

Revision ID: 0007_replays
Revises: 0006_names
Create Date: 2026-11-30

- `received_request`: a state-changing slash command's signature (access grant or revoke), kept
  15 minutes, so that the same signed request sent again within Slack's 5-minute window, to any
  replica, changes nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.store.tables

revision: str = "0007_replays"
down_revision: str | None = "0006_names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "received_request",
        sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("received_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature"),
    )
    op.create_index("ix_received_request_received_at", "received_request", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_received_request_received_at", table_name="received_request")
    op.drop_table("received_request")
