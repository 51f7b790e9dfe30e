from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.domain.push_plan import Status
from b24_1c_assets.sandbox.faults import Faults
from b24_1c_assets.sync.bitrix24_writes import WriteCommand, apply_commands


def company_ids(portal, n):
    client = Bitrix24Client(portal.webhook_url, rate=50, burst=50)
    return [int(row["ID"]) for row in client.export_all("crm.company.list", select=["ID"])][:n]


def test_one_bad_command_never_loses_the_others(portal):
    client = Bitrix24Client(portal.webhook_url, rate=50, burst=50)
    ids = company_ids(portal, 3)
    commands = [WriteCommand(str(i), "crm.company.update", {"id": i, "fields": {"COMMENTS": f"ok {i}"}}) for i in ids]
    commands.append(WriteCommand("missing", "crm.company.update", {"id": 99_999_999, "fields": {"COMMENTS": "x"}}))
    outcomes = {o.key: o for o in apply_commands(client, commands, pause_seconds=0)}
    assert [outcomes[str(i)].status for i in ids] == [Status.OK, Status.OK, Status.OK]
    assert outcomes["missing"].status == Status.FAILED and outcomes["missing"].error_class in {"reference", "data"}
    assert outcomes["missing"].attempts == 1  # a data error is not repeated in-run
    got = client.call("crm.company.get", {"id": ids[0]})
    assert got["COMMENTS"] == f"ok {ids[0]}"


def test_transient_command_errors_are_retried_until_they_pass(portal_factory):
    portal = portal_factory(faults=Faults(batch_command_error_share=0.3, seed=3))
    client = Bitrix24Client(portal.webhook_url, rate=50, burst=50, max_retries=8)
    ids = company_ids(portal, 40)
    commands = [WriteCommand(str(i), "crm.company.update", {"id": i, "fields": {"COMMENTS": "synced"}}) for i in ids]
    outcomes = apply_commands(client, commands, rounds=6, pause_seconds=0)
    assert {o.status for o in outcomes} == {Status.OK}
    assert max(o.attempts for o in outcomes) > 1
