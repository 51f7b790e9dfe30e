"""The analysts' copy: published last by every job, replaced by rename, never blocking a sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from b24_1c_assets.analytics_copy import publish
from b24_1c_assets.lib import tables
from b24_1c_assets.runner import run_full_sync

ANALYST_COPY = tables.ANALYST_COPY.key

HOLD = """
import duckdb, sys
conn = duckdb.connect(sys.argv[1], read_only=True)   # an analyst's DBeaver / notebook, kept open
for line in sys.stdin:
    print(conn.execute(line).fetchall(), flush=True)
"""


class Analyst:
    """A separate process holding one read-only connection to the copy (as DBeaver would)."""

    def __init__(self, path: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, sql: str) -> str:
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def test_full_sync_publishes_the_copy_while_an_analyst_holds_the_old_one_open(sandbox, tmp_path):
    copy = tmp_path / "analytics" / "b24_1c.duckdb"
    before = tmp_path / "before.duckdb"  # yesterday's state: one client, no run yet
    with duckdb.connect(str(before)) as conn:
        conn.execute("CREATE SCHEMA client_master; CREATE TABLE client_master.clients AS SELECT 1 AS client_id")
    publish(str(before), str(copy), run_id="yesterday")
    analyst = Analyst(copy)
    try:
        assert analyst.ask("SELECT count(*) FROM client_master.clients") == "[(1,)]"
        result = run_full_sync(trigger="test", instance=dg.DagsterInstance.ephemeral())
        assert result.success  # no writer waited on the analyst's connection
        assert ANALYST_COPY in {e.asset_key for e in result.get_asset_materialization_events()}
        # the open connection still answers, from the copy it opened
        assert analyst.ask("SELECT count(*) FROM client_master.clients") == "[(1,)]"
        assert analyst.ask("SELECT run_id FROM meta.publication") == "[('yesterday',)]"
    finally:
        analyst.close()
    with duckdb.connect(str(copy), read_only=True) as conn:  # a new connection sees this run
        assert conn.execute("SELECT run_id FROM meta.publication").fetchone()[0] == result.run_id
        clients = conn.execute("SELECT count(*) FROM client_master.clients").fetchone()[0]
        schemas = {s for (s,) in conn.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
        views = conn.execute("SELECT count(*) FROM analytics.balance_reconciliation").fetchone()[0]
        comment = conn.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name = 'analytics' AND table_name = 'client_aging'"
        ).fetchone()[0]
        statuses = conn.execute("SELECT count(*) FROM receivables.client_credit_status").fetchone()[0]
        results = conn.execute("SELECT count(*) FROM sync.results").fetchone()[0]
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        working_clients = conn.execute("SELECT count(*) FROM client_master.clients").fetchone()[0]
    assert clients == working_clients > 1 and views > 0 and statuses > 0 and results > 0 and comment
    assert schemas <= {"analytics", "client_master", "receivables", "sync", "quality", "ops", "meta"}  # no raw
    assert {"analytics", "client_master", "receivables", "sync", "quality", "meta"} <= schemas  # extracts
    assert sorted(p.name for p in copy.parent.iterdir()) == ["b24_1c.duckdb"]  # no temp file left behind


def test_the_copy_is_the_last_step_of_every_job(definitions):
    graph = definitions.resolve_asset_graph()
    for name in ("full_sync", "incremental_sync", "exchange_load"):
        job = definitions.resolve_job_def(name)
        selected = set(job.asset_layer.selected_asset_keys)
        assert ANALYST_COPY in selected, name
        parents = graph.get(ANALYST_COPY).parent_keys
        assert selected - {ANALYST_COPY} <= parents, name  # runs after everything else the job materializes


def test_a_failed_publication_leaves_the_old_copy(tmp_path):
    copy = tmp_path / "analytics" / "b24_1c.duckdb"
    work = tmp_path / "w.duckdb"
    with duckdb.connect(str(work)) as conn:
        conn.execute("CREATE SCHEMA quality; CREATE TABLE quality.rejects AS SELECT 'x' AS rule")
    publish(str(work), str(copy), run_id="good")
    try:
        publish(str(tmp_path / "missing.duckdb"), str(copy), run_id="bad")
    except duckdb.Error:
        pass
    else:
        raise AssertionError("publishing from a missing working file must fail")
    with duckdb.connect(str(copy), read_only=True) as conn:
        assert conn.execute("SELECT run_id FROM meta.publication").fetchone()[0] == "good"
    assert sorted(p.name for p in copy.parent.iterdir()) == ["b24_1c.duckdb"]
