"""CRM extracts after the first read only what changed: `>=DATE_MODIFY` since the last extract minus the
overlap, merged into DuckDB by ID; a deletion shows at the next full read (weekly, or tagged)."""

from __future__ import annotations

import os

import duckdb
import pytest

from b24_1c_assets.bitrix24 import Bitrix24Client

COMPANIES, DEALS = "bitrix24/companies", "bitrix24/deals"

pytestmark = pytest.mark.slow


def _companies(path) -> dict[str, str]:
    with duckdb.connect(path, read_only=True) as conn:
        return dict(conn.execute("SELECT ID, TITLE FROM bitrix24.companies").fetchall())


def _state(path) -> list[tuple]:
    with duckdb.connect(path, read_only=True) as conn:
        return conn.execute(
            "SELECT table_name, full_read, rows_read, requests FROM sync.extract_state "
            "WHERE source = 'bitrix24' ORDER BY recorded_at, table_name"
        ).fetchall()


def test_a_second_crm_extract_reads_what_changed_and_a_full_one_drops_what_was_deleted(sandbox, run_assets):
    path = os.environ["B24_1C_DUCKDB_PATH"]
    assert run_assets([COMPANIES, DEALS]).success
    before = _companies(path)
    assert [(t, full) for t, full, *_ in _state(path)] == [("companies", True), ("deals", True)]

    client = Bitrix24Client(sandbox.portal.webhook_url, rate=50, burst=50)
    changed, deleted = sorted(before, key=int)[:2]
    client.call("crm.company.update", {"id": changed, "fields": {"TITLE": "ООО «Переименованная»"}})
    client.call("crm.company.delete", {"id": deleted})
    added = str(client.call("crm.company.add", {"fields": {"TITLE": "ООО «Новая»"}}))

    assert run_assets([COMPANIES, DEALS]).success
    incremental = _state(path)[2:]
    assert [(t, full) for t, full, *_ in incremental] == [("companies", False), ("deals", False)]
    companies_read = incremental[0][2]
    assert companies_read == 2  # the renamed and the new one, not the whole list
    after = _companies(path)
    assert after[changed] == "ООО «Переименованная»" and after[added] == "ООО «Новая»"
    assert len(after) == len(before) + 1  # the deletion is not visible to a DATE_MODIFY read ...

    assert run_assets([COMPANIES], tags={"b24_1c/full_extract": "true"}).success
    assert _state(path)[-1][:2] == ("companies", True)
    final = _companies(path)
    assert deleted not in final and len(final) == len(before)  # ... the full one drops it
