"""Pure rules of the invoice push: payment state, links, rejections."""

from decimal import Decimal

import pandas as pd
import pytest

from b24_1c_assets.domain.invoice_sync import (PAID, PARTLY_PAID, UNPAID, crm_fields, deal_of_order, desired_invoices,
                                               payment_state, stage_ids)

STAGES = {UNPAID: "DT31_1:N", PARTLY_PAID: "DT31_1:S", PAID: "DT31_1:P"}


def test_payment_state_paid_when_payment_plus_advance_cover_the_sum():
    assert payment_state(Decimal("100"), Decimal("100")) == PAID
    assert payment_state(Decimal("100"), Decimal("40")) == PARTLY_PAID
    assert payment_state(Decimal("100"), Decimal("0")) == UNPAID


def test_stage_ids_come_from_the_portal_and_a_missing_stage_is_a_clear_error():
    statuses = [{"STATUS_ID": f"DT31_1:{s}"} for s in ("N", "S", "P", "D")]
    assert stage_ids(statuses, "N", "S", "P") == STAGES
    with pytest.raises(ValueError, match="X"):
        stage_ids(statuses, "N", "S", "X")


def test_desired_invoices_links_company_and_deal_and_rejects_unknown_clients():
    invoices = pd.DataFrame([
        {"Ref_Key": "i1", "Number": "1", "Date": pd.Timestamp("2026-05-01"), "Posted": True, "DeletionMark": False,
         "Контрагент_Key": "cp1", "СуммаДокумента": Decimal("100"), "ДокументОснование": "o1"},
        {"Ref_Key": "i2", "Number": "2", "Date": pd.Timestamp("2026-05-02"), "Posted": True, "DeletionMark": False,
         "Контрагент_Key": "cp9", "СуммаДокумента": Decimal("5"), "ДокументОснование": None},
        {"Ref_Key": "i3", "Number": "3", "Date": None, "Posted": False, "DeletionMark": False,
         "Контрагент_Key": "cp1", "СуммаДокумента": Decimal("5"), "ДокументОснование": None},
    ])
    payments = pd.DataFrame([
        {"СчетНаОплату": "i1", "Сумма": Decimal("100"), "СуммаОплаты": Decimal("0"), "СуммаАванса": Decimal("0")},
        {"СчетНаОплату": "i1", "Сумма": Decimal("0"), "СуммаОплаты": Decimal("30"), "СуммаАванса": Decimal("70")},
    ])
    clients = pd.DataFrame([{"onec_ref": "cp1", "company_id": 5}])
    orders = pd.DataFrame([{"Ref_Key": "o1", "Комментарий": "b24-1c:deal:42"}])
    desired, rejects = desired_invoices(invoices, payments, clients, orders, STAGES)
    assert list(desired["key"]) == ["i1"]
    row = desired.iloc[0].to_dict()
    assert (row["companyId"], row["parentId2"], row["stageId"], row["paid"]) == (5, 42, "DT31_1:P", Decimal("100.00"))
    assert list(rejects["key"]) == ["i2"] and "invoice 2" in rejects["reason"].iloc[0]
    fields = crm_fields({**row, "opportunity": "100.00", "paid": "100.00"}, "ufCrmSmartInvoiceOnecPaid")
    assert fields["parentId2"] == 42 and fields["ufCrmSmartInvoiceOnecPaid"] == "100.00"
    assert deal_of_order("заметка b24-1c:deal:7") == 7 and deal_of_order(None) is None


def test_money_paid_against_an_order_goes_to_its_invoices_oldest_first():
    from b24_1c_assets.domain.invoice_sync import attribute_order_payments

    invoices = pd.DataFrame([
        {"Ref_Key": "i1", "Number": "1", "Date": pd.Timestamp("2026-05-01"), "Posted": True,
         "СуммаДокумента": Decimal("60"), "ДокументОснование": "o1"},
        {"Ref_Key": "i2", "Number": "2", "Date": pd.Timestamp("2026-05-02"), "Posted": True,
         "СуммаДокумента": Decimal("40"), "ДокументОснование": "o1"},
    ])
    totals = {"i1": (Decimal("60"), Decimal("0")), "i2": (Decimal("40"), Decimal("0")),
              "o1": (Decimal("0"), Decimal("70"))}
    attribute_order_payments(totals, invoices)
    assert totals["i1"] == (Decimal("60"), Decimal("60")) and totals["i2"] == (Decimal("40"), Decimal("10"))
    own = {"o1": (Decimal("100"), Decimal("70")), "i1": (Decimal("60"), Decimal("0"))}
    attribute_order_payments(own, invoices.head(1))
    assert own["i1"] == (Decimal("60"), Decimal("0"))  # an order with its own obligation keeps its money
