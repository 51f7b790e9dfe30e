"""Companies both ways: 1C counterparties -> CRM companies (with requisite and contacts), and valid CRM-only
companies -> 1C counterparties (dry run by default, validated, capped, allow-listed).

Each direction is a plan asset (stored in DuckDB, guarded by a blocking check) and an apply asset that
writes and journals every row in `sync.results`. The two directions close the loop through the ID link:
a company made from 1C carries ORIGINATOR_ID/ORIGIN_ID, a counterparty made from the CRM has its Ref_Key
written back to the company, so the next matching links them by ID and neither side sees a new record.
"""

import json
import os

import dagster as dg
import pandas as pd

from b24_1c_assets import settings
from b24_1c_assets.lib.landing import OWNERS, preview
from b24_1c_assets.lib.resources import Bitrix24Resource, OneCResource, WarehouseResource
from b24_1c_assets.lib.job_tags import INCREMENTAL_SYNC
from b24_1c_assets.domain import company_sync as cs
from b24_1c_assets.domain.matching import created_in_crm
from b24_1c_assets.domain.push_plan import NOOP, GuardLimits, guard_plan, payload_hash, plan_updates
from b24_1c_assets.onec.errors import OneCError
from b24_1c_assets.sync import journal
from b24_1c_assets.sync.bitrix24_userfields import UserField, ensure_userfields
from b24_1c_assets.sync.bitrix24_writes import FAILED, OK, RowOutcome, WriteCommand, apply_commands
from b24_1c_assets.warehouse import read_table, replace_table

FLOW_TO_CRM, FLOW_TO_1C = cs.FLOW_TO_CRM, "company_sync.to_1c"
TO_CRM_PLAN = dg.AssetKey(["crm_push", "company_from_1c_plan"])
TO_CRM = dg.AssetKey(["crm_push", "companies_from_1c"])
TO_1C_PLAN = dg.AssetKey(["onec_push", "counterparty_from_crm_plan"])
TO_1C = dg.AssetKey(["onec_push", "counterparties_from_crm"])
CLIENTS = dg.AssetKey(["client_master", "clients"])
RAW = [dg.AssetKey(["onec", "counterparties"]), dg.AssetKey(["bitrix24", "companies"]),
       dg.AssetKey(["bitrix24", "requisites"])]
GUARD = "guard"
OVERRIDE_TAG = "b24_1c/guard_override"
COMMON = dict(group_name="company_sync", owners=OWNERS, tags={"flow": "company_sync", **INCREMENTAL_SYNC})
CRM_PLAN_COLUMNS = ["key", "company_id", "operation", "reason", "changed_fields", "before", "after",
                    "payload_hash", "company_fields", "requisite_id", "requisite_fields"]
ONEC_PLAN_COLUMNS = ["key", "company_id", "operation", "reason", "inn", "kpp", "kind", "body", "dropped_fields",
                     "problems", "before", "after", "payload_hash"]


def _client_master_settings() -> dict:
    config = settings.load("client_master")
    return {"originator": config.get("our_originator_id", "1c-unf"),
            "link_originators": tuple(config.get("originator_ids", [])),
            "onec_ref_field": config.get("onec_ref_field") or None}


def _presets(client) -> cs.Presets:
    """The legal-entity and ИП presets, with the fields the ИП preset shows (its person-name fields)."""
    presets = cs.pick_presets(client.call("crm.requisite.preset.list", {"select": ["ID", "NAME", "XML_ID", "ACTIVE"]}))
    return cs.with_ip_fields(presets, client.call("crm.requisite.preset.field.list", {"preset": {"ID": presets.ip}})
                             or [])


def _guard_result(context, plan: pd.DataFrame, population: int) -> dg.AssetCheckResult:
    verdict = guard_plan(plan, population, GuardLimits())
    override = context.run.tags.get(OVERRIDE_TAG)
    passed = verdict.passed or bool(override)
    return dg.AssetCheckResult(check_name=GUARD, passed=passed, severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"reasons": "; ".join(verdict.reasons) or "none",
                                         "override": override or "", **verdict.figures})


