"""Deals of clients on credit hold: suspended in their own pipeline, released after payment, and the
responsible manager told once per change of state."""

from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.domain.credit_holds import (
    MOVE_COLUMNS,
    STATE_COLUMNS,
    SUSPEND,
    deal_message,
    hold_message,
    plan_holds,
)
from b24_1c_assets.domain.push_plan import GuardVerdict, Operation, Status, plan_updates
from b24_1c_assets.domain.receivables_push import FIELDS as DEBT_FIELDS
from b24_1c_assets.domain.receivables_push import desired_company_fields, zeroed
from b24_1c_assets.lib import push_flow, tables
from b24_1c_assets.lib.api_calls import ApiCalls
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC
from b24_1c_assets.lib.landing import OWNERS, preview
from b24_1c_assets.lib.resources import Bitrix24Resource, WarehouseResource
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_stages import StageSetupError, ensure_suspended_stages
from b24_1c_assets.sync.bitrix24_writes import WriteCommand, apply_commands
from b24_1c_assets.warehouse import query

FLOW = "deal_holds"
PLAN = tables.DEAL_HOLD_PLAN.key
APPLY = tables.PUSH_DEAL_HOLDS.key
UPSTREAM = [tables.CLIENT_CREDIT_STATUS.key, tables.BITRIX24_DEALS.key, tables.BITRIX24_COMPANIES.key]
SUSPENDED_COLUMNS = ["deal_id", "company_id", "category_id", "previous_stage", "suspended_on"]
RELEASE_COLUMNS = ["company_id", "until", "reason", "released_by"]


def open_deals(deals: pd.DataFrame) -> pd.DataFrame:
    """Deals in progress (semantics P, not closed), as plan_holds wants them."""
    if deals.empty:
        return pd.DataFrame(columns=["deal_id", "company_id", "category_id", "stage_id"])
    live = deals[(deals.get("STAGE_SEMANTIC_ID", "P") == "P") & (deals.get("CLOSED", "N") != "Y")]
    company = pd.to_numeric(live["COMPANY_ID"], errors="coerce")
    live = live[company.fillna(0) > 0]
    return pd.DataFrame(
        {
            "deal_id": live["ID"].astype(int),
            "company_id": company[company.fillna(0) > 0].astype(int),
            "category_id": live["CATEGORY_ID"].astype(int),
            "stage_id": live["STAGE_ID"],
        }
    )


def manual_releases(conn, database_path: str) -> pd.DataFrame:
    """Manual releases from review.manual_releases and review/manual_releases.csv beside the DuckDB file."""
    frames = [tables.MANUAL_RELEASES.read(conn)]
    path = Path(database_path).parent / "review" / "manual_releases.csv"
    if path.exists():
        frames.append(pd.read_csv(path, parse_dates=["until"]))
    frames = [f[RELEASE_COLUMNS] for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RELEASE_COLUMNS)


def table_or_empty(conn, table: tables.Table, columns: list[str]) -> pd.DataFrame:
    frame = table.read(conn)
    return frame[columns] if not frame.empty else pd.DataFrame(columns=columns)


