"""The Dagster UI a data engineer opens, checked in headless Chromium.

A real `dagster-webserver` serves this code location over an instance that already holds one run (an
extract materialized against the sandbox); Chromium renders the pages (the UI is a React app fed over
GraphQL) and the rendered text must show the asset groups and keys, the asset's metadata and the run's events.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests

from b24_1c_assets_tests.ui.chromium import BINARY, Browser

ASSET = "bitrix24/companies"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(BINARY is None, reason="chromium is not installed (apt-get install chromium chromium-driver)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def webserver(sandbox, tmp_path, monkeypatch):
    """dagster-webserver over this code location and a fresh instance in tmp_path; yields (url, instance)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    # No onboarding pop-up over the pages, no telemetry.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.from_config(str(home))
    # Its SQLite storages created here, before the webserver would race us creating the same tables.
    instance.get_runs(limit=1), instance.all_instigator_state(), instance.get_asset_keys()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-m",
            "b24_1c_assets.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # so the code server it spawns stops with it
    try:
        yield f"http://127.0.0.1:{port}", instance
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def wait_until_up(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"dagster-webserver not up at {url} after {seconds} s")


def materialize_into(instance: dg.DagsterInstance, key: str) -> dg.ExecuteInProcessResult:
    """One asset (and its checks) run in this process, recorded in `instance`."""
    from b24_1c_assets.definitions import defs

    loaded = defs()
    return dg.materialize(
        [*loaded.assets, *loaded.asset_checks],
        resources=loaded.resources,
        instance=instance,
        selection=dg.AssetSelection.assets(dg.AssetKey.from_user_string(key)),
    )


def test_the_ui_shows_groups_asset_metadata_and_the_run(webserver, tmp_path):
    url, instance = webserver
    # Materialized while the webserver loads the code location: both take seconds, neither needs the other.
    result = materialize_into(instance, ASSET)
    assert result.success
    with duckdb.connect(os.environ["B24_1C_DUCKDB_PATH"], read_only=True) as conn:
        rows, first_title = conn.execute(
            "SELECT count(*), min_by(TITLE, CAST(ID AS INT)) FROM bitrix24.companies"
        ).fetchone()
    wait_until_up(url)

    with Browser(tmp_path / "profile") as browser:
        browser.text_when(
            f"{url}/asset-groups/client_master/lineage",  # the graph, its groups collapsed
            [
                "Global asset lineage",
                "client_master",
                "bitrix24_raw",
                "onec_raw",
                "receivables",
                "crm_push",
                "analytics",
            ],
        )
        # The catalog list is virtualised (only the rows on screen exist): filter it to one group.
        browser.text_when(
            f"{url}/assets?asset-selection=group:client_master",
            [
                "client_master / clients",
                "client_master / client_match_candidates",
                "client_master / duplicate_groups",
                "one row per candidate pair",
            ],
        )
        browser.text_when(
            f"{url}/assets/{ASSET}",
            [
                f"Row count {rows}",  # dagster/row_count, in the status strip
                "one row per company",  # the description
                "api_calls",
                "rejected_rows",
                "preview",
                first_title,
            ],
        )  # the markdown preview, rendered as a table
        shot = browser.screenshot(tmp_path / "asset_page.png")
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
        browser.text_when(
            f"{url}/runs/{result.run_id}",
            ["ASSET_MATERIALIZATION", f"dagster/row_count {rows}", "api_calls", "Check contract succeeded"],
        )
