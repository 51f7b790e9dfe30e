"""Change capture: CRM changes launch `incremental_sync` (deals to 1C orders, companies, deal holds).

Sources, by how the product reaches the portal (B24_AUTH_MODE, `lib/resources.py`):
- always the `DATE_MODIFY` sweep of `crm.deal.list` / `crm.company.list` (watermark minus an overlap), dropping
  the integration user's own writes (MODIFY_BY_ID) and hits already seen;
- with an inbound webhook: the events Bitrix24 outbound webhooks POSTed to our service (`POST /v1/bitrix24/
  events`), read from the event journal (`sync/event_journal.py`) by byte offset. An inbound webhook cannot use
  `event.bind` / `event.offline.*` (application context only: `api-reference/events/event-bind.md`), so this
  sensor never calls them then. The journaled events carry only IDs: each named record is re-read and dropped
  when its MODIFY_BY_ID is our own user (loop prevention);
- with a local application: the portal's offline queue (`event.offline.get`, `clear: 0`, our `auth_connector`:
  our own writes are not in it). If binding is refused (no administrator, plan without `auth_connector`), the
  sensor goes on with the other sources and says so; it never fails because binding is impossible.

Each tick:
1. If a run was launched for a batch of events, wait for it; once it succeeded confirm the events
   (`event.offline.clear` with the batch's `process_id`; the journal offset moves past them); if it failed,
   launch it again (events stay reserved).
2. Otherwise read the active sources; anything changed -> one run request, with the changed IDs and the active
   sources (`change_sources`) in its tags; nothing changed -> a skip reason naming the sources.

The new-deal block keeps its own light sensor (`new_deal_block_sensor`, receivables/sensors.py): it reacts to
new deal IDs within a minute with a three-asset run; this one catches every change, with the full flow.
"""

import hashlib
from datetime import timedelta

import dagster as dg

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.bitrix24.errors import AuthError, Bitrix24Error, MethodNotFound
from b24_1c_assets.defs.jobs import incremental_sync
from b24_1c_assets.domain import change_capture as cc
from b24_1c_assets.lib.resources import Bitrix24Resource
from b24_1c_assets.sync.bitrix24_writes import OUR_CONNECTOR
from b24_1c_assets.sync.event_journal import EventJournal, journal_path

OVERLAP = timedelta(minutes=10)  # portal clocks and long transactions: a change may land with an older stamp
EVENT_BATCH = 1000
SENSOR_NAME = "crm_change_capture"
# Re-read methods for events' records (MODIFY_BY_ID tells whose change it was).
REREAD = {"deal": "crm.deal.list", "company": "crm.company.list", "requisite": "crm.requisite.list"}


def bind_offline_handlers(client: Bitrix24Client, connector: str) -> None:
    """Bind our connector's offline queue to the watched CRM events (an existing binding is fine)."""
    for event in cc.WATCHED_EVENTS:
        try:
            client.call("event.bind", {"event": event, "event_type": "offline", "auth_connector": connector})
        except Bitrix24Error as exc:
            # `ERROR_HANDLER_ALREADY_EXIST` "Handler already exists!" (`error-codes.md`)
            if (exc.code or "").upper() != "ERROR_HANDLER_ALREADY_EXIST" and "already" not in str(exc).lower():
                raise


def newest_modification(client: Bitrix24Client) -> str | None:
    """The newest DATE_MODIFY over deals and companies: where a first sweep starts."""
    stamps = []
    for method in cc.SWEPT.values():
        rows = (
            client.call(method, {"order": {"DATE_MODIFY": "DESC"}, "select": ["ID", "DATE_MODIFY"], "start": -1}) or []
        )
        stamps += [r["DATE_MODIFY"] for r in rows[:1] if r.get("DATE_MODIFY")]
    return max(stamps, key=cc.parse_wire_time) if stamps else None


