"""Every SQL statement the store runs, written once with SQLAlchemy Core.

Statements with named bind parameters only ("static") are compiled once per dialect by the
compiled runner; the rest are built per call and run on a pooled connection. Dialect-specific
SQL (inserts that ignore a conflict) is built here and nowhere else.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles

from core.domain import PURGE_AFTER, BillingMode, Plan, Status
from core.store.tables import (
    AccessGrantRow,
    ApprovalRow,
    AppRow,
    AuditEventRow,
    AuditHeadRow,
    HomeViewerRow,
    InboundEventRow,
    LifecycleMarkRow,
    OutboxRow,
    PendingRequestRow,
    PersonRow,
    PlanHistoryRow,
    ProviderDriftRow,
    ProviderMarkRow,
    ProviderReconciliationRow,
    ProviderUsageRow,
    ReceivedRequestRow,
)

APP = cast(sa.Table, AppRow.__table__)  # type: ignore[attr-defined]
HISTORY = cast(sa.Table, PlanHistoryRow.__table__)  # type: ignore[attr-defined]
REQUEST = cast(sa.Table, PendingRequestRow.__table__)  # type: ignore[attr-defined]
APPROVAL = cast(sa.Table, ApprovalRow.__table__)  # type: ignore[attr-defined]
AUDIT = cast(sa.Table, AuditEventRow.__table__)  # type: ignore[attr-defined]
HEAD = cast(sa.Table, AuditHeadRow.__table__)  # type: ignore[attr-defined]
OUTBOX = cast(sa.Table, OutboxRow.__table__)  # type: ignore[attr-defined]
MARK = cast(sa.Table, LifecycleMarkRow.__table__)  # type: ignore[attr-defined]
GRANT = cast(sa.Table, AccessGrantRow.__table__)  # type: ignore[attr-defined]
VIEWER = cast(sa.Table, HomeViewerRow.__table__)  # type: ignore[attr-defined]
EVENT = cast(sa.Table, InboundEventRow.__table__)  # type: ignore[attr-defined]
RECEIVED = cast(sa.Table, ReceivedRequestRow.__table__)  # type: ignore[attr-defined]
PERSON = cast(sa.Table, PersonRow.__table__)  # type: ignore[attr-defined]
#: SQLite's trigram table for substring search (migration 0005_home; not a model)
APP_SEARCH = sa.table("app_search", sa.column("key"), sa.column("app_id"))
USAGE = cast(sa.Table, ProviderUsageRow.__table__)  # type: ignore[attr-defined]
DRIFT = cast(sa.Table, ProviderDriftRow.__table__)  # type: ignore[attr-defined]
RECONCILED = cast(sa.Table, ProviderReconciliationRow.__table__)  # type: ignore[attr-defined]
PROVIDER_MARK = cast(sa.Table, ProviderMarkRow.__table__)  # type: ignore[attr-defined]


def _param(table: sa.Table, name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=table.c[name].type)


def insert_of(table: sa.Table, names: Sequence[str]) -> sa.Insert:
    """An insert of these columns, each value a bind parameter of the column's name."""
    return sa.insert(table).values({name: _param(table, name) for name in names})


# --- apps ------------------------------------------------------------------------------------

APP_COLUMNS = tuple(c.name for c in APP.columns)
APP_BY_ID = sa.select(APP).where(APP.c.app_id == sa.bindparam("app_id"))
APP_BY_NAME = sa.select(APP).where(APP.c.name_key == sa.bindparam("name_key")).limit(5)
APP_NAMES_TAKEN = sa.select(APP.c.name_key).where(
    APP.c.name_key.in_(sa.bindparam("keys", expanding=True))
)
SEGMENT_COLUMNS = ("effective_at", "plan", "status", "billing_mode", "monthly_price", "config")
APP_WITH_SEGMENTS = (  # the app's row once per segment (or once, with NULLs, if none)
    sa.select(APP, *(HISTORY.c[name].label(f"segment_{name}") for name in SEGMENT_COLUMNS))
    .select_from(
        APP.outerjoin(
            HISTORY,
            sa.and_(
                HISTORY.c.app_id == APP.c.app_id,
                HISTORY.c.effective_at < sa.bindparam("until"),
            ),
        )
    )
    .where(APP.c.app_id == sa.bindparam("app_id"))
    .order_by(HISTORY.c.effective_at, HISTORY.c.id)
)
APP_STATE_COLUMNS = (
    "name",
    "name_key",
    "owner_channel",
    "plan",
    "billing_mode",
    "status",
    "dev_expires_at",
    "disabled_at",
    "config_changed_at",
    "config",
    "version",
    "updated_at",
)
APP_SAVE = (  # only over the version it was read at
    sa.update(APP)
    .where(APP.c.app_id == sa.bindparam("key"), APP.c.version == sa.bindparam("read_version"))
    .values({name: _param(APP, name) for name in APP_STATE_COLUMNS})
)
APP_INSERT = insert_of(APP, APP_COLUMNS)
APP_IDS = sa.select(APP.c.app_id)
OWNER_CHANNELS = (
    sa.select(APP.c.owner_channel)
    .where(APP.c.owner_channel.is_not(None), APP.c.status != Status.PURGED.value)
    .distinct()
    .order_by(APP.c.owner_channel)
)
PING = sa.select(sa.literal(1))


