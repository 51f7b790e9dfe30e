"""The HTTP service and the analysts' copy: events accepted per second, gate latency, time to publish the copy.

1. **Publishing the analysts' copy** at N parties (default 10,000; `BENCH_SERVICE_SCALES=1000,10000,100000`;
   quick: 1,000). A child interpreter generates the world (`generate(seed=7, N)`), starts both sandbox servers
   (portal limit raised to 1000 req/s as in bench_scale, calls charged their real operating time), runs the
   whole `full_sync` once against a fresh DuckDB
   file (its last step publishes the copy), then publishes the copy 3 more times: seconds (wall and CPU of the
   process), copy size, rows of the largest tables.
2. **The service under load.** `python -m b24_1c_assets.services` in its own process (uvicorn, one worker, as
   the systemd unit runs it), the analysts' copy of the largest scale above for the gate. A load process
   (keep-alive HTTP/1.1 connections, one per thread) sends:
   - `POST /v1/bitrix24/events`: N events (10,000; quick 2,000) from 32 concurrent senders, then from 1;
     events accepted per second and latency p50/p99/max; the journal must hold every event once.
   - `GET /v1/may-create-deal?company_id=…` for random companies of the copy: 5,000 requests (quick 1,000)
     from 16 senders, then from 1.
   Latency is measured by the sender (request written → whole answer read), so it includes the loopback
   and the sender's own Python; on this 2-core machine the sender and the service share the CPUs.

Output: a markdown summary on stdout and the figures (merged into data/bench/results.json by
`python -m benchmarks`). Run alone: `python -m benchmarks.bench_service`.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEED = 7
EVENT_TOKEN = "bench-application-token-5f1c"
GATE_TOKEN = "bench-gate-token-0a9d"


def _quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


# -- 1. the copy ------------------------------------------------------------------------------------------


def measure_publish(scale: int, out_dir: str) -> dict:
    """In this process: world, sandbox, full_sync, then 3 timed publications. The copy stays in `out_dir`."""
    import dagster as dg

    from b24_1c_assets.analytics_copy import publish
    from b24_1c_assets.sandbox import start_sandbox
    from b24_1c_assets.sandbox.world import generate

    t0 = time.perf_counter()
    world = generate(seed=SEED, scale=scale)
    sandbox = start_sandbox(world=world, rate=1000, burst=1000)
    # This bench times the copy, not the portal: the sandbox charges each call a loaded portal's operating time
    # (tens of ms per write), and the client paces itself under half of the 480 s per 10 min budget, which
    # parks the pushes for minutes at 10k. Charge what the sandbox really spends instead (a few ms).
    sandbox.portal.operating_costs = {}
    setup_s = time.perf_counter() - t0
    # As in bench_scale: the seeded world is millions of long-lived objects; keep the cyclic GC from rescanning
    # them on every collection (objects the run makes are still collected).
    gc.collect()
    gc.freeze()
    working = os.path.join(out_dir, "b24_1c.duckdb")
    os.environ.update(sandbox.env())
    os.environ["B24_1C_DUCKDB_PATH"] = working
    os.environ["ONEC_EXCHANGE_DIR"] = os.path.join(out_dir, "exchange")
    os.environ.pop("B24_1C_ANALYTICS_DUCKDB_PATH", None)
    try:
        from b24_1c_assets.runner import run_full_sync

        t0 = time.perf_counter()
        result = run_full_sync(trigger="bench", instance=dg.DagsterInstance.ephemeral())
        sync_s = time.perf_counter() - t0
    finally:
        sandbox.stop()
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    if not result.success:  # still timed below, on what the run wrote; the figures say so
        from b24_1c_assets.defs.analytics.assets import create_views
        from b24_1c_assets.warehouse import connect

        with connect(working) as conn:
            create_views(conn)
    copy = os.path.join(out_dir, "analytics", "b24_1c.duckdb")
    runs = []
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        publication = publish(working, copy, run_id=result.run_id)
        runs.append((time.perf_counter() - w0, time.process_time() - c0))
    largest = sorted(publication.tables.items(), key=lambda kv: -kv[1])[:6]
    return {
        "scale": scale,
        "parties": len(world.parties),
        "setup_seconds": round(setup_s, 1),
        "full_sync_seconds": round(sync_s, 1),
        "full_sync_ok": result.success,
        "failed_steps": failed,
        "publish_seconds": [round(w, 2) for w, _ in runs],
        "publish_cpu_seconds": [round(c, 2) for _, c in runs],
        "publish_seconds_median": round(statistics.median(w for w, _ in runs), 2),
        "copy_mb": round(publication.bytes / 2**20, 1),
        "working_mb": round(os.path.getsize(working) / 2**20, 1),
        "tables": len(publication.tables),
        "rows": sum(publication.tables.values()),
        "largest_tables": dict(largest),
        "copy": copy,
    }


# -- 2. the service ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(tmp: str, copy: str | None) -> tuple[subprocess.Popen, int, str]:
    port = _free_port()
    journal_dir = os.path.join(tmp, "events")
    env = {
        **os.environ,
        "B24_1C_GATE_TOKEN": GATE_TOKEN,
        "B24_1C_B24_EVENT_TOKEN": EVENT_TOKEN,
        "B24_1C_EVENTS_DIR": journal_dir,
        "ONEC_EXCHANGE_DIR": os.path.join(tmp, "exchange"),
        "B24_1C_DUCKDB_PATH": os.path.join(tmp, "unused.duckdb"),
    }
    if copy:
        env["B24_1C_ANALYTICS_DUCKDB_PATH"] = copy
    log = open(os.path.join(tmp, "service.log"), "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "b24_1c_assets.services", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
        cwd=str(PROJECT_ROOT),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port, os.path.join(journal_dir, "bitrix24-events.jsonl")
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the service did not start")


def load(port: int, requests_: list[tuple[str, str, bytes | None, dict]], senders: int) -> dict:
    """Send the requests from `senders` threads on keep-alive connections; latency per request (ms)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    chunks = [requests_[i::senders] for i in range(senders)]

    def sender(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, codes = [], {}
        for method, path, body, headers in chunk:
            t0 = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            mine.append((time.perf_counter() - t0) * 1000)
            codes[answer.status] = codes.get(answer.status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    threads = [threading.Thread(target=sender, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(requests_),
        "senders": senders,
        "seconds": round(seconds, 2),
        "per_second": round(len(requests_) / seconds),
        "statuses": statuses,
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "max_ms": round(latencies[-1], 2),
    }


def event_requests(first_id: int, n: int) -> list:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return [
        (
            "POST",
            "/v1/bitrix24/events",
            urlencode(
                [
                    ("event", "ONCRMDEALUPDATE"),
                    ("event_handler_id", "17"),
                    ("data[FIELDS][ID]", str(first_id + i)),
                    ("ts", "1732400000"),
                    ("auth[domain]", "bench.bitrix24.ru"),
                    ("auth[client_endpoint]", "https://bench.bitrix24.ru/rest/"),
                    ("auth[server_endpoint]", "https://oauth.bitrix.info/rest/"),
                    ("auth[member_id]", "a223c6b3710f85df22e9377d6c4f7553"),
                    ("auth[application_token]", EVENT_TOKEN),
                ]
            ).encode(),
            headers,
        )
        for i in range(n)
    ]


def gate_requests(company_ids: list[int], n: int) -> list:
    rng = random.Random(SEED)
    headers = {"Authorization": f"Bearer {GATE_TOKEN}"}
    return [("GET", f"/v1/may-create-deal?company_id={rng.choice(company_ids)}", None, headers) for _ in range(n)]


def measure_service(copy: str | None) -> dict:
    import duckdb

    n_events = 2000 if _quick() else 10_000
    n_gate = 1000 if _quick() else 5000
    company_ids = [17]
    if copy:
        with duckdb.connect(copy, read_only=True) as conn:
            company_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT company_id FROM receivables.client_credit_status WHERE company_id IS NOT NULL"
                ).fetchall()
            ]
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, journal = start_service(tmp, copy)
        try:
            events = load(port, event_requests(1, n_events), 32)
            events_one = load(port, event_requests(n_events + 1, n_events // 5), 1)
            gate = load(port, gate_requests(company_ids, n_gate), 16)
            gate_one = load(port, gate_requests(company_ids, n_gate // 5), 1)
        finally:
            proc.terminate()
            proc.wait(30)
        with open(journal, encoding="utf-8") as fh:
            ids = [json.loads(line)["EVENT_DATA"]["FIELDS"]["ID"] for line in fh]
    expected = n_events + n_events // 5
    if sorted(ids) != list(range(1, expected + 1)):
        raise RuntimeError(f"journal holds {len(ids)} events, {len(set(ids))} distinct; expected {expected}")
    return {
        "events": events,
        "events_one_sender": events_one,
        "gate": gate,
        "gate_one_sender": gate_one,
        "gate_companies": len(company_ids),
        "journal_events": len(ids),
    }


# -- main -------------------------------------------------------------------------------------------------


def _scales() -> list[int]:
    raw = os.environ.get("BENCH_SERVICE_SCALES") or ("1000" if _quick() else "10000")
    return [int(x) for x in raw.split(",") if x.strip()]


def markdown(figures: dict) -> str:
    lines = [
        "| scale | full_sync s | publish s (3 runs) | publish CPU s | copy MB | working MB | rows in copy |",
        "|---:|---:|---|---|---:|---:|---:|",
    ]
    for p in figures["publish"]:
        lines.append(
            f"| {p['parties']:,} | {p['full_sync_seconds']} | {', '.join(map(str, p['publish_seconds']))} | "
            f"{', '.join(map(str, p['publish_cpu_seconds']))} | {p['copy_mb']} | {p['working_mb']} | "
            f"{p['rows']:,} |"
        )
    lines += [
        "",
        "| route | senders | requests | per second | p50 ms | p99 ms | max ms | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    service = figures["service"]
    for label, key in (
        ("POST /v1/bitrix24/events", "events"),
        ("POST /v1/bitrix24/events", "events_one_sender"),
        ("GET /v1/may-create-deal", "gate"),
        ("GET /v1/may-create-deal", "gate_one_sender"),
    ):
        f = service[key]
        lines.append(
            f"| {label} | {f['senders']} | {f['requests']:,} | {f['per_second']:,} | {f['p50_ms']} | "
            f"{f['p99_ms']} | {f['max_ms']} | {f['statuses']} |"
        )
    return "\n".join(lines)


def main() -> dict:
    figures: dict = {"publish": [], "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        copy = None
        for scale in _scales():
            out_dir = os.path.join(tmp, str(scale))
            os.makedirs(out_dir)
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_service", "--publish", str(scale), out_dir],
                capture_output=True,
                text=True,
                cwd=str(PROJECT_ROOT),
            )
            if done.returncode != 0:
                raise RuntimeError(f"publish bench at {scale} failed:\n{done.stderr[-3000:]}")
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            copy = measured.pop("copy")
            figures["publish"].append(measured)
            print(
                f"[{scale}] full_sync {measured['full_sync_seconds']} s, publish {measured['publish_seconds']} s, "
                f"copy {measured['copy_mb']} MB",
                file=sys.stderr,
                flush=True,
            )
        figures["service"] = measure_service(copy)
    figures["load_after"] = os.getloadavg()
    print(markdown(figures))
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--publish":
        print(json.dumps(measure_publish(int(sys.argv[2]), sys.argv[3]), default=str))
    else:
        print(json.dumps(main(), indent=1, default=str))
