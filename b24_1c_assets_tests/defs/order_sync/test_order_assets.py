"""Deals at an order stage -> 1C customer orders against the sandbox."""

import dagster as dg
import duckdb
import requests

from b24_1c_assets.domain.order_sync import deal_of_comment
from b24_1c_assets_tests.conftest import both_onec_profiles

UPSTREAM = dg.AssetSelection.groups("client_master") | dg.AssetSelection.assets(
    ["bitrix24", "deals"],
    ["bitrix24", "products"],
    ["bitrix24", "companies"],
    ["bitrix24", "requisites"],
    ["onec", "counterparties"],
    ["onec", "contracts"],
    ["onec", "items"],
    ["onec", "customer_orders"],
    ["onec", "shipments"],
)
FLOW = dg.AssetSelection.groups("order_sync")
ORDERS = "Document_ЗаказПокупателя"


def orders_by_deal(sandbox) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {}
    for rec in sandbox.onec.state.objects[ORDERS].values():
        deal = deal_of_comment(rec.get("Комментарий"))
        if deal is not None:
            found.setdefault(deal, []).append(rec)
    return found


def onec_writes(sandbox, since: int) -> list[dict]:
    return [e for e in sandbox.onec.request_log[since:] if e["kind"] == "write"]


def crm_writes(sandbox, since: int) -> list[str]:
    methods = [m for e in sandbox.portal.request_log[since:] for m in (e.get("commands") or [e.get("method")])]
    return [m for m in methods if str(m).endswith((".add", ".update", ".set"))]


def results(tmp_path) -> dict[str, list]:
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            "SELECT status, key, error FROM sync.results WHERE flow = 'deals_to_onec_orders' AND NOT dry_run"
        ).fetchall()
    out: dict[str, list] = {}
    for status, key, error in rows:
        out.setdefault(status, []).append((key, error))
    return out


@both_onec_profiles
def test_deals_become_posted_orders_rerun_writes_nothing_changes_update_until_shipped(
    sandbox, run_flow, tmp_path, onec_profile
):
    assert run_flow(UPSTREAM | FLOW).success
    made = orders_by_deal(sandbox)
    outcome = results(tmp_path)
    assert made and all(len(v) == 1 for v in made.values())
    assert not outcome.get("failed"), outcome.get("failed")
    assert {int(k) for k, _ in outcome["ok"]} == set(made)
    item = "Номенклатура_Key" if onec_profile == "unf16" else "Номенклатура"
    for deal_id, (order,) in made.items():
        # posted, so UNF's fill check passed: every row has its item (in the edition's shape) and VAT rate
        assert order["Posted"] and order["Запасы"]
        assert all(r[item] and r["СтавкаНДС_Key"] for r in order["Запасы"])
        assert all(r["ДатаОтгрузки"] == order["ДатаОтгрузки"] for r in order["Запасы"])  # per-row position too
        assert order["ВидОперации"] == "ЗаказНаПродажу" and order["Курс"] and order["ДатаОтгрузки"]
        deal = sandbox.portal.state.record("deal", deal_id)
        assert deal["UF_CRM_ONEC_ORDER_REF"] == order["Ref_Key"]
        assert deal["UF_CRM_ONEC_ORDER_NUMBER"] == order["Number"]
    for key, error in outcome.get("rejected", []):
        assert f"deal {key}" in error  # the reason names the deal

    crm_before, onec_before = len(sandbox.portal.request_log), len(sandbox.onec.request_log)
    assert run_flow(UPSTREAM | FLOW).success
    assert onec_writes(sandbox, onec_before) == [] and crm_writes(sandbox, crm_before) == []


