"""Client master: match 1C counterparties to Bitrix24 companies (pure pandas, no I/O).

The ladder, first rung wins; a record matched on one rung is not offered to later rungs and every
1C counterparty is matched automatically to **at most one** CRM company and vice versa:

1. ``id_link`` - the CRM company already stores the 1C ``Ref_Key`` (UF field ``onec_ref_uf``, or
   ``ORIGIN_ID`` when ``ORIGINATOR_ID`` is ours or empty). Links to unknown or deletion-marked 1C
   records are stale and ignored, so the company falls through the ladder and is re-pointed to the
   surviving record (1C's duplicate merge marks the loser for deletion).
   ``reviewer_accept`` - a reviewer's accepted pair from the review queue is applied next.
   ``id_link_foreign`` - ``ORIGIN_ID`` holds a GUID that is a live 1C ``Ref_Key`` but was written under an
   ``ORIGINATOR_ID`` not in ``originator_ids`` (an earlier integration): strong evidence, linked unless the
   CRM requisite's INN contradicts the 1C INN, or its valid KPP the 1C KPP (then an
   ``id_link_foreign_inn_conflict`` / ``id_link_foreign_kpp_conflict`` candidate). Links to
   deletion-marked or unknown records are ignored. The foreign originators found are reported
   (``MatchResult.foreign_originators``) so an administrator can add them to the trusted list.
   **Duplicate groups** (same INN+KPP inside one system, see ``survivors``) are then resolved: a member
   already linked above survives; otherwise the stated survivor rule picks one. Only the survivor takes
   part in the rungs below; the others stay unmatched (``only_1c`` / ``only_crm``) and are listed as merge
   suggestions. A 1C group the rule cannot decide (two live records with documents) gives
   ``onec_duplicates_undecided`` candidates.
2. ``inn_kpp`` - same valid INN and same KPP (both absent counts as equal: ИП have no KPP). Only when
   the key is unique on both sides once duplicate groups are reduced to their survivors (the rule is then
   ``onec_duplicate_survivor`` / ``crm_duplicate_survivor``); otherwise every claim becomes an
   ``inn_conflict`` candidate.
3. ``inn_branch_rule`` - **one INN with several KPPs is a head office with branches, not duplicates.**
   A CRM company with a valid INN and *no* KPP matches the live 1C counterparty with that INN when
   exactly one exists, else the head office (KPP reason code ``01``) when exactly one such exists;
   otherwise it gets ``inn_branch_ambiguous`` candidates. Symmetrically a 1C counterparty with no KPP
   matches the CRM company with that INN when each side holds exactly one record with that INN.
   A target already taken, claimed by two KPP-less companies, or also claimed by another unmatched CRM
   company through its OGRN or its KPP (with an invalid INN) gives ``inn_conflict`` candidates.
   A KPP that is present but different or malformed never uses this rule (``kpp_mismatch`` /
   ``kpp_invalid`` candidates): it is another branch or a typo, and a reviewer decides.
4. ``ogrn`` - same valid OGRN/OGRNIP, unique on both sides, and INN/KPP not contradicting.
5. Candidates only, never automatic: shared e-mail, phone or ``name_key``; invalid INNs (exact or
   one-digit-off against the other side); see ``CANDIDATE_SCORES``.

Invalid INNs never match automatically. Deletion-marked 1C records never match and are not clients.
A reviewer's ``reject`` removes the pair from every rung and from the review queue for good; an
``accept`` makes it a match on the next run. Blocking keeps candidate generation linear: pairs are
only formed inside blocks of equal e-mail, phone, name_key or INN mask, and blocks bigger than
``BLOCK_CAP`` records on either side (generic values such as a shared call-centre number) are skipped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from b24_1c_assets.domain.normalize import (
    REJECT_COLUMNS,
    is_free_mail,
    kpp_reason_code,
    normalize_crm_companies,
    normalize_onec_counterparties,
)
from b24_1c_assets.domain.survivors import SURVIVOR_COLUMNS, crm_survivors, identity_key, onec_survivors

# ORIGINATOR_ID values that mean "this ORIGIN_ID is a 1C Ref_Key" (compared case-, '-'/'_'-insensitively);
# '1C_UNF' is what the earlier integration wrote on the sandbox portal.
OUR_ORIGINATOR_IDS = ("1c-unf",)
BLOCK_CAP = 20
MIN_NAME_KEY_LEN = 3

CONFIDENCE = {
    "id_link": 1.0,
    "reviewer_accept": 1.0,
    "id_link_foreign": 0.98,
    "inn_kpp": 0.99,
    "onec_duplicate_survivor": 0.97,
    "crm_duplicate_survivor": 0.97,
    "ogrn": 0.97,
    "inn_branch_rule": 0.9,
    "only_1c": 0.0,
    "only_crm": 0.0,
}
CANDIDATE_SCORES = {
    "id_link_conflict": 0.9,
    "id_link_foreign_inn_conflict": 0.9,
    "id_link_foreign_kpp_conflict": 0.9,
    "onec_duplicates_undecided": 0.9,
    "inn_conflict": 0.9,
    "inn_branch_ambiguous": 0.8,
    "kpp_invalid": 0.8,
    "ogrn_conflict": 0.8,
    "kpp_mismatch": 0.7,
    "inn_invalid": 0.6,
    "email": 0.6,
    "phone": 0.5,
    "name": 0.4,
    "email_free": 0.3,
}

CLIENT_COLUMNS = [
    "client_id",
    "onec_ref",
    "company_id",
    "inn",
    "kpp",
    "ogrn",
    "name",
    "legal_form",
    "name_key",
    "match_rule",
    "confidence",
    "email",
    "phone",
    "emails",
    "phones",
    "assigned_by_id",
]
CANDIDATE_COLUMNS = [
    "onec_ref",
    "company_id",
    "reason",
    "score",
    "reasons",
    "onec_name",
    "crm_title",
    "onec_inn",
    "crm_inn",
    "onec_kpp",
    "crm_kpp",
    "shared_email",
    "shared_phone",
    "name_key",
]
DECISION_COLUMNS = ["onec_ref", "company_id", "decision", "decided_by", "decided_at", "note"]
DECISIONS = ("accept", "reject", "create")
CLIENT_NS = uuid.UUID("0f4c2a57-5b8e-4a37-9c1e-b24c1c000c11")
FOREIGN_ORIGINATOR_COLUMNS = [
    "originator_id",
    "companies",
    "live_1c_refs",
    "linked",
    "conflicts",
    "stale_refs",
    "example_company_ids",
]
# A 1C Ref_Key: only a GUID in ORIGIN_ID is evidence (another system's short IDs can collide with anything).
GUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass
class MatchResult:
    """Outputs of one matching run (all frames in a deterministic order)."""

    clients: pd.DataFrame  # CLIENT_COLUMNS, one row per legal entity or branch
    candidates: pd.DataFrame  # CANDIDATE_COLUMNS, the review queue
    rejects: pd.DataFrame  # REJECT_COLUMNS: bad identifiers/contacts, decisions that could not apply
    onec: pd.DataFrame  # normalised 1C extract (input to find_duplicates)
    crm: pd.DataFrame  # normalised CRM extract
    # SURVIVOR_COLUMNS: every member of a same-INN+KPP group in either system, its survivor and why
    survivors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SURVIVOR_COLUMNS))
    # FOREIGN_ORIGINATOR_COLUMNS: ORIGINATOR_IDs outside the trusted list whose ORIGIN_ID is a 1C GUID
    foreign_originators: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FOREIGN_ORIGINATOR_COLUMNS))


class _Ladder:
    """Mutable state of one run: who is matched, the pairs and the candidates found so far."""

    def __init__(self, onec: pd.DataFrame, crm: pd.DataFrame, rejected: set[tuple[str, int]]):
        self.onec = onec
        self.crm = crm
        self.onec_crm_all = crm  # every CRM company, for lookups (self.crm loses retired duplicates)
        self.live = onec[~onec["deletion_mark"]]
        self.all_live = self.live
        self.rejected = rejected
        # Non-surviving members of duplicate groups: unmatched on purpose, offered to no rung or candidate.
        self.retired_refs: set[str] = set()
        self.retired_companies: set[int] = set()
        self.undecided_refs: set[str] = set()
        self.survivors = pd.DataFrame(columns=SURVIVOR_COLUMNS)
        self.taken_refs: set[str] = set()
        self.taken_companies: set[int] = set()
        self.pairs: list[tuple[str, int, str]] = []
        self.candidates: list[pd.DataFrame] = []

    def free_crm(self) -> pd.DataFrame:
        return self.crm[~self.crm["company_id"].isin(self.taken_companies | self.retired_companies)]

    def free_onec(self) -> pd.DataFrame:
        return self.live[~self.live["ref_key"].isin(self.taken_refs)]

    def not_rejected(self, pairs: pd.DataFrame) -> pd.DataFrame:
        if not self.rejected or pairs.empty:
            return pairs
        keys = list(zip(pairs["onec_ref"], pairs["company_id"]))
        return pairs[[k not in self.rejected for k in keys]]

    def link(self, pairs: pd.DataFrame, rule: str) -> None:
        """Record automatic matches; callers guarantee one-to-one and free records."""
        for ref, company in zip(pairs["onec_ref"], pairs["company_id"]):
            self.pairs.append((ref, int(company), rule))
            self.taken_refs.add(ref)
            self.taken_companies.add(int(company))

    def propose(self, pairs: pd.DataFrame, reason: str) -> None:
        if not pairs.empty:
            frame = pairs[["onec_ref", "company_id"]].drop_duplicates().copy()
            frame["reason"] = reason
            self.candidates.append(frame)


def is_our_originator(originator: pd.Series, originator_ids: tuple[str, ...] = OUR_ORIGINATOR_IDS) -> pd.Series:
    """True where ORIGINATOR_ID names our 1C ('1C_UNF', '1c-unf' ...)."""

    def fold(text):
        return text.strip().lower().replace("_", "-")

    return originator.map(lambda v: isinstance(v, str) and fold(v) in {fold(o) for o in originator_ids}).astype(bool)


def _one_to_one(pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split proposed pairs into unique ones (each side appears once) and conflicting ones."""
    pairs = pairs.drop_duplicates(["onec_ref", "company_id"])
    unique = ~pairs["onec_ref"].duplicated(keep=False) & ~pairs["company_id"].duplicated(keep=False)
    return pairs[unique], pairs[~unique]


