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
INVOICE_FIELDS = [
    "title",
    "accountNumber",
    "companyId",
    "parentId2",
    "opportunity",
    "currencyId",
    "stageId",
    "begindate",
    "paid",
]
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
    """Invoice (or order) ref -> (Σ Сумма asked, Σ СуммаОплаты + СуммаАванса paid) over active movements.
    The plan sums them in SQL by the same rule (defs/invoice_sync/reads.payment_totals)."""
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    if invoice_payments.empty:
        return totals
    for row in invoice_payments.to_dict("records"):
        if row.get("Active") is False:
            continue
        sign = Decimal(-1) if row.get("RecordType") == "Expense" else Decimal(1)
        asked, paid = totals.get(str(row["СчетНаОплату"]), (ZERO, ZERO))
        totals[str(row["СчетНаОплату"])] = (
            asked + sign * _money(row.get("Сумма")),
            paid + sign * (_money(row.get("СуммаОплаты")) + _money(row.get("СуммаАванса"))),
        )
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


def invoice_category(categories: list[dict], name: str | None = None) -> int:
    """The smart-invoice pipeline to use, from `crm.category.list {entityTypeId: 31}`: the one named in settings,
    else the portal's default (`isDefault` Y). Its id differs per portal (docs show 5, 13 ...)."""
    if not categories:
        raise ValueError("the portal lists no smart-invoice pipeline (crm.category.list entityTypeId 31)")
    if name:
        named = [c for c in categories if str(c.get("name") or "").strip() == name.strip()]
        if not named:
            raise ValueError(
                f"no smart-invoice pipeline named {name!r}; the portal has "
                f"{sorted(str(c.get('name')) for c in categories)} (settings deal_orders.toml [invoices])"
            )
        return int(named[0]["id"])
    default = [c for c in categories if str(c.get("isDefault") or "").upper() in ("Y", "TRUE", "1")]
    return int((default or categories)[0]["id"])


def stage_list_entity(category_id: int) -> str:
    """`crm.status.list` ENTITY_ID of a smart-invoice pipeline's stages."""
    return f"SMART_INVOICE_STAGE_{int(category_id)}"


def stage_ids(statuses: list[dict], unpaid: str, partly: str) -> dict[str, str]:
    """Payment state -> STATUS_ID (`DT31_<category>:<code>`) in one pipeline's stages (crm.status.list).

    Paid is the pipeline's success stage (SEMANTICS "S"), whatever its code; unpaid and partly paid are the
    in-progress stages with the configured codes."""
    success = [str(s["STATUS_ID"]) for s in statuses if s.get("SEMANTICS") == "S"]
    if len(success) != 1:
        raise ValueError(
            f"the smart-invoice pipeline has {len(success)} success stages (SEMANTICS S), expected one: "
            f"{sorted(str(s['STATUS_ID']) for s in statuses)}"
        )
    in_progress = {
        str(s["STATUS_ID"]).split(":")[-1]: str(s["STATUS_ID"])
        for s in statuses
        if s.get("SEMANTICS") in (None, "", "P")
    }
    missing = [code for code in (unpaid, partly) if code not in in_progress]
    if missing:
        raise ValueError(
            f"smart-invoice stages {missing} are not in-progress stages of the pipeline "
            f"{sorted(in_progress)} (settings deal_orders.toml [invoices])"
        )
    return {UNPAID: in_progress[unpaid], PARTLY_PAID: in_progress[partly], PAID: success[0]}


PAID_FIELD_PREFIX = "UF_CRM_SMART_INVOICE_"  # userfieldconfig fieldName for entityId CRM_SMART_INVOICE


def check_paid_field(name: str | None) -> str | None:
    """The paid-amount user field's name as userfieldconfig wants it (`UF_CRM_SMART_INVOICE_...`, A-Z0-9_)."""
    if not name:
        return None
    if not re.fullmatch(r"UF_CRM_SMART_INVOICE_[A-Z0-9_]{1,29}", name):
        raise ValueError(
            f"paid_amount_field {name!r} must be a smart-invoice user field name "
            f"{PAID_FIELD_PREFIX}<A-Z0-9_>, at most 50 characters (settings deal_orders.toml [invoices])"
        )
    return name