def test_dry_run_writes_nothing_and_crash_rerun_makes_no_second_order(sandbox, run_flow, tmp_path):
    crm_before, onec_before = len(sandbox.portal.request_log), len(sandbox.onec.request_log)
    assert run_flow(UPSTREAM | FLOW, tags={"b24_1c/dry_run": "true"}).success
    assert onec_writes(sandbox, onec_before) == [] and crm_writes(sandbox, crm_before) == []
    assert not orders_by_deal(sandbox)

    assert run_flow(UPSTREAM | FLOW).success
    first = {d: [o["Ref_Key"] for o in v] for d, v in orders_by_deal(sandbox).items()}
    # a crash after the 1C POST, before the journal: the baseline is lost and the 1C extract is stale
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb")) as conn:
        conn.execute("DELETE FROM sync.push_state")
        conn.execute("DELETE FROM sync.results")
        conn.execute("DELETE FROM onec.customer_orders")
    assert run_flow(FLOW).success
    again = {d: [o["Ref_Key"] for o in v] for d, v in orders_by_deal(sandbox).items()}
    assert again == first

    # a changed deal updates its order (unpost, patch, post); once shipped, a change is a conflict
    portal = sandbox.portal.state
    deal_id, (order,) = sorted(orders_by_deal(sandbox).items())[0]
    rows = portal.product_rows[deal_id]
    rows[0]["QUANTITY"] = float(rows[0]["QUANTITY"]) + 1
    expected = sum(round(float(r["PRICE"]) * float(r["QUANTITY"]), 2) for r in rows)
    onec_before = len(sandbox.onec.request_log)
    assert run_flow(UPSTREAM | FLOW).success
    written = [(e["method"], e["path"].rsplit("/", 1)[-1]) for e in onec_writes(sandbox, onec_before)]
    assert ("PATCH", written[1][1]) in written and any(p == "Unpost" for _, p in written)
    (updated,) = orders_by_deal(sandbox)[deal_id]
    assert abs(float(updated["СуммаДокумента"]) - expected) < 0.01 and updated["Posted"]
    assert len(updated["Запасы"]) == len(rows)

    shipment = dict(next(iter(sandbox.onec.state.objects["Document_РасходнаяНакладная"].values())))
    # dated when it happens (inside the incremental extract's overlap)
    shipment.update(
        Ref_Key="99999999-0000-0000-0000-000000000001",
        Заказ=order["Ref_Key"],
        Posted=True,
        Date=sandbox.world.as_of.isoformat(),
    )
    sandbox.onec.state.add("Document_РасходнаяНакладная", shipment)
    rows[0]["QUANTITY"] = float(rows[0]["QUANTITY"]) + 1
    onec_before = len(sandbox.onec.request_log)
    assert run_flow(UPSTREAM | FLOW).success
    assert onec_writes(sandbox, onec_before) == []
    assert (str(deal_id), f"deal {deal_id} changed after its 1C order was shipped: not written") in results(tmp_path)[
        "conflict"
    ]


def test_writes_that_fail_after_1c_committed_them_never_make_a_second_order(sandbox, run_flow, tmp_path):
    from b24_1c_assets.sandbox.faults import Faults

    assert run_flow(UPSTREAM).success
    sandbox.onec.faults = Faults(error_503_share=0.3, fail_after_write=True, seed=3)
    faulted_from = len(sandbox.onec.request_log)
    run_flow(FLOW, raise_on_error=False)  # some rows may fail; none may be doubled
    assert any(e["status"] == 503 and e["kind"] == "write" for e in sandbox.onec.request_log[faulted_from:])
    sandbox.onec.faults = Faults()
    assert run_flow(UPSTREAM | FLOW).success
    made = orders_by_deal(sandbox)
    assert made and all(len(v) == 1 for v in made.values())
    outcome = results(tmp_path)
    latest_ok = {int(k) for k, _ in outcome["ok"]}
    assert set(made) <= latest_ok
    assert all(o["Posted"] for (o,) in made.values())


@both_onec_profiles
def test_an_order_shipped_row_by_row_is_not_rewritten(sandbox, run_flow, tmp_path, onec_profile):
    """A shipment may name its order per row (Запасы.Заказ) and not in its header: still shipped."""
    assert run_flow(UPSTREAM | FLOW).success
    deal_id, (order,) = sorted(orders_by_deal(sandbox).items())[0]
    onec = sandbox.onec
    session = requests.Session()
    session.auth = (onec.username.encode(), onec.password.encode())
    url = f"{onec.odata_url}/Document_РасходнаяНакладная"
    rows = [
        {
            "LineNumber": str(n),
            "Заказ": order["Ref_Key"],
            "Заказ_Type": "StandardODATA." + ORDERS,
            "Количество": float(r["Количество"]),
            "Цена": float(r["Цена"]),
            "Сумма": float(r["Сумма"]),
        }
        for n, r in enumerate(order["Запасы"], 1)
    ]
    made = session.post(
        url + "?$format=json",
        json={
            "Контрагент_Key": order["Контрагент_Key"],
            "Договор_Key": order["Договор_Key"],
            "Организация_Key": order["Организация_Key"],
            "СуммаДокумента": float(order["СуммаДокумента"]),
            "Запасы": rows,
        },
        timeout=10,
    ).json()
    assert made["Заказ"] in ("", None) and made["Запасы"][0]["Заказ"] == order["Ref_Key"]
    assert session.post(f"{url}(guid'{made['Ref_Key']}')/Post", timeout=10).status_code == 200
    product_rows = sandbox.portal.state.product_rows[deal_id]
    product_rows[0]["QUANTITY"] = float(product_rows[0]["QUANTITY"]) + 1
    onec_before = len(onec.request_log)
    assert run_flow(UPSTREAM | FLOW).success
    assert onec_writes(sandbox, onec_before) == []
    assert (str(deal_id), f"deal {deal_id} changed after its 1C order was shipped: not written") in results(tmp_path)[
        "conflict"
    ]
