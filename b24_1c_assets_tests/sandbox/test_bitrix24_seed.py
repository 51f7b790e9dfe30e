"""The world projected into the portal: what a client reading the CRM finds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from b24_1c_assets.sandbox.bitrix24_crm import CrmState
from b24_1c_assets.sandbox.bitrix24_seed import ONEC_ORIGINATOR_ID, seed_portal, stage_id
from b24_1c_assets.sandbox.onec_seed import counterparty_guid


@pytest.fixture(scope="module")
def seeded(request):
    world = request.getfixturevalue("world")
    state = CrmState()
    counts = seed_portal(state, world)
    return world, state, counts


def test_one_company_and_one_requisite_per_crm_spelling(seeded):
    world, state, counts = seeded
    spellings = [(p, s) for p in world.parties if p.presence != "1c" for s in p.crm_spellings]
    companies = list(state.tables["company"].rows.values())
    requisites = {r["ENTITY_ID"]: r for r in state.tables["requisite"].rows.values()}
    assert counts["companies"] == len(companies) == len(spellings) == len(requisites)
    for (party, spelling), company in zip(spellings, companies):
        assert company["TITLE"] == spelling.title
        rq = requisites[company["ID"]]
        assert (rq["ENTITY_TYPE_ID"], rq["RQ_INN"]) == ("4", spelling.inn)
        if party.kind == "legal":
            assert (rq["PRESET_ID"], rq["NAME"], rq["RQ_KPP"], rq["RQ_OGRN"]) == (
                "1",
                "Организация",
                spelling.kpp,
                spelling.ogrn,
            )
        else:
            assert (rq["PRESET_ID"], rq["NAME"], rq["RQ_OGRNIP"]) == ("2", "ИП", spelling.ogrn)
        expected_origin = None
        if spelling.linked_onec:  # the party's first 1C card, or the record an older connector named
            expected_origin = (
                counterparty_guid(world, *spelling.origin_of)
                if spelling.origin_of
                else world.guid("counterparty", party.key)
            )
        assert company["ORIGIN_ID"] == expected_origin
        assert company["ORIGINATOR_ID"] == (
            (spelling.originator or ONEC_ORIGINATOR_ID) if spelling.linked_onec else None
        )
        emails = [e["VALUE"] for e in company["EMAIL"]]
        assert emails == ([spelling.email] if spelling.email else [])


def test_parties_only_in_1c_have_no_company(seeded):
    world, state, _ = seeded
    only_1c = {p.short_name for p in world.parties if p.presence == "1c"}
    assert only_1c, "the world should have 1C-only parties"
    titles = " ".join(c["TITLE"] for c in state.tables["company"].rows.values())
    assert sum(name in titles for name in only_1c) < len(only_1c)  # names may coincide; not all of them


def test_products_for_items_in_crm_keyed_by_the_1c_ref(seeded):
    world, state, _ = seeded
    xml_ids = {p["XML_ID"]: p for p in state.tables["product"].rows.values()}
    for item in world.items:
        ref = world.guid("item", item.key)
        assert (ref in xml_ids) == item.in_crm
        if item.in_crm:
            assert Decimal(xml_ids[ref]["PRICE"]) == item.price


def test_deals_keep_world_ids_pipelines_stages_and_rows(seeded):
    world, state, _ = seeded
    assert {c for c in state.categories} >= {0, 1, 2}
    for deal in world.deals:
        record = state.record("deal", deal.key)
        assert record["STAGE_ID"] == stage_id(deal.category_id, deal.stage)
        assert record["CATEGORY_ID"] == str(deal.category_id)
        assert record["STAGE_SEMANTIC_ID"] == {"WON": "S", "LOSE": "F"}.get(deal.stage, "P")
        assert Decimal(record["OPPORTUNITY"]) == deal.amount
        rows = state.product_rows[deal.key]
        # Each line is rounded to kopecks first, as the world (and 1C) computes line amounts.
        assert (
            sum((Decimal(str(r["PRICE"])) * Decimal(str(r["QUANTITY"]))).quantize(Decimal("0.01")) for r in rows)
            == deal.amount
        )
    assert any(d.category_id for d in world.deals)


def test_no_pipeline_has_a_suspended_stage_until_one_is_added(seeded):
    """A portal ships no HOLD stage; the deal-holds flow adds it with crm.status.add (sync/bitrix24_stages.py)."""
    _, state, _ = seeded
    for category_id in (0, 1, 2):
        assert state.deal_stages(category_id)
        assert not [s for s in state.deal_stages(category_id) if s["STATUS_ID"] == stage_id(category_id, "HOLD")]


def test_seeding_queues_no_offline_events_and_users_exist(seeded):
    world, state, _ = seeded
    assert state.events == {}
    assert set(state.users) == {u.id for u in world.users}