def names_starting(
    prefix: str, *, teams: Sequence[str] | None, lengths: tuple[int, int] | None, limit: int
) -> sa.Select[Any]:
    """App names whose lower case starts with `prefix` (a range on ix_app_name_lower), of
    `teams` when given, `lengths` (min, max) when given; alphabetical, at most `limit`."""
    low = prefix.lower()
    lowered = sa.func.lower(APP.c.name)
    query = sa.select(APP.c.name).where(lowered >= low)
    if low and ord(low[-1]) < 0x10FFFF:
        after = ord(low[-1]) + 1
        if 0xD800 <= after <= 0xDFFF:  # no text holds a lone surrogate: the next is U+E000
            after = 0xE000
        query = query.where(lowered < low[:-1] + chr(after))
    if lengths is not None:
        query = query.where(sa.func.length(APP.c.name).between(*lengths))
    if teams is not None:
        query = query.where(APP.c.owner_channel.in_(teams))
    return query.order_by(lowered).limit(limit)


def apps_page(
    *, contains: str | None, channels: Sequence[str] | None
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The apps matching a filter (name or id substring, plan, status) and their count."""
    query = sa.select(APP)
    if contains:
        literal = contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{literal}%"
        query = query.where(
            sa.or_(
                sa.func.lower(APP.c.name).like(like, escape="\\"),
                APP.c.app_id.like(like, escape="\\"),
                APP.c.plan == contains.lower(),
                APP.c.status == contains.lower(),
            )
        )
    if channels is not None:
        query = query.where(APP.c.owner_channel.in_(channels))
    count = sa.select(sa.func.count()).select_from(query.subquery())
    return query.order_by(APP.c.name, APP.c.app_id), count


# --- the app picker and the home tab's list -------------------------------------------------
#
# Each a range on an index (migration 0005_home): `ix_app_name_key` (lower(name), app_id) for a
# name prefix, `ix_app_team_name` (owner_channel, lower(name), app_id) for a team's apps and a
# prefix within teams, the primary key for an id prefix (`ix_app_team_id` within teams), and the trigram index for a substring
# (PostgreSQL: pg_trgm's GIN on `SEARCH_KEY`; SQLite: the FTS5 table `app_search`). With no
# team to filter by they are constants (compiled once, as the hot path's are).

#: apps of a person's teams counted up to this before a substring search: fewer are scanned
#: through the team index, more are searched through the trigram index
FEW_VISIBLE = 5000
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def search_text(dialect: str, text: str) -> str:
    """What a person typed, as the database's lower() would have it (SQLite's lowers ASCII
    only), without control characters."""
    cleaned = "".join(ch for ch in text if ch.isprintable()).strip()
    return cleaned.translate(_ASCII_LOWER) if dialect == "sqlite" else cleaned.lower()


class NameKey(sa.sql.expression.ColumnElement[str]):
    """lower(name), compared byte by byte as the indexes hold it (`COLLATE "C"` on PostgreSQL,
    whose default collation would not keep a prefix's names together)."""

    inherit_cache = True
    _traverse_internals = []  # noqa: RUF012  (no state: one cache key, statements stay cached)
    type = sa.String()


@compiles(NameKey)
def _name_key(element: NameKey, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(sa.func.lower(APP.c.name), **kw))


@compiles(NameKey, "postgresql")
def _name_key_postgresql(element: NameKey, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(sa.func.lower(APP.c.name).collate("C"), **kw))


NAME_KEY = NameKey()
#: the expression of PostgreSQL's ix_app_search, written as the index was
SEARCH_KEY: sa.ColumnElement[str] = sa.literal_column(
    "(lower(app.name) || chr(31) || app.app_id)", type_=sa.String()
)
_LIMIT = sa.bindparam("limit", type_=sa.Integer())


def _text(name: str) -> sa.BindParameter[str]:
    return sa.bindparam(name, type_=sa.String())


APPS_FIRST = sa.select(APP).order_by(NAME_KEY, APP.c.app_id).limit(_LIMIT)
APPS_BY_NAME = (  # a name prefix in [low, high), in name order
    sa.select(APP)
    .where(_text("low") <= NAME_KEY, _text("high") > NAME_KEY)
    .order_by(NAME_KEY, APP.c.app_id)
    .limit(_LIMIT)
)
APPS_BY_ID = (  # an id prefix (digits) in [low, high), in id order
    sa.select(APP)
    .where(
        APP.c.app_id >= _text("low"),
        APP.c.app_id < _text("high"),
        APP.c.app_id.like(_text("prefix_like"), escape="\\"),
    )
    .order_by(APP.c.app_id)
    .limit(_LIMIT)
)


def apps_containing_trigram(pattern: str, limit: int) -> sa.Select[Any]:
    """PostgreSQL, on ix_app_search (LIKE's escape: the backslash). The pattern is written into
    the statement: a prepared statement's generic plan, not knowing it, would scan the table."""
    literal = sa.bindparam("pattern", pattern, type_=sa.String(), literal_execute=True)
    return sa.select(APP).where(SEARCH_KEY.like(literal)).limit(limit)


APPS_CONTAINING_FTS = (  # SQLite, through the FTS5 trigram table (a quoted phrase)
    sa.select(APP)
    .select_from(APP_SEARCH.join(APP, APP.c.app_id == APP_SEARCH.c.app_id))
    .where(APP_SEARCH.c.key.op("MATCH")(_text("phrase")))
    .limit(_LIMIT)
)
APPS_CONTAINING_SCAN = (  # where there is no trigram index
    sa.select(APP)
    .where(
        sa.or_(
            sa.func.lower(APP.c.name).like(_text("pattern"), escape="\\"),
            APP.c.app_id.like(_text("pattern"), escape="\\"),
        )
    )
    .limit(_LIMIT)
)


def ids_containing(channels: Sequence[str], needle: str, limit: int) -> sa.Select[Any]:
    """The ids of the teams' apps whose name or id contains `needle`, read from the team index
    alone (ix_app_team_id holds owner, id and name): a scan, for teams with few apps."""
    pattern = "%" + _like_literal(needle) + "%"
    return (
        sa.select(APP.c.app_id)
        .where(
            APP.c.owner_channel.in_(channels),
            sa.or_(
                sa.func.lower(APP.c.name).like(pattern, escape="\\"),
                APP.c.app_id.like(pattern, escape="\\"),
            ),
        )
        .limit(limit)
    )


def search_values(needle: str, limit: int) -> dict[str, Any]:
    """The values of the search statements for what was typed (`search_text`)."""
    literal = _like_literal(needle)
    return {
        "low": needle,
        "high": _after_prefix(needle) if needle else "",
        "prefix_like": literal + "%",
        "pattern": "%" + literal + "%",
        "phrase": '"' + needle.replace('"', '""') + '"',
        "limit": limit,
    }


def _after_prefix(prefix: str) -> str:
    """The least string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(min(ord(prefix[-1]) + 1, 0x10FFFF))


def _visible(query: sa.Select[Any], channels: Sequence[str] | None) -> sa.Select[Any]:
    return query if channels is None else query.where(APP.c.owner_channel.in_(channels))


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def of_channels(
    query: sa.Select[Any], channels: Sequence[str], values: dict[str, Any], *, few: bool
) -> sa.Select[Any]:
    """A search statement for the apps of `channels` only, with its values bound (built per
    call: the teams vary). `few`: the teams own few apps, so their index drives the query;
    else the filter is an expression no index serves (SQLite, without statistics, would take
    the team index and sort every app of the teams), and the name or id order drives it."""
    owner = APP.c.owner_channel if few else sa.func.coalesce(APP.c.owner_channel, "")
    return query.where(owner.in_(channels)).params(values)


def more_visible_than(channels: Sequence[str], cap: int) -> sa.Select[Any]:
    """A row when the teams own more than `cap` apps (`cap` entries of the team index read)."""
    return sa.select(APP.c.app_id).where(APP.c.owner_channel.in_(channels)).offset(cap).limit(1)


def _of_team(query: sa.Select[Any], channels: Sequence[str] | None, team: str | None) -> Any:
    query = _visible(query, channels)
    return query if team is None else query.where(APP.c.owner_channel == team)


def team_page(
    channels: Sequence[str] | None, team: str | None, offset: int, limit: int
) -> sa.Select[Any]:
    """A page of apps by owner team (none first), then name (on ix_app_team_name)."""
    query = _of_team(sa.select(APP), channels, team)
    order = (APP.c.owner_channel.nulls_first(), NAME_KEY, APP.c.app_id)
    return query.order_by(*order).offset(offset).limit(limit)


def team_count(channels: Sequence[str] | None, team: str | None, cap: int) -> sa.Select[Any]:
    """How many apps `team_page` pages through, up to `cap`."""
    inner = _of_team(sa.select(sa.literal(1)).select_from(APP), channels, team).limit(cap)
    return sa.select(sa.func.count()).select_from(inner.subquery())


def owner_teams(limit: int) -> sa.Select[Any]:
    """The distinct owner teams, in order: one index lookup per team (a loose index scan)."""
    seed = sa.select(sa.func.min(APP.c.owner_channel).label("team")).cte("teams", recursive=True)
    following = (
        sa.select(sa.func.min(APP.c.owner_channel))
        .where(APP.c.owner_channel > seed.c.team)
        .scalar_subquery()
    )
    teams = seed.union_all(sa.select(following).where(seed.c.team.is_not(None)))
    return sa.select(teams.c.team).where(teams.c.team.is_not(None)).limit(limit)


def apps_upcoming(
    status: Status,
    column: str,
    low: datetime,
    high: datetime,
    channels: Sequence[str] | None,
    limit: int,
) -> sa.Select[Any]:
    """Apps in `status` whose `column` is in (low, high], soonest first."""
    due = APP.c[column]
    query = _visible(sa.select(APP).where(notice_window(status, column, low, high)), channels)
    return query.order_by(due, APP.c.app_id).limit(limit)


def apps_with_ids(app_ids: Sequence[str]) -> sa.Select[Any]:
    """The apps with these ids."""
    return sa.select(APP).where(APP.c.app_id.in_(app_ids))


# --- what the lifecycle looks for (each a range on an index) ---------------------------------


def suspension_due(now: datetime) -> sa.ColumnElement[bool]:
    """Active developer apps whose validity has ended (ix_app_dev_due)."""
    return sa.and_(
        APP.c.status == Status.ACTIVE.value,
        APP.c.dev_expires_at <= now,
        APP.c.plan == Plan.DEVELOPER.value,
    )


def purge_due(now: datetime) -> sa.ColumnElement[bool]:
    """Apps disabled for more than 90 days (ix_app_purge_due)."""
    return sa.and_(APP.c.status == Status.DISABLED.value, APP.c.disabled_at < now - PURGE_AFTER)


def notice_window(
    status: Status, column: str, low: datetime, high: datetime
) -> sa.ColumnElement[bool]:
    """Apps in `status` whose `column` is in (low, high]."""
    due = APP.c[column]
    return sa.and_(APP.c.status == status.value, due > low, due <= high)


def billed_in(start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    """Apps that may have charges in [start, end), known to planbot before the period ended."""
    return sa.and_(
        APP.c.plan.in_([Plan.STANDARD.value, Plan.PREMIUM.value]),
        APP.c.billing_mode == BillingMode.CURRENT.value,
        APP.c.created_at < end,
        sa.func.coalesce(APP.c.known_since, APP.c.created_at) < end,
        sa.or_(APP.c.status != Status.PURGED.value, APP.c.updated_at >= start),
    )


def of_teams(teams: Sequence[str | None]) -> sa.ColumnElement[bool]:
    """Apps owned by one of `teams` (None: apps without an owner channel)."""
    named = [t for t in teams if t is not None]
    parts = []
    if named:
        parts.append(APP.c.owner_channel.in_(named))
    if len(named) < len(teams):
        parts.append(APP.c.owner_channel.is_(None))
    return sa.or_(*parts)


# --- plan history ----------------------------------------------------------------------------

HISTORY_COLUMNS = tuple(c.name for c in HISTORY.columns if c.name != "id")
HISTORY_INSERT = insert_of(HISTORY, HISTORY_COLUMNS)
SEGMENTS = (
    sa.select(*(HISTORY.c[name] for name in SEGMENT_COLUMNS))
    .where(
        HISTORY.c.app_id == sa.bindparam("app_id"), HISTORY.c.effective_at < sa.bindparam("until")
    )
    .order_by(HISTORY.c.effective_at, HISTORY.c.id)
)
HISTORY_OF_APP = (
    sa.select(HISTORY)
    .where(HISTORY.c.app_id == sa.bindparam("app_id"))
    .order_by(HISTORY.c.effective_at.desc(), HISTORY.c.id.desc())
    .limit(sa.bindparam("limit"))
)


def segments_of(app_ids: Sequence[str], until: datetime) -> sa.Select[Any]:
    """The rate segments of several apps."""
    return (
        sa.select(HISTORY.c.app_id, *(HISTORY.c[name] for name in SEGMENT_COLUMNS))
        .where(HISTORY.c.app_id.in_(app_ids), HISTORY.c.effective_at < until)
        .order_by(HISTORY.c.effective_at, HISTORY.c.id)
    )


# --- requests --------------------------------------------------------------------------------

REQUEST_COLUMNS = tuple(c.name for c in REQUEST.columns)
REQUEST_BY_ID = sa.select(REQUEST).where(REQUEST.c.id == sa.bindparam("id"))
REQUEST_INSERT = insert_of(REQUEST, REQUEST_COLUMNS)
REQUEST_DECIDED = ("state", "decided_by", "decided_by_name", "decided_at", "result")
REQUEST_DECIDE = (  # only over the state it was read in
    sa.update(REQUEST)
    .where(REQUEST.c.id == sa.bindparam("key"), REQUEST.c.state == sa.bindparam("read_state"))
    .values({name: _param(REQUEST, name) for name in REQUEST_DECIDED})
)
APPROVALS_OF = (
    sa.select(APPROVAL)
    .where(APPROVAL.c.request_id == sa.bindparam("request_id"))
    .order_by(APPROVAL.c.id)
)
APPROVAL_INSERT = insert_of(APPROVAL, [c.name for c in APPROVAL.columns if c.name != "id"])


REQUESTS_AWAITING = (
    sa.select(REQUEST)
    .where(
        REQUEST.c.state == "pending",
        REQUEST.c.approvals_needed > 0,
        REQUEST.c.expires_at > sa.bindparam("now"),
    )
    .order_by(REQUEST.c.created_at, REQUEST.c.id)
    .limit(sa.bindparam("limit"))
)


def approvals_of_many(request_ids: Sequence[str]) -> sa.Select[Any]:
    """The approvals of several requests."""
    return sa.select(APPROVAL).where(APPROVAL.c.request_id.in_(request_ids)).order_by(APPROVAL.c.id)


def request_expiry_due(now: datetime) -> sa.ColumnElement[bool]:
    """Pending requests past their expiry."""
    return sa.and_(REQUEST.c.state == "pending", REQUEST.c.expires_at <= now)


def requests_where(condition: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Requests matching a condition, oldest first."""
    return sa.select(REQUEST).where(condition).order_by(REQUEST.c.created_at, REQUEST.c.id)


# --- audit -----------------------------------------------------------------------------------

HEAD_LOCKED = sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1).with_for_update()
HEAD_READ = sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)
HEAD_INSERT = insert_of(HEAD, ("id", "seq", "hash"))
HEAD_ADVANCE = (
    sa.update(HEAD).where(HEAD.c.id == 1).values(seq=sa.bindparam("seq"), hash=sa.bindparam("hash"))
)
AUDIT_INSERT = insert_of(AUDIT, [c.name for c in AUDIT.columns])
AUDIT_AFTER = (
    sa.select(AUDIT)
    .where(AUDIT.c.seq > sa.bindparam("after"))
    .order_by(AUDIT.c.seq)
    .limit(sa.bindparam("limit"))
)


