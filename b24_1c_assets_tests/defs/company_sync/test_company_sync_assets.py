"""Companies both ways against the sandbox: creation, idempotent reruns, dry run, cap, loop closing."""

import json

import dagster as dg
import duckdb
import pytest

from b24_1c_assets.bitrix24 import Bitrix24Client
from b24_1c_assets.defs.company_sync.assets import TO_1C, TO_1C_PLAN, TO_CRM, TO_CRM_PLAN
from b24_1c_assets.lib.push_flow import DRY_RUN_TAG

UPSTREAM = dg.AssetSelection.groups("bitrix24_raw", "onec_raw", "client_master")
EXTRACTS = dg.AssetSelection.assets(
    ["onec", "counterparties"], ["bitrix24", "companies"], ["bitrix24", "requisites"]
) | dg.AssetSelection.groups("client_master")
TO_CRM_FLOW = EXTRACTS | dg.AssetSelection.assets(TO_CRM_PLAN, TO_CRM)
TO_1C_FLOW = EXTRACTS | dg.AssetSelection.assets(TO_1C_PLAN, TO_1C)
LIVE = {DRY_RUN_TAG: "false"}  # 1C writes are dry unless the run says otherwise


def query(tmp_path, sql):
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def companies_by_origin(portal, ref):
    return [r for r in portal.state.tables["company"].rows.values() if r.get("ORIGIN_ID") == ref]


def portal_writes(portal, start=0, prefix="crm."):
    """Write methods the portal executed since `start` (batch commands unpacked)."""
    out = []
    for entry in portal.request_log[start:]:
        methods = entry.get("commands") or [entry["method"]]
        out += [m for m in methods if m.startswith(prefix) and m.rsplit(".", 1)[-1] in ("add", "update")]
    return out


def onec_writes(onec, start=0):
    return [e for e in onec.request_log[start:] if e["kind"] == "write"]


def test_only_1c_clients_become_linked_companies_with_requisite_and_contacts(run_flow, sandbox, tmp_path):
    assert run_flow(TO_CRM_FLOW).success
    refs = [r[0] for r in query(tmp_path, "SELECT onec_ref FROM client_master.clients WHERE match_rule = 'only_1c'")]
    onec = sandbox.onec.state.objects["Catalog_Контрагенты"]
    refs = [r for r in refs if not onec[r].get("DeletionMark")]  # the seed stores filled properties only
    held = dict(query(tmp_path, "SELECT key, reason FROM crm_push.company_from_1c_plan WHERE operation = 'held_back'"))
    assert held, "the world has 1C duplicates and review candidates: they wait, no company is made for them"
    for ref in held:
        assert companies_by_origin(sandbox.portal, ref) == []
    refs = [r for r in refs if r not in held]
    assert refs, "the world should have clients only in 1C"
    requisites = list(sandbox.portal.state.tables["requisite"].rows.values())
    for ref in refs:
        made = companies_by_origin(sandbox.portal, ref)
        assert len(made) == 1 and made[0]["ORIGINATOR_ID"] == "1c-unf"
        cp = onec[ref]
        rq = [r for r in requisites if str(r["ENTITY_ID"]) == str(made[0]["ID"]) and str(r["ENTITY_TYPE_ID"]) == "4"]
        assert len(rq) == 1
        ip = cp["ВидКонтрагента"] == "ИндивидуальныйПредприниматель"
        assert str(rq[0]["PRESET_ID"]) == ("2" if ip else "1")
        if len(cp["ИНН"]) in (10, 12):
            assert rq[0]["RQ_INN"] in (cp["ИНН"], None)
        if ip:
            assert not rq[0].get("RQ_KPP")
        emails = [i["VALUE"] for i in made[0].get("EMAIL") or []]
        onec_emails = [c["АдресЭП"] for c in cp["КонтактнаяИнформация"] if c["Тип"] == "АдресЭлектроннойПочты"]
        assert set(onec_emails) <= set(emails)
    results = dict(
        query(tmp_path, "SELECT status, count(*) FROM sync.results WHERE flow = 'company_sync.to_crm' GROUP BY 1")
    )
    assert results.get("ok", 0) >= len(refs) and "failed" not in results

    # a second full run adds nothing and does not re-append e-mails/phones
    start = len(sandbox.portal.request_log)
    assert run_flow(TO_CRM_FLOW).success
    assert [m for m in portal_writes(sandbox.portal, start) if m.endswith(".add")] == []
    for ref in refs:
        assert len(companies_by_origin(sandbox.portal, ref)) == 1