def _latest_decisions(decisions: pd.DataFrame | None) -> tuple[pd.DataFrame, list[dict]]:
    """The latest decision per (onec_ref, company_id); malformed rows become rejects, the rest apply."""
    if decisions is None or decisions.empty:
        return pd.DataFrame(columns=DECISION_COLUMNS), []
    missing = [c for c in ("onec_ref", "company_id", "decision") if c not in decisions.columns]
    if missing:
        raise ValueError(f"reviewer decisions lack columns {missing}")
    d = decisions.reset_index(drop=True).copy()
    d["onec_ref"] = d["onec_ref"].astype("string").str.strip().str.lower()
    company = pd.to_numeric(d["company_id"], errors="coerce")
    d["decision"] = d["decision"].astype("string").str.strip().str.lower()
    # 'create': make a new CRM company for this 1C client (its candidate pairs are all wrong); the company
    # is optional - the reviewer may decide on a held-back client that has no candidate.
    create = d["decision"].eq("create").fillna(False)
    company = company.where(~(create & company.isna()), -1)
    bad = (
        d["onec_ref"].isna()
        | (d["onec_ref"] == "")
        | company.isna()
        | ~d["decision"].isin(list(DECISIONS)).fillna(False)
    )
    problems = [
        {
            "system": "decisions",
            "record_id": f"{r}/{c}",
            "field": "decision",
            "value": str(v),
            "problem": "decision_malformed",
        }
        for r, c, v in zip(d.loc[bad, "onec_ref"], d.loc[bad, "company_id"], d.loc[bad, "decision"])
    ]
    d = d[~bad].copy()
    d["onec_ref"] = d["onec_ref"].astype(str)
    d["company_id"] = company[~bad].astype("int64")
    if "decided_at" in d.columns:
        d = d.sort_values("decided_at", kind="stable")
    return d.drop_duplicates(["onec_ref", "company_id"], keep="last"), problems


