"""Which record of a duplicate group keeps the link (pure: DataFrames in, DataFrames out).

A duplicate group here is several records of one system with the same valid INN and the same valid KPP
(an ИП has no KPP; two KPP-less records of a legal entity are not grouped: head office and branch?). Nothing is merged
or deleted: the survivor is the record the client master links,
the others are listed in `client_master.duplicate_groups` as merge suggestions for people to clean up.

**1C** (`onec_survivors`), in order:

1. records marked for deletion never survive (1C is already removing them);
2. the only live record with documents or settlement movements survives;
   two or more live records with documents: the rule cannot decide - they stay match candidates;
3. no live record has documents: the one with the most recent activity (e.g. a contract) survives;
4. still tied: the only record whose name does not call it a duplicate ("дубль") survives;
5. otherwise undecided.

**CRM** (`crm_survivors`): the company that has a requisite, then most deals, then most open deals, then
the oldest (DATE_CREATE, then the lowest ID) - company IDs are unique, so this rule always decides.
"""

from __future__ import annotations

import re

import pandas as pd

SURVIVOR_COLUMNS = ["system", "key", "record_id", "survivor_id", "why"]
ONEC_ACTIVITY_COLUMNS = ["ref_key", "documents", "last_activity"]
CRM_ACTIVITY_COLUMNS = ["company_id", "deals", "open_deals", "created"]
_DUPLICATE_WORD = re.compile(r"дубл|\bdup", re.IGNORECASE)


def identity_key(frame: pd.DataFrame) -> pd.Series:
    """'INN/KPP' where the INN is valid and the KPP valid or absent, else None (the inn_kpp match key)."""
    usable = frame["inn_valid"] & (frame["kpp_valid"] | frame["kpp_reason"].eq("empty"))
    key = frame["inn"].astype(str) + "/" + frame["kpp"].where(frame["kpp_valid"], None).fillna("").astype(str)
    return key.where(usable, None)


def duplicate_key(frame: pd.DataFrame) -> pd.Series:
    """The identity key where it names one registration: a legal entity (10-digit INN) needs its KPP - two
    KPP-less records of one company may be its head office and a branch; an ИП (12 digits) has no KPP."""
    complete = frame["kpp_valid"] | frame["inn"].astype(str).str.len().eq(12)
    return identity_key(frame).where(complete, None)


def _date(value) -> str:
    return "" if value is None or pd.isna(value) else str(pd.Timestamp(value).date())


def _with_activity(
    frame: pd.DataFrame, activity: pd.DataFrame | None, id_col: str, act_id: str, defaults: dict
) -> pd.DataFrame:
    out = frame.copy()
    if activity is None or activity.empty:
        for col, value in defaults.items():
            out[col] = value
        return out
    act = activity.drop_duplicates(act_id).set_index(act_id)
    ids = out[id_col].astype(str).str.lower() if id_col == "ref_key" else out[id_col]
    if id_col == "ref_key":
        act.index = act.index.astype(str).str.lower()
    for col, value in defaults.items():
        series = ids.map(act[col]) if col in act.columns else pd.Series(value, index=out.index)
        out[col] = series.where(series.notna(), value) if value is not None else series
    return out


