"""Keyset export over loopback: exactly once, chained pages per batch, robust to faults and concurrent writes."""

from __future__ import annotations

import threading
import time

import pytest

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.sandbox.faults import Faults

from .conftest import add_companies, add_requisites


def client_for(portal, **kw) -> Bitrix24Client:
    kw.setdefault("backoff_initial", 0.01)
    kw.setdefault("backoff_max", 0.05)
    return Bitrix24Client(portal.webhook_url, rate=500.0, burst=500, **kw)


def ids_of(rows, field="ID") -> list[int]:
    return [int(row[field]) for row in rows]


@pytest.mark.parametrize("count", [0, 1, 49, 50, 75, 100, 260])
def test_export_returns_every_company_once_whatever_the_last_page(bx_portal, count):
    """Counts at and around page boundaries: the chain stops at the first short page."""
    portal = bx_portal()
    expected = add_companies(portal, count)
    client = client_for(portal)
    rows = client.export_all("crm.company.list", select=["ID", "TITLE"])
    assert ids_of(rows) == expected
    # the highest ID first, then up to 50 pages (2,500 rows) in one batch call, chaining only the pages needed
    assert client.stats.http_calls == (2 if count else 1)  # nothing to export: the first call tells
    assert client.stats.batch_commands == (count // 50 + 1 if count else 0)
    assert client.stats.rows_exported == count


def test_export_chains_calls_and_passes_extra_filter_and_select(bx_portal):
    portal = bx_portal()
    ids = add_companies(portal, 230)
    for cid in ids[::3]:
        portal.state.call("crm.company.update", {"id": cid, "fields": {"COMPANY_TYPE": "PARTNER"}})
    client = client_for(portal)
    pages = list(
        client.export("crm.company.list", filter={"COMPANY_TYPE": "PARTNER"}, select=["TITLE"], pages_per_call=2)
    )
    rows = [row for page in pages for row in page]
    assert ids_of(rows) == ids[::3]
    assert set(rows[0]) >= {"ID", "TITLE"}  # ID is added to the select: the keyset needs it
    assert all(len(page) <= 50 for page in pages)
    assert client.stats.http_calls == 2  # the highest ID, then 77 rows = 2 pages in one batch, the second short
    assert client.stats.batch_commands == 2  # no page chained past the ones the export can still need


def test_export_of_each_list_method(bx_portal):
    portal = bx_portal()
    company_ids = add_companies(portal, 60)
    requisite_ids = add_requisites(portal, company_ids)
    state = portal.state
    contact_ids = [
        state.call("crm.contact.add", {"fields": {"NAME": f"Иван {i}", "COMPANY_ID": company_ids[i]}})
        for i in range(55)
    ]
    deal_ids = [
        state.call("crm.deal.add", {"fields": {"TITLE": f"Сделка {i}", "COMPANY_ID": company_ids[i]}})
        for i in range(51)
    ]
    product_ids = [
        state.call("crm.product.add", {"fields": {"NAME": f"Товар {i}", "PRICE": 100 + i}}) for i in range(52)
    ]
    invoice_ids = [
        state.call("crm.item.add", {"entityTypeId": 31, "fields": {"title": f"Счёт {i}", "companyId": company_ids[i]}})[
            "item"
        ]["id"]
        for i in range(53)
    ]
    client = client_for(portal)
    assert ids_of(client.export_all("crm.requisite.list", filter={"ENTITY_TYPE_ID": 4})) == requisite_ids
    assert ids_of(client.export_all("crm.contact.list")) == contact_ids
    assert ids_of(client.export_all("crm.deal.list", select=["ID", "TITLE", "STAGE_ID"])) == deal_ids
    assert ids_of(client.export_all("crm.product.list")) == product_ids
    invoices = client.export_all("crm.item.list", params={"entityTypeId": 31}, select=["id", "title", "companyId"])
    assert ids_of(invoices, "id") == invoice_ids
    assert invoices[0]["title"] == "Счёт 0"


def test_export_is_exact_while_companies_are_added_and_updated(bx_portal):
    portal = bx_portal()
    before = add_companies(portal, 600)
    client = client_for(portal)
    stop = threading.Event()
    added: list[int] = []
    updates = 0

    def writer():
        nonlocal updates
        i = 0
        while not stop.is_set():
            added.append(portal.state.call("crm.company.add", {"fields": {"TITLE": f"Параллельная {i}"}}))
            portal.state.call(
                "crm.company.update", {"id": before[(i * 37) % len(before)], "fields": {"TITLE": f"Изменённая {i}"}}
            )
            updates += 1
            i += 1
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        pages = []
        for page in client.export("crm.company.list", select=["ID", "TITLE"], pages_per_call=1):
            pages.append(page)
            time.sleep(0.01)  # let the writer interleave between calls
    finally:
        stop.set()
        thread.join()
    exported = ids_of([row for page in pages for row in page])
    assert len(exported) == len(set(exported))  # nothing twice
    assert set(before) <= set(exported)  # everything that existed throughout, once
    assert set(exported) <= set(before) | set(added)
    assert exported == sorted(exported)
    assert updates > 0 and added, "the writer must have run during the export"
    assert set(exported) & set(added), "rows added during the export are picked up"


def test_export_is_exact_under_command_errors_and_whole_call_faults(bx_portal):
    portal = bx_portal(faults=Faults(batch_command_error_share=0.2, error_503_share=0.2, drop_share=0.05, seed=9))
    expected = add_companies(portal, 420)
    client = client_for(portal, max_retries=10)
    rows = client.export_all("crm.company.list", select=["ID"], pages_per_call=4)
    assert ids_of(rows) == expected
    assert client.stats.command_errors > 0 and client.stats.retries > 0
