"""The audit log's hash chain: an edited, deleted or truncated record is detected."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.audit import GENESIS, chain_hash, verify_chain
from tests.conftest import SHANGHAI, utc


def chain(n: int) -> list[dict[str, Any]]:
    """n records, linked as the store writes them."""
    records: list[dict[str, Any]] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        record: dict[str, Any] = {
            "seq": seq,
            "at": utc(2026, 11, 10, 4) + timedelta(minutes=seq),
            "actor_id": "UADMIN",
            "actor_name": "Ada",
            "action": "upgrade",
            "outcome": "applied",
            "app_id": f"14000000{seq:02d}",
            "request_id": f"req-{seq}",
            "before": {"plan": "developer"},
            "after": {"plan": "premium"},
            "cost": "+$116.50",
            "detail": "",
        }
        record["prev_hash"] = prev
        record["hash"] = prev = chain_hash(prev, record)
        records.append(record)
    return records


def verify(records: list[dict[str, Any]], head: dict[str, Any] | None) -> Any:
    return verify_chain(
        records,
        head_seq=head["seq"] if head else 0,
        head_hash=head["hash"] if head else GENESIS,
    )


def test_an_intact_chain_verifies() -> None:
    records = chain(5)
    report = verify(records, records[-1])
    assert report.ok and report.records == 5 and report.problem is None
    assert verify([], None).ok


def test_an_edited_field_is_detected() -> None:
    records = chain(5)
    records[2]["after"] = {"plan": "standard"}
    report = verify(records, records[-1])
    assert not report.ok
    assert report.seq == 3 and "record 3 was altered" in (report.problem or "")


def test_an_edited_field_with_a_recomputed_hash_breaks_the_next_link() -> None:
    records = chain(5)
    records[2]["actor_name"] = "Mallory"
    records[2]["hash"] = chain_hash(records[2]["prev_hash"], records[2])
    report = verify(records, records[-1])
    assert not report.ok
    assert report.seq == 4 and "does not link" in (report.problem or "")


def test_a_deleted_middle_record_is_detected() -> None:
    records = chain(5)
    head = records[-1]
    del records[2]
    report = verify(records, head)
    assert not report.ok
    assert report.seq == 3 and "record 3 is missing" in (report.problem or "")


def test_a_deleted_last_record_is_detected_by_the_head() -> None:
    records = chain(5)
    head = records.pop()
    report = verify(records, head)
    assert not report.ok
    assert "ends at record 4 but 5 were written" in (report.problem or "")


def test_every_hashed_field_is_covered() -> None:
    base = chain(1)[0]
    for name, value in [
        ("seq", 2),
        ("at", base["at"] + timedelta(microseconds=1)),
        ("actor_id", "UOTHER"),
        ("outcome", "refused"),
        ("app_id", "1"),
        ("request_id", "other"),
        ("cost", None),
        ("detail", "x"),
    ]:
        assert chain_hash(GENESIS, {**base, name: value}) != base["hash"], name


def test_the_same_moment_in_another_zone_hashes_the_same() -> None:
    # The store reads moments back in UTC; a record written with a UTC+8 clock must verify.
    record = chain(1)[0]
    assert (
        chain_hash(GENESIS, {**record, "at": record["at"].astimezone(SHANGHAI)}) == record["hash"]
    )