def readback_mismatches(sent: dict[str, dict], stored: dict[str, dict]) -> dict[str, str]:
    """key -> what the portal kept differently from what we wrote (crm.item.update ignores unknown fields
    without an error, so only a read-back tells a lost value). `sent`/`stored`: key -> field -> value."""
    out = {}
    for key, fields in sent.items():
        kept = stored.get(key)
        if kept is None:
            out[key] = "not found when read back"
            continue
        for name, value in fields.items():
            got = kept.get(name)
            if name in ("opportunity",) or name.startswith("UF_"):
                same = got not in (None, "") and _money(got) == _money(value)
            else:
                same = str(got) == str(value)
            if not same:
                out[key] = f"{name}: wrote {value!r}, the portal kept {got!r}"
                break
    return out


def desired_invoices(
    invoices: pd.DataFrame,
    totals: dict[str, tuple[Decimal, Decimal]],
    clients: pd.DataFrame,
    orders: pd.DataFrame,
    stages: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(desired, rejects): one row per posted 1C invoice with its CRM fields; rejects name invoice and reason.
    `totals`: payment_totals of the invoice payments register (the plan sums it in SQL); changed in place."""
    company_of = {}
    if not clients.empty:
        linked = clients[clients["onec_ref"].notna() & clients["company_id"].notna()]
        company_of = {str(r): int(c) for r, c in zip(linked["onec_ref"], linked["company_id"])}
    deal_of = {}
    if not orders.empty and "Комментарий" in orders:
        deal_of = {str(r): d for r, c in zip(orders["Ref_Key"], orders["Комментарий"]) if (d := deal_of_order(c))}
    attribute_order_payments(totals, invoices)
    rows, rejects = [], []
    for inv in invoices.to_dict("records") if not invoices.empty else []:
        if not inv.get("Posted") or inv.get("DeletionMark"):
            continue
        ref = str(inv["Ref_Key"])
        company = company_of.get(str(inv.get("Контрагент_Key")))
        if company is None:
            rejects.append(
                {
                    "key": ref,
                    "reason": f"invoice {inv.get('Number')} ({ref}): counterparty "
                    f"{inv.get('Контрагент_Key')} has no CRM company",
                }
            )
            continue
        amount = _money(inv.get("СуммаДокумента"))
        asked, paid = totals.get(ref, (amount, ZERO))
        state = payment_state(asked if asked > 0 else amount, paid)
        date = inv.get("Date")
        rows.append(
            {
                "key": ref,
                "xmlId": ref,
                "title": f"Счёт 1С № {inv.get('Number')}",
                "accountNumber": str(inv.get("Number") or ""),
                "companyId": company,
                "parentId2": deal_of.get(str(inv.get("ДокументОснование"))),
                "opportunity": amount,
                "currencyId": "RUB",
                "stageId": stages[state],
                "payment_state": state,
                "begindate": (
                    pd.Timestamp(date).strftime("%Y-%m-%d") if date is not None and not pd.isna(date) else None
                ),
                "paid": min(paid, amount) if paid > 0 else ZERO,
            }
        )
    return (
        pd.DataFrame(rows, columns=["key", "xmlId", *INVOICE_FIELDS, "payment_state"]),
        pd.DataFrame(rejects, columns=["key", "reason"]),
    )


def crm_fields(after: dict, paid_field: str | None) -> dict:
    """crm.item fields for a planned invoice (its `after` payload); money as text, exact."""
    fields = {
        k: after[k]
        for k in ("title", "accountNumber", "companyId", "opportunity", "currencyId", "stageId", "begindate")
        if after.get(k) is not None
    }
    if after.get("parentId2") is not None:
        fields["parentId2"] = after["parentId2"]
    if paid_field:
        fields[paid_field] = after.get("paid") or "0.00"
    return fields
