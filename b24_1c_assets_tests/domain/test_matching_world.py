"""Matching on the shared sandbox world: the world knows which records are the same party."""

from __future__ import annotations

import pandas as pd
import pytest

from b24_1c_assets.domain.duplicates import find_duplicates
from b24_1c_assets.domain.matching import match_clients
from b24_1c_assets.sandbox.onec_seed import counterparty_guid
from b24_1c_assets_tests.domain.conftest import crm_frame, onec_frame


def project(world):
    """The world's spellings as the two extracts (as the sandbox seeds lay them out), the truth (record ->
    party) and the activity the survivor rules read (orders on a party's first 1C card, deals on its first
    CRM company, as the seeds put them)."""
    onec_rows, crm_rows, party_of = [], [], {}
    company_id = 1
    first_company = {}
    for party in world.parties:
        if party.presence != "crm":
            for i, sp in enumerate(party.onec_spellings):
                ref = counterparty_guid(world, party.key, i)
                onec_rows.append(
                    {
                        "ref_key": ref,
                        "description": sp.title,
                        "full_name": party.full_name if i == 0 else None,
                        "inn": sp.inn,
                        "kpp": sp.kpp,
                        "ogrn": sp.ogrn,
                        "kind": party.kind,
                        "email": sp.email,
                        "phone": sp.phone,
                        "deletion_mark": sp.deleted,
                    }
                )
                party_of[("1c", ref)] = party
        if party.presence != "1c":
            for sp in party.crm_spellings:
                linked = None
                if sp.linked_onec:
                    linked = (
                        counterparty_guid(world, *sp.origin_of)
                        if sp.origin_of
                        else world.guid("counterparty", party.key)
                    )
                crm_rows.append(
                    {
                        "company_id": company_id,
                        "title": sp.title,
                        "inn": sp.inn,
                        "kpp": sp.kpp,
                        "ogrn": sp.ogrn,
                        "originator_id": (sp.originator or "1C_UNF") if linked else None,
                        "origin_id": linked,
                        "emails": [sp.email] if sp.email else [],
                        "phones": [sp.phone] if sp.phone else [],
                        "assigned_by_id": party.manager_id,
                    }
                )
                party_of[("crm", company_id)] = party
                first_company.setdefault(party.key, company_id)
                company_id += 1
    orders = pd.Series([o.party_key for o in world.orders]).value_counts()
    onec_activity = pd.DataFrame(
        {
            "ref_key": [counterparty_guid(world, k, 0) for k in orders.index],
            "documents": orders.to_numpy(),
            "last_activity": None,
        }
    )
    deals = pd.Series([first_company[d.party_key] for d in world.deals if d.party_key in first_company])
    crm_activity = pd.DataFrame(
        {
            "company_id": deals.value_counts().index,
            "deals": deals.value_counts().to_numpy(),
            "open_deals": 0,
            "created": None,
        }
    )
    return onec_frame(onec_rows), crm_frame(crm_rows), party_of, onec_activity, crm_activity


def precision_recall(result, party_of, cases: dict[int, str]) -> dict[str, dict]:
    """Per identity case (and 'all', and 'all_with_id_evidence' without `no_id_evidence` parties): automatic
    links, wrong ones, precision and recall per party (a party present on both sides with a live 1C card
    counts as found when one of its records is linked right)."""
    linked = result.clients.dropna(subset=["onec_ref", "company_id"])
    linked = linked[linked["match_rule"] != "reviewer_accept"]
    in_crm = {p.key for (system, _), p in party_of.items() if system == "crm"}
    live_in_1c = {party_of[("1c", r)].key for r in result.clients["onec_ref"].dropna()}
    findable = in_crm & live_in_1c
    out: dict[str, dict] = {}
    found: dict[str, set] = {}
    for ref, company in zip(linked["onec_ref"], linked["company_id"].astype(int)):
        a, b = party_of[("1c", ref)], party_of[("crm", company)]
        for case in {cases.get(a.key, "plain"), cases.get(b.key, "plain"), "all"}:
            row = out.setdefault(case, {"links": 0, "wrong": 0})
            row["links"] += 1
            row["wrong"] += a.key != b.key
        if a.key == b.key:
            for case in (cases.get(a.key, "plain"), "all"):
                found.setdefault(case, set()).add(a.key)
    for case in {cases.get(k, "plain") for k in findable} | {"all", "all_with_id_evidence"}:
        parties = {
            k
            for k in findable
            if case == "all"
            or cases.get(k, "plain") == case
            or (case == "all_with_id_evidence" and cases.get(k) != "no_id_evidence")
        }
        if case == "all_with_id_evidence":
            found[case] = found.get("all", set())
            out[case] = dict(out.get("all", {"links": 0, "wrong": 0}))
        row = out.setdefault(case, {"links": 0, "wrong": 0})
        row["parties"] = len(parties)
        row["recall"] = round(len(found.get(case, set()) & parties) / len(parties), 4) if parties else None
    for row in out.values():
        row["precision"] = round(1 - row["wrong"] / row["links"], 5) if row["links"] else None
    return dict(sorted(out.items()))


@pytest.fixture(scope="module")
def projected(world):
    onec, crm, party_of, _, _ = project(world)
    return onec, crm, party_of


@pytest.fixture(scope="module")
def projected_with_activity(world):
    return project(world)