def sweep(client: Bitrix24Client, since: str) -> dict[str, list[dict]]:
    return {
        entity: client.export_all(method, filter={">=DATE_MODIFY": since}, select=["ID", "DATE_MODIFY", "MODIFY_BY_ID"])
        for entity, method in cc.SWEPT.items()
    }


def authors(client: Bitrix24Client, named: dict[str, set[int]]) -> dict[str, dict[int, str]]:
    """entity -> ID -> MODIFY_BY_ID of the records events named (a deleted record is absent)."""
    out: dict[str, dict[int, str]] = {}
    for entity, ids in named.items():
        method = REREAD.get(entity)
        if method is None or not ids:
            continue
        rows = client.export_all(method, filter={"@ID": sorted(ids)}, select=["ID", "MODIFY_BY_ID"])
        out[entity] = {int(r["ID"]): str(r.get("MODIFY_BY_ID") or "") for r in rows}
    return out


AUTO_RETRY_RUN_ID = "dagster/auto_retry_run_id"  # set on a failed run once the daemon launched its retry


def pending_run_status(context: dg.SensorEvaluationContext, run_key: str) -> dg.DagsterRunStatus | None:
    """Status of the run launched for `run_key`, following the daemon's automatic retries (dagster.yaml
    `run_retries`): a failed run about to be retried counts as queued, so we never launch a second retry."""
    runs = context.instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/run_key": run_key, "dagster/sensor_name": SENSOR_NAME}), limit=1
    )
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


def _bind(client: Bitrix24Client, cursor: cc.CaptureCursor, context) -> bool:
    """Bind our offline queue once; False (with the reason kept and logged) when the portal refuses."""
    if cursor.bound:
        return True
    try:
        bind_offline_handlers(client, OUR_CONNECTOR)
    except (AuthError, MethodNotFound) as exc:
        # WRONG_AUTH_TYPE (not an application), ACCESS_DENIED (offline binding needs an administrator),
        # WRONG_LICENSE (auth_connector needs a plan that has it): the other sources still work.
        cursor.offline_refused = exc.code or type(exc).__name__
        context.log.warning(
            f"change capture: offline events unavailable ({cursor.offline_refused}); "
            "going on with the sweep and the outbound-webhook journal"
        )
        return False
    cursor.bound, cursor.offline_refused = True, None
    return True


def _read_offline_queue(client: Bitrix24Client, cursor: cc.CaptureCursor, context) -> tuple[list[dict], str | None]:
    """(events, process_id) from our offline queue; ([], None) when the portal refuses it."""
    if not _bind(client, cursor, context):
        return [], None
    try:
        queue = client.call("event.offline.get", {"clear": 0, "limit": EVENT_BATCH, "auth_connector": OUR_CONNECTOR})
    except (AuthError, MethodNotFound) as exc:
        cursor.offline_refused = exc.code or type(exc).__name__
        context.log.warning(f"change capture: event.offline.get refused ({cursor.offline_refused})")
        return [], None
    events = (queue.get("events") or []) if isinstance(queue, dict) else []
    return events, (queue.get("process_id") if events else None)


def active_sources(application: bool, cursor: cc.CaptureCursor, journal: EventJournal) -> list[str]:
    sources = ["sweep"]
    if application and not cursor.offline_refused:
        sources.append("offline_events")
    if journal.path.exists():
        sources.append("outbound_webhook")
    return sources