# -- rungs -----------------------------------------------------------------------------------------


def created_in_crm(decisions: pd.DataFrame | None) -> set[str]:
    """1C refs whose latest reviewer decision is 'create in CRM': the company push must not hold them back."""
    latest, _ = _latest_decisions(decisions)
    if latest.empty:
        return set()
    latest = latest.sort_values("decided_at", kind="stable") if "decided_at" in latest.columns else latest
    last_per_ref = latest.drop_duplicates("onec_ref", keep="last")
    return set(last_per_ref.loc[last_per_ref["decision"] == "create", "onec_ref"])


def _rung_id_link(ladder: _Ladder, originator_ids: tuple[str, ...]) -> None:
    crm = ladder.crm
    ours = crm["originator_id"].isna() | is_our_originator(crm["originator_id"], originator_ids)
    links = (
        pd.concat(
            [
                pd.DataFrame({"company_id": crm["company_id"], "onec_ref": crm["onec_ref_uf"]}),
                pd.DataFrame({"company_id": crm.loc[ours, "company_id"], "onec_ref": crm.loc[ours, "origin_id"]}),
            ]
        )
        .dropna()
        .drop_duplicates()
    )
    links = links[links["onec_ref"].isin(ladder.live["ref_key"])]
    links = ladder.not_rejected(links)
    unique, conflicts = _one_to_one(links)
    ladder.link(unique, "id_link")
    ladder.propose(conflicts, "id_link_conflict")


def _is_foreign_guid_link(crm: pd.DataFrame, originator_ids: tuple[str, ...]) -> pd.Series:
    """ORIGIN_ID is a GUID written under an ORIGINATOR_ID that is set but not trusted."""
    foreign = crm["originator_id"].notna() & ~is_our_originator(crm["originator_id"], originator_ids)
    guid = crm["origin_id"].astype("string").str.fullmatch(GUID_PATTERN).fillna(False).astype(bool)
    return foreign & guid


def _rung_id_link_foreign(ladder: _Ladder, originator_ids: tuple[str, ...]) -> None:
    crm = ladder.crm[_is_foreign_guid_link(ladder.crm, originator_ids)]
    links = pd.DataFrame({"company_id": crm["company_id"], "onec_ref": crm["origin_id"]})
    links = links[links["onec_ref"].isin(ladder.live["ref_key"])]
    links = ladder.not_rejected(links)
    links = links[~links["company_id"].isin(ladder.taken_companies)]
    # The record is already linked to another company by a trusted link: a person looks at both.
    ladder.propose(links[links["onec_ref"].isin(ladder.taken_refs)], "id_link_conflict")
    links = links[~links["onec_ref"].isin(ladder.taken_refs)]
    if links.empty:
        return
    # The CRM requisite, when it has an INN, must name the 1C record: a typo'd or other INN contradicts, and
    # so does another valid KPP (the link names the head office, the requisite a branch, or vice versa).
    crm_by_id = ladder.crm.set_index("company_id")
    live = ladder.live.set_index("ref_key")
    crm_inn, crm_has = (
        links["company_id"].map(crm_by_id["inn"]),
        links["company_id"].map(crm_by_id["inn_reason"]).ne("empty"),
    )
    inn_contradicts = crm_has & (crm_inn != links["onec_ref"].map(live["inn"]))
    crm_kpp = links["company_id"].map(crm_by_id["kpp"].where(crm_by_id["kpp_valid"]))
    onec_kpp = links["onec_ref"].map(live["kpp"].where(live["kpp_valid"]))
    kpp_contradicts = ~inn_contradicts & crm_kpp.notna() & onec_kpp.notna() & (crm_kpp != onec_kpp)
    ladder.propose(links[inn_contradicts], "id_link_foreign_inn_conflict")
    ladder.propose(links[kpp_contradicts], "id_link_foreign_kpp_conflict")
    unique, conflicts = _one_to_one(links[~inn_contradicts & ~kpp_contradicts])
    ladder.link(unique, "id_link_foreign")
    ladder.propose(conflicts, "id_link_conflict")