# --- outbox ----------------------------------------------------------------------------------

OUTBOX_COLUMNS = tuple(c.name for c in OUTBOX.columns if c.name != "id")
OUTBOX_INSERT = insert_of(OUTBOX, OUTBOX_COLUMNS)
OUTBOX_DUE = (
    sa.select(OUTBOX.c.id)
    .where(
        OUTBOX.c.status == "pending",
        OUTBOX.c.next_attempt_at <= sa.bindparam("now"),
        sa.or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until <= sa.bindparam("now")),
    )
    .limit(1)
)
OUTBOX_BY_ID = sa.select(OUTBOX).where(OUTBOX.c.id == sa.bindparam("id"))
OUTBOX_BY_KEY = sa.select(OUTBOX).where(OUTBOX.c.key == sa.bindparam("key"))
OUTBOX_COUNTS = sa.select(OUTBOX.c.status, sa.func.count().label("count")).group_by(OUTBOX.c.status)


def outbox_counts_of(statuses: Sequence[str]) -> sa.Select[Any]:
    """How many entries are in each of these statuses (an index range per status, however
    many entries were delivered)."""
    return OUTBOX_COUNTS.where(OUTBOX.c.status.in_(statuses))


OUTBOX_OLDEST_PENDING = sa.select(sa.func.min(OUTBOX.c.created_at)).where(
    OUTBOX.c.status == "pending"
)


