"""The analyst views after a real sync on the sandbox, the ops CLI, and the run-failure sensor."""

from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from b24_1c_assets import dead_letters
from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.defs.analytics.assets import run_failure_alert
from b24_1c_assets.defs.analytics.runs import redact, run_tags, trigger_of
from b24_1c_assets.runner import run_full_sync
from b24_1c_assets.warehouse import query

PUSH_AGAIN = ["crm_push/company_receivables_plan", "crm_push/company_receivables", "analytics/views"]


def company_updates(portal, company_id=None) -> int:
    return sum(
        cmd.startswith("crm.company.update")
        and (company_id is None or f"id={company_id}&" in cmd or cmd.endswith(f"id={company_id}"))
        for e in portal.request_log
        for cmd in e.get("commands", [])
    )


@pytest.fixture
def synced(sandbox, tmp_path, monkeypatch):
    """A full sync on the sandbox (views included); returns the DuckDB path."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return str(tmp_path / "b24_1c.duckdb")


def test_views_agree_with_the_sync_and_see_a_crm_debt_edited_by_hand(sandbox, synced, run_assets):
    with duckdb.connect(synced, read_only=True) as conn:
        pushed_ok = {
            k
            for (k,) in conn.execute(
                "SELECT key FROM sync.results WHERE flow = 'company_receivables' AND status = 'ok'"
            ).fetchall()
        }
        balance = query(conn, "SELECT * FROM analytics.balance_reconciliation")
        clients = dict(
            conn.execute("SELECT match_status, count(*) FROM analytics.client_reconciliation GROUP BY 1").fetchall()
        )
        linked = conn.execute(
            "SELECT count(*) FROM client_master.clients WHERE onec_ref IS NOT NULL AND company_id IS NOT NULL"
        ).fetchone()[0]
        orders_total = conn.execute(
            'SELECT sum("СуммаДокумента") FROM onec.customer_orders WHERE "Posted" AND NOT "DeletionMark"'
        ).fetchone()[0]
        revenue_orders = conn.execute("SELECT sum(orders_amount) FROM analytics.revenue_reconciliation").fetchone()[0]
        won = conn.execute("SELECT sum(deals_won) FROM analytics.revenue_reconciliation").fetchone()[0]
        won_raw = conn.execute("SELECT count(*) FROM bitrix24.deals WHERE \"STAGE_SEMANTIC_ID\" = 'S'").fetchone()[0]
        buckets = conn.execute("SELECT sum(amount) FROM analytics.portfolio_aging").fetchone()[0]
        aging_total = conn.execute(
            "SELECT sum(aging_current + aging_1_30 + aging_31_60 + aging_61_90 + aging_90_plus) "
            "FROM analytics.client_aging"
        ).fetchone()[0]
    assert pushed_ok
    in_crm = balance[balance["company_id"].notna()]
    assert set(in_crm["company_id"].astype(int).astype(str)) == pushed_ok
    assert set(in_crm["status"]) == {"equal"} and (in_crm["difference"] == 0).all()
    assert set(balance.loc[balance["company_id"].isna(), "status"]) <= {"only_1c"}
    assert clients["matched"] == linked
    assert revenue_orders == orders_total and won == won_raw and buckets == aging_total

    # A manager overwrites one company's debt in the CRM; the next extract shows it stale by the right amount.
    company = int(in_crm.sort_values("onec_balance").iloc[-1]["company_id"])
    onec_balance = in_crm.set_index(in_crm["company_id"].astype(int)).loc[company, "onec_balance"]
    client = Bitrix24Client(sandbox.portal.webhook_url, rate=50, burst=50)
    client.call("crm.company.update", {"id": company, "fields": {"UF_CRM_DEBT_SUM": 1234.56}})
    assert run_assets(["bitrix24/companies", "analytics/views"]).success
    with duckdb.connect(synced, read_only=True) as conn:
        rows = query(
            conn,
            "SELECT company_id, status, crm_debt, difference FROM analytics.balance_reconciliation "
            "WHERE status <> 'only_1c'",
        )
    stale = rows[rows["status"] == "crm_stale"]
    assert list(stale["company_id"]) == [company]
    assert stale.iloc[0]["crm_debt"] == Decimal("1234.56")
    assert stale.iloc[0]["difference"] == Decimal("1234.56") - onec_balance
    assert (rows["status"] != "crm_missing").all()


def test_a_row_failing_three_runs_is_a_dead_letter_and_replay_resends_only_it(sandbox, synced, run_assets, capsys):
    with duckdb.connect(synced, read_only=True) as conn:
        keys = [
            k
            for (k,) in conn.execute(
                "SELECT key FROM sync.push_state WHERE flow = 'company_receivables' ORDER BY CAST(key AS INT) LIMIT 2"
            ).fetchall()
        ]
    healthy, doomed = keys
    before = company_updates(sandbox.portal)

    # Replay of one healthy key: its baseline is cleared and only it is written again.
    assert (
        dead_letters.main(
            ["--db", synced, "replay", "--flow", "company_receivables", "--key", healthy, "--materialize"]
        )
        == 0
    )
    assert company_updates(sandbox.portal) == before + 1
    assert "baseline cleared for 1 key(s) (1 row(s))" in capsys.readouterr().out

    # The CRM company is deleted by hand: every push of it fails from now on.
    Bitrix24Client(sandbox.portal.webhook_url, rate=50, burst=50).call("crm.company.delete", {"id": int(doomed)})
    assert dead_letters.main(["--db", synced, "replay", "--flow", "company_receivables", "--key", doomed]) == 0
    for attempt in range(3):
        assert run_assets(PUSH_AGAIN).success
        with duckdb.connect(synced, read_only=True) as conn:
            letters = query(conn, "SELECT * FROM analytics.dead_letters")
        assert list(letters["key"]) == ([doomed] if attempt == 2 else [])
    letter = letters.iloc[0]
    assert letter["flow"] == "company_receivables" and letter["failures"] == 3 and letter["last_error"]
    assert letter["replay_command"].endswith(f"--flow company_receivables --key '{doomed}'")
    capsys.readouterr()
    assert dead_letters.main(["--db", synced, "list"]) == 0
    out = capsys.readouterr().out
    assert doomed in out and "replay --flow company_receivables" in out
    assert sandbox.portal.webhook_url.split("/rest/")[1] not in out  # no webhook code in what ops read


def failing_run(instance, message: str) -> dg.DagsterRun:
    @dg.op
    def push_step():
        raise RuntimeError(message)

    @dg.job
    def nightly_push():
        push_step()

    result = nightly_push.execute_in_process(
        instance=instance, raise_on_error=False, tags=run_tags("company_receivables", "schedule")
    )
    assert not result.success
    return result.dagster_run


def test_a_failed_run_is_recorded_without_secrets_and_alerts_the_ops_user(sandbox, tmp_path):
    from b24_1c_assets.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    secret_url = sandbox.portal.webhook_url + "crm.company.update"
    run = failing_run(instance, f"POST {secret_url} refused; header Authorization: Basic aW50ZWdyYXRpb246cHc=")
    failure = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure.event_log_entry.dagster_event,
        resources=defs().resources,
    ).for_run_failure()
    run_failure_alert(context)

    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            'SELECT run_id, job_name, flow, "trigger", failed_steps, error, notified, '
            "notified_user_ids FROM ops.run_failures"
        ).fetchall()
    assert len(rows) == 1
    run_id, job, flow, trigger, steps, error, notified, users = rows[0]
    assert (run_id, job, flow, trigger, steps) == (
        run.run_id,
        "nightly_push",
        "company_receivables",
        "schedule",
        "push_step",
    )
    code = sandbox.portal.webhook_url.rstrip("/").rsplit("/", 1)[1]
    assert "refused" in error and code not in error and "aW50ZWdyYXRpb246cHc" not in error
    assert notified and users == "1"
    alerts = [n for n in sandbox.portal.state.notifications if n["USER_ID"] == 1 and "nightly_push" in n["MESSAGE"]]
    assert len(alerts) == 1 and code not in alerts[0]["MESSAGE"] and "push_step" in alerts[0]["MESSAGE"]


def test_redaction_and_trigger_helpers():
    assert (
        redact("GET https://x.bitrix24.ru/rest/12/abc123def/crm.deal.list")
        == "GET https://x.bitrix24.ru/rest/12/***/crm.deal.list"
    )
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic ***"
    assert redact("http://user:pw@1c.local/odata?auth=tok") == "http://***@1c.local/odata?auth=***"
    assert trigger_of({"dagster/schedule_name": "nightly"}) == "schedule:nightly"
    assert trigger_of(run_tags("f", "sensor")) == "sensor" and trigger_of({}) == "manual"


def test_every_job_carries_a_flow_tag():
    from b24_1c_assets.definitions import defs

    loaded = defs()
    for job in loaded.jobs or []:
        resolved = loaded.resolve_job_def(job.name)
        assert resolved.tags.get("flow"), job.name
