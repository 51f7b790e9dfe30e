"""1C invoices and payments -> CRM smart invoices against the sandbox."""

from decimal import Decimal

import dagster as dg
import duckdb

UPSTREAM = dg.AssetSelection.groups("client_master") | dg.AssetSelection.assets(
    ["onec", "invoices"],
    ["onec", "invoice_payments"],
    ["onec", "customer_orders"],
    ["onec", "counterparties"],
    ["bitrix24", "smart_invoices"],
    ["bitrix24", "companies"],
    ["bitrix24", "requisites"],
)
FLOW = dg.AssetSelection.groups("invoice_sync")


def item_writes(log):
    methods = [m for e in log for m in (e.get("commands") or [e.get("method")])]
    return [m for m in methods if str(m).lower() in ("crm.item.add", "crm.item.update")]


def by_xml(state):
    return {r["xmlId"]: r for r in state.invoices.rows.values() if r.get("xmlId")}


def test_invoices_land_with_payment_stage_rerun_writes_nothing_and_a_payment_moves_one(sandbox, run_flow, tmp_path):
    world, state = sandbox.world, sandbox.portal.state
    prefix = f"DT31_{state.default_invoice_category}:"  # the portal's pipeline id (not 1), read by the flow
    assert run_flow(UPSTREAM | FLOW).success
    crm = by_xml(state)
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM sync.results GROUP BY 1").fetchall())
        linked = {
            r
            for (r,) in conn.execute(
                "SELECT onec_ref FROM client_master.clients WHERE onec_ref IS NOT NULL AND company_id IS NOT NULL"
            ).fetchall()
        }
    posted = [i for i in world.invoices if i.posted]
    expected = [i for i in posted if world.guid("counterparty", i.party_key) in linked]
    assert len(crm) == len(expected) > 0
    assert statuses.get("failed", 0) == 0 and statuses.get("rejected", 0) == len(posted) - len(expected)
    paid = {}
    for p in world.payments:
        if p.posted and p.invoice_key is not None:
            paid[p.invoice_key] = paid.get(p.invoice_key, Decimal(0)) + p.amount
    for invoice in expected:
        record = crm[world.guid("invoice", invoice.key)]
        got = paid.get(invoice.key, Decimal(0))
        stage = prefix + ("P" if got >= invoice.amount else "S" if got > 0 else "N")
        assert record["stageId"] == stage, invoice
        assert float(record["opportunity"]) == float(invoice.amount)
        assert record["companyId"]
    assert any(r["stageId"] == prefix + "P" for r in crm.values())
    paid_field = "UF_CRM_SMART_INVOICE_ONEC_PAID"  # created with userfieldconfig.add, written, read back
    assert paid_field in state.invoice_userfields
    for invoice in expected:
        got = min(paid.get(invoice.key, Decimal(0)), invoice.amount)
        assert Decimal(str(crm[world.guid("invoice", invoice.key)][paid_field])) == got

    before = len(sandbox.portal.request_log)
    assert run_flow(UPSTREAM | FLOW).success
    assert item_writes(sandbox.portal.request_log[before:]) == []


def test_invoice_crash_rerun_no_twins_and_dry_run_writes_nothing(sandbox, run_flow, tmp_path):
    state = sandbox.portal.state
    before = len(sandbox.portal.request_log)
    assert run_flow(UPSTREAM | FLOW, tags={"b24_1c/dry_run": "true"}).success
    assert item_writes(sandbox.portal.request_log[before:]) == [] and not state.invoices.rows
    assert run_flow(UPSTREAM | FLOW).success
    created = len(state.invoices.rows)
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb")) as conn:
        conn.execute("DELETE FROM sync.push_state")
        conn.execute("DELETE FROM bitrix24.smart_invoices")
    assert run_flow(FLOW).success
    assert len(state.invoices.rows) == created == len(by_xml(state))

    # a new payment moves one invoice to paid, and only that one is written
    prefix = f"DT31_{state.default_invoice_category}:"
    record = next(r for r in by_xml(state).values() if r["stageId"] == prefix + "N")
    store = sandbox.onec.state.registers["AccumulationRegister_ОплатаСчетовИЗаказов"]
    # recorded today-ish (inside the incremental extract's overlap), as a new payment is
    row = dict(
        store.by_recorder[record["xmlId"]][0],
        Сумма=Decimal(0),
        СуммаОплаты=Decimal(str(record["opportunity"])),
        Recorder="11111111-2222-3333-4444-555555555555",
        Period=sandbox.world.as_of.isoformat(),
    )
    store.put(row["Recorder"], [row])
    before = len(sandbox.portal.request_log)
    assert run_flow(UPSTREAM | FLOW).success
    assert item_writes(sandbox.portal.request_log[before:]) == ["crm.item.update"]
    assert by_xml(state)[record["xmlId"]]["stageId"] == prefix + "P"