@dg.asset(
    key=PLAN,
    deps=UPSTREAM,
    group_name="crm_push",
    kinds={"duckdb"},
    owners=OWNERS,
    pool="duckdb",
    tags={"flow": FLOW, **INCREMENTAL_SYNC},
    check_specs=[push_flow.guard_spec(PLAN, "deal suspensions")],
)
def deal_hold_plan(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Planned deal moves, one row per deal to move: suspend (to HOLD / C<N>:HOLD of its own pipeline,
    remembering the stage it was in) or release (back to that stage), with the client's hold reasons.
    Also stores the hold state and transitions the moves would lead to (crm_push.deal_hold_state_plan,
    crm_push.hold_transition_plan). Guarded against mass suspension, and against an export zeroing many debts
    (which would release every hold)."""
    with warehouse.connect() as conn:
        status = query(
            conn,
            f"SELECT * FROM {tables.CLIENT_CREDIT_STATUS} WHERE company_id IS NOT NULL AND "
            f"snapshot_date = (SELECT max(snapshot_date) FROM {tables.CLIENT_CREDIT_STATUS})",
        )
        as_of = status["snapshot_date"].max() if not status.empty else date.today()
        plan = plan_holds(
            status,
            table_or_empty(conn, tables.HOLD_STATE, STATE_COLUMNS),
            manual_releases(conn, warehouse.database),
            open_deals(tables.BITRIX24_DEALS.read(conn)),
            table_or_empty(conn, tables.SUSPENDED_DEALS, SUSPENDED_COLUMNS),
            settings.credit_policy(),
            pd.Timestamp(as_of).date(),
        )
        push_flow.store_plan(conn, context, tables.DEAL_HOLD_MOVES, plan.deal_moves)
        tables.DEAL_HOLD_STATE_PLAN.replace(conn, plan.state)
        tables.DEAL_HOLD_SUSPENDED_PLAN.replace(conn, plan.suspended)
        tables.HOLD_TRANSITION_PLAN.replace(conn, plan.transitions)
        open_count = len(open_deals(tables.BITRIX24_DEALS.read(conn)))
        # the first run after installation holds everyone already over the line: an initial load, not a change
        initial = not tables.HOLD_STATE.exists(conn)
        # Debts as the CRM last showed them: an export that zeroes many of them would release every hold, so
        # the receivables push's zeroed-debt limits stop the moves too (also in runs without that push).
        debts = plan_updates(
            desired_company_fields(status), journal.last_pushed(conn, "company_receivables"), set(), DEBT_FIELDS
        )
    suspends = plan.deal_moves[plan.deal_moves["action"] == SUSPEND]
    guard_view = pd.DataFrame(
        {"operation": Operation.UPDATE, "reason": "never pushed" if initial else "changed"}, index=range(len(suspends))
    )
    moves_verdict = push_flow.guard_verdict(guard_view, open_count, FLOW)
    debt_verdict = push_flow.guard_verdict(debts.iloc[0:0], len(status), "company_receivables", zeroed=zeroed(debts))
    verdict = GuardVerdict(
        moves_verdict.passed and debt_verdict.passed,
        moves_verdict.reasons + debt_verdict.reasons,
        {**moves_verdict.figures, "zeroed": debt_verdict.figures["zeroed"]},
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(plan.deal_moves),
            "suspend": len(suspends),
            "release": int((plan.deal_moves["action"] != SUSPEND).sum()),
            "transitions": len(plan.transitions),
            "held_clients": int((plan.state["state"] == "held").sum()),
            "preview": preview(plan.deal_moves, ["deal_id", "company_id", "from_stage", "to_stage", "action"]),
        }
    )
    yield push_flow.guard_result(context, PLAN, verdict)


@dg.asset(
    key=APPLY,
    deps=[PLAN],
    group_name="crm_push",
    kinds={"bitrix24", "duckdb"},
    owners=OWNERS,
    pool="bitrix24_api",
    tags={"flow": FLOW, **INCREMENTAL_SYNC},
)
def deal_holds(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource):
    """Deal moves carried out, one row per moved deal in sync.results (flow deal_holds) with a timeline
    comment on the deal; the hold state (receivables.hold_state, one row per company) and the remembered
    stages of suspended deals (receivables.suspended_deals, one row per deal) advance only for moves that
    succeeded; each change of hold state is queued once in receivables.hold_transitions and notified."""
    with warehouse.connect() as conn:
        moves = tables.DEAL_HOLD_MOVES.read(conn)
        state = tables.DEAL_HOLD_STATE_PLAN.read(conn)
        suspended = table_or_empty(conn, tables.DEAL_HOLD_SUSPENDED_PLAN, SUSPENDED_COLUMNS)
        transitions = table_or_empty(
            conn, tables.HOLD_TRANSITION_PLAN, ["company_id", "from_state", "to_state", "reasons", "assigned_by_id"]
        )
        titles = dict(zip(*(tables.BITRIX24_COMPANIES.read(conn)[c] for c in ("ID", "TITLE"))))
    moves = moves if not moves.empty else pd.DataFrame(columns=MOVE_COLUMNS)
    plan_rows = moves.assign(
        key=moves["deal_id"].astype(str),
        operation=Operation.UPDATE,
        reason=moves["action"],
        before=moves["from_stage"],
        after=moves["to_stage"],
        payload_hash=None,
    )
    if push_flow.is_dry_run(context, "bitrix24"):
        # nothing moves: the hold state and the remembered stages stay as they are, nobody is notified
        with warehouse.connect() as conn:
            push_flow.journal(
                conn,
                flow=FLOW,
                context=context,
                plan=plan_rows,
                outcomes=push_flow.dry_run_outcomes(plan_rows),
                dry_run=True,
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(plan_rows),
                "dry_run": True,
                "preview": preview(moves, ["deal_id", "company_id", "from_stage", "to_stage", "action"]),
            }
        )
    client = bitrix24.client()
    calls = ApiCalls(client)
    # A portal has no Suspended stage until it is added: create it where a deal is about to go (fails loudly,
    # naming the pipeline, when the integration user may not).
    needed = {int(m.category_id) for m in moves.itertuples() if m.action == SUSPEND}
    try:
        created_stages = ensure_suspended_stages(client, needed)
    except StageSetupError as exc:
        raise dg.Failure(f"deal holds: {exc}") from None
    commands = [
        WriteCommand(str(m.deal_id), "crm.deal.update", {"id": int(m.deal_id), "fields": {"STAGE_ID": m.to_stage}})
        for m in moves.itertuples()
    ]
    outcomes = apply_commands(client, commands)
    moved = {o.key for o in outcomes if o.status == Status.OK}
    comments = [
        WriteCommand(
            f"deal:{m.deal_id}",
            "crm.timeline.comment.add",
            {
                "fields": {
                    "ENTITY_ID": int(m.deal_id),
                    "ENTITY_TYPE": "deal",
                    "COMMENT": deal_message(m.reasons, m.action),
                }
            },
            operation=Operation.ADD,
        )
        for m in moves.itertuples()
        if str(m.deal_id) in moved
    ]
    comment_outcomes = apply_commands(client, comments)

    # remember only suspensions that happened; keep the memory of releases that failed
    failed_releases = {
        int(m.deal_id) for m in moves.itertuples() if m.action != SUSPEND and str(m.deal_id) not in moved
    }
    failed_suspends = {
        int(m.deal_id) for m in moves.itertuples() if m.action == SUSPEND and str(m.deal_id) not in moved
    }
    with warehouse.connect() as conn:
        previous = table_or_empty(conn, tables.SUSPENDED_DEALS, SUSPENDED_COLUMNS)
    parts = [
        suspended[~suspended["deal_id"].astype(int).isin(failed_suspends)],
        previous[previous["deal_id"].astype(int).isin(failed_releases)],
    ]
    parts = [p for p in parts if not p.empty]
    keep = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SUSPENDED_COLUMNS)
    with warehouse.connect() as conn:
        push_flow.journal(conn, flow=FLOW, context=context, plan=plan_rows, outcomes=outcomes)
        tables.SUSPENDED_DEALS.replace(conn, keep)
        if not state.empty:
            tables.HOLD_STATE.replace(conn, state)
        if not transitions.empty:
            queued = transitions.assign(
                decided_at=pd.Timestamp.now(tz="UTC").tz_localize(None), run_id=context.run.run_id, notified=False
            )
            tables.HOLD_TRANSITIONS.append(conn, queued)
    notified = notify_transitions(context, client, warehouse, titles)
    failed = [o for o in outcomes if o.status != Status.OK]
    for outcome in failed[:20]:
        context.log.warning(f"deal {outcome.key}: {outcome.error}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(outcomes),
            "suspended": sum(1 for m in moves.itertuples() if m.action == SUSPEND and str(m.deal_id) in moved),
            "released": sum(1 for m in moves.itertuples() if m.action != SUSPEND and str(m.deal_id) in moved),
            "failed": len(failed),
            "comments": sum(o.status == Status.OK for o in comment_outcomes),
            "notifications": notified,
            "api_calls": calls.count,
            "stages_created": ", ".join(created_stages) or "none",
            "preview": preview(moves, ["deal_id", "company_id", "from_stage", "to_stage", "action"]),
        }
    )


def notify_transitions(context, client, warehouse: WarehouseResource, titles: dict) -> int:
    """Send every queued, not yet notified change of hold state (an outbox: failures are sent next run)."""
    with warehouse.connect() as conn:
        if not tables.HOLD_TRANSITIONS.exists(conn):
            return 0
        pending = query(conn, f"SELECT rowid AS row_id, * FROM {tables.HOLD_TRANSITIONS} WHERE NOT notified")
    if pending.empty:
        return 0
    commands = []
    for t in pending.itertuples():
        text = hold_message(str(titles.get(str(t.company_id), t.company_id)), t.reasons, t.to_state)
        commands.append(
            WriteCommand(
                f"{t.row_id}:comment",
                "crm.timeline.comment.add",
                {"fields": {"ENTITY_ID": int(t.company_id), "ENTITY_TYPE": "company", "COMMENT": text}},
                operation=Operation.ADD,
            )
        )
        if pd.notna(t.assigned_by_id):
            commands.append(
                WriteCommand(
                    f"{t.row_id}:notify",
                    "im.notify.system.add",
                    {"USER_ID": int(t.assigned_by_id), "MESSAGE": text},
                    operation=Operation.ADD,
                )
            )
    # a transition is notified when every command made for it succeeded (grouped once: linear in outcomes)
    failed_rows = {o.key.split(":")[0] for o in apply_commands(client, commands) if o.status != Status.OK}
    done = [int(t.row_id) for t in pending.itertuples() if str(t.row_id) not in failed_rows]
    with warehouse.connect() as conn:
        if done:
            conn.execute(
                f"UPDATE {tables.HOLD_TRANSITIONS} SET notified = true WHERE rowid IN "
                f"({', '.join(str(r) for r in done)})"
            )
    return len(done)


defs = dg.Definitions(assets=[deal_hold_plan, deal_holds])
