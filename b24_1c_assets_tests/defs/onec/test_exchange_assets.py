"""The exchange folder as the 1C source: raw tables like OData's, whole-file loads, rejects, duplicates."""

from __future__ import annotations

import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from b24_1c_assets import warehouse
from b24_1c_assets.sandbox.exchange_files import counterparty_records, write_exchange_files
from b24_1c_assets_tests.defs.onec.conftest import age

RAW = dg.AssetSelection.groups("onec_raw")
COUNTERPARTIES = dg.AssetSelection.assets(["onec", "exchange_files"], ["onec", "counterparties"], ["onec", "contracts"])


def db():
    return warehouse.connect(os.environ["B24_1C_DUCKDB_PATH"])


def rows(sql: str) -> list[tuple]:
    with db() as conn:
        return conn.execute(sql).fetchall()


def scalar(sql: str):
    return rows(sql)[0][0]


def raw_figures() -> dict:
    tables = (
        "counterparties",
        "contracts",
        "items",
        "price_types",
        "prices",
        "invoices",
        "bank_receipts",
        "cash_receipts",
        "receivables_balance",
    )
    with db() as conn:
        out = {t: conn.execute(f"SELECT count(*) FROM onec.{t}").fetchall()[0][0] for t in tables}
        out["balance_total"] = conn.execute('SELECT sum("СуммаBalance") FROM onec.receivables_balance').fetchall()[0][0]
        out["paid_total"] = conn.execute('SELECT sum("СуммаДокумента") FROM onec.bank_receipts').fetchall()[0][0]
        out["refs"] = {r[0] for r in conn.execute('SELECT "Ref_Key" FROM onec.counterparties').fetchall()}
        out["types"] = {
            t: conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'onec' AND table_name = ? AND column_name "
                "NOT LIKE '\\_%' ESCAPE '\\'",
                [t],
            ).fetchall()
            for t in tables
        }
    return out


def test_exchange_tables_match_odata_and_feed_client_master_and_receivables(
    world, sandbox, run_assets, monkeypatch, tmp_path
):
    run_assets(RAW)
    odata = raw_figures()

    monkeypatch.delenv("ONEC_ODATA_URL")
    monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(tmp_path / "exchange.duckdb"))
    age(write_exchange_files(world, os.environ["ONEC_EXCHANGE_DIR"]))
    result = run_assets(RAW | dg.AssetSelection.groups("bitrix24_raw", "client_master", "receivables"))
    assert result.success
    exchange = raw_figures()

    for key in (
        "counterparties",
        "contracts",
        "items",
        "price_types",
        "prices",
        "invoices",
        "bank_receipts",
        "cash_receipts",
        "refs",
        "paid_total",
    ):
        assert exchange[key] == odata[key], key
    assert exchange["balance_total"] == odata["balance_total"]  # to the kopeck: both DECIMAL
    for table, columns in odata["types"].items():  # every OData column exists with the same SQL type
        have = dict(exchange["types"][table])
        for name, sql_type in columns:
            if sql_type != '"NULL"':
                assert have.get(name) == sql_type, (table, name)
    # the blocking balance check passed on the derived movements, and clients got their receivables
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "balance_equals_1c"]
    assert checks and all(c.passed for c in checks)
    assert scalar("SELECT count(*) FROM client_master.clients WHERE onec_ref IS NOT NULL") > 0
    assert scalar("SELECT sum(balance) FROM receivables.receivables_snapshot") == odata["balance_total"]
    assert scalar("SELECT count(*) FROM onec.shipments") == 0  # not in the format: empty, said in metadata
    processed = sorted(p.name for p in (Path(os.environ["ONEC_EXCHANGE_DIR"]) / "processed").iterdir())
    assert processed == sorted(
        ["counterparties.json", "invoices.json", "payments.json", "receivables.json", "import.xml", "offers.xml"]
    )


