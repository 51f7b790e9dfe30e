"""Pure rules of the catalog push: which items become which CRM products."""

from decimal import Decimal

import pandas as pd

from b24_1c_assets.domain.catalog_sync import crm_payload, desired_products, price_type_ref, same_as_crm

ITEMS = pd.DataFrame(
    [
        {"Ref_Key": "a", "Description": "Кабель ", "DeletionMark": False, "IsFolder": False},
        {"Ref_Key": "b", "Description": "Старый", "DeletionMark": True, "IsFolder": False},
        {"Ref_Key": "c", "Description": "Удалённый без товара", "DeletionMark": True, "IsFolder": False},
        {"Ref_Key": "g", "Description": "Группа", "DeletionMark": False, "IsFolder": True},
    ]
)
PRICES = pd.DataFrame(
    [
        {"Номенклатура_Key": "a", "ВидЦен_Key": "retail", "Цена": Decimal("10.5")},
        {"Номенклатура_Key": "a", "ВидЦен_Key": "whole", "Цена": Decimal("9")},
    ]
)
CRM = pd.DataFrame([{"ID": "7", "XML_ID": "b", "NAME": "Старый", "PRICE": "1.00", "CURRENCY_ID": "RUB", "ACTIVE": "Y"}])


def test_deleted_items_are_deactivated_only_when_they_are_products_and_folders_are_skipped():
    desired = desired_products(ITEMS, PRICES, CRM, price_type="retail").set_index("key")
    assert list(desired.index) == ["a", "b"]
    assert desired.loc["a", "PRICE"] == Decimal("10.50") and desired.loc["a", "NAME"] == "Кабель"
    assert desired.loc["b", "ACTIVE"] == "N" and desired.loc["b", "product_id"] == "7"


def test_price_type_by_name_and_payload_money_as_text():
    assert price_type_ref(pd.DataFrame([{"Ref_Key": "r", "Description": "Розничная"}]), "Розничная") == "r"
    row = desired_products(ITEMS, PRICES, CRM, price_type="whole").iloc[0].to_dict()
    assert crm_payload(row) == {"NAME": "Кабель", "CURRENCY_ID": "RUB", "ACTIVE": "Y", "XML_ID": "a", "PRICE": "9.00"}


def test_same_as_crm_compares_money_exactly():
    row = {"NAME": "Старый", "PRICE": Decimal("1.00"), "CURRENCY_ID": "RUB", "ACTIVE": "Y"}
    assert same_as_crm(row, CRM.iloc[0].to_dict())
    assert not same_as_crm({**row, "ACTIVE": "N"}, CRM.iloc[0].to_dict())
    assert not same_as_crm(row, None)
