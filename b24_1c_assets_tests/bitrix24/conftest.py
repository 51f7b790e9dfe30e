"""Fixtures for the Bitrix24 client tests: a portal on a tiny hand-made world, seeded through its state.

The client tests need only CRM rows, not the business world, so they seed exactly what each test needs.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from b24_1c_assets.sandbox.faults import Faults
from b24_1c_assets.sandbox.world import User, World

WEBHOOK_CODE = "s3cr3tw3bh00kc0de"


@pytest.fixture(scope="session")
def tiny_world() -> World:
    return World(
        seed=7,
        scale=0,
        as_of=datetime(2026, 3, 2, 12, 0),
        users=[User(id=1, name="Интеграция", last_name="Бот", email="bot@example.ru", department="ops")],
        parties=[],
        contracts=[],
        items=[],
        deals=[],
        orders=[],
        invoices=[],
        shipments=[],
        payments=[],
    )


@pytest.fixture
def bx_portal(tiny_world):
    """Start a sandbox portal (fast limits unless told) with a known webhook code; stopped after the test."""
    from b24_1c_assets.sandbox.bitrix24_portal import PortalServer

    started = []

    def start(*, rate: float = 500.0, burst: int = 500, faults: Faults | None = None, **kw):
        kw.setdefault("webhook_code", WEBHOOK_CODE)
        kw.setdefault("seed", False)  # an empty CRM (stages, presets); each test adds the rows it needs
        server = PortalServer(
            tiny_world, host="127.0.0.1", port=0, rate=rate, burst=burst, faults=faults or Faults(), **kw
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def add_companies(portal, count: int, prefix: str = "ООО «Тест") -> list[int]:
    """Add `count` companies straight into the portal's state (no HTTP); return their IDs."""
    return [
        portal.state.call("crm.company.add", {"fields": {"TITLE": f"{prefix} {i}»", "COMPANY_TYPE": "CUSTOMER"}})
        for i in range(count)
    ]


def add_requisites(portal, company_ids: list[int]) -> list[int]:
    return [
        portal.state.call(
            "crm.requisite.add",
            {
                "fields": {
                    "ENTITY_TYPE_ID": 4,
                    "ENTITY_ID": cid,
                    "PRESET_ID": 1,
                    "NAME": "Организация",
                    "RQ_INN": "7707083893",
                    "RQ_KPP": "773601001",
                }
            },
        )
        for cid in company_ids
    ]


def request_log(portal) -> list[dict]:
    return list(portal.request_log)


def throttled_answers(portal) -> int:
    return sum(1 for entry in request_log(portal) if entry.get("error") == "QUERY_LIMIT_EXCEEDED")