@pytest.mark.parametrize(
    "options", [{"bom": True}, {"encoding": "windows-1251"}, {"encoding": "windows-1251", "xml_declaration": False}]
)
def test_bom_and_windows_1251_files_load_the_same_text(world, exchange_dir, run_assets, options):
    age(write_exchange_files(world, exchange_dir, **options))
    run_assets(COUNTERPARTIES | dg.AssetSelection.assets(["onec", "items"]))
    names = {r[0] for r in rows('SELECT "Description" FROM onec.counterparties')}
    assert names == {r["Description"] for r in counterparty_records(world)}
    assert scalar('SELECT count(*) FROM onec.items WHERE "Description" = ' + repr(world.items[0].name)) == 1


def test_truncated_file_is_rejected_whole_with_a_reason(world, exchange_dir, run_assets):
    paths = write_exchange_files(world, exchange_dir)
    parties = exchange_dir / "counterparties.json"
    data = parties.read_bytes()
    parties.write_bytes(data[: len(data) // 2])
    age(paths)
    result = run_assets(COUNTERPARTIES)
    assert result.success
    assert (exchange_dir / "rejected" / "counterparties.json").exists()
    reason = (exchange_dir / "rejected" / "counterparties.json.reason.txt").read_text("utf-8")
    assert "truncated" in reason
    assert scalar("SELECT count(*) FROM onec.counterparties") == 0  # nothing of it loaded
    assert scalar("SELECT count(*) FROM onec_exchange.files WHERE status = 'rejected'") == 1
    assert (exchange_dir / "processed" / "invoices.json").exists()  # the other files went on


def world_counterparties(folder: Path) -> list:
    return json.loads((folder / "processed" / "counterparties.json").read_text("utf-8"))["records"]


def test_same_file_dropped_twice_is_loaded_once(world, exchange_dir, run_assets):
    age(write_exchange_files(world, exchange_dir))
    run_assets(COUNTERPARTIES)
    shutil.copy(exchange_dir / "processed" / "counterparties.json", exchange_dir / "counterparties-again.json")
    age([exchange_dir / "counterparties-again.json"])
    run_assets(COUNTERPARTIES)
    assert (exchange_dir / "duplicates" / "counterparties-again.json").exists()
    assert scalar("SELECT count(*) FROM onec_exchange.files WHERE file_type = 'counterparties'") == 1
    assert scalar("SELECT count(*) FROM onec.counterparties") == len(world_counterparties(exchange_dir))


def test_bad_rows_go_to_quality_rejects_and_good_rows_load(world, exchange_dir, run_assets):
    paths = write_exchange_files(world, exchange_dir)
    target = exchange_dir / "counterparties.json"
    doc = json.loads(target.read_text("utf-8"))
    good = len(doc["records"])
    doc["records"][0]["Description"] = None  # required field missing
    doc["records"][1]["Ref_Key"] = "not-a-guid"  # broken key
    bad_ref = doc["records"][0]["Ref_Key"]
    target.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    age(paths)
    run_assets(COUNTERPARTIES)
    assert scalar("SELECT count(*) FROM onec.counterparties") == good - 2
    assert scalar(f"SELECT count(*) FROM onec.counterparties WHERE \"Ref_Key\" = '{bad_ref}'") == 0
    rules = [
        r[0]
        for r in rows("SELECT rule FROM quality.rejects WHERE \"table\" = 'onec_exchange.counterparties' ORDER BY rule")
    ]
    assert len(rules) == 2 and any("Description is missing" in r for r in rules)
    assert (exchange_dir / "processed" / "counterparties.json").exists()


def test_newer_file_replaces_rows_by_key_and_receivables_by_snapshot(world, exchange_dir, run_assets):
    age(write_exchange_files(world, exchange_dir))
    run_assets(RAW)
    before = scalar('SELECT sum("СуммаBalance") FROM onec.receivables_balance')
    doc = json.loads((exchange_dir / "processed" / "receivables.json").read_text("utf-8"))
    doc["records"] = doc["records"][:1]
    doc["record_count"] = 1
    doc["records"][0]["СуммаBalance"] = "100.01"
    (exchange_dir / "receivables-2.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    age([exchange_dir / "receivables-2.json"])
    run_assets(RAW)
    assert before != Decimal("100.01")
    assert scalar('SELECT sum("СуммаBalance") FROM onec.receivables_balance') == Decimal("100.01")
    assert scalar("SELECT count(*) FROM onec.counterparties") > 0  # untouched by a receivables-only file