def _guard_spec(asset: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(GUARD, asset=asset, blocking=True,
                             description="Mass-change guard: a plan changing too many existing rows writes "
                                         f"nothing unless the run carries the tag {OVERRIDE_TAG}=<reason>.")


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# ============================================ 1C -> CRM ==============================================

@dg.asset(key=TO_CRM_PLAN, deps=[CLIENTS, *RAW], kinds={"bitrix24", "duckdb"}, pool="duckdb",
          check_specs=[_guard_spec(TO_CRM_PLAN)], **COMMON,
          description="What the CRM should receive from 1C, one row per 1C counterparty (key = Ref_Key): "
                      "add (company + requisite + contacts) for clients only in 1C, update of the fields 1C "
                      "owns for matched ones, noop when in sync; company/requisite fields as JSON.")
def company_from_1c_plan(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource,
                         warehouse: WarehouseResource):
    cfg = _client_master_settings()
    client = bitrix24.client()
    calls = client.stats.http_calls
    presets = _presets(client)
    with warehouse.connect() as conn:
        clients = read_table(conn, "client_master", "clients")
        counterparties = read_table(conn, "onec", "counterparties")
        current = cs.crm_companies_by_id(read_table(conn, "bitrix24", "companies"),
                                         read_table(conn, "bitrix24", "requisites"))
        pushed, failed = journal.last_pushed(conn, FLOW_TO_CRM), journal.failed_keys(conn, FLOW_TO_CRM)
        held = cs.held_back_adds(clients, read_table(conn, "client_master", "duplicate_groups"),
                                 read_table(conn, "client_master", "client_match_candidates"),
                                 created=created_in_crm(read_table(conn, "review", "client_match_decisions")))
    desired = cs.desired_crm_companies(clients, counterparties)
    if held and not desired.empty:
        desired = desired[~(desired["company_id"].isna() & desired["key"].isin(held.keys()))]
    flat = pd.DataFrame([{"key": r["key"], **cs.desired_payload(r)} for r in desired.to_dict("records")],
                        columns=["key", *cs.DESIRED_FIELDS])
    base = plan_updates(flat, pushed, failed, cs.DESIRED_FIELDS)
    by_key = desired.set_index("key").to_dict("index") if not desired.empty else {}
    rows = []
    for planned in base.to_dict("records"):
        want = {"key": planned["key"], **by_key[planned["key"]]}
        row = {**planned, "company_id": want["company_id"], "company_fields": None, "requisite_id": None,
               "requisite_fields": None}
        if planned["operation"] != NOOP:
            company = current.get(want["company_id"]) if want["company_id"] is not None else None
            write = cs.crm_company_writes(want, company, presets, originator_id=cfg["originator"],
                                          link_originators=cfg["link_originators"],
                                          onec_ref_field=cfg["onec_ref_field"])
            row.update(operation=write.operation, changed_fields=",".join(write.changed_fields),
                       company_fields=_json(write.company_fields), requisite_id=write.requisite_id,
                       requisite_fields=_json(write.requisite_fields))
            if write.operation == cs.NOOP:
                row["reason"] = "in sync"
        rows.append(row)
    rows += [{"key": ref, "operation": cs.HOLD_BACK, "reason": why} for ref, why in sorted(held.items())]
    plan = pd.DataFrame(rows, columns=CRM_PLAN_COLUMNS).astype({"company_id": "Int64", "requisite_id": "Int64"})
    with warehouse.connect() as conn:
        replace_table(conn, "crm_push", "company_from_1c_plan", plan)
    counts = plan["operation"].value_counts().to_dict()
    population = int(desired["company_id"].notna().sum()) if not desired.empty else 0
    writes = plan[plan["operation"] != cs.HOLD_BACK]
    guard_view = writes.assign(operation=writes["operation"].replace({cs.ADD: "update"}))
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(plan),
                  "planned": int(plan["operation"].isin([cs.ADD, cs.UPDATE]).sum()),
                  "adds": int(counts.get(cs.ADD, 0)), "updates": int(counts.get(cs.UPDATE, 0)),
                  "held_back": int(counts.get(cs.HOLD_BACK, 0)),
                  "api_calls": client.stats.http_calls - calls,
                  "preview": preview(plan[plan["operation"] != NOOP],
                                     ["key", "company_id", "operation", "reason", "changed_fields"])},
        check_results=[_guard_result(context, guard_view, population)])


