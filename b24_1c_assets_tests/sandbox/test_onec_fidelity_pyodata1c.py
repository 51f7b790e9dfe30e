"""Fidelity: `PyOData1C` 0.0.9 (PyPI `pyodata1c`, written against real 1C bases, independent of this project)
reads entity sets with `$filter`/`$select`/`$top`, gets by key, creates, patches and posts a document on the
sandbox 1C server unchanged. Skipped only where the package is not installed (it is a test dependency).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

pytest.importorskip("PyOData1C")

from pydantic import Field  # noqa: E402
from PyOData1C.http import Connection  # noqa: E402
from PyOData1C.models import ODataModel  # noqa: E402
from PyOData1C.odata import OData, Q  # noqa: E402

from b24_1c_assets.sandbox.onec_seed import counterparty_guid  # noqa: E402


class Counterparty(ODataModel):
    uid: str = Field(alias="Ref_Key")
    name: str = Field(alias="Description")
    inn: str = Field(alias="ИНН")
    kind: str = Field(alias="ВидКонтрагента")


class CounterpartyOData(OData):
    database = "unf"
    entity_model = Counterparty
    entity_name = "Catalog_Контрагенты"


class Currency(ODataModel):
    uid: str = Field(alias="Ref_Key")
    name: str = Field(alias="Description")
    code: str = Field(alias="Code")


class CurrencyOData(OData):
    database = "unf"
    entity_model = Currency
    entity_name = "Catalog_Валюты"


class Shipment(ODataModel):
    uid: str = Field(alias="Ref_Key")
    number: str = Field(alias="Number")
    posted: bool = Field(alias="Posted")
    amount: Decimal = Field(alias="СуммаДокумента")


class ShipmentOData(OData):
    database = "unf"
    entity_model = Shipment
    entity_name = "Document_РасходнаяНакладная"


def _connection(server) -> Connection:
    auth = requests.auth.HTTPBasicAuth(server.username.encode(), server.password.encode())
    return Connection(f"127.0.0.1:{server.port}", "http", auth)


def test_pyodata1c_reads_filters_and_gets(onec, world):
    party = next(p for p in world.parties if p.onec_spellings and p.onec_spellings[0].inn)
    with _connection(onec) as conn:
        everyone = CounterpartyOData.manager(conn).all()
        assert len(everyone) == sum(len(p.onec_spellings) for p in world.parties)
        kind = "ЮридическоеЛицо" if party.kind == "legal" else "ИндивидуальныйПредприниматель"
        hits = CounterpartyOData.manager(conn).filter(inn=party.onec_spellings[0].inn, kind=kind).all()
        assert counterparty_guid(world, party.key) in {h.uid for h in hits}
        two = CounterpartyOData.manager(conn).filter(Q(name__ne="x")).top(2).all()
        assert len(two) == 2
        one = CounterpartyOData.manager(conn).get(counterparty_guid(world, party.key))
        assert one.name == party.onec_spellings[0].title


def test_pyodata1c_creates_updates_and_posts(onec, world):
    with _connection(onec) as conn:
        created = CurrencyOData.manager(conn).create({"Description": "USD", "Code": "840"})
        assert created.code == "840"
        renamed = CurrencyOData.manager(conn).update(created.uid, {"Description": "Доллар США"})
        assert renamed.name == "Доллар США"
        ship = world.shipments[0]
        mgr = ShipmentOData.manager(conn)
        mgr.unpost_document(world.guid("shipment", ship.key))
        assert ShipmentOData.manager(conn).get(world.guid("shipment", ship.key)).posted is False
        ShipmentOData.manager(conn).post_document(world.guid("shipment", ship.key))
        again = ShipmentOData.manager(conn).get(world.guid("shipment", ship.key))
        assert again.posted is True and again.amount == ship.amount
