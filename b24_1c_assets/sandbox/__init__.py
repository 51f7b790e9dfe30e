"""Sandbox: a generated world served by a loopback Bitrix24 portal and a loopback 1C:UNF OData server.

`start_sandbox()` is the programmatic way in (demo, Dagster tests); `python -m b24_1c_assets.sandbox` is the
command-line way. This module stays import-light: servers load only when a sandbox is started, because
every `b24_1c_assets.sandbox.*` import runs this file first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from b24_1c_assets.sandbox.faults import Faults
    from b24_1c_assets.sandbox.world import World


@dataclass
class Sandbox:
    """Running sandbox servers over one world. Stop with `.stop()` or use it as a context manager."""

    world: World
    portal: Any = None  # PortalServer, or None when not started
    onec: Any = None  # OneCServer, or None when not started
    exchange_dir: Path | None = None
    rate: float = 2.0  # the portal's request limit (requests per second) and bucket size
    burst: int = 50
    b24_application: dict | None = None  # a local application the product uses instead of the webhook

    def env(self) -> dict[str, str]:
        """Environment variables that point the product at this sandbox (the names the resources read).

        The webhook URL comes first: `python -m b24_1c_assets.sandbox` prints them in this order.
        """
        env: dict[str, str] = {}
        if self.portal is not None:
            env["B24_WEBHOOK_URL"] = self.portal.webhook_url
        if self.portal is not None and self.b24_application is not None:
            # application mode: the tokens are in the 0600 file, only its path goes to the environment
            env.update(
                {
                    "B24_AUTH_MODE": "application",
                    "B24_PORTAL_URL": self.portal.base_url + "/",
                    "B24_CLIENT_ID": self.b24_application["client_id"],
                    "B24_CLIENT_SECRET": self.b24_application["client_secret"],
                    "B24_OAUTH_SERVER": self.portal.oauth_server,
                    "B24_OAUTH_TOKEN_FILE": str(self.b24_application["token_file"]),
                }
            )
        if self.onec is not None:
            env["ONEC_ODATA_URL"] = self.onec.odata_url
            env["ONEC_USERNAME"] = self.onec.username
            env["ONEC_PASSWORD"] = self.onec.password
        if self.exchange_dir is not None:
            env["ONEC_EXCHANGE_DIR"] = str(self.exchange_dir)
        if self.portal is not None:
            # The client paces itself to the portal's limit; a test portal with a raised limit is paced to it.
            env["B24_RATE"] = f"{self.rate:g}"
            env["B24_BURST"] = str(self.burst)
        return env

    def stop(self) -> None:
        for server in (self.portal, self.onec):
            if server is not None:
                server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:  # the servers' reprs hide their secrets
        return (
            f"Sandbox(world seed={self.world.seed} scale={self.world.scale}, portal={self.portal!r}, "
            f"onec={self.onec!r})"
        )


def start_sandbox(
    seed: int = 7,
    scale: int = 60,
    *,
    rate: float = 2.0,
    burst: int = 50,
    faults: Faults | None = None,
    onec: bool = True,
    bitrix24: bool = True,
    exchange_dir: str | Path | None = None,
    world: World | None = None,
    host: str = "127.0.0.1",
    b24_port: int = 0,
    onec_port: int = 0,
    onec_username: str = "integration",
    onec_password: str | None = None,
    onec_profile: str = "unf30",
    onec_options: dict | None = None,
    b24_operating_costs: dict[str, float] | None = None,
    b24_error_table: str = "earlier",
    b24_application_token_file: str | Path | None = None,
) -> Sandbox:
    """Generate the world (or use `world`) and start the chosen servers on `host` (port 0 = ephemeral).

    Both servers share one `Faults` object, so a test can change fault shares while they run.
    `exchange_dir` also writes the world as 1C exchange files there. `onec_password=None` = random per run.
    `onec_profile`: the UNF edition the 1C base follows (`unf30`, `unf16`; `sandbox/onec_profiles.py`);
    `onec_options`: more `OneCServer` options (e.g. `unpublished` for a partial publication).
    Portal: `b24_operating_costs` (method or `*.<verb>` -> server seconds per call, over the defaults),
    `b24_error_table` ("earlier" | "current" HTTP statuses), `b24_application_token_file`: install a local
    application and store its tokens there (mode 0600); `env()` then configures the product in application mode.
    """
    from b24_1c_assets.sandbox.faults import Faults
    from b24_1c_assets.sandbox.world import generate

    world = world if world is not None else generate(seed=seed, scale=scale)
    faults = faults if faults is not None else Faults()
    sandbox = Sandbox(world=world, rate=rate, burst=burst)
    try:
        if bitrix24:
            from b24_1c_assets.sandbox.bitrix24_portal import PortalServer

            sandbox.portal = PortalServer(
                world,
                host=host,
                port=b24_port,
                rate=rate,
                burst=burst,
                faults=faults,
                operating_costs=b24_operating_costs,
                error_table=b24_error_table,
            ).start()
            if b24_application_token_file is not None:
                from b24_1c_assets.bitrix24.auth import store_tokens

                installed = sandbox.portal.install_application()
                store_tokens(str(b24_application_token_file), installed["refresh_token"], user_id=installed["user_id"])
                sandbox.b24_application = {
                    "client_id": installed["client_id"],
                    "client_secret": installed["client_secret"],
                    "token_file": Path(b24_application_token_file),
                }
        if onec:
            from b24_1c_assets.sandbox.onec_server import OneCServer

            sandbox.onec = OneCServer(
                world,
                host=host,
                port=onec_port,
                username=onec_username,
                password=onec_password,
                faults=faults,
                profile=onec_profile,
                **(onec_options or {}),
            ).start()
        if exchange_dir is not None:
            from b24_1c_assets.sandbox.exchange_files import write_exchange_files

            sandbox.exchange_dir = Path(exchange_dir)
            write_exchange_files(world, sandbox.exchange_dir)
    except BaseException:
        sandbox.stop()
        raise
    return sandbox


__all__ = ["Sandbox", "start_sandbox"]
