"""Catalog, 1C -> CRM: which CRM products (crm.product) the 1C items and prices ask for. Pure, no I/O.

1C owns the catalog: name, price and activity of a product keyed by XML_ID = the 1C item Ref_Key are
copied from 1C. Items deleted, marked for deletion or invalid in 1C are deactivated (`ACTIVE = "N"`),
never deleted; an item that is already gone from 1C and was never a CRM product is not created.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

FLOW = "catalog_to_crm"
PRODUCT_FIELDS = ["NAME", "PRICE", "CURRENCY_ID", "ACTIVE"]
DESIRED_COLUMNS = ["key", "XML_ID", *PRODUCT_FIELDS, "product_id"]


def _truthy(value) -> bool:
    return (
        bool(value) and not (isinstance(value, float) and pd.isna(value)) and str(value).lower() not in ("false", "0")
    )


def money(value) -> Decimal | None:
    """A price as Decimal with two places (None when absent)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    return Decimal(str(value)).quantize(Decimal("0.01"))


def price_type_ref(price_types: pd.DataFrame, name: str) -> str | None:
    """Ref_Key of the price type called `name` (1C's Description), else None."""
    if price_types.empty:
        return None
    found = price_types[price_types["Description"].astype(str).str.strip() == name.strip()]
    return str(found["Ref_Key"].iloc[0]) if not found.empty else None


def desired_products(
    items: pd.DataFrame,
    prices: pd.DataFrame,
    crm_products: pd.DataFrame,
    *,
    price_type: str | None,
    currency: str = "RUB",
) -> pd.DataFrame:
    """One row per 1C item that should be a CRM product: key (= XML_ID), fields, product_id when known.

    items: onec.items (Ref_Key, Description, DeletionMark, optional IsFolder/Недействителен);
    prices: onec.prices (Номенклатура_Key, ВидЦен_Key, Цена), the current slice;
    crm_products: bitrix24.products (ID, XML_ID).
    """
    by_xml = {}
    if not crm_products.empty and "XML_ID" in crm_products:
        for pid, xml in zip(crm_products["ID"], crm_products["XML_ID"]):
            if isinstance(xml, str) and xml:
                by_xml.setdefault(xml, str(pid))
    price_of: dict[str, Decimal] = {}
    if not prices.empty:
        chosen = prices if price_type is None else prices[prices["ВидЦен_Key"] == price_type]
        for item, price in zip(chosen["Номенклатура_Key"], chosen["Цена"]):
            price_of[str(item)] = money(price)
    rows = []
    for item in items.to_dict("records"):
        if _truthy(item.get("IsFolder")):
            continue  # groups are not products
        ref = str(item["Ref_Key"])
        inactive = _truthy(item.get("DeletionMark")) or _truthy(item.get("Недействителен"))
        if inactive and ref not in by_xml:
            continue  # never create a product only to switch it off
        rows.append(
            {
                "key": ref,
                "XML_ID": ref,
                "NAME": str(item.get("Description") or "").strip(),
                "PRICE": price_of.get(ref),
                "CURRENCY_ID": currency,
                "ACTIVE": "N" if inactive else "Y",
                "product_id": by_xml.get(ref),
            }
        )
    return pd.DataFrame(rows, columns=DESIRED_COLUMNS)


def crm_payload(row: dict) -> dict:
    """crm.product fields for one desired row (PRICE as text: exact money on the wire)."""
    fields = {"NAME": row["NAME"], "CURRENCY_ID": row["CURRENCY_ID"], "ACTIVE": row["ACTIVE"], "XML_ID": row["XML_ID"]}
    if row.get("PRICE") is not None:
        fields["PRICE"] = f"{row['PRICE']:.2f}"
    return fields


def same_as_crm(row: dict, crm: dict | None) -> bool:
    """True when the CRM product already shows the desired values (nothing to write)."""
    if not crm:
        return False
    price = money(crm.get("PRICE"))
    return (
        str(crm.get("NAME") or "").strip() == row["NAME"]
        and price == row.get("PRICE")
        and str(crm.get("CURRENCY_ID") or "") == row["CURRENCY_ID"]
        and str(crm.get("ACTIVE") or "Y") == row["ACTIVE"]
    )