def outbox_heads() -> sa.Select[Any]:
    """The oldest pending entry of each app and destination (an entry about no app: its own)."""
    return (
        sa.select(sa.func.min(OUTBOX.c.id))
        .where(OUTBOX.c.status == "pending")
        .group_by(
            OUTBOX.c.destination,
            OUTBOX.c.app_id,
            sa.case((OUTBOX.c.app_id.is_(None), OUTBOX.c.id), else_=None),
        )
    )


def outbox_claimable(now: datetime, limit: int) -> sa.Select[Any]:
    """The heads of the queues that are due and not leased, oldest first."""
    return (
        sa.select(OUTBOX)
        .where(
            OUTBOX.c.id.in_(outbox_heads()),
            OUTBOX.c.next_attempt_at <= now,
            sa.or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until <= now),
        )
        .order_by(OUTBOX.c.id)
        .limit(limit)
    )


@functools.cache
def outbox_update(names: tuple[str, ...]) -> sa.Update:
    """An update of these columns of one entry, by id (`key_`)."""
    return (
        sa.update(OUTBOX)
        .where(OUTBOX.c.id == sa.bindparam("key_"))
        .values({name: _param(OUTBOX, name) for name in names})
    )


OUTBOX_WAITING_ONE = (  # on ix_outbox_waiting (pending entries by destination)
    sa.select(OUTBOX.c.destination)
    .where(
        OUTBOX.c.destination == sa.bindparam("destination"),
        OUTBOX.c.status == "pending",
        sa.or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until <= sa.bindparam("now")),
    )
    .limit(1)
)


