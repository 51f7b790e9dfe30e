"""Done-when of issue 12: the whole full_sync and the change-capture sensor against the sandbox in webhook mode
(the default: `event.*` refused) and in application mode (OAuth tokens, offline events), with the portal
charging operating time per call; both settle at the same reference state of the CRM."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import dagster as dg
import pytest
import requests

from b24_1c_assets.defs.automation.sensors import SENSOR_NAME, crm_change_capture
from b24_1c_assets.domain import change_capture as cc
from b24_1c_assets.runner import run_full_sync
from b24_1c_assets.sandbox import start_sandbox
from b24_1c_assets.sync.event_journal import EventJournal, journal_path

MANAGER = 7
COSTS = {"*.update": 0.02, "*.add": 0.04, "*.list": 0.01}  # the portal charges server time per call


def reference_state(portal) -> str:
    """What the sync leaves in the CRM, without stamps and IDs that differ between runs: a digest."""
    state = portal.state
    companies = sorted(
        (
            r.get("TITLE"),
            r.get("ORIGIN_ID"),
            *(str(v) for k, v in sorted(r.items()) if k.startswith("UF_CRM_") and "DATE" not in k and "AS_OF" not in k),
        )
        for r in state.tables["company"].rows.values()
    )
    deals = sorted((r["ID"], r["STAGE_ID"]) for r in state.tables["deal"].rows.values())
    invoices = sorted(
        (r["xmlId"], r["stageId"], r["opportunity"], str(Decimal(str(r.get("UF_CRM_SMART_INVOICE_ONEC_PAID") or 0))))
        for r in state.invoices.rows.values()
    )
    products = sorted((r.get("XML_ID"), r.get("PRICE")) for r in state.tables["product"].rows.values())
    return hashlib.sha256(json.dumps([companies, deals, invoices, products], default=str).encode()).hexdigest()


def settle(mode: str, world, monkeypatch, tmp_path) -> tuple[str, dict]:
    base = tmp_path / mode
    token_file = base / "secrets" / "b24.json" if mode == "application" else None
    sandbox = start_sandbox(
        world=world, rate=50, burst=50, b24_operating_costs=COSTS, b24_application_token_file=token_file
    )
    try:
        for name in (
            "B24_AUTH_MODE",
            "B24_PORTAL_URL",
            "B24_CLIENT_ID",
            "B24_CLIENT_SECRET",
            "B24_OAUTH_SERVER",
            "B24_OAUTH_TOKEN_FILE",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(base / "b24_1c.duckdb"))
        monkeypatch.setenv("ONEC_EXCHANGE_DIR", str(base / "exchange"))
        monkeypatch.setenv("B24_1C_EVENTS_DIR", str(base / "events"))
        from b24_1c_assets.definitions import defs

        loaded = defs()
        resources = {"bitrix24": loaded.resources["bitrix24"]}
        instance = dg.DagsterInstance.ephemeral()
        cursor = None

        def tick() -> dg.SensorResult:
            nonlocal cursor
            result = crm_change_capture(
                dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name=SENSOR_NAME, resources=resources)
            )
            cursor = result.cursor
            return result

        tick()
        assert run_full_sync(trigger="test", instance=instance).success
        quiet = tick()
        assert not quiet.run_requests, quiet.run_requests[0].tags  # our own writes never come back

        deal = sorted(sandbox.portal.state.tables["deal"].rows)[0]
        manager = sandbox.portal.add_webhook(MANAGER)
        assert (
            requests.post(
                manager + "crm.deal.update", json={"id": deal, "fields": {"COMMENTS": "звонок"}}, timeout=10
            ).status_code
            == 200
        )
        if mode == "webhook":  # what the outbound webhook + our service leave in the journal
            EventJournal(journal_path()).append(
                [
                    {
                        "EVENT_NAME": "ONCRMDEALUPDATE",
                        "EVENT_DATA": {"FIELDS": {"ID": deal}},
                        "ts": 1764000000,
                        "member_id": "sandbox",
                        "domain": "127.0.0.1",
                    }
                ]
            )
        [request] = tick().run_requests
        assert request.tags["changed_deals"] == str(deal)
        sources = set(request.tags["change_sources"].split(","))
        assert sources == ({"sweep", "offline_events"} if mode == "application" else {"sweep", "outbound_webhook"})
        run = loaded.resolve_job_def("incremental_sync").execute_in_process(
            instance=instance,
            tags={**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": SENSOR_NAME},
            raise_on_error=False,
        )
        assert run.success
        confirmed = tick()
        assert not confirmed.run_requests and cc.CaptureCursor.load(cursor).pending is None
        assert not tick().run_requests  # settled: nothing left to capture
        event_calls = [e for e in sandbox.portal.request_log if str(e["method"]).startswith("event.")]
        if mode == "webhook":
            assert not event_calls  # never asked: a portal would refuse them
        else:
            assert event_calls and all(e.get("caller") == "application" for e in event_calls)
        charged = sandbox.portal.operating_used(
            "crm.company.update",
            sandbox.portal.application.caller(sandbox.portal.application_token()) if mode == "application" else None,
        )[0]
        assert charged > 0  # operating time was charged to the product's calls
        return reference_state(sandbox.portal), {"events": len(event_calls), "charged": charged}
    finally:
        sandbox.stop()


@pytest.mark.timeout(1800)
def test_full_sync_and_change_capture_settle_at_the_same_state_in_webhook_and_application_mode(
    world, monkeypatch, tmp_path
):
    webhook_state, _ = settle("webhook", world, monkeypatch, tmp_path)
    application_state, figures = settle("application", world, monkeypatch, tmp_path)
    assert figures["events"] > 0
    assert webhook_state == application_state
