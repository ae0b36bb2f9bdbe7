"""CSV import: every row checked, bad rows reported by line, all or nothing, 10,000 rows."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import (
    AppState,
    BillingMode,
    Catalog,
    CsvImportError,
    ImportResult,
    Plan,
    SqlStore,
    Status,
)
from core.importer import Imports
from tests.conftest import SHANGHAI, utc
from tests.integration.conftest import CLI
from tests.support.csvs import HEADER

NOW = utc(2026, 11, 10, 4)
FULL = HEADER


def run_import(engine: Engine, catalog: Catalog, text: str) -> ImportResult:
    imports = Imports(store=SqlStore(engine), catalog=catalog, tz=SHANGHAI, clock=lambda: NOW)
    return imports.from_csv(text, actor=CLI)


def apps(engine: Engine, *ids: str) -> dict[str, AppState]:
    with SqlStore(engine).unit_of_work(write=False) as uow:
        found = [uow.apps.get(i) for i in (ids or sorted(uow.apps.ids()))]
    return {a.app_id: a for a in found if a is not None}


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            int(connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("app", "plan_history", "audit_event")
        )


def test_required_columns_only(engine: Engine, catalog: Catalog) -> None:
    text = (
        "app_id,name,plan,created_at\n"
        "1400000001,dev-chat,developer,2026-10-31\n"
        "1400000002,std-chat,Standard,2024-02-29T10:00:00Z\n"
        "1400000003,prem-chat,premium,2020-05-05\n"
    )
    assert run_import(engine, catalog, text).imported == 3
    found = apps(engine)
    dev = found["1400000001"]
    assert (dev.plan, dev.status, dev.billing_mode) == (
        Plan.DEVELOPER,
        Status.ACTIVE,
        BillingMode.CURRENT,
    )
    assert dev.created_at == datetime(2026, 10, 31, tzinfo=SHANGHAI)  # a date is midnight UTC+8
    assert dev.dev_expires_at == datetime(2026, 11, 30, tzinfo=SHANGHAI)  # one month, clamped
    assert found["1400000002"].plan is Plan.STANDARD
    assert found["1400000002"].created_at == utc(2024, 2, 29, 10)
    assert found["1400000003"].billing_mode is BillingMode.LEGACY
    assert counts(engine) == (3, 3, 1)  # one history row each, one audit record for the import


@pytest.mark.parametrize(
    ("created_at", "mode"),
    [
        ("2022-12-25", BillingMode.LEGACY),
        ("2022-12-26", BillingMode.CURRENT),  # the day the legacy mode ended, in UTC+8
        ("2022-12-25T15:59:59Z", BillingMode.LEGACY),  # 23:59:59 on the 25th in UTC+8
        ("2022-12-25T16:00:00Z", BillingMode.CURRENT),  # midnight on the 26th in UTC+8
        ("2022-12-26T00:30:00+08:00", BillingMode.CURRENT),
    ],
)
def test_billing_mode_is_derived_from_the_creation_day(
    engine: Engine, catalog: Catalog, created_at: str, mode: BillingMode
) -> None:
    run_import(
        engine, catalog, f"app_id,name,plan,created_at\n1400000001,a,standard,{created_at}\n"
    )
    assert apps(engine)["1400000001"].billing_mode is mode


def test_optional_columns(engine: Engine, catalog: Catalog) -> None:
    text = "\n".join(
        [
            FULL,
            "1400000001,migrated,premium,2021-01-01,current,active,CTEAM,,",
            "1400000002,off,standard,2025-01-01,,disabled,CTEAM,,2026-10-01T08:00:00Z",
            "1400000003,sleepy,developer,2026-08-01,,suspended,C_OTHER,2026-09-01,",
            "1400000004,later,developer,2026-11-01,current,active,,2026-12-25T00:00:00Z,",
            "1400000005,gone,premium,2024-01-01,,purged,,,2026-01-01",
        ]
    )
    assert run_import(engine, catalog, text + "\n").imported == 5
    found = apps(engine)
    assert found["1400000001"].billing_mode is BillingMode.CURRENT
    assert found["1400000001"].owner_channel == "CTEAM"
    off = found["1400000002"]
    assert (off.status, off.disabled_at) == (Status.DISABLED, utc(2026, 10, 1, 8))
    assert off.purge_at == utc(2026, 12, 30, 8)
    assert found["1400000003"].status is Status.SUSPENDED
    assert found["1400000003"].owner_channel == "C_OTHER"
    assert found["1400000004"].dev_expires_at == utc(2026, 12, 25)
    assert found["1400000004"].owner_channel is None
    assert found["1400000005"].status is Status.PURGED
    assert counts(engine) == (5, 7, 1)  # disabled and purged apps have a second history row


def test_a_byte_order_mark_and_blank_lines_are_fine(engine: Engine, catalog: Catalog) -> None:
    text = "\ufeffapp_id,name,plan,created_at\n\n1400000001,a,developer,2026-11-01\n\n"
    assert run_import(engine, catalog, text).imported == 1


BAD_ROWS = [
    ("abc,x,developer,2026-11-01,,,,,", "app_id 'abc' is not 1-20 digits"),
    ("1400000099,x,developer,2026-11-01,,,,,", "app_id 1400000099 appears twice in the file"),
    ("1400000050,x,developer,2026-11-01,,,,,", "app_id 1400000050 already exists"),
    ("1400000002,,developer,2026-11-01,,,,,", "name must be 1-80 characters"),
    (f"1400000003,{'n' * 81},developer,2026-11-01,,,,,", "name must be 1-80 characters"),
    ("1400000004,x,gold,2026-11-01,,,,,", "plan 'gold' is not developer, standard or premium"),
    ("1400000005,x,developer,,,,,,", "created_at is required"),
    ("1400000006,x,developer,yesterday,,,,,", "created_at 'yesterday' is not an ISO date"),
    ("1400000007,x,developer,2027-01-01,,,,,", "created_at is in the future"),
    ("1400000008,x,standard,2021-01-01,old,,,,", "billing_mode 'old' is not legacy or current"),
    ("1400000009,x,standard,2022-12-26,legacy,,,,", "billing_mode legacy is impossible"),
    ("1400000010,x,standard,2024-01-01,,paused,,,", "status 'paused' is not active"),
    ("1400000011,x,developer,2024-01-01,,disabled,,,2026-10-01", "a developer app can't be"),
    ("1400000012,x,standard,2024-01-01,,disabled,,,", "status disabled needs disabled_at"),
    ("1400000013,x,standard,2024-01-01,,active,,,2026-10-01", "disabled_at is only for"),
    ("1400000014,x,premium,2024-01-01,,suspended,,,", "only developer apps can be suspended"),
    ("1400000015,x,premium,2024-01-01,,,,2026-12-01,", "dev_expires_at is only for developer"),
    ("1400000016,x,developer,2024-01-01,,,#general,,", "owner_channel '#general' is not a channel"),
    ("1400000017,x,developer,2024-01-01,,,,soon,", "dev_expires_at 'soon' is not an ISO date"),
    ("1400000018,x,developer,2024-01-01,,,,,,extra", "more fields than the header has"),
]


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_imported(
    engine: Engine, catalog: Catalog
) -> None:
    run_import(
        engine, catalog, "app_id,name,plan,created_at\n1400000050,existing,standard,2025-01-01\n"
    )
    before = counts(engine)
    lines = [FULL, "1400000099,good,developer,2026-11-01,,,,,"]
    lines += [row for row, _ in BAD_ROWS]
    lines.append("1400000100,also-good,premium,2025-01-01,,,,,")
    with pytest.raises(CsvImportError) as refused:
        run_import(engine, catalog, "\n".join(lines) + "\n")
    problems = refused.value.problems
    for number, (_, problem) in enumerate(BAD_ROWS, start=3):
        assert any(p.startswith(f"line {number}: ") and problem in p for p in problems), (
            number,
            problem,
            problems,
        )
    assert not any(p.startswith(("line 2:", f"line {len(lines)}:")) for p in problems)
    assert refused.value.message.startswith("Nothing was imported:")
    assert counts(engine) == before  # nothing at all, not even the good rows


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("app_id,name,plan\n1,a,developer\n", "line 1: missing column(s): created_at"),
        ("app_id,name,plan,created_at,colour\n", "line 1: unknown column(s): colour"),
        ("app_id,name,plan,created_at\n", "the file has no rows"),
        ("", "line 1: missing column(s): app_id, name, plan, created_at"),
    ],
)
def test_a_bad_header_or_an_empty_file_imports_nothing(
    engine: Engine, catalog: Catalog, text: str, problem: str
) -> None:
    with pytest.raises(CsvImportError) as refused:
        run_import(engine, catalog, text)
    assert problem in refused.value.problems
    assert counts(engine) == (0, 0, 0)


def test_ten_thousand_rows(engine: Engine, catalog: Catalog) -> None:
    # 10,000 on SQLite; on PostgreSQL 3,000 (still several 1,000-row insert batches) for speed
    size = 10_000 if engine.dialect.name == "sqlite" else 3_000
    plans = ["developer", "standard", "premium"]
    rows = [
        f"{1500000000 + n},app-{n},{plans[n % 3]},{2020 + n % 6}-0{1 + n % 9}-1{n % 10},,"
        f"{'disabled' if n % 7 == 0 and n % 3 else 'active'},C{n % 40:03d},,"
        f"{'2026-10-01' if n % 7 == 0 and n % 3 else ''}"
        for n in range(size)
    ]
    result = run_import(engine, catalog, FULL + "\n" + "\n".join(rows) + "\n")
    assert result.imported == size
    disabled = sum(1 for n in range(size) if n % 7 == 0 and n % 3)
    assert counts(engine) == (size, size + disabled, 1)
    found = apps(engine, "1500000000", "1500000005", "1500000007", "1500000009")
    assert found["1500000005"].plan is Plan.PREMIUM
    assert found["1500000005"].created_at == datetime(2025, 6, 15, tzinfo=SHANGHAI)
    assert found["1500000007"].status is Status.DISABLED
    assert found["1500000000"].billing_mode is BillingMode.LEGACY
    assert found["1500000009"].billing_mode is BillingMode.CURRENT
