"""Pure rules of the invoice push: payment state, links, rejections."""

from decimal import Decimal

import pandas as pd
import pytest

from b24_1c_assets.domain.invoice_sync import (
    PAID,
    PARTLY_PAID,
    UNPAID,
    check_paid_field,
    crm_fields,
    deal_of_order,
    desired_invoices,
    invoice_category,
    payment_state,
    payment_totals,
    readback_mismatches,
    stage_ids,
)

STAGES = {UNPAID: "DT31_13:N", PARTLY_PAID: "DT31_13:S", PAID: "DT31_13:P"}


def test_payment_state_paid_when_payment_plus_advance_cover_the_sum():
    assert payment_state(Decimal("100"), Decimal("100")) == PAID
    assert payment_state(Decimal("100"), Decimal("40")) == PARTLY_PAID
    assert payment_state(Decimal("100"), Decimal("0")) == UNPAID


def test_the_pipeline_is_the_default_or_the_named_one_and_stages_come_from_its_semantics():
    categories = [{"id": 13, "name": "Счета", "isDefault": "Y"}, {"id": 21, "name": "Опт", "isDefault": "N"}]
    assert invoice_category(categories) == 13 and invoice_category(categories, "Опт") == 21
    with pytest.raises(ValueError, match="Розница"):
        invoice_category(categories, "Розница")
    statuses = [
        {"STATUS_ID": f"DT31_13:{code}", "SEMANTICS": sem}
        for code, sem in (("N", None), ("S", None), ("PAID", "S"), ("D", "F"))
    ]
    assert stage_ids(statuses, "N", "S") == {**STAGES, PAID: "DT31_13:PAID"}  # paid = the success stage
    with pytest.raises(ValueError, match="X"):
        stage_ids(statuses, "N", "X")
    with pytest.raises(ValueError, match="D"):
        stage_ids(statuses, "N", "D")  # a failure stage is no in-progress stage
    with pytest.raises(ValueError, match="0 success stages"):
        stage_ids(statuses[:2], "N", "S")


def test_the_paid_field_is_a_smart_invoice_user_field_and_a_lost_value_is_found_on_read_back():
    assert check_paid_field("UF_CRM_SMART_INVOICE_ONEC_PAID") == "UF_CRM_SMART_INVOICE_ONEC_PAID"
    with pytest.raises(ValueError, match="UF_CRM_SMART_INVOICE_"):
        check_paid_field("ufCrmSmartInvoiceOnecPaid")
    sent = {
        "a": {"stageId": "DT31_13:P", "UF_CRM_SMART_INVOICE_ONEC_PAID": "100.00"},
        "b": {"stageId": "DT31_13:N", "UF_CRM_SMART_INVOICE_ONEC_PAID": "0.00"},
        "c": {"stageId": "DT31_13:N"},
    }
    stored = {
        "a": {"stageId": "DT31_13:P", "UF_CRM_SMART_INVOICE_ONEC_PAID": 100.0},
        "b": {"stageId": "DT31_13:N", "UF_CRM_SMART_INVOICE_ONEC_PAID": None},
    }
    assert readback_mismatches(sent, stored) == {
        "b": "UF_CRM_SMART_INVOICE_ONEC_PAID: wrote '0.00', the portal kept None",
        "c": "not found when read back",
    }


def test_desired_invoices_links_company_and_deal_and_rejects_unknown_clients():
    invoices = pd.DataFrame(
        [
            {
                "Ref_Key": "i1",
                "Number": "1",
                "Date": pd.Timestamp("2026-05-01"),
                "Posted": True,
                "DeletionMark": False,
                "Контрагент_Key": "cp1",
                "СуммаДокумента": Decimal("100"),
                "ДокументОснование": "o1",
            },
            {
                "Ref_Key": "i2",
                "Number": "2",
                "Date": pd.Timestamp("2026-05-02"),
                "Posted": True,
                "DeletionMark": False,
                "Контрагент_Key": "cp9",
                "СуммаДокумента": Decimal("5"),
                "ДокументОснование": None,
            },
            {
                "Ref_Key": "i3",
                "Number": "3",
                "Date": None,
                "Posted": False,
                "DeletionMark": False,
                "Контрагент_Key": "cp1",
                "СуммаДокумента": Decimal("5"),
                "ДокументОснование": None,
            },
        ]
    )
    payments = pd.DataFrame(
        [
            {"СчетНаОплату": "i1", "Сумма": Decimal("100"), "СуммаОплаты": Decimal("0"), "СуммаАванса": Decimal("0")},
            {"СчетНаОплату": "i1", "Сумма": Decimal("0"), "СуммаОплаты": Decimal("30"), "СуммаАванса": Decimal("70")},
        ]
    )
    clients = pd.DataFrame([{"onec_ref": "cp1", "company_id": 5}])
    orders = pd.DataFrame([{"Ref_Key": "o1", "Комментарий": "b24-1c:deal:42"}])
    desired, rejects = desired_invoices(invoices, payment_totals(payments), clients, orders, STAGES)
    assert list(desired["key"]) == ["i1"]
    row = desired.iloc[0].to_dict()
    assert (row["companyId"], row["parentId2"], row["stageId"], row["paid"]) == (5, 42, "DT31_13:P", Decimal("100.00"))
    assert list(rejects["key"]) == ["i2"] and "invoice 2" in rejects["reason"].iloc[0]
    fields = crm_fields({**row, "opportunity": "100.00", "paid": "100.00"}, "UF_CRM_SMART_INVOICE_ONEC_PAID")
    assert fields["parentId2"] == 42 and fields["UF_CRM_SMART_INVOICE_ONEC_PAID"] == "100.00"
    assert deal_of_order("заметка b24-1c:deal:7") == 7 and deal_of_order(None) is None


def test_money_paid_against_an_order_goes_to_its_invoices_oldest_first():
    from b24_1c_assets.domain.invoice_sync import attribute_order_payments

    invoices = pd.DataFrame(
        [
            {
                "Ref_Key": "i1",
                "Number": "1",
                "Date": pd.Timestamp("2026-05-01"),
                "Posted": True,
                "СуммаДокумента": Decimal("60"),
                "ДокументОснование": "o1",
            },
            {
                "Ref_Key": "i2",
                "Number": "2",
                "Date": pd.Timestamp("2026-05-02"),
                "Posted": True,
                "СуммаДокумента": Decimal("40"),
                "ДокументОснование": "o1",
            },
        ]
    )
    totals = {
        "i1": (Decimal("60"), Decimal("0")),
        "i2": (Decimal("40"), Decimal("0")),
        "o1": (Decimal("0"), Decimal("70")),
    }
    attribute_order_payments(totals, invoices)
    assert totals["i1"] == (Decimal("60"), Decimal("60")) and totals["i2"] == (Decimal("40"), Decimal("10"))
    own = {"o1": (Decimal("100"), Decimal("70")), "i1": (Decimal("60"), Decimal("0"))}
    attribute_order_payments(own, invoices.head(1))
    assert own["i1"] == (Decimal("60"), Decimal("0"))  # an order with its own obligation keeps its money
