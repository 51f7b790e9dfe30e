"""1C documents and register movements read incrementally: a window since the last extract minus the overlap,
merged into DuckDB by key, with what vanished inside the window removed and a full re-read on demand.

The world's documents are dated before its `as_of`; the overlap is set so the window starts 30 days before
it whatever today's date, so the test does not age.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest
import requests

from b24_1c_assets.onec import OneCClient, odata

SHIPMENTS, MOVEMENTS = "onec/shipments", "onec/settlement_movements"

pytestmark = pytest.mark.slow


@pytest.fixture
def window_30_days_before_as_of(world, tmp_path, monkeypatch):
    folder = tmp_path / "settings"
    folder.mkdir()
    overlap = (datetime.now() - world.as_of).days + 30
    (folder / "extracts.toml").write_text(f"overlap_days = {overlap}\nfull_every_days = 7\n")
    monkeypatch.setenv("B24_1C_SETTINGS_DIR", str(folder))
    return world.as_of - timedelta(days=30)


def _posted_shipment(onec, *, after: datetime | None = None, before: datetime | None = None) -> str:
    for ref, rec in onec.state.objects["Document_РасходнаяНакладная"].items():
        at = rec["Date"] if isinstance(rec["Date"], datetime) else datetime.fromisoformat(str(rec["Date"])[:19])
        if rec["Posted"] and (after is None or at >= after + timedelta(days=2)) and (before is None or at < before):
            if onec.state.registers[odata.SETTLEMENTS].with_value("Recorder", ref):
                return ref
    raise AssertionError("the world has no posted shipment in that range")


def _state(path) -> list[tuple]:
    with duckdb.connect(path, read_only=True) as conn:
        return conn.execute(
            "SELECT table_name, full_read, rows_read, requests, deleted FROM sync.extract_state "
            "ORDER BY recorded_at, table_name"
        ).fetchall()


def _recorders(path) -> set[str]:
    with duckdb.connect(path, read_only=True) as conn:
        return {r[0] for r in conn.execute("SELECT Recorder FROM onec.settlement_movements").fetchall()}


def test_a_second_extract_reads_the_window_merges_it_and_a_full_one_catches_what_lies_before(
    sandbox, run_assets, window_30_days_before_as_of, monkeypatch
):
    import os

    since = window_30_days_before_as_of
    path = os.environ["B24_1C_DUCKDB_PATH"]
    assert run_assets([SHIPMENTS, MOVEMENTS]).success
    first = _state(path)
    assert [(t, full) for t, full, *_ in first] == [("settlement_movements", True), ("shipments", True)]
    movements_total = len(sandbox.onec.state.registers[odata.SETTLEMENTS])

    recent, old = _posted_shipment(sandbox.onec, after=since), _posted_shipment(sandbox.onec, before=since)
    client = OneCClient(sandbox.onec.odata_url, sandbox.onec.username, sandbox.onec.password)
    client.unpost_document(odata.SHIPMENTS, recent)
    client.unpost_document(odata.SHIPMENTS, old)
    assert recent in _recorders(path) and old in _recorders(path)

    assert run_assets([SHIPMENTS, MOVEMENTS]).success
    second = _state(path)[2:]
    assert [(t, full) for t, full, *_ in second] == [("settlement_movements", False), ("shipments", False)]
    moves_first, moves_second = first[0], second[0]
    assert moves_second[2] < moves_first[2] / 2 and moves_second[3] < moves_first[3]  # rows, requests
    assert moves_second[4] >= 1  # the unposted shipment's movements, gone from the window
    recorders = _recorders(path)
    assert recent not in recorders
    assert old in recorders  # before the window: left for the periodic full re-read (or the balance check)
    with duckdb.connect(path, read_only=True) as conn:
        posted = dict(conn.execute("SELECT Ref_Key, Posted FROM onec.shipments").fetchall())
    assert posted[recent] is False and posted[old] is True

    assert run_assets([SHIPMENTS, MOVEMENTS], tags={"b24_1c/full_extract": "true"}).success
    assert [(t, full) for t, full, *_ in _state(path)[4:]] == [("settlement_movements", True), ("shipments", True)]
    assert old not in _recorders(path)
    with duckdb.connect(path, read_only=True) as conn:
        assert (
            conn.execute("SELECT count(*) FROM onec.settlement_movements").fetchall()[0][0]
            == len(sandbox.onec.state.registers[odata.SETTLEMENTS])
            < movements_total
        )


def test_a_client_whose_balance_disagrees_after_an_incremental_read_is_re_read_before_the_check_is_final(
    sandbox, run_assets, window_30_days_before_as_of
):
    import os

    import dagster as dg

    from b24_1c_assets.defs.receivables.assets import BALANCE_CHECK, SNAPSHOT

    receivables = dg.AssetSelection.assets(SNAPSHOT).upstream().required_multi_asset_neighbors()
    path = os.environ["B24_1C_DUCKDB_PATH"]
    assert run_assets(receivables).success
    old = _posted_shipment(sandbox.onec, before=window_30_days_before_as_of)
    OneCClient(sandbox.onec.odata_url, sandbox.onec.username, sandbox.onec.password).unpost_document(
        odata.SHIPMENTS, old
    )

    result = run_assets(receivables)
    assert result.success
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == BALANCE_CHECK]
    assert check.passed
    assert check.metadata["re_read_counterparties"].value == 1 and check.metadata["re_read_movements"].value > 0
    assert old not in _recorders(path)  # the unposted shipment's debt is gone from the warehouse too
    assert [full for t, full, *_ in _state(path) if t == "settlement_movements"] == [True, False]


def test_catalogs_after_the_first_read_fetch_only_objects_whose_data_version_moved(sandbox, run_assets):
    import os

    path = os.environ["B24_1C_DUCKDB_PATH"]
    catalogs = ["onec/counterparties", "onec/contracts", "onec/items"]
    assert run_assets(catalogs).success
    with duckdb.connect(path, read_only=True) as conn:
        first = dict(conn.execute('SELECT Ref_Key, "Комментарий" FROM onec.counterparties').fetchall())
    client = OneCClient(sandbox.onec.odata_url, sandbox.onec.username, sandbox.onec.password)
    changed, gone = sorted(first)[:2]
    client.update_counterparty(changed, {"Комментарий": "изменён"})
    # deleted in 1C (what the deletion of marked objects does), over OData
    requests.delete(
        f"{sandbox.onec.odata_url}/{odata.COUNTERPARTIES}(guid'{gone}')",
        auth=(sandbox.onec.username, sandbox.onec.password),
        timeout=30,
    ).raise_for_status()

    assert run_assets(catalogs).success
    state = {t: (full, rows, deleted) for t, full, rows, _, deleted in _state(path)[3:]}
    assert state == {"counterparties": (False, 1, 1), "contracts": (False, 0, 0), "items": (False, 0, 0)}
    with duckdb.connect(path, read_only=True) as conn:
        second = dict(conn.execute('SELECT Ref_Key, "Комментарий" FROM onec.counterparties').fetchall())
    assert second[changed] == "изменён" and gone not in second and len(second) == len(first) - 1
