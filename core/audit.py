"""The audit log's hash chain: each record's hash covers its fields and the previous hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "GENESIS",
    "HASHED_FIELDS",
    "AuditRecord",
    "ChainReport",
    "chain_hash",
    "chained",
    "verify_chain",
]

GENESIS = "0" * 64

#: the fields a record's hash covers, in this order
HASHED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "outcome",
    "app_id",
    "request_id",
    "before",
    "after",
    "cost",
    "detail",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        # the store gives moments back in UTC, so hash them in UTC whatever zone wrote them
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return value


def chain_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    """The SHA-256 of the previous hash and the record's canonical JSON."""
    body = {name: _plain(record.get(name)) for name in HASHED_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """The outcome of a chain verification."""

    records: int
    ok: bool
    problem: str | None = None
    seq: int | None = None


def verify_chain(
    records: Iterable[Mapping[str, Any]], *, head_seq: int, head_hash: str
) -> ChainReport:
    """Check every record's hash, the links, gaps in the sequence, and the stored head."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    for record in records:
        count += 1
        seq = int(record["seq"])
        if seq != expected_seq:
            return ChainReport(count, False, f"record {expected_seq} is missing", expected_seq)
        if record["prev_hash"] != prev_hash:
            return ChainReport(count, False, f"record {seq} does not link to record {seq - 1}", seq)
        if chain_hash(prev_hash, record) != record["hash"]:
            return ChainReport(count, False, f"record {seq} was altered", seq)
        prev_hash, expected_seq = record["hash"], seq + 1
    if expected_seq - 1 != head_seq or prev_hash != head_hash:
        return ChainReport(
            count,
            False,
            f"the log ends at record {expected_seq - 1} but {head_seq} were written",
            expected_seq,
        )
    return ChainReport(count, True)


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """What an audit record says (its place in the chain is given when it is appended)."""

    at: datetime
    actor_id: str
    actor_name: str = ""
    action: str
    outcome: str
    app_id: str | None = None
    request_id: str | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    cost: str | None = None
    detail: str = ""


def chained(record: AuditRecord, head: tuple[int, str] | None) -> dict[str, Any]:
    """Every column of `record` appended after `head` (seq, hash; None: the first), hashed."""
    seq, prev_hash = head if head is not None else (0, GENESIS)
    row: dict[str, Any] = {
        "seq": seq + 1,
        "at": record.at,
        "actor_id": record.actor_id,
        "actor_name": record.actor_name,
        "action": record.action,
        "outcome": record.outcome,
        "app_id": record.app_id,
        "request_id": record.request_id,
        "before": dict(record.before or {}),
        "after": dict(record.after or {}),
        "cost": record.cost,
        "detail": record.detail,
        "prev_hash": prev_hash,
    }
    row["hash"] = chain_hash(prev_hash, row)
    return row
