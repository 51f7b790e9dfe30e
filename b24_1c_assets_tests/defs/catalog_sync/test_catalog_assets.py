"""Catalog 1C -> CRM products against the sandbox: creates, deactivates, reruns without writes or twins."""

import dagster as dg
import duckdb

EXTRACTS = dg.AssetSelection.assets(
    ["onec", "items"], ["onec", "prices"], ["onec", "price_types"], ["bitrix24", "products"]
)
FLOW = dg.AssetSelection.groups("catalog_sync")


def writes(log, prefix="crm.product."):
    """Write methods called (inner batch commands included), e.g. ['crm.product.update']."""
    methods = [m for e in log for m in (e.get("commands") or [e.get("method")])]
    return [m for m in methods if str(m).lower().startswith(prefix) and str(m).endswith((".add", ".update"))]


def products_by_xml(state):
    return {r["XML_ID"]: r for r in state.tables["product"].rows.values() if r.get("XML_ID")}


def test_catalog_push_creates_missing_deactivates_deleted_and_reruns_with_no_writes(sandbox, run_flow, tmp_path):
    world = sandbox.world
    state = sandbox.portal.state
    assert run_flow(EXTRACTS | FLOW).success
    crm = products_by_xml(state)
    for item in world.items:
        ref = world.guid("item", item.key)
        if item.deleted and not item.in_crm:
            assert ref not in crm  # never created only to be switched off
        else:
            assert crm[ref]["ACTIVE"] == ("N" if item.deleted else "Y"), item
            assert float(crm[ref]["PRICE"]) == float(item.price)
    assert len(crm) == len(state.tables["product"].rows)  # no twins
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM sync.results GROUP BY 1").fetchall())
    assert statuses.get("failed", 0) == 0 and statuses["ok"] > 0

    before = len(sandbox.portal.request_log)
    assert run_flow(EXTRACTS | FLOW).success
    assert writes(sandbox.portal.request_log[before:]) == []


def test_catalog_crash_and_rerun_makes_no_duplicates_and_dry_run_writes_nothing(sandbox, run_flow, tmp_path):
    state = sandbox.portal.state
    count = len(state.tables["product"].rows)
    before = len(sandbox.portal.request_log)
    assert run_flow(EXTRACTS | FLOW, tags={"b24_1c/dry_run": "true"}).success
    assert writes(sandbox.portal.request_log[before:]) == []
    assert len(state.tables["product"].rows) == count

    assert run_flow(EXTRACTS | FLOW).success
    created = len(state.tables["product"].rows)
    assert created > count
    # crash after writing, before the journal: forget the baseline; the CRM extract is stale too
    with duckdb.connect(str(tmp_path / "b24_1c.duckdb")) as conn:
        conn.execute("DELETE FROM sync.push_state")
        conn.execute("DELETE FROM bitrix24.products")
    assert run_flow(FLOW | dg.AssetSelection.assets(["onec", "items"])).success
    assert len(state.tables["product"].rows) == created
    assert len(products_by_xml(state)) == created


def test_a_changed_price_is_sent_alone(sandbox, run_flow):
    world = sandbox.world
    assert run_flow(EXTRACTS | FLOW).success
    item = next(i for i in world.items if not i.deleted and i.in_crm)
    ref = world.guid("item", item.key)
    for price in sandbox.onec.state.prices:
        if price["Номенклатура_Key"] == ref:
            price["Цена"] = price["Цена"] + 1
    before = len(sandbox.portal.request_log)
    assert run_flow(EXTRACTS | FLOW).success
    sent = writes(sandbox.portal.request_log[before:])
    assert sent == ["crm.product.update"]
    assert float(products_by_xml(sandbox.portal.state)[ref]["PRICE"]) == float(item.price + 1)


def test_without_odata_the_catalog_comes_from_commerceml_files(sandbox, run_flow, tmp_path, monkeypatch):
    from b24_1c_assets.sandbox.exchange_files import import_xml, offers_xml

    world = sandbox.world
    folder = tmp_path / "exchange"
    folder.mkdir(exist_ok=True)
    (folder / "import.xml").write_text(import_xml(world), encoding="utf-8")
    (folder / "offers.xml").write_text(offers_xml(world), encoding="utf-8")
    monkeypatch.delenv("ONEC_ODATA_URL")
    assert run_flow(dg.AssetSelection.assets(["bitrix24", "products"]) | FLOW).success
    crm = products_by_xml(sandbox.portal.state)
    for item in world.items:
        ref = world.guid("item", item.key)
        if not item.deleted:
            assert crm[ref]["ACTIVE"] == "Y" and float(crm[ref]["PRICE"]) == float(item.price)


def test_guard_blocks_a_mass_price_change_until_overridden(sandbox, run_flow, tmp_path, monkeypatch):
    from b24_1c_assets import settings

    custom = tmp_path / "settings"
    custom.mkdir()
    text = settings.settings_path("deal_orders").read_text(encoding="utf-8")
    (custom / "deal_orders.toml").write_text(text.replace("max_changes = 500", "max_changes = 2"), encoding="utf-8")
    monkeypatch.setenv("B24_1C_SETTINGS_DIR", str(custom))
    assert run_flow(EXTRACTS | FLOW).success  # an initial load is not a change
    for price in sandbox.onec.state.prices:
        price["Цена"] = price["Цена"] * 2
    before = len(sandbox.portal.request_log)
    blocked = run_flow(EXTRACTS | FLOW, raise_on_error=False)
    assert not blocked.success
    assert writes(sandbox.portal.request_log[before:]) == []
    assert run_flow(EXTRACTS | FLOW, tags={"b24_1c/guard_override": "price list doubled on purpose"}).success
    assert len(writes(sandbox.portal.request_log[before:])) > 2