def outbox_waiting(destinations: Sequence[str], now: datetime) -> sa.Select[Any]:
    """Which of these destinations have a pending entry no one has leased."""
    return (
        sa.select(OUTBOX.c.destination)
        .where(
            OUTBOX.c.destination.in_(destinations),
            OUTBOX.c.status == "pending",
            sa.or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until <= now),
        )
        .distinct()
    )


def outbox_keys_in(keys: Sequence[str]) -> sa.Select[Any]:
    """Which of these keys have an entry."""
    return sa.select(OUTBOX.c.key).where(OUTBOX.c.key.in_(keys))


# --- grants and marks ------------------------------------------------------------------------

GRANTS_ALL = sa.select(GRANT).order_by(GRANT.c.role, GRANT.c.principal_id)
GRANT_INSERT = insert_of(GRANT, [c.name for c in GRANT.columns if c.name != "id"])
GRANT_DELETE = sa.delete(GRANT).where(
    GRANT.c.principal_kind == sa.bindparam("principal_kind"),
    GRANT.c.principal_id == sa.bindparam("principal_id"),
    GRANT.c.role == sa.bindparam("role"),
    GRANT.c.team == sa.bindparam("team"),
)
MARK_GET = sa.select(MARK.c.at).where(MARK.c.name == sa.bindparam("name"))


