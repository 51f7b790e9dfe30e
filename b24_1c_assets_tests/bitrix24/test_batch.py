"""`batch` over loopback: chunking by 50, per-command outcomes, PHP encoding, whole-batch retries."""

from __future__ import annotations

from b24_1c_assets.bitrix24 import Bitrix24Client, NotFound, ServerError
from b24_1c_assets.sandbox.faults import Faults

from .conftest import add_companies


def client_for(portal, **kw) -> Bitrix24Client:
    kw.setdefault("backoff_initial", 0.01)
    kw.setdefault("backoff_max", 0.05)
    return Bitrix24Client(portal.webhook_url, rate=500.0, burst=500, **kw)


def test_any_number_of_commands_is_chunked_by_50_and_kept_apart(bx_portal):
    portal = bx_portal()
    ids = add_companies(portal, 120)
    client = client_for(portal)
    commands = {f"get{cid}": ("crm.company.get", {"id": cid}) for cid in ids}
    commands["missing"] = ("crm.company.get", {"id": 999_999})
    outcome = client.batch(commands)
    assert len(outcome) == 121 and list(outcome) == list(commands)
    assert outcome.results[f"get{ids[77]}"]["ID"] == str(ids[77])
    assert set(outcome.errors) == {"missing"}
    assert isinstance(outcome["missing"].error, NotFound) and outcome["missing"].error.status is None
    assert client.stats.batch_calls == 3 and client.stats.http_calls == 3
    assert client.stats.batch_commands == 121 and client.stats.command_errors == 1
    assert [len(e["commands"]) for e in portal.calls("batch")] == [50, 50, 21]


def test_injected_command_errors_never_lose_the_other_results(bx_portal):
    portal = bx_portal(faults=Faults(batch_command_error_share=0.3, seed=4))
    ids = add_companies(portal, 50)
    client = client_for(portal)
    outcome = client.batch([("crm.company.get", {"id": cid}) for cid in ids])
    failed = outcome.errors
    assert 0 < len(failed) < 50
    assert all(isinstance(err, ServerError) for err in failed.values())
    for name, result in outcome.results.items():
        assert result["ID"] == str(ids[int(name[1:])])  # each success is the right record
    assert len(outcome.results) + len(failed) == 50
    assert client.stats.retries == 0  # per-command errors are the caller's to handle


def test_commands_are_encoded_as_php_expects(bx_portal):
    """Cyrillic, operators, UF fields, lists, booleans and references reach the portal intact."""
    portal = bx_portal()
    portal.state.call(
        "crm.company.userfield.add",
        {"fields": {"FIELD_NAME": "DEBT_SUM", "USER_TYPE_ID": "double", "XML_ID": "DEBT_SUM"}},
    )
    ids = add_companies(portal, 3, prefix="ЗАО «Ёлка & Ко")
    client = client_for(portal)
    outcome = client.batch(
        {
            "find": (
                "crm.company.list",
                {
                    "filter": {"%TITLE": "Ёлка & Ко 1", ">=ID": ids[0]},
                    "select": ["ID", "TITLE"],
                    "order": {"ID": "ASC"},
                },
            ),
            "set": (
                "crm.company.update",
                {
                    "id": "$result[find][0][ID]",
                    "fields": {"UF_CRM_DEBT_SUM": 257000.5, "COMMENTS": "долг 100% + пени", "OPENED": False},
                },
            ),
            "get": ("crm.company.get", {"id": "$result[find][0][ID]"}),
        }
    )
    assert outcome.errors == {}
    assert [row["TITLE"] for row in outcome["find"].result] == ["ЗАО «Ёлка & Ко 1»"]
    stored = portal.state.record("company", ids[1])
    assert float(stored["UF_CRM_DEBT_SUM"]) == 257000.5
    assert stored["COMMENTS"] == "долг 100% + пени"
    assert stored["OPENED"] == "N"
    assert outcome["get"].result["ID"] == str(ids[1])


def test_empty_maps_as_php_arrays_and_halt(bx_portal):
    portal = bx_portal()
    add_companies(portal, 1)
    client = client_for(portal)
    ok = client.batch([("crm.company.list", {"select": ["ID"]})])  # no errors: result_error arrives as []
    assert ok.errors == {} and len(ok["c0"].result) == 1 and ok["c0"].total == 1
    halted = client.batch({"a": ("crm.company.get", {"id": 424242}), "b": ("crm.company.list", {})}, halt=True)
    assert isinstance(halted["a"].error, NotFound)
    assert halted["b"].error is not None and halted["b"].error.code == "NOT_EXECUTED"


def test_whole_batch_failures_are_retried_as_a_whole(bx_portal):
    portal = bx_portal(faults=Faults(error_503_share=0.4, drop_share=0.1, seed=2))
    ids = add_companies(portal, 10)
    client = client_for(portal, max_retries=10)
    for _ in range(6):
        outcome = client.batch([("crm.company.get", {"id": cid}) for cid in ids])
        assert outcome.errors == {} and len(outcome.results) == 10
    assert client.stats.retries > 0
    assert client.stats.batch_calls == 6 and client.stats.http_calls == 6 + client.stats.retries


def test_batch_of_adds_with_unknown_outcome_is_not_repeated(bx_portal):
    portal = bx_portal(faults=Faults(error_500_share=1.0, fail_after_write=True))
    client = client_for(portal, max_retries=3)
    try:
        client.batch([("crm.company.add", {"fields": {"TITLE": f"Новая {i}"}}) for i in range(3)])
    except ServerError as exc:
        assert exc.outcome_unknown
    else:  # pragma: no cover - the fault share is 1.0
        raise AssertionError("expected the injected 500")
    assert client.stats.http_calls == 1
    assert len(portal.state.tables["company"].rows) == 3  # carried out once, not three times


def test_bad_command_text_is_rejected_before_sending(bx_portal):
    portal = bx_portal()
    client = client_for(portal)
    for bad in (("crm.company.list/../x", {}), 42):
        try:
            client.batch([bad])
        except (ValueError, TypeError):
            pass
        else:  # pragma: no cover
            raise AssertionError(f"accepted {bad!r}")
    assert client.stats.http_calls == 0


def test_numeric_command_names_come_back_as_json_lists_and_are_mapped(bx_portal):
    """PHP turns maps keyed 0..n-1 into JSON lists (`result`, `result_time`): outcomes still find their names."""
    portal = bx_portal()
    ids = add_companies(portal, 2)
    client = client_for(portal)
    outcome = client.batch({"0": ("crm.company.get", {"id": ids[0]}), "1": ("crm.company.get", {"id": ids[1]})})
    assert outcome.errors == {}
    assert [outcome[name].result["ID"] for name in ("0", "1")] == [str(i) for i in ids]
    assert outcome["1"].time.get("operating") is not None
