"""app names: one rule, unique whatever the case

Revision ID: 0006_names
Revises: 0005_home
Create Date: 2026-12-09

`app.name_key`: the name with case folded (`core.domain.name_key`), under a unique index
(`ux_app_name_key`), so no two apps share a name whatever the case, and two replicas creating
the same name at once cannot both succeed.

Rows stored before are brought under the name rule (`core.domain.app_name`) deterministically,
and each change is logged (a warning naming the app id, the old name and the new one):

- a name the rule refuses is cleaned: normalised (NFC), its control, format and separator
  characters removed, trimmed; if nothing usable is left (empty, only digits) it becomes
  `app-<app id>`; a name too long is cut to 80 characters;
- of apps whose names then clash (case ignored), the oldest (created first, then the lowest id)
  keeps the name; each other one gets its id appended: `dev-1 (1400000002)`.

Renaming rather than refusing the upgrade: the schema must come up for planbot to serve at all,
and an app's id stays its identity (commands, history and audit records name the id). An
operator can see every rename in the upgrade's log.
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_names"
down_revision: str | None = "0005_home"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

#: kept here as they were at this revision (a migration does not follow later code)
NAME_MAX = 80
FORBIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


def _clean(name: str, app_id: str) -> str:
    text = "".join(
        ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch) not in FORBIDDEN
    ).strip()
    text = text[:NAME_MAX].strip()
    if not text or text.isdigit():
        return f"app-{app_id}"
    return text


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _unique(name: str, app_id: str, taken: set[str]) -> str:
    if _key(name) not in taken:
        return name
    suffix = f" ({app_id})"
    return name[: NAME_MAX - len(suffix)].rstrip() + suffix


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    # SQLite: a plain ADD COLUMN (NOT NULL needs a default there); no table rebuild, which
    # would lose the search table's triggers and the expression indexes
    op.add_column(
        "app",
        sa.Column(
            "name_key",
            sa.String(length=255),
            nullable=not sqlite,
            server_default="" if sqlite else None,
        ),
    )
    app = sa.table(
        "app",
        sa.column("app_id", sa.String),
        sa.column("name", sa.String),
        sa.column("name_key", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    rows = bind.execute(
        sa.select(app.c.app_id, app.c.name).order_by(app.c.created_at, app.c.app_id)
    ).all()
    taken: set[str] = set()
    updates = []
    for app_id, name in rows:
        new = _unique(_clean(name, app_id), app_id, taken)
        key = _key(new)
        taken.add(key)
        if new != name:
            log.warning("app %s renamed: %r is now %r (app names are unique)", app_id, name, new)
        updates.append({"id": app_id, "new_name": new, "new_key": key})
    update = (
        sa.update(app)
        .where(app.c.app_id == sa.bindparam("id"))
        .values(name=sa.bindparam("new_name"), name_key=sa.bindparam("new_key"))
    )
    for start in range(0, len(updates), 5000):
        bind.execute(update, updates[start : start + 5000])
    if not sqlite:
        op.alter_column("app", "name_key", existing_type=sa.String(length=255), nullable=False)
    op.create_index("ux_app_name_key", "app", ["name_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_app_name_key", table_name="app")
    op.drop_column("app", "name_key")  # SQLite 3.35 and later drop a column in place