def marks_named(names: Sequence[str]) -> sa.Select[Any]:
    """The marks with these names."""
    return sa.select(MARK.c.name, MARK.c.at).where(MARK.c.name.in_(names))


# --- home tab viewers and inbound events -----------------------------------------------------

VIEWER_GET = sa.select(VIEWER).where(VIEWER.c.user_id == sa.bindparam("user_id"))
VIEWER_BROWSE = (
    sa.update(VIEWER)
    .where(VIEWER.c.user_id == sa.bindparam("key"))
    .values(team=sa.bindparam("team"), page=sa.bindparam("page"))
)
VIEWERS_RECENT = (
    sa.select(VIEWER)
    .where(VIEWER.c.opened_at > sa.bindparam("since"))
    .order_by(VIEWER.c.opened_at.desc())
    .limit(sa.bindparam("limit"))
)


# --- people ----------------------------------------------------------------------------------

PERSON_GET = sa.select(PERSON).where(PERSON.c.user_id == sa.bindparam("user_id"))
PEOPLE_ALL = sa.select(PERSON).order_by(PERSON.c.user_id).limit(sa.bindparam("limit"))


def events_before(before: datetime) -> sa.Delete:
    """Forget the events received before `before`."""
    return sa.delete(EVENT).where(EVENT.c.received_at < before)