def find_linked_companies(client, refs: list[str], originators: tuple[str, ...]) -> dict[str, int]:
    """{1C ref: CRM company ID} of companies already carrying one of `refs` as ORIGIN_ID (lowest ID wins)."""
    found: dict[str, int] = {}
    for start in range(0, len(refs), 50):
        chunk = refs[start:start + 50]
        records = client.export_all("crm.company.list", select=["ID", "ORIGINATOR_ID", "ORIGIN_ID"],
                                    filter={"@ORIGIN_ID": chunk, "@ORIGINATOR_ID": list(originators)})
        for rec in sorted(records, key=lambda r: int(r["ID"])):
            found.setdefault(str(rec["ORIGIN_ID"]), int(rec["ID"]))
    return found


def fetch_companies(client, company_ids: list[int]) -> dict[int, cs.CrmCompany]:
    """Current state (fields, multifields, requisite) of a few companies, read from the portal."""
    if not company_ids:
        return {}
    companies, requisites = [], []
    for start in range(0, len(company_ids), 50):
        chunk = company_ids[start:start + 50]
        companies += client.export_all("crm.company.list", filter={"@ID": chunk},
                                       select=["ID", "TITLE", "ORIGINATOR_ID", "ORIGIN_ID", "EMAIL", "PHONE"])
        requisites += client.export_all("crm.requisite.list", filter={"ENTITY_TYPE_ID": 4, "@ENTITY_ID": chunk},
                                        select=["*"])
    return cs.crm_companies_by_id(companies, requisites)


def _combine(key: str, operation: str, parts: list[RowOutcome]) -> RowOutcome:
    bad = [p for p in parts if p.status != OK]
    if bad:
        return RowOutcome(key, operation, FAILED, error="; ".join(p.error or "" for p in bad)[:500],
                          error_class=bad[0].error_class, attempts=max(p.attempts for p in parts))
    return RowOutcome(key, operation, OK, attempts=max((p.attempts for p in parts), default=1))


@dg.asset(key=TO_CRM, deps=[TO_CRM_PLAN], kinds={"bitrix24", "duckdb"}, pool="bitrix24_api", **COMMON,
          description="Writes of the 1C -> CRM plan, one row per 1C counterparty written: crm.company.add "
                      "(after looking the 1C ref up in ORIGIN_ID, so a rerun never adds twice), "
                      "crm.requisite.add/update, crm.company.update; every outcome in sync.results.")
def companies_from_1c(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource, warehouse: WarehouseResource):
    cfg = _client_master_settings()
    with warehouse.connect() as conn:
        plan = read_table(conn, "crm_push", "company_from_1c_plan")
    todo = plan[plan["operation"].isin([cs.ADD, cs.UPDATE])] if not plan.empty else plan
    client = bitrix24.client()
    calls = client.stats.http_calls
    outcomes, target_ids = _write_to_crm(client, todo, cfg) if not todo.empty else ([], {})
    with warehouse.connect() as conn:
        results = journal.record(conn, flow=FLOW_TO_CRM, run_id=context.run.run_id, plan=todo,
                                 outcomes=outcomes, target_ids=target_ids)
    ok = sum(o.status == OK for o in outcomes)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(outcomes), "planned": len(todo), "succeeded": ok,
        "failed": len(outcomes) - ok, "api_calls": client.stats.http_calls - calls,
        "preview": preview(results, ["key", "target_id", "operation", "status", "error"])})


