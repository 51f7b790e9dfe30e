import pytest

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.bitrix24.errors import NotFound
from b24_1c_assets.sandbox.faults import Faults
from b24_1c_assets.sync.bitrix24_reads import batch_read


def test_read_commands_failing_inside_batch_are_sent_again(portal_factory):
    portal = portal_factory(faults=Faults(batch_command_error_share=0.3, seed=3))
    client = Bitrix24Client(portal.webhook_url, rate=50, burst=50, max_retries=8)
    ids = [int(row["ID"]) for row in client.export_all("crm.company.list", select=["ID"])][:40]
    portal.clear_log()
    results = batch_read(client, {f"c{i}": ("crm.company.get", {"id": i}) for i in ids}, rounds=8, pause_seconds=0)
    assert {name: r["ID"] for name, r in results.items()} == {f"c{i}": str(i) for i in ids}
    assert len(portal.calls("batch")) > 1  # some commands failed and went again, alone
    assert len(portal.calls("batch")[1]["commands"]) < len(ids)


def test_a_lasting_command_error_is_raised_not_repeated(portal):
    client = Bitrix24Client(portal.webhook_url, rate=50, burst=50)
    portal.clear_log()
    with pytest.raises(NotFound):
        batch_read(client, {"gone": ("crm.company.get", {"id": 99_999_999})}, pause_seconds=0)
    assert len(portal.calls("batch")) == 1