def received_before(before: datetime) -> sa.Delete:
    """Forget the requests received before `before`."""
    return sa.delete(RECEIVED).where(RECEIVED.c.received_at < before)


RECEIVED_ANY_BEFORE = (
    sa.select(RECEIVED.c.signature).where(RECEIVED.c.received_at < sa.bindparam("before")).limit(1)
)


# --- the provider connector ------------------------------------------------------------------

APP_STATUSES = sa.select(APP.c.app_id, APP.c.status)
USAGE_COLUMNS = tuple(c.name for c in USAGE.columns)
USAGE_BETWEEN = (
    sa.select(USAGE)
    .where(
        USAGE.c.app_id == sa.bindparam("app_id"),
        USAGE.c.day >= sa.bindparam("first"),
        USAGE.c.day <= sa.bindparam("last"),
    )
    .order_by(USAGE.c.day)
)
DRIFT_ALL = sa.select(DRIFT.c.app_id, DRIFT.c.kind)
DRIFT_INSERT = insert_of(DRIFT, [c.name for c in DRIFT.columns])
RECONCILED_DELETE = sa.delete(RECONCILED).where(RECONCILED.c.month == sa.bindparam("month"))
RECONCILED_INSERT = insert_of(RECONCILED, [c.name for c in RECONCILED.columns])
RECONCILED_OF = (
    sa.select(RECONCILED, APP.c.name)
    .select_from(RECONCILED.outerjoin(APP, APP.c.app_id == RECONCILED.c.app_id))
    .where(RECONCILED.c.month == sa.bindparam("month"))
    .order_by(sa.func.length(RECONCILED.c.app_id), RECONCILED.c.app_id)
)


def live_apps(app_ids: Sequence[str] | None) -> sa.Select[Any]:
    """The apps not purged (only those of `app_ids` when given)."""
    query = sa.select(APP).where(APP.c.status != Status.PURGED.value)
    if app_ids is not None:
        query = query.where(APP.c.app_id.in_(app_ids))
    return query.order_by(sa.func.length(APP.c.app_id), APP.c.app_id)


def apps_in(start: datetime, end: datetime) -> sa.Select[Any]:
    """The apps that existed in [start, end): created before its end, not purged before it."""
    return (
        sa.select(APP)
        .where(
            APP.c.created_at < end,
            sa.or_(APP.c.status != Status.PURGED.value, APP.c.updated_at >= start),
        )
        .order_by(sa.func.length(APP.c.app_id), APP.c.app_id)
    )


def usage_days_of(app_id: str, days: Sequence[Any]) -> sa.Select[Any]:
    """Which of these days of an app are stored."""
    return sa.select(USAGE.c.day).where(USAGE.c.app_id == app_id, USAGE.c.day.in_(days))


def drift_delete(app_ids: Sequence[str]) -> sa.Delete:
    """Ids no longer in the drift (or in it as another kind)."""
    return sa.delete(DRIFT).where(DRIFT.c.app_id.in_(app_ids))