def test_crash_between_add_and_journal_does_not_duplicate(run_flow, sandbox, tmp_path):
    assert run_flow(TO_CRM_FLOW).success
    adds = query(tmp_path, "SELECT key FROM sync.results WHERE flow = 'company_sync.to_crm' AND operation = 'add'")
    assert adds
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb")) as conn:  # the journal never heard of the adds
        conn.execute("DELETE FROM sync.results WHERE flow = 'company_sync.to_crm'")
        conn.execute("DELETE FROM sync.push_state WHERE flow = 'company_sync.to_crm'")
    start = len(sandbox.portal.request_log)
    assert run_flow([TO_CRM_PLAN, TO_CRM]).success  # stale extracts: the plan still says add
    planned = dict(query(tmp_path, "SELECT operation, count(*) FROM crm_push.company_from_1c_plan GROUP BY 1"))
    assert planned.get("add", 0) == len(adds)
    assert "crm.company.add" not in portal_writes(sandbox.portal, start)
    for (ref,) in adds:
        assert len(companies_by_origin(sandbox.portal, ref)) == 1


def test_matched_companies_get_only_1c_owned_fields(run_flow, sandbox, tmp_path):
    assert run_flow(EXTRACTS).success
    pairs = query(
        tmp_path,
        "SELECT onec_ref, company_id FROM client_master.clients "
        "WHERE match_rule = 'inn_kpp' ORDER BY company_id LIMIT 1",
    )
    ref, company_id = pairs[0]
    portal = sandbox.portal.state
    company = portal.record("company", int(company_id))
    rq = next(
        r
        for r in portal.tables["requisite"].rows.values()
        if str(r["ENTITY_ID"]) == str(company_id) and str(r["ENTITY_TYPE_ID"]) == "4"
    )
    ip = len(rq["RQ_INN"] or "") == 12
    # a seller edits the card in the CRM (over REST, so DATE_MODIFY moves and the next extract sees it)
    crm = Bitrix24Client(sandbox.portal.webhook_url, rate=50, burst=50)
    crm.call("crm.company.update", {"id": int(company_id), "fields": {"TITLE": "Название от продавца"}})
    crm.call(
        "crm.requisite.update",
        {"id": int(rq["ID"]), "fields": {"RQ_NAME" if ip else "RQ_COMPANY_FULL_NAME": "Опечатка"}},
    )
    assert run_flow(TO_CRM_FLOW).success
    cp = sandbox.onec.state.objects["Catalog_Контрагенты"][ref]
    assert company["TITLE"] == "Название от продавца"  # shared field, filled only when empty
    if not ip:
        assert rq["RQ_COMPANY_FULL_NAME"] == cp["НаименованиеПолное"]  # 1C owns the legal name
    assert company["ORIGIN_ID"] == ref and company["ORIGINATOR_ID"] == "1c-unf"  # the link is written
    for field in ("EMAIL", "PHONE"):
        values = [i["VALUE"].strip().lower() for i in company.get(field) or []]
        assert len(values) == len(set(values))


def test_crm_to_1c_is_a_dry_run_by_default(run_flow, sandbox, tmp_path):
    start = len(sandbox.onec.request_log)
    assert run_flow(TO_1C_FLOW).success
    assert onec_writes(sandbox.onec, start) == []
    plan = query(tmp_path, "SELECT operation, kind, inn, body FROM onec_push.counterparty_from_crm_plan")
    creates = [p for p in plan if p[0] == "create"]
    assert creates
    for _, kind, inn, body in creates:
        body = json.loads(body)
        assert (kind == "ip") == (len(inn) == 12)
        assert body["ВидКонтрагента"] == ("ИндивидуальныйПредприниматель" if kind == "ip" else "ЮридическоеЛицо")
        assert set(body) <= {
            "Description",
            "НаименованиеПолное",
            "ИНН",
            "КПП",
            "РегистрационныйНомер",
            "ВидКонтрагента",
            "ЮридическоеФизическоеЛицо",
            "Покупатель",
            "СтранаРегистрации",
        }
        assert body["СтранаРегистрации"] == "643"  # Russia by its ОКСМ code, resolved to a ref when written
    rows = query(tmp_path, "SELECT DISTINCT dry_run FROM sync.results WHERE flow = 'company_sync.to_1c'")
    assert rows == [(True,)]
    invalid = [p for p in plan if p[0] == "invalid"]
    statuses = dict(
        query(
            tmp_path,
            "SELECT status, count(*) FROM sync.results WHERE flow = 'company_sync.to_1c' "
            "AND operation = 'create' AND error LIKE 'not written:%' GROUP BY 1",
        )
    )
    assert statuses == ({"rejected": len(invalid)} if invalid else {})  # bad data is rejected, not "failed"


