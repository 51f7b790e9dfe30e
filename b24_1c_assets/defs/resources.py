"""Dagster resources: configuration from the environment, clients built once per run.

Secrets (the webhook URL, the 1C password) only ever pass through `dg.EnvVar`, so the UI and the run's
stored config show the variable's name, never its value.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import PrivateAttr

from b24_1c_assets import warehouse
from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.onec import OneCClient


def env_or(name: str, default: str) -> str | dg.EnvVar:
    """An EnvVar when the variable is set (the UI shows where the value came from), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


class Bitrix24Resource(dg.ConfigurableResource):
    """The Bitrix24 portal behind an inbound webhook (B24_WEBHOOK_URL), paced at B24_RATE / B24_BURST."""

    webhook_url: str
    rate: str = "2"
    burst: str = "50"
    timeout_seconds: float = 30.0
    max_retries: int = 6

    _client: Bitrix24Client | None = PrivateAttr(default=None)

    def client(self) -> Bitrix24Client:
        # One client (and so one pacer) per run: every asset of the run shares the portal's budget.
        if self._client is None:
            self._client = Bitrix24Client(self.webhook_url, rate=float(self.rate), burst=int(self.burst),
                                          timeout=self.timeout_seconds, max_retries=self.max_retries)
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
            webhook_url=dg.EnvVar("B24_WEBHOOK_URL"),
            rate=env_or("B24_RATE", "2"),
            burst=env_or("B24_BURST", "50"),
        ),
        "onec": OneCResource(
            odata_url=env_or("ONEC_ODATA_URL", ""),
            username=env_or("ONEC_USERNAME", ""),
            password=env_or("ONEC_PASSWORD", ""),
            exchange_dir=env_or("ONEC_EXCHANGE_DIR", str(warehouse.PROJECT_ROOT / "data" / "exchange")),
        ),
        "warehouse": WarehouseResource(database=env_or("B24_1C_DUCKDB_PATH", str(warehouse.DEFAULT_DUCKDB_PATH))),
    }
