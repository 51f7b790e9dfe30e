"""Receivables reach CRM company fields: only changes are written, and a broken export is stopped."""

from decimal import Decimal

import dagster as dg
import duckdb

from b24_1c_assets.lib.push_flow import DRY_RUN_TAG, GUARD_OVERRIDE_TAG

UPSTREAM = dg.AssetSelection.groups("bitrix24_raw", "onec_raw", "client_master", "receivables")
PUSH = UPSTREAM | dg.AssetSelection.groups("crm_push")
SETTLEMENTS = "AccumulationRegister_РасчетыСПокупателями"


def company_updates(portal) -> int:
    return sum(cmd.startswith("crm.company.update") for e in portal.request_log for cmd in e.get("commands", []))


def test_push_writes_each_linked_company_once_and_a_rerun_writes_nothing(sandbox, run_assets, tmp_path):
    assert run_assets(PUSH).success
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        pushed = conn.execute("SELECT key, status FROM sync.results WHERE flow = 'company_receivables'").fetchall()
        company, balance, status = conn.execute(
            "SELECT company_id, balance, status FROM receivables.client_credit_status "
            "WHERE company_id IS NOT NULL ORDER BY balance DESC LIMIT 1"
        ).fetchone()
    assert pushed and {s for _, s in pushed} == {"ok"}
    card = sandbox.portal.state.record("company", int(company))
    assert Decimal(str(card["UF_CRM_DEBT_SUM"])) == balance and card["UF_CRM_CREDIT_STATUS"] == status
    writes = company_updates(sandbox.portal)
    assert writes == len(pushed)

    assert run_assets(PUSH).success
    assert company_updates(sandbox.portal) == writes  # nothing changed: zero write calls


def test_a_broken_export_zeroing_debts_is_stopped_until_overridden(sandbox, run_assets):
    assert run_assets(PUSH).success
    writes = company_updates(sandbox.portal)
    register = sandbox.onec.state.registers[SETTLEMENTS]
    for recorder in list(register.by_recorder):  # 1C now "exports" no settlements at all
        register.remove(recorder)

    blocked = run_assets(PUSH, raise_on_error=False)
    assert not blocked.success
    guard = [e for e in blocked.get_asset_check_evaluations() if e.check_name == "push_guard"]
    assert guard and not guard[0].passed and "zero debt" in (guard[0].description or "")
    assert company_updates(sandbox.portal) == writes  # nothing written

    forced = run_assets(PUSH, tags={GUARD_OVERRIDE_TAG: "1C migration: balances really were closed"})
    assert forced.success and company_updates(sandbox.portal) > writes


def test_a_dry_run_writes_nothing_and_moves_no_baseline(sandbox, run_assets, tmp_path):
    assert run_assets(PUSH, tags={DRY_RUN_TAG: "true"}).success
    assert company_updates(sandbox.portal) == 0  # Bitrix24 writes are live by default; the run tag says dry
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        journaled = dict(conn.execute("SELECT flow, count(*) FROM sync.results WHERE dry_run GROUP BY 1").fetchall())
        live = conn.execute("SELECT count(*) FROM sync.results WHERE NOT dry_run").fetchone()[0]
    assert journaled.get("company_receivables", 0) > 0 and live == 0
    assert run_assets(PUSH).success  # the next live run writes them all: the dry run advanced no baseline
    assert company_updates(sandbox.portal) == journaled["company_receivables"]
