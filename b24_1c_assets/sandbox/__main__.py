"""`python -m b24_1c_assets.sandbox`: serve a generated world as a Bitrix24 portal and a 1C:UNF OData base.

Standard output carries only `NAME=value` lines, the webhook URL first, so a shell or a parent process can
read them (`make dev` reads the first four):

    B24_WEBHOOK_URL=http://127.0.0.1:PORT/rest/1/<code>/
    ONEC_ODATA_URL=http://127.0.0.1:PORT/unf/odata/standard.odata
    ONEC_USERNAME=integration
    ONEC_PASSWORD=<random per run unless --onec-password>

These are throwaway sandbox credentials: printing them is the point. Progress goes to standard error.
Serves until SIGINT/SIGTERM, then stops both servers cleanly.

`--control` (for benches that run the servers in their own process): after the variables it prints
`SANDBOX_WORLD=<json>` (the world's counts and the rows each server holds), then reads standard input: each
line `figures` is answered by `SANDBOX_FIGURES=<json>`, the calls both servers logged since the last answer
(`sandbox/figures.py`); end of input stops the servers.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
import time


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a share must be within 0..1, got {text}")
    return value


def _operating_cost(text: str) -> tuple[str, float]:
    method, sep, value = text.partition("=")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not sep or not method or seconds < 0:
        raise argparse.ArgumentTypeError(f"expected METHOD=SECONDS (e.g. crm.company.update=0.1), got {text!r}")
    return method.strip().lower(), seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m b24_1c_assets.sandbox", description="Serve the sandbox world (Bitrix24 portal + 1C OData)."
    )
    parser.add_argument("--only", choices=("bitrix24", "1c"), help="start just one of the servers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--b24-port", type=int, default=0, help="portal port (0 = ephemeral)")
    parser.add_argument("--onec-port", type=int, default=0, help="1C OData port (0 = ephemeral)")
    parser.add_argument("--seed", type=int, default=7, help="world seed")
    parser.add_argument("--scale", type=int, default=300, help="parties in the world")
    parser.add_argument("--rate", type=float, default=2.0, help="portal requests per second (leaky bucket)")
    parser.add_argument("--burst", type=int, default=50, help="portal bucket size")
    parser.add_argument(
        "--operating-cost",
        action="append",
        default=[],
        type=_operating_cost,
        metavar="METHOD=S",
        help="server seconds the portal charges per call of METHOD (or *.update, *.list ...), "
        "over the defaults (README); repeatable",
    )
    parser.add_argument(
        "--error-table",
        choices=("earlier", "current"),
        default="earlier",
        help="HTTP statuses of system errors by doc revision",
    )
    faults = parser.add_argument_group("faults (shares of requests, 0..1)")
    faults.add_argument("--fail-503", type=_share, default=0.0)
    faults.add_argument("--fail-500", type=_share, default=0.0)
    faults.add_argument("--drop", type=_share, default=0.0, help="close the connection without an answer")
    faults.add_argument("--slow", type=_share, default=0.0, help="delay the answer by --slow-seconds")
    faults.add_argument("--slow-seconds", type=float, default=2.0)
    faults.add_argument("--batch-errors", type=_share, default=0.0, help="portal: failing commands inside batch")
    faults.add_argument("--fault-seed", type=int, default=0)
    faults.add_argument(
        "--onec-always-500",
        action="append",
        default=[],
        metavar="SET",
        help="1C: reads of this set (or Set/Function, e.g. a register's Balance) always answer "
        "1C's generic 500, as a query 1C cannot run; repeatable",
    )
    parser.add_argument(
        "--onec-profile",
        choices=("unf30", "unf16"),
        default="unf30",
        help="UNF edition whose metadata the 1C base follows (field names and shapes)",
    )
    parser.add_argument("--onec-user", default="integration")
    parser.add_argument("--onec-password", default=None, help="default: random per run")
    parser.add_argument("--exchange-dir", default=None, help="also write the world as 1C exchange files here")
    parser.add_argument(
        "--control",
        action="store_true",
        help="answer `figures` lines on stdin with the calls logged since (JSON); stop at end of input",
    )
    return parser


def _serve_control(sandbox, stop: threading.Event) -> None:
    """Answer `figures` on stdin until it ends (the bench that started us is done or gone), then stop."""
    from b24_1c_assets.sandbox.figures import take_figures

    for line in sys.stdin:
        if line.strip() == "figures":
            print(f"SANDBOX_FIGURES={json.dumps(take_figures(sandbox), ensure_ascii=False)}", flush=True)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scale < 1:
        print("--scale must be at least 1", file=sys.stderr)
        return 2

    from b24_1c_assets.sandbox import start_sandbox
    from b24_1c_assets.sandbox.faults import Faults

    stop = threading.Event()
    # Handlers first: a SIGTERM during world generation still ends the process cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    faults = Faults(
        error_503_share=args.fail_503,
        error_500_share=args.fail_500,
        drop_share=args.drop,
        slow_share=args.slow,
        slow_seconds=args.slow_seconds,
        batch_command_error_share=args.batch_errors,
        always_500=tuple(args.onec_always_500),
        seed=args.fault_seed,
    )
    started = time.monotonic()
    try:
        sandbox = start_sandbox(
            args.seed,
            args.scale,
            rate=args.rate,
            burst=args.burst,
            faults=faults,
            onec=args.only != "bitrix24",
            bitrix24=args.only != "1c",
            exchange_dir=args.exchange_dir,
            host=args.host,
            b24_port=args.b24_port,
            onec_port=args.onec_port,
            onec_username=args.onec_user,
            onec_password=args.onec_password,
            onec_profile=args.onec_profile,
            b24_operating_costs=dict(args.operating_cost) or None,
            b24_error_table=args.error_table,
        )
    except OSError as exc:  # port taken, unknown host, exchange folder not writable
        print(
            f"sandbox could not start on {args.host} (portal port {args.b24_port}, 1C port {args.onec_port}"
            f"{', exchange dir ' + args.exchange_dir if args.exchange_dir else ''}): {exc}",
            file=sys.stderr,
        )
        return 1
    # The seeded state is millions of objects that live as long as the servers: keep the cyclic GC from
    # rescanning them on every collection (objects made while serving are still collected).
    gc.collect()
    gc.freeze()
    try:
        for name, value in sandbox.env().items():
            print(f"{name}={value}")
        world = sandbox.world
        if args.control:
            from b24_1c_assets.sandbox.figures import held_rows

            if sandbox.portal is not None:
                sandbox.portal.request_log_limit = 10**9  # the bench takes (and clears) the log per stage
            counts = {
                name: len(getattr(world, name))
                for name in ("parties", "deals", "orders", "invoices", "shipments", "payments", "items")
            }
            print(f"SANDBOX_WORLD={json.dumps({'counts': counts, **held_rows(sandbox)}, ensure_ascii=False)}")
            threading.Thread(target=_serve_control, args=(sandbox, stop), daemon=True, name="control").start()
        sys.stdout.flush()
        print(
            f"sandbox ready in {time.monotonic() - started:.1f} s: world seed={world.seed} scale={world.scale} "
            f"({len(world.parties)} parties, {len(world.orders)} orders, {len(world.shipments)} shipments, "
            f"{len(world.payments)} payments); 1C profile {args.onec_profile}; "
            f"faults {'on' if faults.any else 'off'}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    print("sandbox stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
