"""Fidelity: the widely used client `fast_bitrix24` works against the sandbox unchanged.

It takes any webhook URL (http on loopback too), paces itself with its own leaky bucket and reads `total`,
`time.operating` and the batch envelope — the parts of the protocol a lenient emulator tends to get wrong.
"""

from __future__ import annotations

import pytest

fast_bitrix24 = pytest.importorskip("fast_bitrix24")


@pytest.fixture
def bitrix(portal_factory):
    portal = portal_factory(rate=1000.0, burst=1000)
    return portal, fast_bitrix24.Bitrix(portal.webhook_url, verbose=False)


def _only(result):
    # fast_bitrix24 sends even a single call() through batch and returns {label: result}.
    if isinstance(result, dict) and len(result) == 1 and next(iter(result)).startswith("order"):
        return next(iter(result.values()))
    return result


def test_get_all_pages_through_every_company(bitrix, world):
    portal, b = bitrix
    rows = b.get_all("crm.company.list", {"select": ["ID", "TITLE"], "filter": {">ID": 0}})
    expected = sum(len(p.crm_spellings) for p in world.parties if p.presence != "1c")
    assert expected > 50, "needs more than one page"
    assert sorted(int(r["ID"]) for r in rows) == list(range(1, expected + 1))
    assert any(e["method"] == "batch" for e in portal.request_log)  # pages after the first came in a batch


def test_call_get_and_the_batch_path_with_a_list(bitrix):
    portal, b = bitrix
    company = _only(b.call("crm.company.get", {"ID": 3}))
    assert company["ID"] == "3" and company["TITLE"]
    results = b.call(
        "crm.company.update", [{"ID": 1, "fields": {"TITLE": "Первая"}}, {"ID": 2, "fields": {"TITLE": "Вторая"}}]
    )
    assert results == (True, True)
    assert [portal.state.record("company", i)["TITLE"] for i in (1, 2)] == ["Первая", "Вторая"]
    deals = b.get_all("crm.deal.list", {"select": ["ID", "STAGE_ID"], "filter": {"CATEGORY_ID": 1}})
    assert deals and all(d["STAGE_ID"].startswith("C1:") for d in deals)


def test_errors_surface_through_the_client(bitrix):
    _, b = bitrix
    with pytest.raises(Exception, match="Not found"):
        b.call("crm.company.get", {"ID": 999999})
