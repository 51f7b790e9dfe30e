"""`python -m b24_1c_assets.services`: the product's HTTP service (credit gate, 1C exports, Bitrix24 events,
review page). Tokens and paths come from the environment (README, configuration); see
`b24_1c_assets/services/app.py` for the routes and docs/production.md for the systemd unit."""

from __future__ import annotations

import argparse
import dataclasses
import logging

import uvicorn

from b24_1c_assets.services.config import ServiceConfig
from b24_1c_assets.services.server import log_to_stderr, uvicorn_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m b24_1c_assets.services", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (put a TLS proxy in front)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--deny-unknown", action="store_true", help="credit gate: refuse companies with no known receivables"
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="trust X-Forwarded-For from these proxy addresses (client address in the access log)",
    )
    args = parser.parse_args(argv)
    config = ServiceConfig.from_env()
    if args.deny_unknown:
        config = dataclasses.replace(config, allow_unknown=False)
    if not config.configured_routes():
        parser.error(
            "no route has a token: set B24_1C_GATE_TOKEN, B24_1C_ONEC_EXPORT_TOKEN, "
            "B24_1C_B24_EVENT_TOKEN and/or B24_1C_REVIEW_TOKEN"
        )
    log_to_stderr(logging.INFO)
    extra = {"proxy_headers": True, "forwarded_allow_ips": args.forwarded_allow_ips} if args.forwarded_allow_ips else {}
    logging.getLogger("b24_1c_assets.services").info("serving %s on http://%s:%s", config, args.host, args.port)
    uvicorn.Server(uvicorn_config(config, args.host, args.port, **extra)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