@dg.sensor(
    name=SENSOR_NAME,
    job=incremental_sync,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Bitrix24 change capture: a DATE_MODIFY sweep with a 10-minute overlap, plus the events "
    "outbound webhooks POSTed to our service (webhook mode) or the offline queue "
    "(application mode), confirmed only after the launched run succeeded; our own writes "
    "are left out (integration user, auth_connector). Launches incremental_sync.",
)
def crm_change_capture(context: dg.SensorEvaluationContext, bitrix24: Bitrix24Resource):
    cursor = cc.CaptureCursor.load(context.cursor)
    client = bitrix24.client()
    application = bitrix24.application_mode
    journal = EventJournal(journal_path())

    if cursor.pending:  # a batch of events is out: confirm it once its run succeeded
        status = pending_run_status(context, cursor.pending["run_key"])
        if status == dg.DagsterRunStatus.SUCCESS:
            if cursor.pending.get("process_id"):
                client.call(
                    "event.offline.clear", {"process_id": cursor.pending["process_id"], "auth_connector": OUR_CONNECTOR}
                )
            if cursor.pending.get("journal_to") is not None:
                cursor.journal_offset = int(cursor.pending["journal_to"])
            cursor.pending, cursor.attempt = None, 0
        elif status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            cursor.attempt += 1  # same reserved events, a fresh run
            run_key = f"{cursor.pending['base_key']}-retry{cursor.attempt}"
            cursor.pending = dict(cursor.pending, run_key=run_key)
            return dg.SensorResult(
                run_requests=[dg.RunRequest(run_key=run_key, tags=cursor.pending.get("tags") or {})],
                cursor=cursor.dump(),
            )
        else:
            return dg.SensorResult(
                skip_reason=f"waiting for run {cursor.pending['run_key']} ({status})", cursor=cursor.dump()
            )

    own_user = client.user_id
    if cursor.watermark is None:  # first tick: start from now; older changes are the nightly run's business
        if application:
            _bind(client, cursor, context)
        cursor.journal_offset = journal.size()  # events received before change capture started are old news
        cursor.watermark = newest_modification(client)
        if cursor.watermark is not None:  # what the next sweep's overlap returns is old news, not a change
            cursor.seen = cc.evaluate_sweep(
                sweep(client, cc.sweep_from(cursor.watermark, OVERLAP)),
                watermark=cursor.watermark,
                seen={},
                overlap=OVERLAP,
                own_user_id=own_user,
            ).seen
        sources = active_sources(application, cursor, journal)
        return dg.SensorResult(
            skip_reason=f"change capture started at the newest modification (sources: {', '.join(sources)})",
            cursor=cursor.dump(),
        )

    events, process_id = _read_offline_queue(client, cursor, context) if application else ([], None)
    received = journal.read_from(cursor.journal_offset, EVENT_BATCH)
    outcome = cc.evaluate_sweep(
        sweep(client, cc.sweep_from(cursor.watermark, OVERLAP)),
        watermark=cursor.watermark,
        seen=cursor.seen,
        overlap=OVERLAP,
        own_user_id=own_user,
    )
    cursor.watermark, cursor.seen = outcome.watermark, outcome.seen
    from_events = cc.changes_from_events(events)
    named = cc.changes_from_events(received.events)
    from_journal, own_events = cc.drop_own_changes(named, authors(client, named) if named else {}, own_user)
    changed = cc.merge(from_events, from_journal, outcome.changed)
    sources = active_sources(application, cursor, journal)
    context.log.info(
        f"change capture ({', '.join(sources)}): {len(events)} offline events, "
        f"{len(received.events)} received events ({own_events} our own), sweep "
        f"{sum(map(len, outcome.changed.values()))} new changes, {outcome.own} own writes skipped"
    )
    if not changed:
        if process_id:  # events that named nothing we watch: nothing to run for them
            client.call("event.offline.clear", {"process_id": process_id, "auth_connector": OUR_CONNECTOR})
        cursor.journal_offset = received.offset
        return dg.SensorResult(skip_reason=f"no CRM change (sources: {', '.join(sources)})", cursor=cursor.dump())
    digest = hashlib.sha1(repr(sorted((e, sorted(i)) for e, i in changed.items())).encode()).hexdigest()[:10]
    run_key = f"crm-changes-{process_id or received.offset or cursor.watermark}-{digest}"
    tags = change_tags(changed)
    tags["change_sources"] = ",".join(sources)
    cursor.pending = {
        "run_key": run_key,
        "base_key": run_key,
        "process_id": process_id,
        "tags": tags,
        "journal_to": received.offset,
    }
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key, tags=tags)], cursor=cursor.dump())


defs = dg.Definitions(sensors=[crm_change_capture])
