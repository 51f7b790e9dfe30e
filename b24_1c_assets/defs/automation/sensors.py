"""Change capture: CRM changes launch `incremental_sync` (deals to 1C orders, companies, deal holds).

Each tick:
1. If a run was launched for a batch of offline events, wait for it; once it succeeded confirm the events
   (`event.offline.clear` with the batch's `process_id`); if it failed, launch it again (events stay reserved).
2. Otherwise read the queue (`event.offline.get`, `clear: 0`, our `auth_connector`: our own writes are not in
   it) and sweep `crm.deal.list`/`crm.company.list` on `>=DATE_MODIFY` (watermark minus an overlap), dropping
   the integration user's own writes and hits already seen.
3. Anything changed -> one run request, with the changed IDs in its tags.

The new-deal block keeps its own light sensor (`new_deal_block_sensor`, receivables/sensors.py): it reacts to
new deal IDs within a minute with a three-asset run; this one catches every change, with the full flow.
"""

import hashlib
from datetime import timedelta

import dagster as dg

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.bitrix24.errors import Bitrix24Error
from b24_1c_assets.defs.jobs import incremental_sync
from b24_1c_assets.defs.resources import Bitrix24Resource
from b24_1c_assets.domain import change_capture as cc
from b24_1c_assets.sync.bitrix24_writes import OUR_CONNECTOR

OVERLAP = timedelta(minutes=10)  # portal clocks and long transactions: a change may land with an older stamp
EVENT_BATCH = 1000
SENSOR_NAME = "crm_change_capture"


def bind_offline_handlers(client: Bitrix24Client, connector: str) -> None:
    """Bind our connector's offline queue to the watched CRM events (an existing binding is fine)."""
    for event in cc.WATCHED_EVENTS:
        try:
            client.call("event.bind", {"event": event, "event_type": "offline", "auth_connector": connector})
        except Bitrix24Error as exc:
            if "already" not in str(exc).lower():
                raise


def newest_modification(client: Bitrix24Client) -> str | None:
    """The newest DATE_MODIFY over deals and companies: where a first sweep starts."""
    stamps = []
    for method in cc.SWEPT.values():
        rows = client.call(method, {"order": {"DATE_MODIFY": "DESC"}, "select": ["ID", "DATE_MODIFY"],
                                    "start": -1}) or []
        stamps += [r["DATE_MODIFY"] for r in rows[:1] if r.get("DATE_MODIFY")]
    return max(stamps, key=cc.parse_wire_time) if stamps else None


def sweep(client: Bitrix24Client, since: str) -> dict[str, list[dict]]:
    return {entity: client.export_all(method, filter={">=DATE_MODIFY": since},
                                      select=["ID", "DATE_MODIFY", "MODIFY_BY_ID"])
            for entity, method in cc.SWEPT.items()}


AUTO_RETRY_RUN_ID = "dagster/auto_retry_run_id"  # set on a failed run once the daemon launched its retry


def pending_run_status(context: dg.SensorEvaluationContext, run_key: str) -> dg.DagsterRunStatus | None:
    """Status of the run launched for `run_key`, following the daemon's automatic retries (dagster.yaml
    `run_retries`): a failed run about to be retried counts as queued, so we never launch a second retry."""
    runs = context.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key,
                                                                 "dagster/sensor_name": SENSOR_NAME}), limit=1)
    run = runs[0] if runs else None
    while run is not None and run.status == dg.DagsterRunStatus.FAILURE:
        if run.is_complete_and_waiting_to_retry:
            return dg.DagsterRunStatus.QUEUED
        retry_id = run.tags.get(AUTO_RETRY_RUN_ID)
        retry = context.instance.get_run_by_id(retry_id) if retry_id else None
        if retry is None:
            break
        run = retry
    return run.status if run is not None else None


def change_tags(changed: dict[str, set[int]]) -> dict[str, str]:
    tags = {"trigger": "change_capture", "flow": "incremental_sync"}
    for entity, ids in changed.items():
        plural = "companies" if entity == "company" else f"{entity}s"
        tags[f"changed_{plural}"] = ",".join(str(i) for i in sorted(ids))[:200]
    return tags


