"""End to end: outbound-webhook POSTs to the service -> the journal -> `crm_change_capture` picks each up once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import requests

from b24_1c_assets.defs.automation.sensors import SENSOR_NAME, crm_change_capture
from b24_1c_assets.domain import change_capture as cc
from b24_1c_assets.lib.resources import Bitrix24Resource
from b24_1c_assets.sync.event_journal import EventJournal
from b24_1c_assets_tests.services.test_bitrix24_events import portal_post, send

MANAGER = 7  # a person, not the integration user: their changes must reach the sync


def finished(instance: dg.DagsterInstance, run_key: str) -> None:
    """A successful run carrying the sensor's run key (what the daemon would have launched)."""

    @dg.op
    def work():
        pass

    @dg.job(name="incremental_sync")
    def stand_in():
        work()

    assert stand_in.execute_in_process(
        instance=instance, tags={"dagster/run_key": run_key, "dagster/sensor_name": SENSOR_NAME}
    ).success


def test_a_burst_of_1000_posted_events_is_picked_up_once(
    portal_factory, service, service_config, tmp_path, monkeypatch
):
    crm = portal_factory(rate=1000.0, burst=1000)
    monkeypatch.setenv("B24_1C_EVENTS_DIR", str(tmp_path / "events"))  # where the service journals
    instance = dg.DagsterInstance.ephemeral()
    resource = Bitrix24Resource(webhook_url=crm.webhook_url, rate="1000", burst="1000")
    cursor = {"value": None}

    def tick() -> dg.SensorResult:
        result = crm_change_capture(
            dg.build_sensor_context(
                instance=instance, cursor=cursor["value"], sensor_name=SENSOR_NAME, resources={"bitrix24": resource}
            )
        )
        cursor["value"] = result.cursor
        return result

    tick()  # change capture starts: what came before is old news
    deals = sorted(crm.state.tables["deal"].rows)[:10]
    for deal in deals:  # edited by a manager (the sweep has already passed their DATE_MODIFY)
        crm.state.tables["deal"].rows[deal]["MODIFY_BY_ID"] = str(MANAGER)
    local = threading.local()

    def post(i: int) -> int:
        local.session = getattr(local, "session", None) or requests.Session()
        answer = send(service, portal_post("ONCRMDEALUPDATE", deals[i % len(deals)]), session=local.session)
        assert answer.status_code == 200, answer.text
        return answer.json()["seq"]

    with ThreadPoolExecutor(32) as pool:
        assert sorted(pool.map(post, range(1000))) == list(range(1, 1001))
    journal = EventJournal(service_config.events_journal)

    [run] = tick().run_requests
    assert run.tags["changed_deals"] == ",".join(map(str, deals))
    assert "outbound_webhook" in run.tags["change_sources"].split(",")
    assert cc.CaptureCursor.load(cursor["value"]).pending["journal_to"] == journal.size()  # all 1,000 read
    finished(instance, run.run_key)
    done = tick()
    assert not done.run_requests  # confirmed: none of the 1,000 comes back
    assert cc.CaptureCursor.load(cursor["value"]).journal_offset == journal.size()

    assert send(service, portal_post("ONCRMDEALUPDATE", deals[3])).status_code == 200
    [next_run] = tick().run_requests  # the next event, and only it
    assert next_run.tags["changed_deals"] == str(deals[3])
