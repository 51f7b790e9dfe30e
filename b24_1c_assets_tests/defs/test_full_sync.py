"""The whole product against the sandbox, as `make demo` runs it."""

import duckdb
import dagster as dg

from b24_1c_assets.domain.order_sync import deal_of_comment
from b24_1c_assets.runner import run_full_sync
from b24_1c_assets_tests.conftest import both_onec_profiles


def test_full_sync_runs_on_the_sandbox_and_lands_every_table(sandbox, tmp_path):
    result = run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        companies = conn.execute("SELECT count(*) FROM bitrix24.companies").fetchone()[0]
        counterparties = conn.execute("SELECT count(*) FROM onec.counterparties").fetchone()[0]
        rules = dict(conn.execute("SELECT match_rule, count(*) FROM client_master.clients GROUP BY 1").fetchall())
        statuses = dict(conn.execute("SELECT status, count(*) FROM receivables.client_credit_status GROUP BY 1").fetchall())
        # companies the run created for 1C-only clients already carry their invoices in the same run
        orphan_invoices = conn.execute(
            "SELECT count(*) FROM sync.results r JOIN sync.push_state p ON p.flow = 'company_sync.to_crm' "
            "AND r.error LIKE '%counterparty ' || p.key || ' has no CRM company%' "
            "WHERE r.flow = 'invoices_to_crm' AND r.status = 'rejected'").fetchone()[0]
        created = conn.execute("SELECT count(*) FROM sync.results WHERE flow = 'company_sync.to_crm' "
                               "AND operation = 'add' AND status = 'ok'").fetchone()[0]
    world = sandbox.world
    assert companies == sum(len(p.crm_spellings) for p in world.parties)
    assert counterparties == sum(len(p.onec_spellings) for p in world.parties)
    assert rules.get("inn_kpp", 0) > 0 and rules.get("id_link", 0) > 0
    assert set(statuses) <= {"ok", "warning", "hold"} and sum(statuses.values()) > 0
    assert created > 0 and orphan_invoices == 0


def test_credit_limits_typed_in_the_crm_apply(sandbox, tmp_path):
    assert run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral()).success
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        limits = dict(conn.execute("SELECT inn || coalesce('-' || kpp, ''), credit_limit FROM "
                                   "receivables.client_credit_status WHERE company_id IS NOT NULL").fetchall())
    checked = 0
    for party in sandbox.world.parties:
        key = f"{party.inn}" + (f"-{party.kpp}" if party.kpp else "")
        # the agreed limit is typed on the party's CRM companies; a company the sync made has none
        if party.credit_limit is not None and party.crm_spellings and key in limits:
            assert limits[key] == party.credit_limit, key
            checked += 1
    assert checked > 0


@both_onec_profiles
def test_full_sync_creates_and_posts_orders_on_each_edition_and_a_rerun_writes_nothing_to_1c(sandbox, tmp_path,
                                                                                          onec_profile):
    """Issue 11: orders pass UNF's fill check at Post on UNF 3.0 and 1.6; the second run has nothing to write."""
    assert run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral()).success
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        outcome = dict(conn.execute("SELECT status, count(*) FROM sync.results WHERE flow = 'deals_to_onec_orders' "
                                    "AND NOT dry_run GROUP BY 1").fetchall())
        failed = conn.execute("SELECT key, error FROM sync.results WHERE flow = 'deals_to_onec_orders' "
                              "AND status = 'failed'").fetchall()
    assert outcome.get("ok", 0) > 0 and not failed, failed
    ours = [o for o in sandbox.onec.state.objects["Document_ЗаказПокупателя"].values()
            if deal_of_comment(o.get("Комментарий")) is not None and not o.get("DeletionMark")]
    assert ours and all(o["Posted"] for o in ours)
    before = len(sandbox.onec.request_log)
    assert run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral()).success
    writes = [(e["method"], e["path"]) for e in sandbox.onec.request_log[before:] if e["kind"] == "write"]
    assert writes == []
