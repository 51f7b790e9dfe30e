"""The daily finance digest, sent once per day to the finance people in the portal."""

from datetime import date

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.defs.crm_push.deal_holds import APPLY
from b24_1c_assets.lib.landing import OWNERS
from b24_1c_assets.lib.partitions import daily_partitions
from b24_1c_assets.defs.receivables.assets import CREDIT_STATUS
from b24_1c_assets.lib.resources import Bitrix24Resource, WarehouseResource
from b24_1c_assets.domain.finance_digest import compose_digest, digest_recipients
from b24_1c_assets.sync import journal
from b24_1c_assets.domain.push_plan import Status
from b24_1c_assets.sync.bitrix24_writes import RowOutcome, WriteCommand, apply_commands
from b24_1c_assets.warehouse import query, read_table, replace_partition, table_exists

FLOW = "finance_digest"


@dg.asset(key=["receivables", "finance_digest"], deps=[CREDIT_STATUS, APPLY, dg.AssetKey(["bitrix24", "users"])],
          partitions_def=daily_partitions, group_name="receivables", kinds={"bitrix24", "duckdb"}, owners=OWNERS,
          pool="bitrix24_api", tags={"flow": FLOW})
def finance_digest(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource):
    """The finance digest, one row per day: the text (totals, holds, the day's holds and releases, the
    largest overdue debts) and who it was sent to. Sent once per day: a rerun of a day sends nothing."""
    day = date.fromisoformat(context.partition_key)
    config = settings.load("notifications").get("finance_digest", {})
    with warehouse.connect() as conn:
        status = query(conn, "SELECT * FROM receivables.client_credit_status WHERE snapshot_date = ?", [day]) \
            if table_exists(conn, "receivables", "client_credit_status") else pd.DataFrame()
        transitions = query(conn, "SELECT * FROM receivables.hold_transitions WHERE CAST(decided_at AS DATE) = ?",
                            [day]) if table_exists(conn, "receivables", "hold_transitions") else pd.DataFrame()
        users = read_table(conn, "bitrix24", "users")
        already = journal.last_pushed(conn, FLOW)
    text = compose_digest(status, transitions, day, top=int(config.get("top", 10)))
    recipients = digest_recipients(users, config.get("user_ids", []), config.get("department_ids", []))
    key = day.isoformat()
    sent_before = key in set(already["key"])
    outcomes, api_calls = [], 0
    if not sent_before and recipients:
        client = bitrix24.client()
        calls_before = client.stats.http_calls
        outcomes = apply_commands(client, [WriteCommand(f"{key}:{user}", "im.notify.system.add",
                                                        {"USER_ID": user, "MESSAGE": text}, operation="add")
                                           for user in recipients])
        api_calls = client.stats.http_calls - calls_before
        ok = all(o.status == Status.OK for o in outcomes)
        plan = pd.DataFrame([{"key": key, "operation": "add", "reason": "daily", "before": None, "after": text,
                              "payload_hash": None}])
        with warehouse.connect() as conn:
            journal.record(conn, flow=FLOW, run_id=context.run.run_id, plan=plan,
                           outcomes=[RowOutcome(key, "add", Status.OK if ok else Status.FAILED,
                                                error=None if ok else "; ".join(o.error or "" for o in outcomes))])
    with warehouse.connect() as conn:
        replace_partition(conn, "receivables", "finance_digest",
                          pd.DataFrame([{"snapshot_date": day, "text": text,
                                         "recipients": ",".join(map(str, recipients)),
                                         "sent": sent_before or (bool(outcomes) and all(o.status == Status.OK for o in outcomes))}]),
                          column="snapshot_date", value=day)
    return dg.MaterializeResult(metadata={"dagster/partition_row_count": 1, "recipients": len(recipients),
                                          "sent_now": bool(outcomes), "already_sent": sent_before,
                                          "api_calls": api_calls,
                                          "preview": dg.MetadataValue.md(text.replace("\n", "  \n"))})


defs = dg.Definitions(assets=[finance_digest])
