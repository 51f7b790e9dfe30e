"""The contract judged over a read landed in chunks (lib/landing.py ContractCheck)."""

from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest

from b24_1c_assets import warehouse
from b24_1c_assets.domain.contracts import ONEC_CONTRACTS
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.landing import ContractCheck

GUIDS = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(1, 40)]


def _orders(*rows):
    return pd.DataFrame(
        [
            {"Ref_Key": ref, "Number": number, "Контрагент_Key": None, "СуммаДокумента": Decimal(s)}
            for ref, number, s in rows
        ]
    )


def _land(chunks, tmp_path):
    check = ContractCheck(tables.ONEC_CUSTOMER_ORDERS, ONEC_CONTRACTS["customer_orders"], "run-1")
    with warehouse.StagedRows() as staged, warehouse.connect(str(tmp_path / "w.duckdb")) as conn:
        for chunk in chunks:
            staged.add(check.good_rows(chunk))
        rejects = check.finish(staged)
        warehouse.replace_table(conn, "onec", "customer_orders", staged)
        stored = conn.execute('SELECT "Ref_Key", "_run_id" FROM onec.customer_orders ORDER BY 1').fetchall()
    return check, rejects, stored


def test_a_key_repeated_in_two_chunks_is_quarantined_and_left_out(tmp_path):
    check, rejects, stored = _land(
        [
            _orders((GUIDS[0], "1", "10.00"), (GUIDS[1], "2", "20.00")),
            _orders((GUIDS[1], "2", "20.00"), (GUIDS[2], "3", "1")),
        ],
        tmp_path,
    )
    assert stored == [(GUIDS[0], "run-1"), (GUIDS[2], "run-1")]
    assert rejects[["record_id", "column", "rule"]].values.tolist() == [[GUIDS[1], "Ref_Key", "field_uniqueness"]]
    assert check.rows == 4


def test_a_critical_column_is_judged_over_the_whole_read_not_one_small_chunk(tmp_path):
    good = _orders(*[(GUIDS[i], str(i), "5.00") for i in range(10)])
    bad_tail = _orders((GUIDS[10], "10", "-1.00"))  # one bad amount: all of the last chunk, a tenth of the read
    _, rejects, stored = _land([good, bad_tail], tmp_path)
    assert len(stored) == 10 and rejects["record_id"].tolist() == [GUIDS[10]]

    broken = _orders(*[(GUIDS[20 + i], str(i), "-1.00") for i in range(8)])  # most of the read: a broken column
    with pytest.raises(dg.Failure, match="critical contract failures"):
        _land([good.head(2), broken], tmp_path)