@pytest.fixture
def live_onec_writes(monkeypatch, tmp_path):
    settings_dir = tmp_path / "settings"
    settings_dir.mkdir()
    (settings_dir / "onec_writes.toml").write_text(
        'max_creates_per_run = 2\n[counterparty]\nallowed_fields = ["Description", '
        '"НаименованиеПолное", "ИНН", "КПП", "РегистрационныйНомер", "ВидКонтрагента", '
        '"ЮридическоеФизическоеЛицо", "Покупатель", "СтранаРегистрации"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("B24_1C_SETTINGS_DIR", str(settings_dir))


def test_crm_to_1c_writes_capped_traceable_and_closes_the_loop(run_flow, sandbox, tmp_path, live_onec_writes):
    assert run_flow(TO_1C_FLOW, tags=LIVE).success
    created = {
        r[0]: r[1]
        for r in query(
            tmp_path, "SELECT key, target_id FROM sync.results WHERE flow = 'company_sync.to_1c' AND status = 'ok'"
        )
    }
    deferred = query(
        tmp_path, "SELECT count(*) FROM sync.results WHERE flow = 'company_sync.to_1c' AND status = 'deferred'"
    )[0][0]
    assert len(created) == 2 and deferred > 0
    catalog = sandbox.onec.state.objects["Catalog_Контрагенты"]
    russia = sandbox.world.guid("country", 643)
    for company_id, ref in created.items():
        assert f"b24-1c:company:{company_id}" in catalog[ref]["Комментарий"]
        # written with its country, so UNF's ПередЗаписью keeps a legal entity's КПП
        assert catalog[ref]["СтранаРегистрации_Key"] == russia
        assert (catalog[ref]["КПП"] != "") == (catalog[ref]["ВидКонтрагента"] == "ЮридическоеЛицо")
        assert sandbox.portal.state.record("company", int(company_id))["ORIGIN_ID"] == ref

    # crash after the POST, before the journal: the marker finds the counterparty, no second POST
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb")) as conn:
        conn.execute("DELETE FROM sync.results WHERE flow = 'company_sync.to_1c'")
        conn.execute("DELETE FROM sync.push_state WHERE flow = 'company_sync.to_1c'")
    size = len(catalog)
    start = len(sandbox.onec.request_log)
    assert run_flow([TO_1C_PLAN, TO_1C], tags=LIVE).success
    posts = [e for e in onec_writes(sandbox.onec, start) if e["method"] == "POST"]
    assert posts == [] and len(catalog) == size  # the same two were first in line: found by marker
    again = dict(
        query(tmp_path, "SELECT key, target_id FROM sync.results WHERE flow = 'company_sync.to_1c' AND status = 'ok'")
    )
    assert again == created

    # the loop: both directions re-extracted; nothing made by one side comes back as new on the other
    assert run_flow(TO_1C_FLOW | TO_CRM_FLOW, tags=LIVE).success
    both = dict(
        query(tmp_path, "SELECT company_id, match_rule FROM client_master.clients WHERE company_id IS NOT NULL")
    )
    for company_id in created:
        assert both[int(company_id)] == "id_link"
    new_refs = set(created.values())
    adds = query(tmp_path, "SELECT key FROM crm_push.company_from_1c_plan WHERE operation = 'add'")
    assert not new_refs & {a[0] for a in adds}


def test_a_kpp_1c_drops_is_reported_not_hidden(run_flow, sandbox, tmp_path, monkeypatch):
    """Without СтранаРегистрации UNF 3.0 clears a legal entity's КПП: the read-back reports the row."""
    settings_dir = tmp_path / "settings_no_country"
    settings_dir.mkdir()
    (settings_dir / "onec_writes.toml").write_text(
        'max_creates_per_run = 20\n[counterparty]\nallowed_fields = ["Description", '
        '"НаименованиеПолное", "ИНН", "КПП", "ВидКонтрагента", "ЮридическоеФизическоеЛицо", "Покупатель"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("B24_1C_SETTINGS_DIR", str(settings_dir))
    assert run_flow(TO_1C_FLOW, tags=LIVE).success
    plan = dict(
        query(tmp_path, "SELECT key, kind FROM onec_push.counterparty_from_crm_plan WHERE operation = 'create'")
    )
    failed = dict(
        query(tmp_path, "SELECT key, error FROM sync.results WHERE flow = 'company_sync.to_1c' AND status = 'failed'")
    )
    legal = [k for k in failed if plan.get(k) == "legal"]
    assert legal and all("without the КПП" in failed[k] for k in legal)
    assert not [k for k in failed if plan.get(k) == "ip"]
