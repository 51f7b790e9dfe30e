"""$metadata reading and the publication hint for missing sets/fields."""

import pytest

from b24_1c_assets.onec.errors import OneCPublicationError
from b24_1c_assets.onec.metadata import Metadata, describe_object
from b24_1c_assets.sandbox.onec_schema import metadata_xml


@pytest.fixture(scope="module")
def meta():
    return Metadata.parse(
        metadata_xml(
            [
                "Catalog_Контрагенты",
                "AccumulationRegister_РасчетыСПокупателями",
                "AccumulationRegister_РасчетыСПокупателями_RecordType",
            ]
        ).encode("utf-8")
    )


def test_types_tabular_rows_and_bound_functions(meta):
    assert meta.fields("Catalog_Контрагенты")["Ref_Key"] == "Edm.Guid"
    assert meta.row_types("Catalog_Контрагенты")["КонтактнаяИнформация"]["LineNumber"] == "Edm.Int64"
    balance = meta.fields("AccumulationRegister_РасчетыСПокупателями/Balance(Period=datetime'2026-01-01T00:00:00')")
    assert balance["СуммаBalance"] == "Edm.Double"
    assert meta.is_composite("AccumulationRegister_РасчетыСПокупателями_RecordType", "Документ")


def test_missing_set_names_the_1c_object_to_publish(meta):
    with pytest.raises(OneCPublicationError) as err:
        meta.require("Catalog_Номенклатура", ["Артикул"])
    text = str(err.value)
    assert "Справочник Номенклатура (Catalog_Номенклатура" in text
    assert "УстановитьСоставСтандартногоИнтерфейсаOData" in text


def test_missing_field_is_named(meta):
    with pytest.raises(OneCPublicationError, match="ЛимитЗадолженности"):
        meta.require("Catalog_Контрагенты", ["ИНН", "ЛимитЗадолженности"])
    meta.require("Catalog_Контрагенты", ["ИНН", "КПП"])  # present: no error


def test_describe_register_row_set():
    assert describe_object("AccumulationRegister_ОплатаСчетовИЗаказов_RecordType").startswith(
        "Регистр накопления ОплатаСчетовИЗаказов"
    )
