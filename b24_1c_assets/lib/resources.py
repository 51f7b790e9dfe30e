"""Dagster resources: configuration from the environment, clients built once per run.

Secrets (the webhook URL, the application's client secret, the 1C password) only ever pass through `dg.EnvVar`, so the
UI and the run's
stored config show the variable's name, never its value.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import PrivateAttr

from b24_1c_assets import warehouse
from b24_1c_assets.bitrix24 import ApplicationAuth, Bitrix24Client, WebhookAuth
from b24_1c_assets.bitrix24.auth import DEFAULT_OAUTH_SERVER, DEFAULT_TOKEN_FILE
from b24_1c_assets.onec import OneCClient


def env_or(name: str, default: str) -> str | dg.EnvVar:
    """An EnvVar when the variable is set (the UI shows where the value came from), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


class Bitrix24Resource(dg.ConfigurableResource):
    """The Bitrix24 portal, paced at B24_RATE / B24_BURST, through one of two ways in (B24_AUTH_MODE):

    - `webhook` (default): an inbound webhook, B24_WEBHOOK_URL. No `event.*` methods (application context only):
      change capture is the DATE_MODIFY sweep plus the outbound-webhook event journal.
    - `application`: a local application, B24_PORTAL_URL + B24_CLIENT_ID + B24_CLIENT_SECRET, its tokens in
      B24_OAUTH_TOKEN_FILE (mode 0600; the refresh token rotates on every renewal). Offline events work.
    """

    auth_mode: str = "webhook"
    webhook_url: str = ""
    portal_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    token_file: str = str(warehouse.PROJECT_ROOT / DEFAULT_TOKEN_FILE)
    oauth_server: str = DEFAULT_OAUTH_SERVER
    rate: str = "2"
    burst: str = "50"
    timeout_seconds: float = 65.0  # above the portal's own 60 s per request (limits.md)
    max_retries: int = 6
    operating_budget: str = "480"  # server seconds per method per 10 minutes (limits.md)
    operating_share: str = "0.5"  # the part of it this product may use: the rest stays for other integrations

    _client: Bitrix24Client | None = PrivateAttr(default=None)

    @property
    def application_mode(self) -> bool:
        mode = (self.auth_mode or "webhook").strip().lower()
        if mode not in ("webhook", "application"):
            raise dg.Failure(f"B24_AUTH_MODE must be 'webhook' or 'application', not {mode!r}")
        return mode == "application"

    def auth(self) -> WebhookAuth | ApplicationAuth:
        if self.application_mode:
            missing = [
                n
                for n, v in (
                    ("B24_PORTAL_URL", self.portal_url),
                    ("B24_CLIENT_ID", self.client_id),
                    ("B24_CLIENT_SECRET", self.client_secret),
                )
                if not v
            ]
            if missing:
                raise dg.Failure(f"B24_AUTH_MODE=application needs {', '.join(missing)}")
            return ApplicationAuth(
                self.portal_url, self.client_id, self.client_secret, self.token_file, oauth_server=self.oauth_server
            )
        if not self.webhook_url:
            raise dg.Failure("B24_WEBHOOK_URL is not set (or set B24_AUTH_MODE=application)")
        return WebhookAuth(self.webhook_url)

    def client(self) -> Bitrix24Client:
        # One client (and so one pacer) per run: every asset of the run shares the portal's budget.
        if self._client is None:
            self._client = Bitrix24Client(
                auth=self.auth(),
                rate=float(self.rate),
                burst=int(self.burst),
                timeout=self.timeout_seconds,
                max_retries=self.max_retries,
                operating_budget=float(self.operating_budget),
                operating_share=float(self.operating_share),
            )
        return self._client


class OneCResource(dg.ConfigurableResource):
    """1C:UNF through its standard OData (ONEC_ODATA_URL) and/or the exchange folder (ONEC_EXCHANGE_DIR)."""

    odata_url: str = ""
    username: str = ""
    password: str = ""
    exchange_dir: str = str(warehouse.PROJECT_ROOT / "data" / "exchange")
    timezone: str = "Europe/Moscow"

    _client: OneCClient | None = PrivateAttr(default=None)

    @property
    def uses_odata(self) -> bool:
        return bool(self.odata_url)

    def client(self) -> OneCClient:
        if not self.odata_url:
            raise dg.Failure("ONEC_ODATA_URL is not set: 1C is read from the exchange folder only")
        if self._client is None:
            self._client = OneCClient(self.odata_url, self.username, self.password, timezone=self.timezone)
        return self._client


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file (B24_1C_DUCKDB_PATH). Connections are short; writers also share the `duckdb` pool."""

    database: str = warehouse.duckdb_path()

    def connect(self, *, read_only: bool = False, lock_wait_seconds: float = 120.0):
        return warehouse.connect(self.database, read_only=read_only, lock_wait_seconds=lock_wait_seconds)


def build_resources() -> dict:
    return {
        "bitrix24": Bitrix24Resource(
            auth_mode=env_or("B24_AUTH_MODE", "webhook"),
            webhook_url=env_or("B24_WEBHOOK_URL", ""),
            portal_url=env_or("B24_PORTAL_URL", ""),
            client_id=env_or("B24_CLIENT_ID", ""),
            client_secret=env_or("B24_CLIENT_SECRET", ""),
            token_file=env_or("B24_OAUTH_TOKEN_FILE", str(warehouse.PROJECT_ROOT / DEFAULT_TOKEN_FILE)),
            oauth_server=env_or("B24_OAUTH_SERVER", DEFAULT_OAUTH_SERVER),
            rate=env_or("B24_RATE", "2"),
            burst=env_or("B24_BURST", "50"),
            operating_budget=env_or("B24_OPERATING_BUDGET", "480"),
            operating_share=env_or("B24_OPERATING_SHARE", "0.5"),
        ),
        "onec": OneCResource(
            odata_url=env_or("ONEC_ODATA_URL", ""),
            username=env_or("ONEC_USERNAME", ""),
            password=env_or("ONEC_PASSWORD", ""),
            exchange_dir=env_or("ONEC_EXCHANGE_DIR", str(warehouse.PROJECT_ROOT / "data" / "exchange")),
        ),
        "warehouse": WarehouseResource(database=env_or("B24_1C_DUCKDB_PATH", str(warehouse.DEFAULT_DUCKDB_PATH))),
    }
