"""A partial 1C publication: counterparties, contracts and the settlements register published, prices, payments
and shipments not. What needs a missing object is skipped saying which and how to publish it; receivables
still reach the CRM."""

import dagster as dg
import duckdb
import pytest

from b24_1c_assets import runner
from b24_1c_assets.runner import run_full_sync
from b24_1c_assets_tests.conftest import both_onec_profiles

UNPUBLISHED = [
    "InformationRegister_ЦеныНоменклатуры",
    "Document_ПоступлениеНаСчет",
    "Document_ПоступлениеВКассу",
    "Document_РасходнаяНакладная",
]


pytestmark = both_onec_profiles


@pytest.fixture
def onec_options():
    return {"unpublished": UNPUBLISHED}


def test_partial_publication_skips_what_needs_the_missing_objects_and_pushes_receivables(sandbox, tmp_path):
    result = run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    warned = {
        (e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations() if not e.passed
    }
    for table in ("prices", "bank_receipts", "cash_receipts", "shipments"):
        check = warned[(f"onec/{table}", "contract")]
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert "УстановитьСоставСтандартногоИнтерфейсаOData" in check.metadata["not_published"].value
    assert "ЦеныНоменклатуры" in warned[("onec/prices", "contract")].metadata["not_published"].value
    skipped = {
        m.asset_key.to_user_string(): m.metadata["skipped"].value
        for m in (e.event_specific_data.materialization for e in result.get_asset_materialization_events())
        if "skipped" in m.metadata
    }
    assert set(skipped) == {"crm_push/product_plan", "onec_push/order_plan"}
    assert "onec.prices" in skipped["crm_push/product_plan"] and "onec.shipments" in skipped["onec_push/order_plan"]

    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        pushed = conn.execute(
            "SELECT count(*) FROM sync.results WHERE flow = 'company_receivables' AND status = 'ok' AND NOT dry_run"
        ).fetchone()[0]
        catalog = conn.execute("SELECT count(*) FROM sync.results WHERE flow = 'catalog_to_crm'").fetchone()[0]
        orders = conn.execute("SELECT count(*) FROM sync.results WHERE flow = 'deals_to_onec_orders'").fetchone()[0]
        invoices = conn.execute("SELECT count(*) FROM sync.results WHERE flow = 'invoices_to_crm'").fetchone()[0]
    assert pushed > 0  # debts reached the CRM
    assert catalog == 0 and orders == 0 and invoices > 0  # skipped flows wrote nothing; invoices were published

    report = runner.business_report(result.run_id, str(tmp_path / "b24_1c.duckdb"))
    assert "1C objects not published" in report and "onec.prices" in report
    assert "flows skipped: catalog_sync, order_sync" in report
