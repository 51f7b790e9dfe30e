"""The deal push against a 1C publication without VAT rates (Catalog_СтавкиНДС): no order UNF would refuse
to post is written; every row says which object to publish."""

import duckdb
import pytest

from b24_1c_assets_tests.defs.order_sync.test_order_assets import FLOW, UPSTREAM, onec_writes, orders_by_deal


@pytest.fixture
def onec_options():
    return {"unpublished": ["Catalog_СтавкиНДС"]}


def test_without_vat_rates_published_no_order_is_written_and_each_row_says_why(sandbox, run_flow, tmp_path):
    before = len(sandbox.onec.request_log)
    assert run_flow(UPSTREAM | FLOW).success
    assert not orders_by_deal(sandbox)
    assert [e for e in onec_writes(sandbox, before)] == []
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        failed = conn.execute(
            "SELECT error FROM sync.results WHERE flow = 'deals_to_onec_orders' AND status = 'failed'"
        ).fetchall()
    assert failed and all("СтавкиНДС" in e and "УстановитьСоставСтандартногоИнтерфейсаOData" in e for (e,) in failed)
