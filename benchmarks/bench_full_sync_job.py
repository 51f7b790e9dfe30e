"""The `full_sync` job run as a schedule runs it, and the memory of its whole process tree: the figure for "does
b24-1c fit on this machine", which bench_scale's one-stage-at-a-time processes cannot give.

The sandbox servers run in their own process (`bench_scale.SandboxProcess`: world `generate(seed=7, scale)`,
portal limit raised to 1000 req/s, operating-time charge lifted). The job runs through `dagster.execute_job`
with its own executor (`defs/jobs.py`: every step in a process forked from a forkserver, up to one per core
at once, pools as in `dagster.yaml`) against a temporary DAGSTER_HOME and DuckDB file. A thread samples every
product process (this one, the forkserver, each step; the sandbox's tree left out) every 0.25 s:

- **peak PSS MB**: the largest sum of the processes' proportional set size at one instant, i.e. what the
  product holds in RAM at its worst (pages the forked steps share with the forkserver counted once);
- **peak RSS sum MB**: the same with RSS (shared pages counted in every process: an upper bound);
- **largest step RSS MB** and the most processes alive at once;
- **CPU s**: the product processes' user + system CPU (each process's last sample).

`python -m benchmarks.bench_full_sync_job` (1,000 parties; `BENCH_JOB_SCALES=10000,100000` for others; 100k: the
sandbox alone ~8.3 GB, ~15 minutes). Output `data/bench/full_sync_job.json`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time

from benchmarks.bench_scale import PROJECT_ROOT, SandboxProcess, _cpu_seconds, _rss_bytes

OUT = PROJECT_ROOT / "data" / "bench" / "full_sync_job.json"
INTERVAL = 0.25


def full_sync_job():
    """The job as the code location defines it (a reconstructable target for `execute_job`)."""
    from b24_1c_assets.definitions import defs

    return defs().resolve_job_def("full_sync")


def _children() -> dict[int, list[int]]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except OSError:
                continue  # ended meanwhile
            parents.setdefault(ppid, []).append(int(entry))
    return parents


def _tree(root: int, leave_out: int) -> list[int]:
    children, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        if pid == leave_out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _memory(pid: int) -> tuple[int, int, float] | None:
    """(PSS bytes, RSS bytes, CPU seconds) of one process, None when it has ended."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            pss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        return pss, _rss_bytes(pid), _cpu_seconds(pid)
    except (OSError, StopIteration):
        return None


class TreeMemory:
    """Samples this process's tree (but `leave_out`'s) until stopped."""

    def __init__(self, leave_out: int):
        self.leave_out = leave_out
        self.peak_pss = self.peak_rss = self.largest_rss = self.most_processes = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tree-memory")

    def sample(self) -> None:
        seen = [(pid, m) for pid in _tree(os.getpid(), self.leave_out) if (m := _memory(pid)) is not None]
        self.peak_pss = max(self.peak_pss, sum(m[0] for _, m in seen))
        self.peak_rss = max(self.peak_rss, sum(m[1] for _, m in seen))
        self.largest_rss = max([self.largest_rss] + [m[1] for _, m in seen])
        self.most_processes = max(self.most_processes, len(seen))
        self.cpu.update({pid: m[2] for pid, m in seen})

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            self.sample()

    def __enter__(self) -> TreeMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure(scale: int) -> dict:
    import dagster as dg

    from b24_1c_assets.lib.partitions import daily_partitions
    from b24_1c_assets.lib.push_flow import DRY_RUN_TAG
    from b24_1c_assets.runner import QUIET

    sandbox = SandboxProcess(scale)
    saved = dict(os.environ)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ.update(sandbox.env)
            os.environ["B24_1C_DUCKDB_PATH"] = os.path.join(tmp, "bench.duckdb")
            os.environ["ONEC_EXCHANGE_DIR"] = os.path.join(tmp, "exchange")
            os.environ["DAGSTER_HOME"] = os.path.join(tmp, "dagster_home")
            os.makedirs(os.environ["DAGSTER_HOME"])
            shutil.copy(PROJECT_ROOT / "dagster.yaml", os.environ["DAGSTER_HOME"])
            started, s0 = time.perf_counter(), sandbox.cpu_seconds()
            with dg.DagsterInstance.get() as instance, TreeMemory(sandbox.pid) as tree:
                result = dg.execute_job(
                    dg.reconstructable(full_sync_job),
                    instance=instance,
                    run_config=QUIET,
                    tags={
                        "dagster/partition": daily_partitions.get_last_partition_key(),
                        "trigger": "bench",
                        DRY_RUN_TAG: "false",  # the sandbox 1C is written for real
                    },
                )
                ok = result.success
                failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
            seconds = time.perf_counter() - started
            sandbox_cpu = sandbox.cpu_seconds() - s0
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sandbox.stop()
    figures = {
        "scale": scale,
        "ok": ok,
        "failed_steps": failed,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(sum(tree.cpu.values()), 1),
        "peak_pss_mb": round(tree.peak_pss / 2**20),
        "peak_rss_sum_mb": round(tree.peak_rss / 2**20),
        "largest_process_rss_mb": round(tree.largest_rss / 2**20),
        "most_processes": tree.most_processes,
        "sandbox_cpu_seconds": round(sandbox_cpu, 1),
    }
    print(f"[{scale}] full_sync job: {json.dumps(figures)}", file=sys.stderr, flush=True)
    return figures


def main() -> dict:
    raw = os.environ.get("BENCH_JOB_SCALES") or "1000"
    runs = [measure(int(x)) for x in raw.split(",") if x.strip()]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"runs": runs}, indent=1) + "\n", encoding="utf-8")
    print("| parties | ok | wall s | CPU s | peak PSS MB | peak RSS sum MB | largest process MB | processes |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r['scale']:,} | {'yes' if r['ok'] else 'FAILED ' + ', '.join(r['failed_steps'])} | {r['seconds']} "
            f"| {r['cpu_seconds']} | {r['peak_pss_mb']:,} | {r['peak_rss_sum_mb']:,} | "
            f"{r['largest_process_rss_mb']:,} | {r['most_processes']} |"
        )
    print(f"figures: {OUT.relative_to(PROJECT_ROOT)}")
    return {"runs": runs}


if __name__ == "__main__":
    main()