def foreign_originator_report(
    onec: pd.DataFrame,
    crm: pd.DataFrame,
    clients: pd.DataFrame,
    candidates: pd.DataFrame,
    originator_ids: tuple[str, ...],
) -> pd.DataFrame:
    """One row per untrusted ORIGINATOR_ID whose ORIGIN_IDs are GUIDs: how many companies, how many point
    at a live 1C record, how many were linked (`id_link_foreign`), contradicted by the requisite
    (INN/KPP conflicts), or point at no live record (stale_refs)."""
    mask = _is_foreign_guid_link(crm, originator_ids)
    if not mask.any():
        return pd.DataFrame(columns=FOREIGN_ORIGINATOR_COLUMNS)
    frame = crm.loc[mask, ["company_id", "originator_id", "origin_id"]].copy()
    live = set(onec.loc[~onec["deletion_mark"], "ref_key"])
    frame["live"] = frame["origin_id"].isin(live)
    linked = clients[clients["match_rule"] == "id_link_foreign"]
    frame["linked"] = frame["company_id"].isin(linked["company_id"].dropna().astype(int))
    conflict = candidates[candidates["reasons"].astype(str).str.contains("id_link_foreign_")]
    frame["conflict"] = frame["company_id"].isin(conflict["company_id"])
    rows = []
    for originator, g in frame.groupby("originator_id", sort=True):
        rows.append(
            {
                "originator_id": originator,
                "companies": len(g),
                "live_1c_refs": int(g["live"].sum()),
                "linked": int(g["linked"].sum()),
                "conflicts": int(g["conflict"].sum()),
                "stale_refs": int((~g["live"]).sum()),
                "example_company_ids": ",".join(str(c) for c in sorted(g["company_id"])[:5]),
            }
        )
    return pd.DataFrame(rows, columns=FOREIGN_ORIGINATOR_COLUMNS)


def _resolve_duplicates(ladder: _Ladder, onec_activity: pd.DataFrame | None, crm_activity: pd.DataFrame | None) -> None:
    """Pick one survivor per same-INN+KPP group in each system; retire the others from later rungs.

    A member already linked (id link, reviewer accept) survives whatever the rule says: the link is
    explicit evidence. Undecided 1C groups keep every member in play (they become candidates)."""
    frames = []
    o = onec_survivors(ladder.onec, onec_activity)
    if not o.empty:
        o = _prefer_linked(o, ladder.taken_refs, "already linked to CRM company")
        decided = o[o["survivor_id"].notna()]
        ladder.retired_refs = (
            set(decided.loc[decided["record_id"] != decided["survivor_id"], "record_id"]) - ladder.taken_refs
        )
        ladder.undecided_refs = set(o.loc[o["survivor_id"].isna(), "record_id"])
        frames.append(o)
    c = crm_survivors(ladder.crm, crm_activity)
    if not c.empty:
        c = _prefer_linked(c, {str(x) for x in ladder.taken_companies}, "already linked to 1C")
        retired = c.loc[c["record_id"] != c["survivor_id"], "record_id"].astype(int)
        ladder.retired_companies = set(retired) - ladder.taken_companies
        frames.append(c)
    if frames:
        ladder.survivors = pd.concat(frames, ignore_index=True)
    ladder.live = ladder.live[~ladder.live["ref_key"].isin(ladder.retired_refs)]
    ladder.crm = ladder.crm[~ladder.crm["company_id"].isin(ladder.retired_companies)]


def _prefer_linked(groups: pd.DataFrame, linked: set[str], why: str) -> pd.DataFrame:
    """Within each group, a member already linked becomes the survivor (the first by the rule's order)."""
    out = groups.copy()
    for key, g in out[out["record_id"].isin(linked)].groupby("key"):
        current = out.loc[out["key"] == key, "survivor_id"].iloc[0]
        members = set(g["record_id"])
        if current in members:
            continue
        chosen = sorted(members)[0]
        out.loc[out["key"] == key, ["survivor_id", "why"]] = [chosen, why]
    return out


def _rung_reviewer_accept(ladder: _Ladder, accepted: pd.DataFrame) -> list[dict]:
    problems = []
    known_refs, known_companies = set(ladder.live["ref_key"]), set(ladder.crm["company_id"])
    usable, linked = [], {(r, c) for r, c, _ in ladder.pairs}
    for ref, company in zip(accepted["onec_ref"], accepted["company_id"]):
        if (ref, company) in linked:
            continue  # already linked the same way
        if ref not in known_refs or company not in known_companies:
            problems.append((ref, company, "decision_unknown_record"))
        elif ref in ladder.taken_refs or company in ladder.taken_companies:
            problems.append((ref, company, "decision_conflicts_with_id_link"))
        else:
            usable.append((ref, company))
    frame = pd.DataFrame(usable, columns=["onec_ref", "company_id"])
    unique, conflicts = _one_to_one(frame)
    ladder.link(unique, "reviewer_accept")
    problems += [
        (r, c, "decision_conflicts_with_other_accept") for r, c in zip(conflicts["onec_ref"], conflicts["company_id"])
    ]
    return [
        {"system": "decisions", "record_id": f"{r}/{c}", "field": "decision", "value": "accept", "problem": p}
        for r, c, p in problems
    ]


def _key(frame: pd.DataFrame) -> pd.Series:
    return identity_key(frame)


