"""The invoice push sends its writes in chunks, in plan order, and keeps only the ids of what it added."""

import json

import pandas as pd

from b24_1c_assets.bitrix24.client import BatchResult, CommandOutcome
from b24_1c_assets.defs.invoice_sync import assets
from b24_1c_assets.domain.push_plan import Operation, Status


class FakePortal:
    """Answers crm.item.add with a new item (ids from 100) and crm.item.update with the item."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.next_id = 100

    def require_scopes(self, needed):
        pass

    def batch(self, named, idempotent=None):
        self.calls.append([params["fields"]["title"] for _, params in named.values()])
        out = {}
        for name, (method, params) in named.items():
            item = {"id": params.get("id") or self.next_id, **params["fields"], "big": "x" * 1000}
            self.next_id += method == "crm.item.add"
            out[name] = CommandOutcome(name, method, result={"item": item})
        return BatchResult(out)


def test_writes_go_in_chunks_in_plan_order_and_keep_only_the_added_ids(monkeypatch):
    monkeypatch.setattr(assets, "WRITE_CHUNK", 2)
    writes = pd.DataFrame(
        {
            "key": ["a", "b", "c", "d", "e"],
            "operation": Operation.UPDATE,
            "after": [json.dumps({"title": k, "stageId": "N", "paid": "1.00"}) for k in "abcde"],
        }
    )
    portal, target_ids = FakePortal(), {"b": "7"}
    written, sent = assets.write_invoices(portal, writes, target_ids, 5, "UF_CRM_SMART_INVOICE_PAID")
    assert portal.calls == [["a", "b"], ["c", "d"], ["e"]]
    assert [(o.key, o.operation, o.status) for o in written] == [
        ("a", Operation.ADD, Status.OK),
        ("b", Operation.UPDATE, Status.OK),
        ("c", Operation.ADD, Status.OK),
        ("d", Operation.ADD, Status.OK),
        ("e", Operation.ADD, Status.OK),
    ]
    assert target_ids == {"a": "100", "b": "7", "c": "101", "d": "102", "e": "103"}
    assert all(o.result is None for o in written)  # the portal's whole item is not held
    assert sent["e"] == {"stageId": "N", "UF_CRM_SMART_INVOICE_PAID": "1.00"}
