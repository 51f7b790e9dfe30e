"""The whole product against the sandbox, as `make demo` runs it."""

from decimal import Decimal

import dagster as dg
import duckdb

from b24_1c_assets.defs.receivables.assets import BALANCE_CHECK
from b24_1c_assets.domain.order_sync import deal_of_comment
from b24_1c_assets.runner import run_full_sync
from b24_1c_assets_tests.conftest import both_onec_profiles
from b24_1c_assets_tests.defs.receivables import test_snapshot_editions as editions


def test_full_sync_runs_on_the_sandbox_and_lands_every_table(sandbox, tmp_path):
    result = run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        companies = conn.execute("SELECT count(*) FROM bitrix24.companies").fetchone()[0]
        counterparties = conn.execute("SELECT count(*) FROM onec.counterparties").fetchone()[0]
        rules = dict(conn.execute("SELECT match_rule, count(*) FROM client_master.clients GROUP BY 1").fetchall())
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM receivables.client_credit_status GROUP BY 1").fetchall()
        )
        # companies the run created for 1C-only clients already carry their invoices in the same run
        orphan_invoices = conn.execute(
            "SELECT count(*) FROM sync.results r JOIN sync.push_state p ON p.flow = 'company_sync.to_crm' "
            "AND r.error LIKE '%counterparty ' || p.key || ' has no CRM company%' "
            "WHERE r.flow = 'invoices_to_crm' AND r.status = 'rejected'"
        ).fetchone()[0]
        created = conn.execute(
            "SELECT count(*) FROM sync.results WHERE flow = 'company_sync.to_crm' "
            "AND operation = 'add' AND status = 'ok'"
        ).fetchone()[0]
    world = sandbox.world
    assert companies == sum(len(p.crm_spellings) for p in world.parties)
    assert counterparties == sum(len(p.onec_spellings) for p in world.parties)
    assert rules.get("inn_kpp", 0) > 0 and rules.get("id_link", 0) > 0
    assert set(statuses) <= {"ok", "warning", "hold"} and sum(statuses.values()) > 0
    assert created > 0 and orphan_invoices == 0


def test_credit_limits_typed_in_the_crm_apply(sandbox, tmp_path):
    assert run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral()).success
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        limits = dict(
            conn.execute(
                "SELECT inn || coalesce('-' || kpp, ''), credit_limit FROM "
                "receivables.client_credit_status WHERE company_id IS NOT NULL"
            ).fetchall()
        )
    checked = 0
    for party in sandbox.world.parties:
        key = f"{party.inn}" + (f"-{party.kpp}" if party.kpp else "")
        # the agreed limit is typed on the party's CRM companies; a company the sync made has none
        if party.credit_limit is not None and party.crm_spellings and key in limits:
            assert limits[key] == party.credit_limit, key
            checked += 1
    assert checked > 0


CRM_WRITES = (".add", ".update", ".set", ".delete")


def crm_writes(log) -> list[str]:
    methods = [m for e in log for m in (e.get("commands") or [e.get("method")])]
    return [str(m) for m in methods if str(m).lower().endswith(CRM_WRITES) and str(m).lower().startswith("crm.")]


@both_onec_profiles
def test_full_sync_on_each_edition_settles_with_1c_and_a_rerun_writes_nothing(sandbox, tmp_path, onec_profile):
    """Issue 11 done-when, on UNF 3.0 and 1.6 from a clean start: the snapshot equals 1C's own Balance per client to
    the kopeck (deactivated movements present), debts reach the CRM, orders are created and posted (UNF's fill check
    passed), invoice payment states arrive; the second run writes nothing to either system."""
    result = run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[BALANCE_CHECK].passed and checks[BALANCE_CHECK].metadata["compared"].value > 0
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        ours = editions.snapshot_by_counterparty(conn)
        inactive = conn.execute('SELECT count(*) FROM onec.settlement_movements WHERE NOT "Active"').fetchone()[0]
        debts = conn.execute(
            "SELECT company_id, balance FROM receivables.client_credit_status WHERE company_id IS NOT NULL"
        ).fetchall()
        outcome = dict(
            conn.execute(
                "SELECT status, count(*) FROM sync.results WHERE flow = 'deals_to_onec_orders' "
                "AND NOT dry_run GROUP BY 1"
            ).fetchall()
        )
        failed = conn.execute(
            "SELECT key, error FROM sync.results WHERE flow = 'deals_to_onec_orders' AND status = 'failed'"
        ).fetchall()
    assert inactive > 0
    theirs = editions.onec_balance_by_counterparty(sandbox.onec)
    assert {k: v for k, v in ours.items() if v} == {k: v for k, v in theirs.items() if v}

    assert debts
    for company_id, balance in debts:  # one linked company each (duplicates push to their survivor only)
        card = sandbox.portal.state.record("company", int(company_id))
        assert Decimal(str(card["UF_CRM_DEBT_SUM"])) == balance, company_id

    assert outcome.get("ok", 0) > 0 and not failed, failed
    ours_orders = [
        o
        for o in sandbox.onec.state.objects["Document_ЗаказПокупателя"].values()
        if deal_of_comment(o.get("Комментарий")) is not None and not o.get("DeletionMark")
    ]
    assert ours_orders and all(o["Posted"] for o in ours_orders)

    invoices = [r for r in sandbox.portal.state.invoices.rows.values() if r.get("xmlId")]
    paid_stage = f"DT31_{sandbox.portal.state.default_invoice_category}:P"
    assert invoices and any(r["stageId"] == paid_stage for r in invoices)  # payments reached the CRM

    onec_before, portal_before = len(sandbox.onec.request_log), len(sandbox.portal.request_log)
    assert run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral()).success
    writes = [(e["method"], e["path"]) for e in sandbox.onec.request_log[onec_before:] if e["kind"] == "write"]
    assert writes == []
    assert crm_writes(sandbox.portal.request_log[portal_before:]) == []