def _rung_inn_kpp(ladder: _Ladder) -> None:
    usable_kpp_o = ladder.live["kpp_valid"] | (ladder.live["kpp_reason"] == "empty")
    onec = ladder.live[ladder.live["inn_valid"] & usable_kpp_o]
    crm = ladder.crm[ladder.crm["inn_valid"] & (ladder.crm["kpp_valid"] | (ladder.crm["kpp_reason"] == "empty"))]
    o = pd.DataFrame({"onec_ref": onec["ref_key"], "key": _key(onec)})
    c = pd.DataFrame({"company_id": crm["company_id"], "key": _key(crm)})
    n_o, n_c = o["key"].value_counts(), c["key"].value_counts()
    pairs = c[~c["company_id"].isin(ladder.taken_companies)].merge(o, on="key")
    pairs = ladder.not_rejected(pairs)
    unique_key = pairs["key"].map(n_o).eq(1) & pairs["key"].map(n_c).eq(1)
    free = ~pairs["onec_ref"].isin(ladder.taken_refs)
    ok = pairs[unique_key & free]
    # A key that had a duplicate group on either side: the link rests on the survivor rule, say so.
    groups = ladder.survivors
    onec_keys = set(groups.loc[groups["system"] == "1c", "key"]) if not groups.empty else set()
    crm_keys = set(groups.loc[groups["system"] == "crm", "key"]) if not groups.empty else set()
    via_onec, via_crm = ok["key"].isin(onec_keys), ok["key"].isin(crm_keys)
    ladder.link(ok[~via_onec & ~via_crm], "inn_kpp")
    ladder.link(ok[via_onec], "onec_duplicate_survivor")
    ladder.link(ok[via_crm & ~via_onec], "crm_duplicate_survivor")
    rest = pairs[~(unique_key & free)]
    undecided = rest["onec_ref"].isin(ladder.undecided_refs)
    ladder.propose(rest[undecided], "onec_duplicates_undecided")
    ladder.propose(rest[~undecided], "inn_conflict")


def _rung_inn_branch(ladder: _Ladder) -> None:
    onec = ladder.live[ladder.live["inn_valid"]]
    o = pd.DataFrame(
        {
            "onec_ref": onec["ref_key"],
            "inn": onec["inn"],
            "head": onec["kpp"].map(kpp_reason_code).eq("01") & onec["kpp_valid"],
            "no_kpp": onec["kpp_reason"].eq("empty"),
        }
    )
    crm_valid = ladder.crm[ladder.crm["inn_valid"]]
    no_kpp_c = crm_valid[crm_valid["kpp_reason"] == "empty"]
    n_o = o["inn"].value_counts()
    n_head = o.loc[o["head"], "inn"].value_counts()
    n_claims = no_kpp_c["inn"].value_counts()

    # CRM company without KPP -> the only record, else the only head office.
    c = no_kpp_c[~no_kpp_c["company_id"].isin(ladder.taken_companies)][["company_id", "inn"]]
    all_targets = ladder.not_rejected(c.merge(o, on="inn"))
    single = all_targets["inn"].map(n_o).eq(1)
    head = all_targets["inn"].map(n_head).fillna(0).eq(1) & all_targets["head"]
    chosen = all_targets[single | head]
    unresolved = all_targets[~all_targets["company_id"].isin(chosen["company_id"])]
    ladder.propose(unresolved, "inn_branch_ambiguous")
    # Another free CRM company holding the target's OGRN also claims it: a conflict, not a pick.
    free_c = ladder.free_crm()
    ogrn_claims = free_c.loc[free_c["ogrn_valid"], "ogrn"].value_counts()
    live = ladder.live.set_index("ref_key")
    target_ogrn = chosen["onec_ref"].map(live["ogrn"].where(live["ogrn_valid"]))
    own_ogrn = chosen["company_id"].map(ladder.crm.set_index("company_id")["ogrn"])
    other_claims = target_ogrn.map(ogrn_claims).fillna(0) - (own_ogrn == target_ogrn).astype(int)
    # So does one that has the target's KPP but no valid INN (a typo'd INN on the head office's record).
    kpp_claims = free_c.loc[free_c["kpp_valid"] & ~free_c["inn_valid"], "kpp"].value_counts()
    other_claims += chosen["onec_ref"].map(live["kpp"]).map(kpp_claims).fillna(0)
    ok = chosen["inn"].map(n_claims).eq(1) & ~chosen["onec_ref"].isin(ladder.taken_refs) & other_claims.eq(0)
    ladder.link(chosen[ok], "inn_branch_rule")
    ladder.propose(chosen[~ok], "inn_conflict")

    # 1C counterparty without KPP -> the CRM company with that INN, one record on each side.
    free_o = o[o["no_kpp"] & ~o["onec_ref"].isin(ladder.taken_refs)]
    n_c_all = crm_valid["inn"].value_counts()
    c_all = ladder.free_crm()
    c_all = c_all[c_all["inn_valid"]][["company_id", "inn"]]
    pairs = ladder.not_rejected(free_o[["onec_ref", "inn"]].merge(c_all, on="inn"))
    ok = pairs["inn"].map(n_o).eq(1) & pairs["inn"].map(n_c_all).eq(1)
    ladder.link(pairs[ok], "inn_branch_rule")
    ladder.propose(pairs[~ok], "inn_branch_ambiguous")


def _compatible(
    a: pd.Series, a_valid: pd.Series, b: pd.Series, b_valid: pd.Series, a_empty: pd.Series, b_empty: pd.Series
) -> pd.Series:
    """Identifiers agree: both valid and equal, or at least one side simply absent (not malformed)."""
    both_valid_equal = a_valid & b_valid & (a == b)
    one_absent = (a_empty & (b_valid | b_empty)) | (b_empty & (a_valid | a_empty))
    return both_valid_equal | one_absent


