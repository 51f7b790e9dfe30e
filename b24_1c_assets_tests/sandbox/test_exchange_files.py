"""The sandbox's exchange files tell the same story as the world and the sandbox 1C base."""

from collections import defaultdict
from decimal import Decimal

from b24_1c_assets.onec.exchange import ExchangeFolder
from b24_1c_assets.sandbox.exchange_files import write_exchange_files
from b24_1c_assets.sandbox.onec_seed import counterparty_guid


def _batches(world, tmp_path, **kw):
    write_exchange_files(world, tmp_path, **kw)
    folder = ExchangeFolder(tmp_path, min_age_seconds=0)
    out = {}
    for f in folder.pending():
        with folder.claim(f) as batch:
            out[batch.file_type] = batch
    return out


def test_receivables_match_world_balances(world, tmp_path):
    batches = _batches(world, tmp_path)
    by_party = defaultdict(Decimal)
    for row in batches["receivables"].records:
        by_party[row["Контрагент_Key"]] += row["СуммаBalance"]
        assert (row["ТипРасчетов"] == "Долг") == (row["СуммаBalance"] > 0)
    for party in world.parties:
        assert by_party.get(counterparty_guid(world, party.key), Decimal(0)) == world.expected_balance(party.key)


def test_guids_and_amounts_match_world(world, tmp_path):
    batches = _batches(world, tmp_path, encoding="windows-1251")
    invoices = {r["Ref_Key"]: r for r in batches["invoices"].records}
    assert len(invoices) == len(world.invoices)
    for inv in world.invoices:
        rec = invoices[world.guid("invoice", inv.key)]
        assert rec["СуммаДокумента"] == inv.amount
        assert sum(line["Сумма"] for line in rec["Запасы"]) == inv.amount
    payments = batches["payments"].records
    assert sum(p["СуммаДокумента"] for p in payments) == sum(p.amount for p in world.payments)
    contracts = [c for r in batches["counterparties"].records for c in r["Договоры"]]
    assert {c["Ref_Key"] for c in contracts} == {world.guid("contract", c.key) for c in world.contracts}
