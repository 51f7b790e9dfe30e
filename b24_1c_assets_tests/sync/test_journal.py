import json
from decimal import Decimal as D

import pandas as pd

from b24_1c_assets import warehouse
from b24_1c_assets.domain.push_plan import Status, plan_updates
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_writes import RowOutcome

FIELDS = ["debt"]


def test_failed_rows_come_back_and_successes_become_the_baseline(tmp_path):
    desired = pd.DataFrame([{"key": "1", "debt": D("10.00")}, {"key": "2", "debt": D("20.00")}])
    with warehouse.connect(str(tmp_path / "j.duckdb")) as conn:
        plan = plan_updates(desired, journal.last_pushed(conn, "f"), journal.failed_keys(conn, "f"), FIELDS)
        journal.record(
            conn,
            flow="f",
            run_id="run1",
            plan=plan,
            outcomes=[
                RowOutcome("1", "update", Status.OK),
                RowOutcome("2", "update", Status.FAILED, error="ERROR_CORE: bad", error_class="data"),
            ],
        )
        assert journal.failed_keys(conn, "f") == {"2"}
        baseline = journal.last_pushed(conn, "f")
        assert list(baseline["key"]) == ["1"] and json.loads(baseline.iloc[0]["payload"]) == {"debt": "10.00"}

        replan = plan_updates(desired, journal.last_pushed(conn, "f"), journal.failed_keys(conn, "f"), FIELDS)
        assert dict(zip(replan["key"], replan["operation"])) == {"1": "noop", "2": "update"}
        journal.record(
            conn,
            flow="f",
            run_id="run2",
            plan=replan[replan["operation"] == "update"],
            outcomes=[RowOutcome("2", "update", Status.OK)],
        )
        assert journal.failed_keys(conn, "f") == set()
        history = conn.execute(
            "SELECT run_id, key, status, error FROM sync.results ORDER BY recorded_at, key"
        ).fetchall()
    assert history == [("run1", "1", "ok", None), ("run1", "2", "failed", "ERROR_CORE: bad"), ("run2", "2", "ok", None)]


def test_dry_run_is_journaled_but_moves_no_baseline(tmp_path):
    desired = pd.DataFrame([{"key": "1", "debt": D("10.00")}])
    with warehouse.connect(str(tmp_path / "j.duckdb")) as conn:
        plan = plan_updates(desired, journal.last_pushed(conn, "f"), set(), FIELDS)
        journal.record(
            conn, flow="f", run_id="dry", plan=plan, outcomes=[RowOutcome("1", "update", Status.OK)], dry_run=True
        )
        assert journal.last_pushed(conn, "f").empty
        assert conn.execute("SELECT count(*) FROM sync.results WHERE dry_run").fetchall() == [(1,)]
