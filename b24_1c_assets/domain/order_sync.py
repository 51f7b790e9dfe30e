"""Deals -> 1C customer orders (Document_ЗаказПокупателя): what each deal at an order stage asks of 1C.

Pure, no I/O. A deal in a configured stage of its pipeline becomes one order for its company's 1C twin
(client_master.clients) under the client's contract (UNF's own rule: the default one, else the only valid
one; a default that is no longer valid rejects the deal rather than guess),
with a `Запасы` row per deal product row mapped to the 1C item (CRM product XML_ID = item Ref_Key). The
order carries the marker `b24-1c:deal:<ID>` in Комментарий, so it is found again before any POST.

Operations of the plan: `create` (no order yet), `link` (an order with the marker exists and matches:
only the deal's user fields and the baseline are written), `update` (the order exists, is not shipped,
and the deal changed), `conflict` (the deal changed after its order was shipped: reported, not
written), `rejected` (no 1C twin, no contract, a product with no 1C item, no rows), `noop`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pandas as pd

from b24_1c_assets.domain.push_plan import Operation, plan_updates

FLOW = "deals_to_onec_orders"
ORDER_FIELDS = ["counterparty", "contract", "amount", "rows"]
CENT = Decimal("0.01")
MARKER = re.compile(r"b24-1c:deal:(\d+)")
ITEM_TYPE = "StandardODATA.Catalog_Номенклатура"
UNIT_TYPE = "StandardODATA.Catalog_КлассификаторЕдиницИзмерения"
SALE = "ЗаказНаПродажу"  # ВидОперации of an order for sale (Enums/ВидыОперацийЗаказПокупателя)
SALES_CONTRACT_KINDS = (None, "", "СПокупателем")
HUNDRED = Decimal(100)


def marker(deal_id) -> str:
    """The text an order made from deal `deal_id` carries in Комментарий (unique per deal)."""
    return f"b24-1c:deal:{int(deal_id)}"


def deal_of_comment(comment) -> int | None:
    """The deal ID in an order's Комментарий marker, else None."""
    found = MARKER.search(comment) if isinstance(comment, str) else None
    return int(found.group(1)) if found else None


def _flag(value) -> bool:
    return bool(value) and not (isinstance(value, float) and pd.isna(value))