def _rung_ogrn(ladder: _Ladder) -> None:
    cols = ["inn", "inn_valid", "inn_reason", "kpp", "kpp_valid", "kpp_reason", "ogrn"]
    onec = ladder.live[ladder.live["ogrn_valid"]]
    crm = ladder.crm[ladder.crm["ogrn_valid"]]
    n_o, n_c = onec["ogrn"].value_counts(), crm["ogrn"].value_counts()
    free_c = crm[~crm["company_id"].isin(ladder.taken_companies)]
    pairs = free_c[["company_id"] + cols].merge(
        onec[["ref_key"] + cols].rename(columns={"ref_key": "onec_ref"}), on="ogrn", suffixes=("_c", "_o")
    )
    pairs = ladder.not_rejected(pairs)
    agree = _compatible(
        pairs["inn_c"],
        pairs["inn_valid_c"],
        pairs["inn_o"],
        pairs["inn_valid_o"],
        pairs["inn_reason_c"].eq("empty"),
        pairs["inn_reason_o"].eq("empty"),
    ) & _compatible(
        pairs["kpp_c"],
        pairs["kpp_valid_c"],
        pairs["kpp_o"],
        pairs["kpp_valid_o"],
        pairs["kpp_reason_c"].eq("empty"),
        pairs["kpp_reason_o"].eq("empty"),
    )
    ok = (
        agree & pairs["ogrn"].map(n_o).eq(1) & pairs["ogrn"].map(n_c).eq(1) & ~pairs["onec_ref"].isin(ladder.taken_refs)
    )
    ladder.link(pairs[ok], "ogrn")
    ladder.propose(pairs[~ok], "ogrn_conflict")


# -- candidates ------------------------------------------------------------------------------------


def _blocked_pairs(o: pd.DataFrame, c: pd.DataFrame, on: str) -> pd.DataFrame:
    """Pairs sharing a blocking value, skipping values too common to mean anything (> BLOCK_CAP)."""
    o, c = o.dropna(subset=[on]), c.dropna(subset=[on])
    o_counts, c_counts = o[on].value_counts(), c[on].value_counts()
    keep_o = o[on].map(o_counts).le(BLOCK_CAP) & o[on].map(c_counts).le(BLOCK_CAP)
    return c.merge(o[keep_o], on=on)


def _soft_candidates(ladder: _Ladder) -> None:
    o, c = ladder.free_onec(), ladder.free_crm()
    o_mail = o[["ref_key", "emails"]].explode("emails").rename(columns={"ref_key": "onec_ref", "emails": "email"})
    c_mail = c[["company_id", "emails"]].explode("emails").rename(columns={"emails": "email"})
    mail = _blocked_pairs(o_mail, c_mail, "email")
    free = mail["email"].map(is_free_mail).astype(bool)
    ladder.propose(mail[~free], "email")
    ladder.propose(mail[free], "email_free")

    o_tel = o[["ref_key", "phones"]].explode("phones").rename(columns={"ref_key": "onec_ref", "phones": "phone"})
    c_tel = c[["company_id", "phones"]].explode("phones").rename(columns={"phones": "phone"})
    ladder.propose(_blocked_pairs(o_tel, c_tel, "phone"), "phone")

    o_name = o[["ref_key", "name_key"]].rename(columns={"ref_key": "onec_ref"})
    c_name = c[["company_id", "name_key"]]
    names = _blocked_pairs(o_name[o_name["name_key"].str.len() >= MIN_NAME_KEY_LEN], c_name, "name_key")
    ladder.propose(names, "name")

    # Present-but-different or malformed KPP with a valid, equal INN: another branch or a typo.
    o_inn = o[o["inn_valid"]][["ref_key", "inn", "kpp"]].rename(columns={"ref_key": "onec_ref", "kpp": "kpp_o"})
    c_kpp = c[c["inn_valid"] & (c["kpp_reason"] != "empty")]
    same_inn = _blocked_pairs(o_inn, c_kpp[["company_id", "inn", "kpp", "kpp_valid"]], "inn")
    same_inn = same_inn[same_inn["kpp"] != same_inn["kpp_o"]]
    ladder.propose(same_inn[same_inn["kpp_valid"]], "kpp_mismatch")
    ladder.propose(same_inn[~same_inn["kpp_valid"]], "kpp_invalid")

    _invalid_inn_candidates(ladder, o, c)


def _inn_masks(ids: pd.Series, inns: pd.Series, id_col: str) -> pd.DataFrame:
    """Each INN with one digit position masked: equal masks = equal or one digit off (a typo)."""
    frames = []
    for pos in range(12):
        has = inns.str.len() > pos
        masked = inns[has].str.slice_replace(pos, pos + 1, "*")
        frames.append(pd.DataFrame({id_col: ids[has], "mask": masked}))
    return pd.concat(frames, ignore_index=True).drop_duplicates()


def _invalid_inn_candidates(ladder: _Ladder, o: pd.DataFrame, c: pd.DataFrame) -> None:
    """An invalid INN never matches, but equal or one digit off from the other side's INN is a candidate."""
    o_inn = o[o["inn"].notna()]
    c_inn = c[c["inn"].notna()]
    o_bad, c_bad = o_inn[~o_inn["inn_valid"]], c_inn[~c_inn["inn_valid"]]
    if o_bad.empty and c_bad.empty:
        return
    found = []
    for bad, other, bad_id, other_id in (
        (c_bad, o_inn, "company_id", "ref_key"),
        (o_bad, c_inn, "ref_key", "company_id"),
    ):
        if bad.empty:
            continue
        bad_masks = _inn_masks(bad[bad_id], bad["inn"], bad_id)
        # Only the other side's INNs of lengths the bad ones have: keeps the mask table small.
        lengths = set(bad["inn"].str.len())
        other = other[other["inn"].str.len().isin(lengths)]
        other_masks = _inn_masks(other[other_id], other["inn"], other_id)
        found.append(_blocked_pairs(other_masks, bad_masks, "mask")[["ref_key", "company_id"]])
    pairs = pd.concat(found).rename(columns={"ref_key": "onec_ref"})
    ladder.propose(pairs, "inn_invalid")


