"""A real SIGKILL in the middle of a push, then the schedule's next runs: no twin, nothing lost.

full_sync runs in a child process against a sandbox living in this process (so the servers outlive the kill
and keep what the child wrote); the test watches the servers' request logs and kills the child right after
the first write of the chosen kind was carried out — before the child could read the answer or journal it.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from b24_1c_assets.warehouse import PROJECT_ROOT
from b24_1c_assets_tests.reliability.conftest import (
    data_sections,
    duplicates,
    reliability_day,
    settle,
    state_diff,
    unaccounted_keys,
)

CHILD = (
    "import dagster as dg\n"
    "from b24_1c_assets.runner import run_full_sync\n"
    "run_full_sync(trigger='kill-test', instance=dg.DagsterInstance.ephemeral(), partition_key={day!r})\n"
)


def portal_write_batch(bench) -> bool:
    return any(e.get("method") == "batch" and e.get("kind") == "write" for e in list(bench.sandbox.portal.request_log))


def onec_order_post(bench) -> bool:
    return any(
        e.get("method") == "POST" and e.get("path") == "Document_ЗаказПокупателя"
        for e in list(bench.sandbox.onec.request_log)
    )


def kill_when(bench, seen, timeout: float = 150.0) -> float:
    """Start full_sync in a child process, SIGKILL it as soon as `seen(bench)`; returns seconds to the kill."""
    env = {**os.environ, **bench.env, "DAGSTER_DISABLE_TELEMETRY": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(day=reliability_day())],
        env=env,
        cwd=str(PROJECT_ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    try:
        while not seen(bench):
            assert child.poll() is None, f"full_sync ended (rc {child.returncode}) before the write to kill at"
            assert time.monotonic() - started < timeout, "the write to kill at never came"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        return time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def assert_recovers(bench, monkeypatch, reference) -> list[dict]:
    runs = settle(bench, monkeypatch, max_runs=4)
    assert [r["success"] for r in runs[-2:]] == [True, True], runs
    assert all(r["no_outcome"] == [] for r in runs), runs
    assert unaccounted_keys(bench.db_path) == []
    state = bench.state()
    assert duplicates(state) == {}
    diff = state_diff(data_sections(state), data_sections(reference))
    assert not diff, "\n".join(diff)
    return runs


def crm_writes_done(bench) -> list[dict]:
    return [e for e in bench.sandbox.portal.request_log if e.get("kind") == "write"]


def onec_posts_done(bench) -> list[dict]:
    # the order exists in 1C, but the killed run never learned its Ref_Key
    return [e for e in bench.sandbox.onec.request_log if e.get("method") == "POST"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, kill_at, writes_done, what",
    [
        ("kill-crm", portal_write_batch, crm_writes_done, "CRM writes"),
        ("kill-1c", onec_order_post, onec_posts_done, "1C POSTs"),
    ],
    ids=["during_the_first_crm_write_batch", "right_after_a_1c_order_post"],
)
def test_kill_then_rerun(
    name, kill_at, writes_done, what, small_world, settled_reference_state, bench_factory, monkeypatch
):
    bench = bench_factory(small_world, name)
    after = kill_when(bench, kill_at)
    writes = writes_done(bench)
    assert writes, "the child was killed before writing anything"
    runs = assert_recovers(bench, monkeypatch, settled_reference_state)
    print(f"\nkilled after {after:.1f} s, {len(writes)} {what} done; {len(runs)} runs to settle")