def _money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def order_stages(stages: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Pipeline (CATEGORY_ID as text) -> STAGE_IDs that make a deal an order (deal_orders.toml [orders.stages])."""
    return {str(k): set(v) for k, v in stages.items()}


def deals_at_order_stage(deals: pd.DataFrame, stages: dict[str, set[str]]) -> pd.DataFrame:
    """The deals in one of their pipeline's order stages (no pipeline is pipeline "0"). The plan filters in SQL
    by the same rule (defs/order_sync/reads.deals_for_orders); this is the rule over a frame."""
    if deals.empty:
        return deals
    keep = [
        str(s) in stages.get(str(c if c not in (None, "") else "0"), set())
        for c, s in zip(deals["CATEGORY_ID"], deals["STAGE_ID"])
    ]
    return deals[keep]


def default_contracts(counterparties: pd.DataFrame) -> dict[str, list[str]]:
    """Counterparty -> its default sales contract(s) as 1C records them: `default_contracts` (read from
    3.0's ОсновныеДоговорыКонтрагента, or 1.6's ДоговорПоУмолчанию, by the client), else the
    `ДоговорПоУмолчанию_Key` column itself (the exchange folder)."""
    out: dict[str, list[str]] = {}
    if counterparties.empty:
        return out
    listed = (
        counterparties["default_contracts"] if "default_contracts" in counterparties else [None] * len(counterparties)
    )
    plain = (
        counterparties["ДоговорПоУмолчанию_Key"]
        if "ДоговорПоУмолчанию_Key" in counterparties
        else [None] * len(counterparties)
    )
    for ref, cell, default in zip(counterparties["Ref_Key"].astype(str), listed, plain):
        entries = json.loads(cell) if isinstance(cell, str) else cell
        if isinstance(entries, list):
            out[ref] = [
                str(e["Договор_Key"])
                for e in entries
                if e.get("Договор_Key") and e.get("ВидДоговора") in SALES_CONTRACT_KINDS
            ]
        elif isinstance(default, str) and default:
            out[ref] = [default]
    return out


def contracts_by_owner(contracts: pd.DataFrame) -> dict[str, list[dict]]:
    """Counterparty ref -> its contracts (records), grouped once: a filter of the whole table per deal made
    the plan quadratic (the ×16 growth of the order push from 10k to 100k clients)."""
    if contracts.empty:
        return {}
    grouped: dict[str, list[dict]] = {}
    for rec in contracts.to_dict("records"):
        grouped.setdefault(str(rec["Owner_Key"]), []).append(rec)
    return grouped


def client_contract(
    contracts: Mapping[str, list[dict]], counterparty: str, defaults: list[str] | str | None
) -> tuple[dict | None, str | None]:
    """(contract, None) an order goes under, or (None, why not). UNF's rule (Catalogs/ДоговорыКонтрагентов
    ManagerModule, ПоКонтрагентуПоОрганизации): the default contract, else the only one; a default that is
    deleted, invalid or not a sales contract is reported, never replaced by a guess."""
    defaults = [defaults] if isinstance(defaults, str) else list(defaults or [])
    own = contracts.get(counterparty, [])
    valid = [
        c
        for c in own
        if not _flag(c.get("DeletionMark"))
        and not _flag(c.get("Недействителен"))
        and c.get("ВидДоговора") in SALES_CONTRACT_KINDS
    ]
    if defaults:
        chosen = [c for c in valid if c["Ref_Key"] in defaults]
        if chosen:
            return chosen[0], None
        return None, f"its default contract {defaults[0]} in 1C is deleted, invalid or not a sales contract"
    if len(valid) == 1:
        return valid[0], None
    if not valid:
        return None, f"1C counterparty {counterparty} has no valid sales contract"
    return None, f"1C counterparty {counterparty} has {len(valid)} valid sales contracts and no default one"


def desired_orders(
    deals: pd.DataFrame,
    product_rows: dict[str, list[dict]],
    clients: pd.DataFrame,
    counterparties: pd.DataFrame,
    contracts: pd.DataFrame,
    items: pd.DataFrame,
    products: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(desired, rejects) for deals already at an order stage. desired: key (deal ID), counterparty, contract,
    amount, rows (JSON: [[item_ref, quantity, price, unit_ref], ...]), contract header parts."""
    twin = {}
    if not clients.empty:
        linked = clients[clients["onec_ref"].notna() & clients["company_id"].notna()]
        for company, ref in zip(linked["company_id"], linked["onec_ref"]):
            twin.setdefault(str(int(company)), str(ref))
    default_contract = default_contracts(counterparties)
    own_contracts = contracts_by_owner(contracts)
    item_of_product = {}
    if not products.empty:
        item_of_product = {str(p): x for p, x in zip(products["ID"], products["XML_ID"]) if isinstance(x, str) and x}
    live_items = {}
    if not items.empty:
        for rec in items.to_dict("records"):
            if not _flag(rec.get("DeletionMark")):
                live_items[str(rec["Ref_Key"])] = rec.get("ЕдиницаИзмерения_Key")
    rows, rejects = [], []
    for deal in deals.to_dict("records"):
        deal_id = str(deal["ID"])

        def reject(reason: str, deal_id: str = deal_id, deal: dict = deal) -> None:
            rejects.append({"key": deal_id, "reason": f"deal {deal_id} ({deal.get('TITLE')}): {reason}"})

        company = str(deal.get("COMPANY_ID") or "0")
        counterparty = twin.get(company)
        if company in ("0", "", "None"):
            reject("has no company")
            continue
        if counterparty is None:
            reject(f"company {company} has no 1C counterparty")
            continue
        contract, why = client_contract(own_contracts, counterparty, default_contract.get(counterparty))
        if contract is None:
            reject(str(why))
            continue
        lines, bad = [], []
        for row in product_rows.get(deal_id, []):
            item = item_of_product.get(str(row.get("PRODUCT_ID")))
            if item is None or item not in live_items:
                bad.append(str(row.get("PRODUCT_NAME") or row.get("PRODUCT_ID")))
                continue
            quantity = Decimal(str(row.get("QUANTITY") or 0)).normalize()
            price = _money(row.get("PRICE"))
            lines.append([item, format(quantity, "f"), format(price, "f"), live_items[item]])
        if bad:
            reject(f"products with no 1C item: {', '.join(bad[:5])}")
            continue
        if not lines:
            reject("has no product rows")
            continue
        amount = sum((Decimal(q) * Decimal(p) for _, q, p, _ in lines), Decimal(0)).quantize(CENT)
        rows.append(
            {
                "key": deal_id,
                "counterparty": counterparty,
                "contract": str(contract["Ref_Key"]),
                "amount": amount,
                "rows": json.dumps(lines, ensure_ascii=False),
                "organization": contract.get("Организация_Key"),
                "price_type": contract.get("ВидЦен_Key"),
                "currency": contract.get("ВалютаРасчетов_Key"),
                "uf_number": deal.get("uf_number"),
                "uf_ref": deal.get("uf_ref"),
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(rejects, columns=["key", "reason"])


def shipped_orders(shipments: pd.DataFrame) -> set[str]:
    """Orders a posted shipment names, in its header `Заказ` or in any row's `Запасы.Заказ` (UNF lets a
    shipment carry the order per row: Documents/РасходнаяНакладная, TabularSection Запасы, Attribute Заказ).
    The plan reads them in SQL by the same rule (defs/order_sync/reads.shipped_orders)."""
    if shipments.empty:
        return set()
    posted = shipments[shipments["Posted"].fillna(False).astype(bool)]
    shipped = {str(r) for r in posted["Заказ"] if isinstance(r, str) and r} if "Заказ" in posted else set()
    for cell in posted["Запасы"] if "Запасы" in posted else ():
        rows = json.loads(cell) if isinstance(cell, str) else (cell if isinstance(cell, list) else [])
        shipped.update(
            str(r["Заказ"]) for r in rows if isinstance(r, dict) and isinstance(r.get("Заказ"), str) and r["Заказ"]
        )
    return shipped


def existing_orders(orders: pd.DataFrame, shipped: set[str]) -> dict[str, dict]:
    """Deal ID -> its order in 1C (ref, number, posted, amount, shipped), found by our marker. `shipped`: refs
    of the orders a posted shipment names (shipped_orders; the plan reads them with SQL)."""
    found = {}
    for rec in orders.to_dict("records") if not orders.empty else []:
        deal = deal_of_comment(rec.get("Комментарий"))
        if deal is None or _flag(rec.get("DeletionMark")):
            continue
        found[str(deal)] = {
            "ref": str(rec["Ref_Key"]),
            "number": rec.get("Number"),
            "posted": _flag(rec.get("Posted")),
            "amount": _money(rec.get("СуммаДокумента")),
            "shipped": str(rec["Ref_Key"]) in shipped,
        }
    return found


def plan_orders(
    desired: pd.DataFrame, rejects: pd.DataFrame, existing: dict[str, dict], last_pushed: pd.DataFrame, failed: set
) -> pd.DataFrame:
    """The order plan: plan_updates' rows with operation create / link / update / conflict / noop, and
    rejected deals; plus the order already in 1C (order_ref, order_number) and the deal's current UF values."""
    if desired.empty:
        plan = pd.DataFrame(columns=["key", "operation", "reason", "changed_fields", "before", "after", "payload_hash"])
    else:
        plan = plan_updates(desired, last_pushed, failed, ORDER_FIELDS)
        extra = desired.set_index("key")
        for column in ("organization", "price_type", "currency", "uf_number", "uf_ref"):
            plan[column] = plan["key"].map(extra[column])
    refs, numbers, ops = [], [], []
    amounts = dict(zip(desired["key"], desired["amount"])) if not desired.empty else {}
    for key, op, reason in zip(plan["key"], plan["operation"], plan["reason"]):
        order = existing.get(key)
        refs.append(order["ref"] if order else None)
        numbers.append(order["number"] if order else None)
        if op != Operation.UPDATE:
            ops.append(op)
        elif order is None:
            ops.append(Operation.CREATE)
        elif order["shipped"]:
            ops.append(Operation.CONFLICT)
        elif reason == "never pushed" and order["amount"] == amounts[key] and order["posted"]:
            ops.append(Operation.LINK)  # made by an earlier run that crashed before its journal
        # (an unposted one died between its POST and Post: rewritten and posted as an update)
        else:
            ops.append(Operation.UPDATE)
    plan["operation"], plan["order_ref"], plan["order_number"] = ops, refs, numbers
    if not rejects.empty:
        plan = pd.concat([plan, rejects.assign(operation=Operation.REJECTED)], ignore_index=True)
    return plan


def item_vat_rates(items: pd.DataFrame, rates: list[dict]) -> dict[str, tuple[str, Decimal]]:
    """Item -> (Catalog_СтавкиНДС ref, percent) its order rows carry. UNF 1.6: the item's own СтавкаНДС;
    3.0: the rate of the item's kind (ВидСтавкиНДС), as Справочники.СтавкиНДС.СтавкаНДС picks it: for
    «Общая» the current general rate (the highest of that kind, 20% over the old 18%), else the first of
    the kind, and «Без НДС» by name when no rate carries that kind."""
    live = [r for r in rates if not _flag(r.get("DeletionMark")) and not _flag(r.get("Расчетная"))]
    by_ref = {str(r["Ref_Key"]): r for r in rates}
    by_kind: dict[str, dict] = {}
    for r in sorted(live, key=lambda r: (-Decimal(str(r.get("Ставка") or 0)), str(r.get("Code") or ""))):
        if r.get("ВидСтавкиНДС"):
            by_kind.setdefault(r["ВидСтавкиНДС"], r)
    no_vat = next((r for r in live if str(r.get("Description") or "").strip().lower() == "без ндс"), None)
    if no_vat is not None:
        by_kind.setdefault("БезНДС", no_vat)
    out = {}
    for rec in items.to_dict("records") if not items.empty else []:
        rate = by_ref.get(str(rec.get("СтавкаНДС_Key"))) if rec.get("СтавкаНДС_Key") else None
        if rate is None and isinstance(rec.get("ВидСтавкиНДС"), str):
            rate = by_kind.get(rec["ВидСтавкиНДС"])
        if rate is not None:
            out[str(rec["Ref_Key"])] = (str(rate["Ref_Key"]), Decimal(str(rate.get("Ставка") or 0)))
    return out


def stock_rows(
    rows_json: str,
    reserve_unit: str | None,
    vat: dict[str, tuple[str, Decimal]] | None = None,
    *,
    amounts_include_vat: bool = True,
) -> list[dict]:
    """`Запасы` rows of the order (LineNumber is added by the client), with each item's VAT rate: UNF's fill
    check at Post refuses a row without СтавкаНДС. An item with no known rate raises ValueError naming it."""
    out = []
    for item, quantity, price, unit in json.loads(rows_json):
        q, p = Decimal(quantity), Decimal(price)
        amount = (q * p).quantize(CENT)
        row = {
            "Номенклатура": item,
            "Номенклатура_Type": ITEM_TYPE,
            "Количество": q,
            "Цена": p,
            "Сумма": amount,
            "Всего": amount,
        }
        if vat is not None:
            if item not in vat:
                raise ValueError(f"1C item {item} has no VAT rate (ВидСтавкиНДС / СтавкаНДС) to fill the order row")
            rate_ref, percent = vat[item]
            tax = amount * percent / (HUNDRED + percent) if amounts_include_vat else amount * percent / HUNDRED
            tax = tax.quantize(CENT)
            row.update(
                {"СтавкаНДС_Key": rate_ref, "СуммаНДС": tax, "Всего": amount if amounts_include_vat else amount + tax}
            )
        if unit:
            row.update({"ЕдиницаИзмерения": unit, "ЕдиницаИзмерения_Type": UNIT_TYPE})
        if reserve_unit:
            row["СтруктурнаяЕдиницаРезерв_Key"] = reserve_unit
        out.append(row)
    return out


def order_header(plan_row: dict, after: dict, defaults: dict) -> dict:
    """Header of the order: settings first, then the contract's organization / price type / currency; an
    order for sale (ВидОперации)."""
    header = {k: v for k, v in defaults.items() if v is not None and v != ""}
    header.setdefault("ВидОперации", SALE)
    from_contract = {
        "Организация_Key": plan_row.get("organization"),
        "ВидЦен_Key": plan_row.get("price_type"),
        "ВалютаДокумента_Key": plan_row.get("currency"),
    }
    for name, value in from_contract.items():
        if not header.get(name) and isinstance(value, str) and value:
            header[name] = value
    header.update(
        {
            "Контрагент_Key": after["counterparty"],
            "Договор_Key": after["contract"],
            "СуммаДокумента": Decimal(str(after["amount"])),
        }
    )
    return header