def onec_survivors(onec: pd.DataFrame, activity: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per member of each 1C duplicate group (`SURVIVOR_COLUMNS`; survivor_id None = undecided).

    `onec` is the normalised 1C extract; deletion-marked records are left out (never survivors, 1C is
    already removing them), so a group needs two live records;
    `activity` has `ONEC_ACTIVITY_COLUMNS` (documents = documents + settlement movements naming the record)."""
    live = onec[~onec["deletion_mark"]]
    frame = live.assign(key=duplicate_key(live)).dropna(subset=["key"])
    frame = frame[frame["key"].map(frame["key"].value_counts()).gt(1)]
    if frame.empty:
        return pd.DataFrame(columns=SURVIVOR_COLUMNS)
    frame = _with_activity(frame, activity, "ref_key", "ref_key", {"documents": 0, "last_activity": None})
    frame["documents"] = pd.to_numeric(frame["documents"], errors="coerce").fillna(0).astype(int)
    frame["last_activity"] = pd.to_datetime(frame["last_activity"], errors="coerce")
    rows = []
    for key, group in frame.groupby("key", sort=True):
        survivor, why = _onec_rule(group)
        for ref in sorted(group["ref_key"]):
            rows.append({"system": "1c", "key": key, "record_id": ref, "survivor_id": survivor, "why": why})
    return pd.DataFrame(rows, columns=SURVIVOR_COLUMNS)


def _onec_rule(live: pd.DataFrame) -> tuple[str | None, str]:
    gone = ""
    active = live[live["documents"] > 0]
    if len(active) == 1:
        last = _date(active["last_activity"].iloc[0])
        return (
            active["ref_key"].iloc[0],
            f"the only live record with documents or settlement movements ({int(active['documents'].iloc[0])}"
            f"{', last ' + last if last else ''}){gone}",
        )
    if len(active) > 1:
        return None, f"{len(active)} live records have documents: a person decides which one stays{gone}"
    dated = live.dropna(subset=["last_activity"])
    if not dated.empty:
        newest = dated["last_activity"].max()
        top = dated[dated["last_activity"] == newest]
        if len(top) == 1:
            return top["ref_key"].iloc[0], f"no documents on any record; most recent activity {_date(newest)}{gone}"
    names = live["name"].fillna("").astype(str) + " " + live["full_name"].fillna("").astype(str)
    plain = live[~names.str.contains(_DUPLICATE_WORD)]
    if len(plain) == 1 and len(live) > 1:
        return plain["ref_key"].iloc[0], f"no documents; the others are named as duplicates ('дубль'){gone}"
    return None, f"{len(live)} live records, none with documents: a person decides which one stays{gone}"


def crm_survivors(
    crm: pd.DataFrame, activity: pd.DataFrame | None = None, has_requisite: pd.Series | None = None
) -> pd.DataFrame:
    """One row per member of each CRM duplicate group (`SURVIVOR_COLUMNS`); the rule always decides.

    `activity` has `CRM_ACTIVITY_COLUMNS` (and may have `has_requisite`); `has_requisite` (by company_id)
    defaults to that column, else to "has a valid INN"."""
    frame = crm.assign(key=duplicate_key(crm)).dropna(subset=["key"])
    frame = frame[frame["key"].map(frame["key"].value_counts()).gt(1)]
    if frame.empty:
        return pd.DataFrame(columns=SURVIVOR_COLUMNS)
    frame = _with_activity(frame, activity, "company_id", "company_id", {"deals": 0, "open_deals": 0, "created": None})
    for col in ("deals", "open_deals"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").fillna(0).astype(int)
    frame["created"] = pd.to_datetime(frame["created"], errors="coerce")
    if has_requisite is None and activity is not None and "has_requisite" in activity.columns:
        has_requisite = activity.drop_duplicates("company_id").set_index("company_id")["has_requisite"]
    if has_requisite is None:
        frame["has_requisite"] = frame["inn_valid"].astype(bool)
    else:
        frame["has_requisite"] = frame["company_id"].map(has_requisite).fillna(False).astype(bool)
    ranked = frame.assign(_created=frame["created"].fillna(pd.Timestamp.max)).sort_values(
        ["key", "has_requisite", "deals", "open_deals", "_created", "company_id"],
        ascending=[True, False, False, False, True, True],
        kind="stable",
    )
    rows = []
    for key, group in ranked.groupby("key", sort=True):
        first, second = group.iloc[0], group.iloc[1]
        why = _crm_why(first, second)
        for company_id in sorted(group["company_id"]):
            rows.append(
                {
                    "system": "crm",
                    "key": key,
                    "record_id": str(company_id),
                    "survivor_id": str(int(first["company_id"])),
                    "why": why,
                }
            )
    return pd.DataFrame(rows, columns=SURVIVOR_COLUMNS)


def _crm_why(first: pd.Series, second: pd.Series) -> str:
    if first["has_requisite"] != second["has_requisite"]:
        return "the only company with a requisite"
    if first["deals"] != second["deals"]:
        return f"most deals ({first['deals']} vs {second['deals']})"
    if first["open_deals"] != second["open_deals"]:
        return f"most open deals ({first['open_deals']} vs {second['open_deals']})"
    if not pd.isna(first["created"]) and first["created"] != second["created"]:
        return f"the oldest (created {_date(first['created'])})"
    return "the oldest (lowest company ID)"