def _write_to_crm(client, todo: pd.DataFrame, cfg: dict) -> tuple[list[RowOutcome], dict[str, str]]:
    if cfg["onec_ref_field"]:  # the portal ignores writes to a missing user field: create it first
        ensure_userfields(client, "company", [UserField(cfg["onec_ref_field"], "string", "Ссылка 1С")])
    presets = _presets(client)
    rows = {r["key"]: r for r in todo.to_dict("records")}
    adds = [k for k, r in rows.items() if r["operation"] == cs.ADD]
    # Idempotency: a company this product (or a crashed earlier run) already made is found by ORIGIN_ID.
    existing = find_linked_companies(client, adds, (cfg["originator"], *cfg["link_originators"])) if adds else {}
    company_ids = {k: int(r["company_id"]) for k, r in rows.items() if not pd.isna(r["company_id"])}
    if existing:
        found = fetch_companies(client, sorted(set(existing.values())))
        for key, company_id in existing.items():
            want = _desired_from_plan(rows[key])
            write = cs.crm_company_writes(want, found.get(company_id), presets, originator_id=cfg["originator"],
                                          link_originators=cfg["link_originators"],
                                          onec_ref_field=cfg["onec_ref_field"])
            rows[key] = {**rows[key], "operation": write.operation, "company_fields": _json(write.company_fields),
                         "requisite_id": write.requisite_id, "requisite_fields": _json(write.requisite_fields)}
            company_ids[key] = company_id
    parts: dict[str, list[RowOutcome]] = {k: [] for k in rows}
    # 1. new companies
    new = [WriteCommand(k, "crm.company.add", {"fields": json.loads(r["company_fields"]),
                                               "params": {"REGISTER_SONET_EVENT": "N"}}, "add")
           for k, r in rows.items() if r["operation"] == cs.ADD]
    for outcome in apply_commands(client, new):
        parts[outcome.key].append(outcome)
        if outcome.status == OK:
            company_ids[outcome.key] = int(outcome.result)
    # 2. company updates and requisites (a requisite needs its company's ID)
    commands = []
    for key, r in rows.items():
        if key not in company_ids:
            continue
        company_fields = json.loads(r["company_fields"] or "{}")
        requisite_fields = json.loads(r["requisite_fields"] or "{}")
        if r["operation"] == cs.UPDATE and company_fields:
            commands.append(WriteCommand(f"{key}|company", "crm.company.update",
                                         {"id": company_ids[key], "fields": company_fields}))
        if requisite_fields:
            if pd.isna(r["requisite_id"]) or r["requisite_id"] is None:
                fields = {**requisite_fields, "ENTITY_ID": company_ids[key]}
                commands.append(WriteCommand(f"{key}|requisite", "crm.requisite.add", {"fields": fields}, "add"))
            else:
                commands.append(WriteCommand(f"{key}|requisite", "crm.requisite.update",
                                             {"id": int(r["requisite_id"]), "fields": requisite_fields}))
    for outcome in apply_commands(client, commands):
        parts[outcome.key.split("|")[0]].append(outcome)
    outcomes = [_combine(k, rows[k]["operation"] if rows[k]["operation"] != NOOP else "update", p)
                for k, p in parts.items() if p or rows[k]["operation"] == NOOP]
    outcomes = [o if parts[o.key] else RowOutcome(o.key, "noop", OK) for o in outcomes]
    return outcomes, {k: str(v) for k, v in company_ids.items()}


def _desired_from_plan(row: dict) -> dict:
    after = json.loads(row["after"])
    return {**after, "key": row["key"], "emails": [v for v in (after.get("emails") or "").split(",") if v],
            "phones": [v for v in (after.get("phones") or "").split(",") if v]}


