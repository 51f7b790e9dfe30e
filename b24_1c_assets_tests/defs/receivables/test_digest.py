import dagster as dg
import duckdb

SELECTION = dg.AssetSelection.groups("bitrix24_raw", "onec_raw", "client_master", "receivables", "crm_push")


def test_finance_digest_goes_to_finance_once_a_day(sandbox, run_assets, tmp_path):
    finance = {u.id for u in sandbox.world.users if u.department == "finance"}
    assert run_assets(SELECTION).success
    assert run_assets(SELECTION).success
    digests = [n for n in sandbox.portal.state.notifications if n["MESSAGE"].startswith("Дебиторская задолженность")]
    assert {n["USER_ID"] for n in digests} == finance and len(digests) == len(finance)
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        text, sent = conn.execute("SELECT text, sent FROM receivables.finance_digest").fetchone()
    assert sent and "Клиентов на стопе" in text