@dg.sensor(name=SENSOR_NAME, job=incremental_sync, minimum_interval_seconds=120,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Bitrix24 change capture: offline events (confirmed only after the launched run "
                       "succeeded) plus a DATE_MODIFY sweep with a 10-minute overlap; our own writes are "
                       "left out (auth_connector, integration user). Launches incremental_sync.")
def crm_change_capture(context: dg.SensorEvaluationContext, bitrix24: Bitrix24Resource):
    cursor = cc.CaptureCursor.load(context.cursor)
    client = bitrix24.client()

    if cursor.pending:  # a batch of events is out: confirm it once its run succeeded
        status = pending_run_status(context, cursor.pending["run_key"])
        if status == dg.DagsterRunStatus.SUCCESS:
            if cursor.pending.get("process_id"):
                client.call("event.offline.clear", {"process_id": cursor.pending["process_id"],
                                                    "auth_connector": OUR_CONNECTOR})
            cursor.pending, cursor.attempt = None, 0
        elif status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            cursor.attempt += 1  # same reserved events, a fresh run
            run_key = f"{cursor.pending['base_key']}-retry{cursor.attempt}"
            cursor.pending = dict(cursor.pending, run_key=run_key)
            return dg.SensorResult(
                run_requests=[dg.RunRequest(run_key=run_key, tags=cursor.pending.get("tags") or {})],
                cursor=cursor.dump())
        else:
            return dg.SensorResult(skip_reason=f"waiting for run {cursor.pending['run_key']} ({status})",
                                   cursor=cursor.dump())

    if not cursor.bound:
        bind_offline_handlers(client, OUR_CONNECTOR)
        cursor.bound = True
    own_user = cc.webhook_user_id(bitrix24.webhook_url)
    if cursor.watermark is None:  # first tick: start from now; older changes are the nightly run's business
        cursor.watermark = newest_modification(client)
        if cursor.watermark is not None:  # what the next sweep's overlap returns is old news, not a change
            cursor.seen = cc.evaluate_sweep(sweep(client, cc.sweep_from(cursor.watermark, OVERLAP)),
                                            watermark=cursor.watermark, seen={}, overlap=OVERLAP,
                                            own_user_id=own_user).seen
        return dg.SensorResult(skip_reason="change capture started at the newest modification",
                               cursor=cursor.dump())

    queue = client.call("event.offline.get", {"clear": 0, "limit": EVENT_BATCH, "auth_connector": OUR_CONNECTOR})
    events = queue.get("events") or []
    process_id = queue.get("process_id") if events else None
    outcome = cc.evaluate_sweep(sweep(client, cc.sweep_from(cursor.watermark, OVERLAP)),
                                watermark=cursor.watermark, seen=cursor.seen, overlap=OVERLAP,
                                own_user_id=own_user)
    cursor.watermark, cursor.seen = outcome.watermark, outcome.seen
    from_events = cc.changes_from_events(events)
    changed = cc.merge(from_events, outcome.changed)
    context.log.info(f"change capture: {len(events)} events, sweep {sum(map(len, outcome.changed.values()))} "
                     f"new changes, {outcome.own} own writes skipped")
    if not changed:
        if process_id:  # events that named nothing we watch: nothing to run for them
            client.call("event.offline.clear", {"process_id": process_id, "auth_connector": OUR_CONNECTOR})
        return dg.SensorResult(skip_reason="no CRM change", cursor=cursor.dump())
    digest = hashlib.sha1(repr(sorted((e, sorted(i)) for e, i in changed.items())).encode()).hexdigest()[:10]
    run_key = f"crm-changes-{process_id or cursor.watermark}-{digest}"
    tags = change_tags(changed)
    cursor.pending = {"run_key": run_key, "base_key": run_key, "process_id": process_id, "tags": tags}
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key, tags=tags)], cursor=cursor.dump())


defs = dg.Definitions(sensors=[crm_change_capture])
