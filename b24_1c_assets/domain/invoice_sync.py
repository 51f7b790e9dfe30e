"""Invoices and payments, 1C -> CRM smart invoices (crm.item, entityTypeId 31). Pure, no I/O.

A posted, unmarked `Document_СчетНаОплату` becomes one smart invoice keyed by `xmlId` = its Ref_Key, linked
to the client's company and, when its order was made from a deal (marker `b24-1c:deal:<ID>` in the order's
Комментарий), to that deal (`parentId2`). Its stage follows ОплатаСчетовИЗаказов: paid when
СуммаОплаты + СуммаАванса >= Сумма, partly paid when something was paid, else unpaid. 1C owns all of this
(push_only): the CRM side is never read back into 1C.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pandas as pd

FLOW = "invoices_to_crm"
ENTITY_TYPE_ID = 31
DEAL_MARKER = re.compile(r"b24-1c:deal:(\d+)")
INVOICE_FIELDS = ["title", "accountNumber", "companyId", "parentId2", "opportunity", "currencyId", "stageId",
                  "begindate", "paid"]
UNPAID, PARTLY_PAID, PAID = "unpaid", "partly_paid", "paid"
ZERO = Decimal("0.00")


def _money(value) -> Decimal:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ZERO
    return Decimal(str(value)).quantize(Decimal("0.01"))


def deal_of_order(comment) -> int | None:
    """The CRM deal ID an order was made from (our marker in its Комментарий), else None."""
    found = DEAL_MARKER.search(comment) if isinstance(comment, str) else None
    return int(found.group(1)) if found else None


def payment_totals(invoice_payments: pd.DataFrame) -> dict[str, tuple[Decimal, Decimal]]:
    """Invoice (or order) ref -> (Σ Сумма asked, Σ СуммаОплаты + СуммаАванса paid) over active movements."""
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    if invoice_payments.empty:
        return totals
    for row in invoice_payments.to_dict("records"):
        if row.get("Active") is False:
            continue
        sign = Decimal(-1) if row.get("RecordType") == "Expense" else Decimal(1)
        asked, paid = totals.get(str(row["СчетНаОплату"]), (ZERO, ZERO))
        totals[str(row["СчетНаОплату"])] = (asked + sign * _money(row.get("Сумма")),
                                            paid + sign * (_money(row.get("СуммаОплаты")) + _money(row.get("СуммаАванса"))))
    return totals


def attribute_order_payments(totals: dict[str, tuple[Decimal, Decimal]], invoices: pd.DataFrame) -> None:
    """Money paid against an order that asks nothing itself (its invoices do) goes to that order's invoices,
    oldest first, each up to what it still asks; the last invoice takes any rest. Changes `totals` in place."""
    if invoices.empty or "ДокументОснование" not in invoices:
        return
    posted = invoices[invoices["Posted"].fillna(False).astype(bool)].sort_values(["Date", "Number"])
    by_order: dict[str, list[str]] = {}
    for ref, order in zip(posted["Ref_Key"], posted["ДокументОснование"]):
        if isinstance(order, str) and order:
            by_order.setdefault(order, []).append(str(ref))
    amounts = dict(zip(posted["Ref_Key"].astype(str), posted["СуммаДокумента"].map(_money)))
    for order, refs in by_order.items():
        asked, paid = totals.get(order, (ZERO, ZERO))
        if asked > 0 or paid <= 0:
            continue
        for i, ref in enumerate(refs):
            inv_asked, inv_paid = totals.get(ref, (amounts[ref], ZERO))
            share = paid if i == len(refs) - 1 else min(paid, max(inv_asked - inv_paid, ZERO))
            totals[ref] = (inv_asked, inv_paid + share)
            paid -= share


def payment_state(amount: Decimal, paid: Decimal) -> str:
    if amount > 0 and paid >= amount:
        return PAID
    return PARTLY_PAID if paid > 0 else UNPAID


def stage_ids(statuses: list[dict], unpaid: str, partly: str, paid: str) -> dict[str, str]:
    """Payment state -> smart-invoice STATUS_ID from crm.status.list (ENTITY_ID SMART_INVOICE_STAGE_<n>)."""
    by_suffix = {str(s["STATUS_ID"]).split(":")[-1]: str(s["STATUS_ID"]) for s in statuses}
    wanted = {UNPAID: unpaid, PARTLY_PAID: partly, PAID: paid}
    missing = [v for v in wanted.values() if v not in by_suffix]
    if missing:
        raise ValueError(f"smart-invoice stages {missing} are not in the portal's list "
                         f"{sorted(by_suffix)} (settings deal_orders.toml [invoices])")
    return {state: by_suffix[suffix] for state, suffix in wanted.items()}


def desired_invoices(invoices: pd.DataFrame, invoice_payments: pd.DataFrame, clients: pd.DataFrame,
                     orders: pd.DataFrame, stages: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(desired, rejects): one row per posted 1C invoice with its CRM fields; rejects name invoice and reason."""
    company_of = {}
    if not clients.empty:
        linked = clients[clients["onec_ref"].notna() & clients["company_id"].notna()]
        company_of = {str(r): int(c) for r, c in zip(linked["onec_ref"], linked["company_id"])}
    deal_of = {}
    if not orders.empty and "Комментарий" in orders:
        deal_of = {str(r): d for r, c in zip(orders["Ref_Key"], orders["Комментарий"]) if (d := deal_of_order(c))}
    totals = payment_totals(invoice_payments)
    attribute_order_payments(totals, invoices)
    rows, rejects = [], []
    for inv in (invoices.to_dict("records") if not invoices.empty else []):
        if not inv.get("Posted") or inv.get("DeletionMark"):
            continue
        ref = str(inv["Ref_Key"])
        company = company_of.get(str(inv.get("Контрагент_Key")))
        if company is None:
            rejects.append({"key": ref, "reason": f"invoice {inv.get('Number')} ({ref}): counterparty "
                                                  f"{inv.get('Контрагент_Key')} has no CRM company"})
            continue
        amount = _money(inv.get("СуммаДокумента"))
        asked, paid = totals.get(ref, (amount, ZERO))
        state = payment_state(asked if asked > 0 else amount, paid)
        date = inv.get("Date")
        rows.append({"key": ref, "xmlId": ref, "title": f"Счёт 1С № {inv.get('Number')}",
                     "accountNumber": str(inv.get("Number") or ""), "companyId": company,
                     "parentId2": deal_of.get(str(inv.get("ДокументОснование"))), "opportunity": amount,
                     "currencyId": "RUB", "stageId": stages[state], "payment_state": state,
                     "begindate": pd.Timestamp(date).strftime("%Y-%m-%d") if date is not None and not pd.isna(date) else None,
                     "paid": min(paid, amount) if paid > 0 else ZERO})
    return (pd.DataFrame(rows, columns=["key", "xmlId", *INVOICE_FIELDS, "payment_state"]),
            pd.DataFrame(rejects, columns=["key", "reason"]))


def crm_fields(after: dict, paid_field: str | None) -> dict:
    """crm.item fields for a planned invoice (its `after` payload); money as text, exact."""
    fields = {k: after[k] for k in ("title", "accountNumber", "companyId", "opportunity", "currencyId", "stageId",
                                    "begindate") if after.get(k) is not None}
    if after.get("parentId2") is not None:
        fields["parentId2"] = after["parentId2"]
    if paid_field:
        fields[paid_field] = after.get("paid") or "0.00"
    return fields
