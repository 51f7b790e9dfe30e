"""The daily finance digest, sent once per day to the finance people in the portal."""

from datetime import date

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.defs.crm_push.deal_holds import APPLY
from b24_1c_assets.defs.receivables.assets import CREDIT_STATUS
from b24_1c_assets.domain.finance_digest import compose_digest, digest_recipients
from b24_1c_assets.domain.push_plan import Operation, Status
from b24_1c_assets.lib import push_flow, tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.landing import OWNERS
from b24_1c_assets.lib.partitions import daily_partitions
from b24_1c_assets.lib.resources import Bitrix24Resource, WarehouseResource
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_writes import RowOutcome, WriteCommand, apply_commands
from b24_1c_assets.warehouse import query

FLOW = "finance_digest"
# the credit status columns the digest's text reads (compose_digest): not every client's every Decimal
DIGEST_COLUMNS = "name, inn, balance, overdue_amount, days_overdue, status"


@dg.asset(
    key=tables.FINANCE_DIGEST.key,
    deps=[CREDIT_STATUS, APPLY, tables.BITRIX24_USERS.key],
    partitions_def=daily_partitions,
    group_name="receivables",
    kinds={"bitrix24", "duckdb"},
    owners=OWNERS,
    pool="bitrix24_api",
    tags={"flow": FLOW},
)
def finance_digest(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource):
    """The finance digest, one row per day: the text (totals, holds, the day's holds and releases, the
    largest overdue debts) and who it was sent to. Sent once per day: a rerun of a day sends nothing."""
    day = date.fromisoformat(context.partition_key)
    config = settings.notifications().finance_digest
    with warehouse.connect() as conn:
        status = (
            query(conn, f"SELECT {DIGEST_COLUMNS} FROM {tables.CLIENT_CREDIT_STATUS} WHERE snapshot_date = ?", [day])
            if tables.CLIENT_CREDIT_STATUS.exists(conn)
            else pd.DataFrame()
        )
        transitions = (
            query(conn, f"SELECT * FROM {tables.HOLD_TRANSITIONS} WHERE CAST(decided_at AS DATE) = ?", [day])
            if tables.HOLD_TRANSITIONS.exists(conn)
            else pd.DataFrame()
        )
        users = tables.BITRIX24_USERS.read(conn)
        already = journal.last_pushed(conn, FLOW)
    text = compose_digest(status, transitions, day, top=config.top)
    recipients = digest_recipients(users, list(config.user_ids), list(config.department_ids))
    key = day.isoformat()
    sent_before = key in set(already["key"])
    outcomes, api_calls = [], 0
    plan = pd.DataFrame(
        [
            {
                "key": key,
                "operation": Operation.ADD,
                "reason": "daily",
                "before": None,
                "after": text,
                "payload_hash": None,
            }
        ]
    )
    if not sent_before and recipients and push_flow.is_dry_run(context, "bitrix24"):
        with warehouse.connect() as conn:  # journaled as a dry run: the day stays unsent
            push_flow.journal(
                conn, flow=FLOW, context=context, plan=plan, outcomes=push_flow.dry_run_outcomes(plan), dry_run=True
            )
    elif not sent_before and recipients:
        client = bitrix24.client()
        calls = ApiCalls(client)
        outcomes = apply_commands(
            client,
            [
                WriteCommand(
                    f"{key}:{user}", "im.notify.system.add", {"USER_ID": user, "MESSAGE": text}, operation=Operation.ADD
                )
                for user in recipients
            ],
        )
        api_calls = calls.count
        ok = all(o.status == Status.OK for o in outcomes)
        with warehouse.connect() as conn:
            push_flow.journal(
                conn,
                flow=FLOW,
                context=context,
                plan=plan,
                outcomes=[
                    RowOutcome(
                        key,
                        Operation.ADD,
                        Status.OK if ok else Status.FAILED,
                        error=None if ok else "; ".join(o.error or "" for o in outcomes),
                    )
                ],
            )
    with warehouse.connect() as conn:
        sent = sent_before or (bool(outcomes) and all(o.status == Status.OK for o in outcomes))
        tables.FINANCE_DIGEST.replace_partition(
            conn,
            pd.DataFrame(
                [{"snapshot_date": day, "text": text, "recipients": ",".join(map(str, recipients)), "sent": sent}]
            ),
            column="snapshot_date",
            value=day,
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/partition_row_count": 1,
            "recipients": len(recipients),
            "sent_now": bool(outcomes),
            "already_sent": sent_before,
            "api_calls": api_calls,
            "preview": dg.MetadataValue.md(text.replace("\n", "  \n")),
        }
    )


defs = dg.Definitions(assets=[finance_digest])
