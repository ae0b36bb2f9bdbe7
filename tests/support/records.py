"""Reading what the core stored, and wording its facts, for tests' assertions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.kit import plain_dates
from bot.words import Words
from core import (
    ChainReport,
    CoreConfig,
    HistoryEntry,
    Outcome,
    Preview,
    Request,
    SqlStore,
    verify_chain,
)
from core.store.statements import OUTBOX

__all__ = [
    "audit_log",
    "chain_report",
    "english",
    "history",
    "outbox",
    "request",
    "request_state",
    "shown",
    "warnings",
]


def audit_log(engine: Engine) -> list[dict[str, Any]]:
    """Every audit record, oldest first."""
    with SqlStore(engine).unit_of_work(write=False) as uow:
        return list(uow.audit.records())


def chain_report(engine: Engine) -> ChainReport:
    """The audit chain verified, as `planbot audit verify` does."""
    with SqlStore(engine).unit_of_work(write=False) as uow:
        seq, digest = uow.audit.head()
        return verify_chain(uow.audit.records(), head_seq=seq, head_hash=digest)


def outbox(engine: Engine, after_id: int = 0) -> list[dict[str, Any]]:
    """Outbox entries after `after_id`: id, kind, topic, destination, payload, key, app_id."""
    columns = ("id", "kind", "topic", "destination", "payload", "key", "app_id", "status")
    query = sa.select(*(OUTBOX.c[c] for c in columns)).where(OUTBOX.c.id > after_id)
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query.order_by(OUTBOX.c.id))]


def history(engine: Engine, app_id: str, limit: int = 1000) -> list[HistoryEntry]:
    """The app's plan history, newest first."""
    with SqlStore(engine).unit_of_work(write=False) as uow:
        return uow.history.of(app_id, limit=limit)


def request(engine: Engine, request_id: str) -> Request:
    """A request as stored."""
    with SqlStore(engine).unit_of_work(write=False) as uow:
        found = uow.requests.get(request_id)
    assert found is not None
    return found


def request_state(engine: Engine, request_id: str) -> str:
    """A request's state."""
    return request(engine, request_id).state.value


def english(config: CoreConfig) -> Words:
    """The words the bot uses for this configuration."""
    return Words(config.catalog, config.billing_tz)


def shown(changes: Iterable[Any], words: Words) -> list[tuple[str, str, str]]:
    """The changed fields as a person reads them: label, before, after (a moment as its date
    token's fallback, in the billing time zone)."""
    return [
        (label, plain_dates(before), plain_dates(after))
        for label, before, after in (words.change(c) for c in changes)
    ]


def warnings(preview: Preview, words: Words) -> str:
    """A preview's notices as one text (moments as their date tokens' fallback)."""
    return plain_dates(" ".join(words.notice(n) for n in preview.notices))


def said(outcome: Outcome, words: Words) -> str:
    """What the outcome card says first."""
    return plain_dates(words.outcome(outcome))