def test_automatic_matches_on_the_world_are_all_correct(projected):
    onec, crm, party_of = projected
    result = match_clients(onec, crm)
    linked = result.clients.dropna(subset=["onec_ref", "company_id"])
    assert len(linked) > 0
    wrong = [
        (r, c)
        for r, c in zip(linked["onec_ref"], linked["company_id"])
        if party_of[("1c", r)].key != party_of[("crm", int(c))].key
    ]
    assert wrong == []
    # Every party on both sides with one clean spelling each is found automatically.
    clean = [
        p
        for p in {id(p): p for p in party_of.values()}.values()
        if p.presence == "both"
        and len(p.onec_spellings) == 1
        and len(p.crm_spellings) == 1
        and all(sp.inn == p.inn and sp.kpp == p.kpp for sp in (p.onec_spellings[0], p.crm_spellings[0]))
    ]
    assert clean
    matched_parties = {party_of[("1c", r)].key for r in linked["onec_ref"]}
    assert {p.key for p in clean} <= matched_parties


def test_earlier_integration_links_are_used(projected):
    onec, crm, _ = projected
    if crm["origin_id"].isna().all():
        pytest.skip("this world has no linked companies")
    rules = match_clients(onec, crm, originator_ids=("1c-unf", "1C_UNF")).clients.set_index("company_id")["match_rule"]
    linked_ids = crm.loc[crm["origin_id"].notna(), "company_id"]
    assert (rules.loc[list(linked_ids)] == "id_link").any()


def test_world_duplicates_are_grouped(projected):
    onec, crm, party_of = projected
    result = match_clients(onec, crm)
    dups = find_duplicates(result.onec, result.crm)
    for system in ("1c", "crm"):
        for _, group in dups[dups["system"] == system].groupby("group_id"):
            ids = group["record_id"].tolist()
            parties = {party_of[(system, int(i) if system == "crm" else i)].key for i in ids}
            heads = {party_of[(system, int(i) if system == "crm" else i)].head_key for i in ids}
            # A group holds spellings of one party, or (name_no_inn) same-named records without INN.
            assert len(parties) == 1 or group["reason"].iloc[0] == "name_no_inn" or heads - {None}, ids


def test_identity_cases_precision_one_and_recall(world, projected_with_activity):
    """Duplicates on both sides and an earlier connector's links: no wrong link, and almost every party found."""
    onec, crm, party_of, onec_activity, crm_activity = projected_with_activity
    cases = world_identity_cases(world)
    assert {"dup_1c", "dup_crm", "foreign_link"} <= set(cases.values())
    result = match_clients(
        onec, crm, originator_ids=("1c-unf", "1C_UNF"), onec_activity=onec_activity, crm_activity=crm_activity
    )
    figures = precision_recall(result, party_of, cases)
    assert figures["all"]["precision"] == 1.0, figures
    # Parties whose only evidence is an e-mail or a broken INN stay candidates by design (precision first).
    assert figures["all_with_id_evidence"]["recall"] >= 0.97, figures
    for case in ("dup_1c", "dup_crm", "foreign_link"):
        assert figures[case]["recall"] == 1.0, (case, figures[case])
    # The earlier connector is reported, and its links never point at a deleted or unknown record.
    assert set(result.foreign_originators["originator_id"]) <= {"1c", "unf-connector"}
    assert not result.foreign_originators.empty
    foreign = result.clients[result.clients["match_rule"] == "id_link_foreign"]
    assert {cases.get(party_of[("crm", int(c))].key) for c in foreign["company_id"]} == {"foreign_link"}
    conflicts = result.candidates[result.candidates["reason"].str.startswith("id_link_foreign_")]
    assert {cases.get(party_of[("crm", int(c))].key) for c in conflicts["company_id"]} <= {"foreign_inn_conflict"}


def world_identity_cases(world) -> dict[int, str]:
    """Party key -> identity case, read from the spellings (the generator's labels)."""
    cases = {}
    for p in world.parties:
        crm_links = [sp for sp in p.crm_spellings if sp.linked_onec and sp.originator]
        if crm_links:
            of = crm_links[0].origin_of
            cases[p.key] = (
                "foreign_link"
                if of is None
                else "foreign_deleted"
                if of[1] == 1
                else "foreign_missing"
                if of[1] == 99
                else "foreign_inn_conflict"
            )
        elif (
            len(p.onec_spellings) > 1 and not p.onec_spellings[1].deleted and p.onec_spellings[1].kpp == p.kpp and p.kpp
        ):
            cases[p.key] = "dup_1c"
        elif len(p.crm_spellings) > 1 and p.crm_spellings[1].kpp:
            cases[p.key] = "dup_crm" if p.crm_spellings[1].kpp == p.crm_spellings[0].kpp else "dup_crm_other_kpp"
        elif not _has_id_evidence(p):
            cases[p.key] = "no_id_evidence"
    return cases


def _has_id_evidence(party) -> bool:
    """Some CRM company and some live 1C card of the party carry a link, the same valid INN, or the same OGRN
    without contradicting INNs: anything else (INN missing in the CRM, an INN typo on either side) is for a
    reviewer, never an automatic link."""

    def digits(v):
        return "".join(ch for ch in v if ch.isdigit()) if v else None

    for c in party.crm_spellings:
        if c.linked_onec:
            return True
        for o in (sp for sp in party.onec_spellings if not sp.deleted):
            c_inn, o_inn = digits(c.inn), digits(o.inn)
            if c_inn == o_inn == party.inn:
                return True
            if c.ogrn and digits(c.ogrn) == digits(o.ogrn) and o_inn == party.inn and c_inn in (None, o_inn):
                return True
    return False
