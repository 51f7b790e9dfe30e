"""Projection of the world into 1C records (pure: no server)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from b24_1c_assets.sandbox.onec_schema import INVOICE_PAYMENTS, SETTLEMENTS
from b24_1c_assets.sandbox.onec_seed import counterparty_guid, data_version, next_data_version, seed


@pytest.fixture(scope="module")
def state(world):
    return seed(world)


def test_one_counterparty_per_1c_spelling(world, state):
    cps = state.objects["Catalog_Контрагенты"]
    assert len(cps) == sum(len(p.onec_spellings) for p in world.parties)
    for party in world.parties:
        refs = [counterparty_guid(world, party.key, i) for i in range(len(party.onec_spellings))]
        assert all(r in cps for r in refs) and len(set(refs)) == len(refs)
        if party.onec_spellings:
            first = cps[refs[0]]
            assert refs[0] == world.guid("counterparty", party.key)
            assert first["Покупатель"] is True
            legal = party.kind == "legal"
            assert first["ВидКонтрагента"] == ("ЮридическоеЛицо" if legal else "ИндивидуальныйПредприниматель")
            assert first["ЮридическоеФизическоеЛицо"] == ("ЮридическоеЛицо" if legal else "ФизическоеЛицо")
    crm_only = [p for p in world.parties if p.presence == "crm"]
    assert all(world.guid("counterparty", p.key) not in cps for p in crm_only if not p.onec_spellings)


def test_contacts_are_typed_rows(world, state):
    party = next(p for p in world.parties if p.onec_spellings and p.onec_spellings[0].email)
    rows = state.objects["Catalog_Контрагенты"][counterparty_guid(world, party.key)]["КонтактнаяИнформация"]
    assert {"Тип": "АдресЭлектроннойПочты", "АдресЭП": party.onec_spellings[0].email}.items() <= rows[0].items()
    assert [r["LineNumber"] for r in rows] == list(range(1, len(rows) + 1))


def test_contracts_items_and_documents_use_world_guids(world, state):
    contract = world.contracts[0]
    rec = state.objects["Catalog_ДоговорыКонтрагентов"][world.guid("contract", contract.key)]
    assert rec["СрокОплатыПокупателя"] == contract.payment_term_days and rec["ВидДоговора"] == "СПокупателем"
    assert rec["Owner"] == counterparty_guid(world, contract.party_key)  # UNF 3.0: a composite owner
    assert rec["Owner_Type"] == "StandardODATA.Catalog_Контрагенты" and "Owner_Key" not in rec
    items = state.objects["Catalog_Номенклатура"]
    assert all(items[world.guid("item", i.key)]["DeletionMark"] == i.deleted for i in world.items)
    for kind, set_name, docs in (
        ("order", "Document_ЗаказПокупателя", world.orders),
        ("invoice", "Document_СчетНаОплату", world.invoices),
        ("shipment", "Document_РасходнаяНакладная", world.shipments),
    ):
        for doc in docs[:20]:
            rec = state.objects[set_name][world.guid(kind, doc.key)]
            assert rec["СуммаДокумента"] == doc.amount and rec["Posted"] == doc.posted
            assert sum(r["Сумма"] for r in rec["Запасы"]) == doc.amount
    paid = {**state.objects["Document_ПоступлениеНаСчет"], **state.objects["Document_ПоступлениеВКассу"]}
    assert len(paid) == len(world.payments)


def test_settlements_balance_per_party_is_expected_balance(world, state):
    store = state.registers[SETTLEMENTS]
    total: dict[str, Decimal] = {}
    inactive = [r for rows in store.by_recorder.values() for r in rows if not r["Active"]]
    assert inactive and all(r["RecordType"] == "Receipt" for r in inactive)  # deactivated lines are seeded
    for rows in store.by_recorder.values():
        for r in rows:
            if not r["Active"]:
                continue  # 1C's Balance ignores them
            sign = 1 if r["RecordType"] == "Receipt" else -1
            total[r["Контрагент_Key"]] = total.get(r["Контрагент_Key"], Decimal(0)) + sign * r["Сумма"]
    for party in world.parties:
        assert total.get(counterparty_guid(world, party.key), Decimal(0)) == world.expected_balance(party.key)
    periods, rows = store.by_period()
    assert periods == sorted(periods) and len(rows) == len(store)


def test_invoice_payments_register_has_each_posted_invoice(world, state):
    store = state.registers[INVOICE_PAYMENTS]
    for inv in world.invoices:
        rows = store.by_recorder.get(world.guid("invoice", inv.key), [])
        assert (rows[0]["Сумма"] == inv.amount) if inv.posted else rows == []


def test_data_version_is_a_base64_counter():
    assert data_version(0) == "AAAAAAAAAAA=" and next_data_version("AAAAAAAAAAA=") == "AAAAAAAAAAE="
    assert next_data_version(data_version(255)) == data_version(256)


def test_empty_dimensions_are_undefined_in_every_movement(world):
    rows = seed(world, empty_dimensions=("Заказ", "Документ")).registers[SETTLEMENTS].by_period()[1]
    assert rows and all(r["Заказ"] == "" and r["Заказ_Type"] == "StandardODATA.Undefined" for r in rows)
    assert all(r["Документ"] == "" and r["Документ_Type"] == "StandardODATA.Undefined" for r in rows)


def test_unf16_settlements_use_a_single_order_reference(world, state):
    rows = seed(world, profile="unf16").registers[SETTLEMENTS].by_period()[1]
    assert all("Заказ" not in r and "Заказ_Type" not in r and "СуммаРег" not in r for r in rows)
    with_order = [r for r in rows if r["Заказ_Key"] != "00000000-0000-0000-0000-000000000000"]
    canonical = {r["Заказ"] for r in state.registers[SETTLEMENTS].by_period()[1] if r["Заказ"]}
    assert with_order and {r["Заказ_Key"] for r in with_order} == canonical
