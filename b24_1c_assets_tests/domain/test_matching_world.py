"""Matching on the shared sandbox world: the world knows which records are the same party."""

from __future__ import annotations

import pytest

from b24_1c_assets.domain.duplicates import find_duplicates
from b24_1c_assets.domain.matching import match_clients
from b24_1c_assets.sandbox.onec_seed import counterparty_guid
from b24_1c_assets_tests.domain.conftest import crm_frame, onec_frame


@pytest.fixture(scope="module")
def projected(world):
    """The world's spellings as the two extracts (as the sandbox seeds lay them out) + the truth."""
    onec_rows, crm_rows, party_of = [], [], {}
    company_id = 1
    for party in world.parties:
        if party.presence != "crm":
            for i, sp in enumerate(party.onec_spellings):
                ref = counterparty_guid(world, party.key, i)
                onec_rows.append({"ref_key": ref, "description": sp.title, "full_name": party.full_name if i == 0 else None,
                                  "inn": sp.inn, "kpp": sp.kpp, "ogrn": sp.ogrn, "kind": party.kind,
                                  "email": sp.email, "phone": sp.phone})
                party_of[("1c", ref)] = party
        if party.presence != "1c":
            for sp in party.crm_spellings:
                linked = world.guid("counterparty", party.key) if sp.linked_onec else None
                crm_rows.append({"company_id": company_id, "title": sp.title, "inn": sp.inn, "kpp": sp.kpp,
                                 "ogrn": sp.ogrn, "originator_id": "1C_UNF" if linked else None,
                                 "origin_id": linked, "emails": [sp.email] if sp.email else [],
                                 "phones": [sp.phone] if sp.phone else [], "assigned_by_id": party.manager_id})
                party_of[("crm", company_id)] = party
                company_id += 1
    return onec_frame(onec_rows), crm_frame(crm_rows), party_of


def test_automatic_matches_on_the_world_are_all_correct(projected):
    onec, crm, party_of = projected
    result = match_clients(onec, crm)
    linked = result.clients.dropna(subset=["onec_ref", "company_id"])
    assert len(linked) > 0
    wrong = [(r, c) for r, c in zip(linked["onec_ref"], linked["company_id"])
             if party_of[("1c", r)].key != party_of[("crm", int(c))].key]
    assert wrong == []
    # Every party on both sides with one clean spelling each is found automatically.
    clean = [p for p in {id(p): p for p in party_of.values()}.values()
             if p.presence == "both" and len(p.onec_spellings) == 1 and len(p.crm_spellings) == 1
             and all(sp.inn == p.inn and sp.kpp == p.kpp for sp in (p.onec_spellings[0], p.crm_spellings[0]))]
    assert clean
    matched_parties = {party_of[("1c", r)].key for r in linked["onec_ref"]}
    assert {p.key for p in clean} <= matched_parties


def test_earlier_integration_links_are_used(projected):
    onec, crm, _ = projected
    if crm["origin_id"].isna().all():
        pytest.skip("this world has no linked companies")
    rules = match_clients(onec, crm).clients.set_index("company_id")["match_rule"]
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
