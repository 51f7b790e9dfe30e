"""`make dev`: the Dagster UI on the sandbox.

Starts `python -m b24_1c_assets.sandbox` in the background, exports the URLs and credentials it prints,
and runs `dagster dev -w workspace.yaml` with the project's persistent DAGSTER_HOME. Ctrl-C stops both.
"""

from __future__ import annotations

import os
import subprocess
import sys

from b24_1c_assets.demo import DEMO_DIR, prepare_dagster_home
from b24_1c_assets.warehouse import PROJECT_ROOT

ENV_LINES = 4  # B24_WEBHOOK_URL, ONEC_ODATA_URL, ONEC_USERNAME, ONEC_PASSWORD


def main() -> int:
    prepare_dagster_home()
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "b24_1c_assets.sandbox",
            "--scale",
            os.environ.get("SANDBOX_SCALE", "300"),
            "--exchange-dir",
            str(DEMO_DIR / "exchange"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    env = dict(os.environ)
    for _ in range(ENV_LINES):
        line = sandbox.stdout.readline().strip()  # type: ignore[union-attr]
        name, _, value = line.partition("=")
        env[name] = value
    env.setdefault("B24_1C_DUCKDB_PATH", str(DEMO_DIR / "b24_1c.duckdb"))
    env.setdefault("ONEC_EXCHANGE_DIR", str(DEMO_DIR / "exchange"))
    print("sandbox running; opening the Dagster UI on http://127.0.0.1:3000", flush=True)
    try:
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                os.environ.get("DAGSTER_PORT", "3000"),
            ],
            cwd=PROJECT_ROOT,
            env=env,
        )
    except KeyboardInterrupt:
        return 0
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