# ============================================ CRM -> 1C ==============================================

def onec_write_settings() -> dict:
    """`settings/onec_writes.toml` with the environment switch applied (B24_1C_ONEC_DRY_RUN)."""
    config = settings.load("onec_writes")
    env = os.environ.get("B24_1C_ONEC_DRY_RUN")
    dry = config.get("dry_run", True) if env is None else env.strip().lower() not in ("0", "false", "no", "off")
    return {"dry_run": bool(dry), "max_creates": int(config.get("max_creates_per_run", 20)),
            "allowed": list(config.get("counterparty", {}).get("allowed_fields", []))}


@dg.asset(key=TO_1C_PLAN, deps=[CLIENTS, dg.AssetKey(["client_master", "client_match_candidates"]),
                                dg.AssetKey(["client_master", "duplicate_groups"]), *RAW],
          kinds={"1c", "bitrix24", "duckdb"}, pool="duckdb", check_specs=[_guard_spec(TO_1C_PLAN)], **COMMON,
          description="CRM companies that may become 1C counterparties, one row per only-CRM company (key = "
                      "company ID): create (validated, allow-listed body as JSON), invalid (problems named), "
                      "skipped (duplicate, in review, already linked) or link (made earlier, link not written).")
def counterparty_from_crm_plan(context: dg.AssetExecutionContext, bitrix24: Bitrix24Resource,
                               warehouse: WarehouseResource):
    cfg, writes = _client_master_settings(), onec_write_settings()
    client = bitrix24.client()
    calls = client.stats.http_calls
    presets = _presets(client)
    with warehouse.connect() as conn:
        clients = read_table(conn, "client_master", "clients")
        review = read_table(conn, "client_master", "client_match_candidates")
        dups = read_table(conn, "client_master", "duplicate_groups")
        companies = cs.crm_companies_by_id(read_table(conn, "bitrix24", "companies"),
                                           read_table(conn, "bitrix24", "requisites"))
        pushed = journal.last_pushed(conn, FLOW_TO_1C)
    review_ids = review["company_id"].dropna().astype(int).tolist() if not review.empty else []
    dup_ids = (dups.loc[dups["system"].astype(str).str.lower().isin(["crm", "bitrix24"]), "record_id"]
               .astype(int).tolist() if not dups.empty else [])
    candidates, skipped = cs.counterparty_candidates(clients, companies, presets, review_company_ids=review_ids,
                                                     duplicate_company_ids=dup_ids,
                                                     link_originators=(cfg["originator"], *cfg["link_originators"]))
    made = dict(zip(pushed["key"].astype(str), pushed["target_id"])) if not pushed.empty else {}
    rows = [{"key": s["key"], "company_id": s["company_id"], "operation": "skip", "reason": s["reason"]}
            for s in skipped.to_dict("records")]
    for cand in candidates.to_dict("records"):
        verdict = cs.validate_counterparty(cand)
        row = {"key": cand["key"], "company_id": cand["company_id"], "inn": verdict.values.get("inn"),
               "kpp": verdict.values.get("kpp"), "kind": verdict.kind}
        if not verdict.ok:
            row.update(operation="invalid", reason="validation", problems="; ".join(verdict.problems))
        elif cand["key"] in made:
            # created earlier but the CRM company still has no link: only the link is written again
            row.update(operation=cs.LINK, reason="created earlier, link missing", body=_json({"Ref_Key": made[cand["key"]]}))
        else:
            body, dropped = cs.counterparty_body(verdict, writes["allowed"])
            row.update(operation="create", reason="only in the CRM", body=_json(body), dropped_fields=",".join(dropped),
                       after=_json(body), payload_hash=payload_hash(body))
        rows.append(row)
    plan = pd.DataFrame(rows, columns=ONEC_PLAN_COLUMNS).astype({"company_id": "Int64"})
    with warehouse.connect() as conn:
        replace_table(conn, "onec_push", "counterparty_from_crm_plan", plan)
    counts = plan["operation"].value_counts().to_dict()
    guard_view = plan.assign(operation=plan["operation"].map(lambda o: "update" if o in ("create", cs.LINK) else NOOP),
                             reason=plan["operation"].map(lambda o: "never pushed" if o == "create" else "link"))
    population = int(clients["onec_ref"].notna().sum()) if not clients.empty else 0
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(plan), "planned": int(counts.get("create", 0) + counts.get(cs.LINK, 0)),
                  **{f"by_operation_{k}": int(v) for k, v in counts.items()},
                  "api_calls": client.stats.http_calls - calls,
                  "preview": preview(plan[plan["operation"] != "skip"],
                                     ["key", "operation", "inn", "kpp", "kind", "problems"])},
        check_results=[_guard_result(context, guard_view, population)])