def _candidate_frame(ladder: _Ladder, accepted: set[tuple[str, int]]) -> pd.DataFrame:
    if not ladder.candidates:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    cand = pd.concat(ladder.candidates, ignore_index=True)
    cand["company_id"] = cand["company_id"].astype("int64")
    matched = {(r, c) for r, c, _ in ladder.pairs}
    drop = ladder.rejected | accepted | matched
    cand = cand[[k not in drop for k in zip(cand["onec_ref"], cand["company_id"])]]
    cand = cand.drop_duplicates()
    cand["s"] = cand["reason"].map(CANDIDATE_SCORES)
    cand = cand.sort_values(["onec_ref", "company_id", "s", "reason"], ascending=[True, True, False, True])
    # One row per pair: its strongest reason, all of them, and the chance that none is right. Sorted, each
    # pair's rows are contiguous: slices, not a pandas group (a Series built per pair) for every pair.
    refs, companies = cand["onec_ref"].to_numpy(), cand["company_id"].to_numpy()
    reasons, miss = cand["reason"].to_numpy(), (1.0 - cand["s"]).to_numpy()
    starts = [i for i in range(len(cand)) if i == 0 or refs[i] != refs[i - 1] or companies[i] != companies[i - 1]]
    bounds = list(zip(starts, [*starts[1:], len(cand)]))
    out = pd.DataFrame(
        {
            "onec_ref": pd.Series([refs[a] for a, _ in bounds], dtype=object),
            "company_id": np.array([companies[a] for a, _ in bounds], dtype="int64"),
            "reason": pd.Series([reasons[a] for a, _ in bounds], dtype=object),
            "reasons": pd.Series(["+".join(reasons[a:b]) for a, b in bounds], dtype=object),
            "miss": np.array([np.prod(miss[a:b]) for a, b in bounds], dtype="float64"),
        }
    )
    out["score"] = (1.0 - out.pop("miss")).round(3)
    o = ladder.onec.set_index("ref_key")
    c = ladder.onec_crm_all.set_index("company_id")
    out["onec_name"] = out["onec_ref"].map(o["name"])
    out["crm_title"] = out["company_id"].map(c["title"])
    for col in ("inn", "kpp"):
        out[f"onec_{col}"] = out["onec_ref"].map(o[col])
        out[f"crm_{col}"] = out["company_id"].map(c[col])
    out["shared_email"] = _shared(out, o["emails"], c["emails"])
    out["shared_phone"] = _shared(out, o["phones"], c["phones"])
    o_key, c_key = out["onec_ref"].map(o["name_key"]), out["company_id"].map(c["name_key"])
    out["name_key"] = o_key.where(o_key == c_key, None)
    out = out.sort_values(["score", "onec_ref", "company_id"], ascending=[False, True, True])
    return out[CANDIDATE_COLUMNS].reset_index(drop=True)


def _shared(out: pd.DataFrame, o_lists: pd.Series, c_lists: pd.Series) -> list:
    left, right = out["onec_ref"].map(o_lists), out["company_id"].map(c_lists)
    shared = [sorted(set(a) & set(b)) for a, b in zip(left, right)]
    return [s[0] if s else None for s in shared]


# -- clients ---------------------------------------------------------------------------------------


def client_id_for(onec_ref: str | None, company_id: int | None) -> str:
    """Stable client id: from the 1C Ref_Key (immutable, 1C is the master), else from the CRM id."""
    if onec_ref:
        return str(uuid.uuid5(CLIENT_NS, f"1c:{onec_ref}"))
    return str(uuid.uuid5(CLIENT_NS, f"b24:{int(company_id)}"))


def _valid_or_none(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col].where(frame[f"{col}_valid"], None)


def _clients_frame(ladder: _Ladder) -> pd.DataFrame:
    pairs = pd.DataFrame(ladder.pairs, columns=["onec_ref", "company_id", "match_rule"])
    all_live, all_crm = ladder.all_live, ladder.onec_crm_all
    only_1c = all_live[~all_live["ref_key"].isin(ladder.taken_refs)][["ref_key"]].rename(
        columns={"ref_key": "onec_ref"}
    )
    only_1c["match_rule"] = "only_1c"
    only_crm = all_crm[~all_crm["company_id"].isin(ladder.taken_companies)][["company_id"]].copy()
    only_crm["match_rule"] = "only_crm"
    parts = [p for p in (pairs, only_1c, only_crm) if not p.empty]
    rows = pd.concat(parts, ignore_index=True) if parts else pairs
    rows = rows.reindex(columns=["onec_ref", "company_id", "match_rule"])
    rows["onec_ref"] = rows["onec_ref"].astype(object)
    rows["company_id"] = rows["company_id"].astype("Int64")

    o = ladder.onec.set_index("ref_key")
    c = all_crm.set_index("company_id")
    o_val = {col: _valid_or_none(ladder.onec, col).set_axis(ladder.onec["ref_key"]) for col in ("inn", "kpp", "ogrn")}
    c_val = {col: _valid_or_none(all_crm, col).set_axis(all_crm["company_id"]) for col in ("inn", "kpp", "ogrn")}

    def pick(o_series: pd.Series, c_series: pd.Series) -> pd.Series:
        # 1C owns legal fields: its value wins, the CRM's fills the gap.
        from_o = rows["onec_ref"].map(o_series)
        from_c = rows["company_id"].map(c_series)
        return from_o.where(from_o.notna(), from_c).astype(object).where(lambda s: s.notna(), None)

    out = pd.DataFrame(
        {
            "client_id": [
                client_id_for(r if isinstance(r, str) else None, None if pd.isna(cid) else cid)
                for r, cid in zip(rows["onec_ref"], rows["company_id"])
            ],
            "onec_ref": rows["onec_ref"],
            "company_id": rows["company_id"],
        }
    )
    for col in ("inn", "kpp", "ogrn"):
        out[col] = pick(o_val[col], c_val[col])
    out["name"] = pick(o["name"], c["title"])
    out["legal_form"] = pick(o["legal_form"], c["legal_form"])
    out["name_key"] = pick(o["name_key"], c["name_key"])
    out["match_rule"] = rows["match_rule"]
    out["confidence"] = rows["match_rule"].map(CONFIDENCE).astype(float)
    o_mails = rows["onec_ref"].map(o["emails"])
    c_mails = rows["company_id"].map(c["emails"])
    o_tels = rows["onec_ref"].map(o["phones"])
    c_tels = rows["company_id"].map(c["phones"])
    out["emails"] = [_union(a, b) for a, b in zip(o_mails, c_mails)]
    out["phones"] = [_union(a, b) for a, b in zip(o_tels, c_tels)]
    out["email"] = [_first(a, b) for a, b in zip(o_mails, c_mails)]
    out["phone"] = [_first(a, b) for a, b in zip(o_tels, c_tels)]
    out["assigned_by_id"] = rows["company_id"].map(c["assigned_by_id"]).astype("Int64")
    return out[CLIENT_COLUMNS].sort_values("client_id").reset_index(drop=True)


