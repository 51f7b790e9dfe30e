"""Fidelity: independent OData clients from PyPI talk to the sandbox 1C server unchanged.

* `pyodata` 1.12.1 (SAP, generic OData v2): parses the sandbox's `$metadata` (EDMX 3.0 of 1C's shape).
  It cannot read an entity set from 1C at all: it expects OData v2 verbose JSON (`{"d": …}`) while 1C
  answers v3 JSON light (`{"odata.metadata": …, "value": […]}`); asserted below so a change is noticed.
* `PyOData1C` 0.0.9 reads and writes entity sets: see test_onec_fidelity_pyodata1c.py.
"""

from __future__ import annotations

import pyodata
import pytest
import requests

from b24_1c_assets_tests.conftest import both_onec_profiles


@pytest.fixture
def session(onec):
    s = requests.Session()
    s.auth = (onec.username.encode(), onec.password.encode())
    return s


@both_onec_profiles  # UNF 3.0's and 1.6's metadata alike
def test_pyodata_parses_metadata_unchanged(onec, session):
    client = pyodata.Client(onec.odata_url + "/", session)
    names = {es.name for es in client.schema.entity_sets}
    assert {
        "Catalog_Контрагенты",
        "Document_ЗаказПокупателя",
        "AccumulationRegister_РасчетыСПокупателями",
        "AccumulationRegister_РасчетыСПокупателями_RecordType",
        "InformationRegister_ЦеныНоменклатуры",
        "AccumulationRegister_ОплатаСчетовИЗаказов_RecordType",
    } <= names
    turnovers = client.schema.entity_type("AccumulationRegister_ОплатаСчетовИЗаказов_RecordType")
    assert "RecordType" not in {p.name for p in turnovers.proprties()}  # a turnover register
    cp = client.schema.entity_type("Catalog_Контрагенты")
    assert [p.name for p in cp.key_proprties] == ["Ref_Key"]
    assert cp.proprty("ИНН").typ.name == "Edm.String" and cp.proprty("Ref_Key").typ.name == "Edm.Guid"
    contract = client.schema.entity_type("Catalog_ДоговорыКонтрагентов")
    if onec.profile.name == "unf16":  # a single-typed owner navigates; 3.0's composite one has `Owner_Type`
        assert contract.nav_proprty("Owner").to_role.entity_type_name == "Catalog_Контрагенты"
    else:
        assert contract.proprty("Owner_Type").typ.name == "Edm.String"
    rows = client.schema.entity_type("AccumulationRegister_РасчетыСПокупателями_RecordType")
    assert [p.name for p in rows.key_proprties] == ["Recorder", "LineNumber", "Recorder_Type"]


def test_pyodata_cannot_read_1c_json_light(onec, session):
    client = pyodata.Client(onec.odata_url + "/", session)
    with pytest.raises(KeyError, match="d"):
        client.entity_sets.Catalog_Валюты.get_entities().execute()
