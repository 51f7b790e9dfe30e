"""The table registry: each table named once, its asset in the code location, reads and writes through it."""

from types import SimpleNamespace

import pandas as pd

from b24_1c_assets import warehouse
from b24_1c_assets.bitrix24.client import ClientStats
from b24_1c_assets.lib import tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.onec.odata import OneCStats


def test_each_table_is_named_once():
    names = [str(t) for t in tables.all_tables()]
    assert len(names) == len(set(names))


def test_every_writer_is_an_asset_of_the_code_location():
    from b24_1c_assets.definitions import defs

    keys = set((defs() if callable(defs) else defs).resolve_all_asset_keys())
    writers = {t.key for t in tables.all_tables() if t.has_asset}
    writers |= {v.key for v in vars(tables).values() if isinstance(v, tables.Asset)}
    assert writers - keys == set()


def test_an_entry_reads_and_writes_its_table(tmp_path):
    entry = tables.Table("scratch", "rows")
    with warehouse.connect(str(tmp_path / "t.duckdb")) as conn:
        assert not entry.exists(conn) and entry.read(conn).empty
        entry.replace(conn, pd.DataFrame({"day": ["2026-01-01", "2026-01-02"], "n": [1, 2]}))
        entry.append(conn, pd.DataFrame({"day": ["2026-01-03"], "n": [3]}))
        entry.replace_partition(
            conn, pd.DataFrame({"day": ["2026-01-02"], "n": [20]}), column="day", value="2026-01-02"
        )
        assert sorted(entry.read(conn)["n"]) == [1, 3, 20]
        assert conn.execute(f"SELECT count(*) FROM {entry}").fetchone()[0] == 3
    assert entry.key.path == ["scratch", "rows"]


def test_api_calls_counts_each_client_since_it_started():
    b24, onec = SimpleNamespace(stats=ClientStats(http_calls=5)), SimpleNamespace(stats=OneCStats(requests=2))
    calls = ApiCalls(b24, onec, None)
    b24.stats.http_calls += 3
    onec.stats.requests += 1
    assert calls.count == 4 and ApiCalls(b24).count == 0