class OneCWriteConfig(dg.Config):
    """Run config of the CRM -> 1C writes: a dry run unless explicitly turned off (and allowed in settings)."""

    dry_run: bool = True


@dg.asset(key=TO_1C, deps=[TO_1C_PLAN], kinds={"1c", "bitrix24", "duckdb"}, pool="onec_odata", **COMMON,
          description="Counterparties written to 1C from the CRM plan, one row per planned company: POST "
                      "Catalog_Контрагенты with the marker b24-1c:company:<ID> in Комментарий (looked up "
                      "first), then the new Ref_Key written to the company's ORIGIN_ID. A dry run (default) "
                      "journals what would be written and calls 1C not at all.")
def counterparties_from_crm(context: dg.AssetExecutionContext, config: OneCWriteConfig, onec: OneCResource,
                            bitrix24: Bitrix24Resource, warehouse: WarehouseResource):
    cfg, writes = _client_master_settings(), onec_write_settings()
    dry_run = config.dry_run or writes["dry_run"]
    with warehouse.connect() as conn:
        plan = read_table(conn, "onec_push", "counterparty_from_crm_plan")
    todo = plan[plan["operation"].isin(["create", cs.LINK, "invalid"])] if not plan.empty else plan
    outcomes: list[RowOutcome] = []
    target_ids: dict[str, str] = {}
    onec_calls = b24_calls = 0
    creates = todo[todo["operation"] == "create"] if not todo.empty else todo
    allowed = creates.head(writes["max_creates"]) if not creates.empty else creates
    for r in todo.to_dict("records"):
        if r["operation"] == "invalid":
            # bad data, not a failed write: retrying cannot help until someone fixes the CRM record
            outcomes.append(RowOutcome(r["key"], "create", "rejected", error=f"not written: {r['problems']}",
                                       error_class="data", attempts=0))
        elif r["operation"] == "create" and r["key"] not in set(allowed["key"]):
            outcomes.append(RowOutcome(r["key"], "create", "deferred",
                                       error=f"over the per-run cap of {writes['max_creates']}", attempts=0))
        elif dry_run:
            outcomes.append(RowOutcome(r["key"], r["operation"], "dry_run", attempts=0))
    if not dry_run:
        live = todo[(todo["operation"] == cs.LINK) | todo["key"].isin(allowed["key"])] if not todo.empty else todo
        if not live.empty:
            onec_client, b24_client = onec.client(), bitrix24.client()
            before = (onec_client.stats.requests, b24_client.stats.http_calls)
            live_outcomes, target_ids = _write_to_onec(onec_client, b24_client, live, cfg)
            outcomes += live_outcomes
            onec_calls = onec_client.stats.requests - before[0]
            b24_calls = b24_client.stats.http_calls - before[1]
    with warehouse.connect() as conn:
        results = journal.record(conn, flow=FLOW_TO_1C, run_id=context.run.run_id, plan=todo, outcomes=outcomes,
                                 dry_run=dry_run, target_ids=target_ids)
    by_status = pd.Series([o.status for o in outcomes]).value_counts().to_dict() if outcomes else {}
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(outcomes), "dry_run": dry_run, "planned": len(todo),
        "succeeded": int(by_status.get(OK, 0)), "failed": int(by_status.get(FAILED, 0)),
        "rejected": int(by_status.get("rejected", 0)), "deferred": int(by_status.get("deferred", 0)),
        "api_calls": onec_calls + b24_calls,
        "onec_calls": onec_calls, "bitrix24_calls": b24_calls,
        "preview": preview(results, ["key", "target_id", "operation", "status", "error"])})


