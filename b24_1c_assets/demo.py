"""`make demo`: start the sandbox, run the whole sync against it, print what it did, stop the sandbox.

The report is read back from DuckDB after the run: clients matched by rule and left for review, debts
pushed, deals suspended and released, rows written per flow, rejected rows per table.

The run is recorded in `.dagster_home/` (the same instance `make dev` opens), so it can be read in the UI
afterwards; the DuckDB file is `data/demo/b24_1c.duckdb`, and the copy analysts open (published by the run's
last step) `data/demo/analytics/b24_1c.duckdb`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from b24_1c_assets.warehouse import PROJECT_ROOT

DEMO_DIR = PROJECT_ROOT / "data" / "demo"
DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"


def prepare_dagster_home() -> Path:
    """A persistent instance with the project's dagster.yaml (pools, run retries)."""
    DAGSTER_HOME.mkdir(exist_ok=True)
    target = DAGSTER_HOME / "dagster.yaml"
    if not target.exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", target)
    os.environ["DAGSTER_HOME"] = str(DAGSTER_HOME)
    return DAGSTER_HOME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=int, default=300, help="parties in the sandbox world")
    parser.add_argument("--rate", type=float, default=2.0, help="portal requests per second")
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument(
        "--onec-profile", choices=("unf30", "unf16"), default="unf30", help="the UNF edition the sandbox 1C follows"
    )
    parser.add_argument(
        "--b24-mode",
        choices=("webhook", "application"),
        default="webhook",
        help="how the product signs in to the sandbox portal: an inbound webhook, or a local "
        "application's OAuth tokens",
    )
    parser.add_argument("--assets", action="store_true", help="also list every asset's rows and API calls")
    args = parser.parse_args(argv)

    from b24_1c_assets.sandbox import start_sandbox

    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    prepare_dagster_home()
    started = time.monotonic()
    print(
        f"b24-1c demo: sandbox world seed={args.seed} scale={args.scale}, portal limit {args.rate}/s burst "
        f"{args.burst}, Bitrix24 by {args.b24_mode}, 1C edition {args.onec_profile}"
    )
    token_file = DEMO_DIR / "secrets" / "bitrix24-oauth.json" if args.b24_mode == "application" else None
    with start_sandbox(
        args.seed,
        args.scale,
        rate=args.rate,
        burst=args.burst,
        onec_profile=args.onec_profile,
        b24_application_token_file=token_file,
        exchange_dir=str(DEMO_DIR / "exchange"),
    ) as sandbox:
        env = sandbox.env()
        env["B24_1C_DUCKDB_PATH"] = str(DEMO_DIR / "b24_1c.duckdb")
        env["ONEC_EXCHANGE_DIR"] = str(DEMO_DIR / "exchange")
        os.environ.update(env)
        from b24_1c_assets import runner

        result = runner.run_full_sync(trigger="demo")
        print(runner.describe_run(result, sandbox, per_asset=args.assets))
        print(runner.business_report(result.run_id))
    copy = DEMO_DIR / "analytics" / "b24_1c.duckdb"  # published by the run's last step (analytics/analyst_copy)
    print(
        f"done in {time.monotonic() - started:.1f} s; DuckDB: {DEMO_DIR / 'b24_1c.duckdb'} (the sync's); "
        f"for analysts: {copy if copy.exists() else 'not published (the run failed)'}; "
        f"run history: `make dev` (DAGSTER_HOME={DAGSTER_HOME})"
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
