"""Calls each company flow uses per changed record, measured on the sandbox.

1C -> CRM: HTTP calls and batch commands to the portal per company added / updated (first run on a fresh
world, then a rerun with nothing to do). CRM -> 1C: 1C requests (lookup by marker + POST) and portal calls
(link write) per counterparty created, live (dry run off, cap raised).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dagster as dg
import duckdb

from b24_1c_assets.lib.push_flow import DRY_RUN_TAG

SCALE = 60


def _run(selection, tags=None):
    from b24_1c_assets.definitions import defs

    loaded = defs()
    return dg.materialize(
        [*(loaded.assets or []), *(loaded.asset_checks or [])],
        selection=selection,
        resources=loaded.resources,
        tags=tags,
    )


def _counts(portal, onec, p0, o0):
    portal_log, onec_log = portal.request_log[p0:], onec.request_log[o0:]
    commands = sum(len(e.get("commands") or []) or 1 for e in portal_log)
    return {
        "portal_http": len(portal_log),
        "portal_commands": commands,
        "onec_requests": len(onec_log),
        "onec_writes": sum(e["kind"] == "write" for e in onec_log),
    }


def main() -> dict:
    from b24_1c_assets.defs.company_sync import assets as flow
    from b24_1c_assets.sandbox import start_sandbox

    scale = 20 if os.environ.get("BENCH_QUICK") else SCALE
    work = Path(tempfile.mkdtemp(prefix="bench_company_sync_"))
    (work / "settings").mkdir()
    (work / "settings" / "onec_writes.toml").write_text(
        'max_creates_per_run = 10000\n[counterparty]\nallowed_fields = ["Description", '
        '"НаименованиеПолное", "ИНН", "КПП", "РегистрационныйНомер", "ВидКонтрагента", '
        '"ЮридическоеФизическоеЛицо", "Покупатель"]\n',
        encoding="utf-8",
    )
    sandbox = start_sandbox(scale=scale, rate=1000, burst=1000)
    saved = dict(os.environ)
    try:
        os.environ.update(sandbox.env())
        os.environ.update(
            B24_1C_DUCKDB_PATH=str(work / "b24_1c.duckdb"),
            ONEC_EXCHANGE_DIR=str(work / "exchange"),
            B24_1C_SETTINGS_DIR=str(work / "settings"),
            B24_RATE="1000",
            B24_BURST="1000",
        )
        upstream = dg.AssetSelection.assets(
            ["onec", "counterparties"], ["bitrix24", "companies"], ["bitrix24", "requisites"]
        ) | dg.AssetSelection.groups("client_master")
        assert _run(upstream).success
        figures = {}
        portal, onec = sandbox.portal, sandbox.onec
        for label, keys, tags in (
            ("to_crm", [flow.TO_CRM_PLAN, flow.TO_CRM], None),
            ("to_crm_rerun", [flow.TO_CRM_PLAN, flow.TO_CRM], None),
            ("to_1c", [flow.TO_1C_PLAN, flow.TO_1C], {DRY_RUN_TAG: "false"}),
        ):
            p0, o0 = len(portal.request_log), len(onec.request_log)
            assert _run(dg.AssetSelection.assets(*keys), tags).success
            counts = _counts(portal, onec, p0, o0)
            table = "company_from_1c_plan" if label.startswith("to_crm") else "counterparty_from_crm_plan"
            schema = "crm_push" if label.startswith("to_crm") else "onec_push"
            with duckdb.connect(str(work / "b24_1c.duckdb"), read_only=True) as conn:
                changed = conn.execute(
                    f"SELECT count(*) FROM {schema}.{table} WHERE operation IN ('add', 'update', 'create', 'link')"
                ).fetchone()[0]
            counts["changed_records"] = changed
            per = max(changed, 1)
            counts.update(
                {
                    f"{k}_per_record": round(v / per, 3)
                    for k, v in list(counts.items())
                    if k in ("portal_http", "portal_commands", "onec_requests", "onec_writes")
                }
            )
            figures[label] = counts
        print(f"company sync, scale {scale}: calls per changed record")
        print(f"{'flow':<14}{'changed':>8}{'portal http':>12}{'commands':>10}{'1C req':>8}{'1C writes':>10}")
        for label, c in figures.items():
            print(
                f"{label:<14}{c['changed_records']:>8}{c['portal_http']:>12}{c['portal_commands']:>10}"
                f"{c['onec_requests']:>8}{c['onec_writes']:>10}"
            )
        return {"scale": scale, **figures}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sandbox.stop()


if __name__ == "__main__":
    main()