def _write_to_onec(onec_client, b24_client, live: pd.DataFrame, cfg: dict) -> tuple[list[RowOutcome], dict]:
    """Create (or find by marker) each counterparty, then link its CRM company to the new Ref_Key."""
    outcomes: dict[str, RowOutcome] = {}
    refs: dict[str, str] = {}
    countries: dict[str, str | None] = {}
    for r in live.to_dict("records"):
        key = r["key"]
        if r["operation"] == cs.LINK:
            refs[key] = json.loads(r["body"])["Ref_Key"]
            continue
        marker = cs.counterparty_marker(key)
        try:
            found = onec_client.find_by_marker("Catalog_Контрагенты", marker)
            if found:
                refs[key] = found[0]["Ref_Key"]
                continue
            body = json.loads(r["body"])
            code = body.pop("СтранаРегистрации", None)
            if code:
                if code not in countries:
                    countries[code] = onec_client.country(code)
                if countries[code] is None:
                    outcomes[key] = RowOutcome(key, "create", FAILED, error_class="data", error=(
                        f"Catalog_СтраныМира has no country with code {code} (or is not published): UNF would "
                        "clear the КПП of a legal entity written without its country"))
                    continue
                body["СтранаРегистрации_Key"] = countries[code]
            created = onec_client.create_counterparty(body, marker)
            refs[key] = created["Ref_Key"]
            if body.get("КПП") and created.get("КПП") != body["КПП"]:
                # 1C kept the object but dropped the КПП (ПередЗаписью): linked, and reported
                outcomes[key] = RowOutcome(key, "create", FAILED, error_class="data", error=(
                    f"1C saved counterparty {created['Ref_Key']} without the КПП {body['КПП']} sent: UNF clears it "
                    "for a legal entity not registered in Russia (allow СтранаРегистрации in onec_writes.toml)"))
        except OneCError as exc:  # names host + entity set only, never the credentials
            outcomes[key] = RowOutcome(key, "create", FAILED, error=str(exc)[:500], error_class="data")
    links = [WriteCommand(key, "crm.company.update",
                          {"id": int(key), "fields": {"ORIGINATOR_ID": cfg["originator"], "ORIGIN_ID": ref,
                                                      **({cfg["onec_ref_field"]: ref} if cfg["onec_ref_field"] else {})}})
             for key, ref in refs.items()]
    for outcome in apply_commands(b24_client, links):
        op = "create" if live.set_index("key").loc[outcome.key, "operation"] == "create" else cs.LINK
        if outcome.status == OK:
            if outcome.key not in outcomes:  # linked, but a КПП 1C dropped stays reported
                outcomes[outcome.key] = RowOutcome(outcome.key, op, OK, attempts=outcome.attempts)
        else:
            outcomes[outcome.key] = RowOutcome(outcome.key, op, FAILED,
                                               error=f"created in 1C as {refs[outcome.key]}, CRM link failed: "
                                                     f"{outcome.error}", error_class=outcome.error_class)
    # a created counterparty whose link failed still counts as made: keep its ref as the baseline target
    ok_or_made = {k: v for k, v in refs.items()}
    return list(outcomes.values()), ok_or_made


defs = dg.Definitions(assets=[company_from_1c_plan, companies_from_1c, counterparty_from_crm_plan,
                              counterparties_from_crm])