def _union(a, b) -> list[str]:
    return sorted(set(a if isinstance(a, list) else []) | set(b if isinstance(b, list) else []))


def _first(a, b) -> str | None:
    for xs in (a, b):
        if isinstance(xs, list) and xs:
            return xs[0]
    return None


def _dedupe_ids(frame: pd.DataFrame, id_col: str, system: str) -> tuple[pd.DataFrame, list[dict]]:
    dup = frame[id_col].duplicated(keep="first")
    rejects = [
        {"system": system, "record_id": str(v), "field": id_col, "value": str(v), "problem": "duplicate_record_id"}
        for v in frame.loc[dup, id_col]
    ]
    return frame[~dup], rejects


def match_clients(
    onec: pd.DataFrame,
    crm: pd.DataFrame,
    decisions: pd.DataFrame | None = None,
    *,
    originator_ids: tuple[str, ...] = OUR_ORIGINATOR_IDS,
    onec_activity: pd.DataFrame | None = None,
    crm_activity: pd.DataFrame | None = None,
) -> MatchResult:
    """Normalise raw extracts and run the whole ladder (see the module docstring)."""
    onec_n, onec_rej = normalize_onec_counterparties(onec)
    crm_n, crm_rej = normalize_crm_companies(crm)
    rejects = pd.concat([onec_rej, crm_rej], ignore_index=True)
    return match_normalized(
        onec_n,
        crm_n,
        decisions,
        rejects=rejects,
        originator_ids=originator_ids,
        onec_activity=onec_activity,
        crm_activity=crm_activity,
    )


def match_normalized(
    onec_n: pd.DataFrame,
    crm_n: pd.DataFrame,
    decisions: pd.DataFrame | None = None,
    *,
    rejects: pd.DataFrame | None = None,
    originator_ids: tuple[str, ...] = OUR_ORIGINATOR_IDS,
    onec_activity: pd.DataFrame | None = None,
    crm_activity: pd.DataFrame | None = None,
) -> MatchResult:
    """The ladder on already normalised extracts; `rejects` from normalisation are carried into the result.

    `onec_activity` (`survivors.ONEC_ACTIVITY_COLUMNS`) and `crm_activity` (`survivors.CRM_ACTIVITY_COLUMNS`)
    feed the duplicate survivor rules; without them a 1C group is decided by names only and a CRM group
    by the lowest company ID."""
    onec_n, dup_o = _dedupe_ids(onec_n, "ref_key", "1c")
    crm_n, dup_c = _dedupe_ids(crm_n, "company_id", "crm")
    latest, decision_problems = _latest_decisions(decisions)
    rejected = set(zip(*(latest.loc[latest["decision"] == "reject", k] for k in ("onec_ref", "company_id"))))
    accepted = latest[latest["decision"] == "accept"]
    created = set(latest.loc[latest["decision"] == "create", "onec_ref"])

    ladder = _Ladder(onec_n, crm_n, rejected)
    _rung_id_link(ladder, originator_ids)
    decision_rejects = _rung_reviewer_accept(ladder, accepted)
    _rung_id_link_foreign(ladder, originator_ids)
    _resolve_duplicates(ladder, onec_activity, crm_activity)
    _rung_inn_kpp(ladder)
    _rung_inn_branch(ladder)
    _rung_ogrn(ladder)
    _soft_candidates(ladder)

    accepted_pairs = set(zip(accepted["onec_ref"], accepted["company_id"]))
    earlier = [] if rejects is None else rejects.to_dict("records")
    all_rejects = pd.DataFrame(earlier + dup_o + dup_c + decision_problems + decision_rejects, columns=REJECT_COLUMNS)
    clients = _clients_frame(ladder)
    candidates = _candidate_frame(ladder, accepted_pairs)
    # A client the reviewer sent to "create in CRM" has no candidate partner left to review.
    candidates = candidates[~candidates["onec_ref"].isin(created)].reset_index(drop=True)
    return MatchResult(
        clients=clients,
        candidates=candidates,
        rejects=all_rejects.sort_values(REJECT_COLUMNS, kind="stable").reset_index(drop=True),
        onec=onec_n,
        crm=crm_n,
        survivors=ladder.survivors.sort_values(["system", "key", "record_id"]).reset_index(drop=True),
        foreign_originators=foreign_originator_report(onec_n, crm_n, clients, candidates, originator_ids),
    )