def provider_marks_named(names: Sequence[str]) -> sa.Select[Any]:
    """The connector's marks with these names."""
    return sa.select(PROVIDER_MARK).where(PROVIDER_MARK.c.name.in_(names))


# --- dialect-specific ------------------------------------------------------------------------


def insert_ignoring(dialect: str, table: sa.Table, rows: Sequence[dict[str, Any]], key: str) -> Any:
    """An insert of `rows` that skips rows whose `key` exists, returning the keys inserted."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=[key])
        .returning(table.c[key])
    )


def advance_mark(dialect: str, name: str, at: datetime) -> Any:
    """Move a mark forward to `at`, never back (concurrent sweeps keep the latest)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(MARK).values(name=name, at=at)
    newer = sa.case((statement.excluded.at > MARK.c.at, statement.excluded.at), else_=MARK.c.at)
    return statement.on_conflict_do_update(index_elements=["name"], set_={"at": newer})


def _viewer_opened(insert: Any) -> Any:
    statement = insert(VIEWER).values(
        {name: _param(VIEWER, name) for name in ("user_id", "name", "groups", "team", "page")}
        | {"opened_at": _param(VIEWER, "opened_at")}
    )
    kept = {name: statement.excluded[name] for name in ("name", "groups", "opened_at")}
    return statement.on_conflict_do_update(index_elements=["user_id"], set_=kept)


def _event_first(insert: Any) -> Any:
    statement = insert(EVENT).values(
        event_id=_param(EVENT, "event_id"), received_at=_param(EVENT, "received_at")
    )
    # an insert's rowcount is kept only when asked for (whether the row was added)
    ignoring = statement.on_conflict_do_nothing(index_elements=["event_id"])
    return ignoring.execution_options(preserve_rowcount=True)


def _received_first(insert: Any) -> Any:
    statement = insert(RECEIVED).values(
        signature=_param(RECEIVED, "signature"), received_at=_param(RECEIVED, "received_at")
    )
    ignoring = statement.on_conflict_do_nothing(index_elements=["signature"])
    return ignoring.execution_options(preserve_rowcount=True)


def _person_set(insert: Any, columns: tuple[str, ...]) -> Any:
    names = ("user_id", *columns, "updated_at")
    statement = insert(PERSON).values({name: _param(PERSON, name) for name in names})
    kept = {name: statement.excluded[name] for name in (*columns, "updated_at")}
    return statement.on_conflict_do_update(index_elements=["user_id"], set_=kept)


#: note a person's locale as read (inserting the person if new), by dialect
PERSON_LOCALE = {
    "postgresql": _person_set(postgresql.insert, ("locale", "locale_read_at")),
    "sqlite": _person_set(sqlite.insert, ("locale", "locale_read_at")),
}
#: note the language a person chose (inserting the person if new), by dialect
PERSON_LANGUAGE = {
    "postgresql": _person_set(postgresql.insert, ("language",)),
    "sqlite": _person_set(sqlite.insert, ("language",)),
}


#: insert a viewer, or on their next visit update their name, groups and moment (by dialect)
VIEWER_OPENED = {
    "postgresql": _viewer_opened(postgresql.insert),
    "sqlite": _viewer_opened(sqlite.insert),
}
#: record an event's id; a second time it changes no row (by dialect)
EVENT_FIRST = {"postgresql": _event_first(postgresql.insert), "sqlite": _event_first(sqlite.insert)}
#: record a request's signature; a second time it changes no row (by dialect)
RECEIVED_FIRST = {
    "postgresql": _received_first(postgresql.insert),
    "sqlite": _received_first(sqlite.insert),
}


def upsert_usage(dialect: str, rows: Sequence[dict[str, Any]]) -> Any:
    """Days of usage, one row per app and day: a day stored again takes the newer figures."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(USAGE).values(list(rows))
    newer = {
        name: statement.excluded[name] for name in USAGE_COLUMNS if name not in ("app_id", "day")
    }
    return statement.on_conflict_do_update(index_elements=["app_id", "day"], set_=newer)


def set_provider_mark(dialect: str, name: str, at: datetime, note: str) -> Any:
    """Set one of the connector's marks (its moment and note replace the stored ones)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(PROVIDER_MARK).values(name=name, at=at, note=note)
    return statement.on_conflict_do_update(index_elements=["name"], set_={"at": at, "note": note})
