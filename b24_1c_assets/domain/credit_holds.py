"""The credit-hold lifecycle: which clients are held, which deals move to "Suspended" and back.

* A client whose assessed status is `hold` becomes *held*; its open deals move to the "Suspended" stage
  of their own pipeline, and each deal's previous stage is remembered.
* A held client is released only when it is clearly back in good standing: no hold rule applies any more
  and `may_release` (balance below the limit by the release margin, nothing overdue beyond the hold
  threshold) — hysteresis, so a client near the line does not flap between states from one run to the next.
* A manual release (reason + expiry) releases a client until it expires, whatever the figures say.
* On release, deals we suspended return to their remembered stage; a deal someone has since moved
  out of "Suspended" by hand is left where it is and forgotten.
* New deals of a held client are suspended as soon as they are seen (the same rule, applied to them).
* Every change of state yields one transition (for notifications): never one per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from b24_1c_assets.domain.credit_policy import HOLD, CreditPolicy, may_release

HELD, CLEAR = "held", "clear"
SUSPEND, RELEASE = "suspend", "release"
SUSPENDED_STATUS = "HOLD"  # the stage's STATUS_ID in each pipeline: HOLD, C1:HOLD, C2:HOLD ...

STATE_COLUMNS = ["company_id", "state", "since", "reasons"]
TRANSITION_COLUMNS = ["company_id", "from_state", "to_state", "reasons", "assigned_by_id"]
MOVE_COLUMNS = ["deal_id", "company_id", "category_id", "from_stage", "to_stage", "action", "reasons"]


def suspended_stage(category_id: int) -> str:
    """The "Suspended" stage of a pipeline: `HOLD` in the default one, `C<N>:HOLD` in pipeline N."""
    category_id = int(category_id)
    return SUSPENDED_STATUS if category_id == 0 else f"C{category_id}:{SUSPENDED_STATUS}"


@dataclass
class HoldPlan:
    state: pd.DataFrame  # STATE_COLUMNS, one row per company ever held or assessed
    transitions: pd.DataFrame  # TRANSITION_COLUMNS
    deal_moves: pd.DataFrame  # MOVE_COLUMNS
    suspended: pd.DataFrame  # deal_id, company_id, category_id, previous_stage, suspended_on


def plan_holds(
    assessed: pd.DataFrame,
    previous_state: pd.DataFrame,
    manual_releases: pd.DataFrame,
    open_deals: pd.DataFrame,
    suspended: pd.DataFrame,
    policy: CreditPolicy,
    as_of: date,
) -> HoldPlan:
    """Decide holds, releases and deal moves for one run.

    assessed: company_id, status, status_reasons, balance, credit_limit, days_overdue, assigned_by_id
    previous_state: STATE_COLUMNS (may be empty)
    manual_releases: company_id, until, reason (may be empty)
    open_deals: deal_id, company_id, category_id, stage_id (deals in progress, any stage incl. HOLD)
    suspended: deals we moved to Suspended: deal_id, company_id, category_id, previous_stage, suspended_on
    """
    before = {int(r.company_id): r for r in previous_state.itertuples()} if not previous_state.empty else {}
    released = {}
    if not manual_releases.empty:
        for r in manual_releases.itertuples():
            until = pd.Timestamp(r.until).date()
            if until >= as_of:
                released[int(r.company_id)] = f"manual release until {until}: {r.reason}"

    states, transitions = [], []
    for row in assessed.to_dict("records"):
        company = int(row["company_id"])
        was = before[company].state if company in before else CLEAR
        if company in released:
            now, reasons = CLEAR, released[company]
        elif was == HELD:
            # still held by any rule (e.g. the overdue amount) -> no release, whatever the balance says
            if row["status"] != HOLD and may_release(
                row["balance"], row["credit_limit"], int(row["days_overdue"]), policy
            ):
                now, reasons = CLEAR, f"back in good standing: balance {row['balance']}, limit {row['credit_limit']}"
            else:
                now, reasons = HELD, row["status_reasons"] or before[company].reasons
        else:
            now = HELD if row["status"] == HOLD else CLEAR
            reasons = row["status_reasons"] if now == HELD else ""
        since = before[company].since if company in before and was == now else as_of
        states.append({"company_id": company, "state": now, "since": since, "reasons": reasons})
        if now != was:
            transitions.append(
                {
                    "company_id": company,
                    "from_state": was,
                    "to_state": now,
                    "reasons": reasons,
                    "assigned_by_id": row.get("assigned_by_id"),
                }
            )
    # companies no longer assessed (e.g. unlinked) keep their previous state untouched
    assessed_ids = {s["company_id"] for s in states}
    for company, r in before.items():
        if company not in assessed_ids:
            states.append({"company_id": company, "state": r.state, "since": r.since, "reasons": r.reasons})
    state = pd.DataFrame(states, columns=STATE_COLUMNS)

    held = set(state.loc[state["state"] == HELD, "company_id"])
    reasons_of = dict(zip(state["company_id"], state["reasons"]))
    moves = []
    memory = {int(r.deal_id): r for r in suspended.itertuples()} if not suspended.empty else {}
    remembered = []
    deals = open_deals.to_dict("records") if not open_deals.empty else []
    seen_deals = set()
    for deal in deals:
        deal_id, company = int(deal["deal_id"]), deal.get("company_id")
        company = int(company) if company is not None and not pd.isna(company) and company != "" else None
        seen_deals.add(deal_id)
        hold_stage = suspended_stage(deal["category_id"])
        if company in held:
            if deal["stage_id"] != hold_stage:
                moves.append(
                    {
                        "deal_id": deal_id,
                        "company_id": company,
                        "category_id": int(deal["category_id"]),
                        "from_stage": deal["stage_id"],
                        "to_stage": hold_stage,
                        "action": SUSPEND,
                        "reasons": reasons_of.get(company, ""),
                    }
                )
                remembered.append(
                    {
                        "deal_id": deal_id,
                        "company_id": company,
                        "category_id": int(deal["category_id"]),
                        "previous_stage": deal["stage_id"],
                        "suspended_on": as_of,
                    }
                )
            elif deal_id in memory:
                remembered.append(memory[deal_id]._asdict())
        elif deal_id in memory and deal["stage_id"] == hold_stage:
            previous = memory[deal_id].previous_stage
            moves.append(
                {
                    "deal_id": deal_id,
                    "company_id": company,
                    "category_id": int(deal["category_id"]),
                    "from_stage": hold_stage,
                    "to_stage": previous,
                    "action": RELEASE,
                    "reasons": reasons_of.get(company, ""),
                }
            )
        # a remembered deal moved out of Suspended by hand, or closed: forgotten
    remembered_frame = pd.DataFrame(
        remembered, columns=["deal_id", "company_id", "category_id", "previous_stage", "suspended_on"]
    )
    if "Index" in remembered_frame.columns:
        remembered_frame = remembered_frame.drop(columns=["Index"])
    return HoldPlan(
        state=state,
        transitions=pd.DataFrame(transitions, columns=TRANSITION_COLUMNS),
        deal_moves=pd.DataFrame(moves, columns=MOVE_COLUMNS),
        suspended=remembered_frame,
    )


def hold_message(company_title: str, reasons: str, to_state: str) -> str:
    """The text of a timeline comment / notification for a change of hold state."""
    if to_state == HELD:
        return (
            f"Клиент «{company_title}» поставлен на кредитный стоп: {reasons}. "
            f"Открытые сделки переведены в стадию «Приостановлена» до погашения задолженности."
        )
    return f"Кредитный стоп клиента «{company_title}» снят: {reasons}. Сделки возвращены на прежние стадии."


def deal_message(reasons: str, action: str) -> str:
    if action == SUSPEND:
        return f"Сделка приостановлена: клиент на кредитном стопе ({reasons})."
    return f"Сделка возвращена на прежнюю стадию: кредитный стоп снят ({reasons})."


def new_deals_to_block(new_deals: pd.DataFrame, held_companies: set[int]) -> pd.DataFrame:
    """New deals (ID, COMPANY_ID, CATEGORY_ID, STAGE_ID as the portal sends them) of held clients that are
    not already in their pipeline's Suspended stage."""
    if new_deals.empty:
        return new_deals
    company = pd.to_numeric(new_deals["COMPANY_ID"], errors="coerce")
    held = company.isin(held_companies)
    hold_stage = new_deals["CATEGORY_ID"].map(lambda c: suspended_stage(int(c or 0)))
    return new_deals[held & (new_deals["STAGE_ID"] != hold_stage)]
