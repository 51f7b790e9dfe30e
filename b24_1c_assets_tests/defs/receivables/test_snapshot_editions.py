"""The receivables snapshot against each UNF edition's 1C: equal to 1C's own Balance to the kopeck, with
deactivated movements in the register and optional dimensions that may be Undefined in every movement."""

from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from b24_1c_assets.defs.receivables.assets import BALANCE_CHECK, SNAPSHOT
from b24_1c_assets.sandbox import start_sandbox
from b24_1c_assets.sandbox.onec_seed import counterparty_guid

EDITIONS = [("unf30", ()), ("unf16", ()), ("unf30", ("Заказ", "Документ")), ("unf16", ("Заказ",))]


@pytest.fixture(params=EDITIONS, ids=lambda p: f"{p[0]}{'-empty-' + '-'.join(p[1]) if p[1] else ''}")
def sandbox(request, world, monkeypatch, tmp_path):
    """The Dagster fixtures' sandbox, its 1C following one edition (and leaving some dimensions empty)."""
    profile, empty = request.param
    running = start_sandbox(
        world=world, rate=50, burst=50, onec_profile=profile, onec_options={"empty_dimensions": empty}
    )
    for name, value in running.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(tmp_path / "b24_1c.duckdb"))
    monkeypatch.setenv("ONEC_EXCHANGE_DIR", str(tmp_path / "exchange"))
    running.empty_dimensions = empty
    yield running
    running.stop()


def onec_balance_by_counterparty(server) -> dict[str, Decimal]:
    """1C's own Balance per counterparty, read over OData apart from the product."""
    import requests

    resp = requests.get(
        f"{server.odata_url}/AccumulationRegister_РасчетыСПокупателями/Balance()",
        params={"$format": "json"},
        auth=(server.username, server.password),
        timeout=30,
    )
    resp.raise_for_status()
    out: dict[str, Decimal] = {}
    for row in resp.json()["value"]:
        out[row["Контрагент_Key"]] = out.get(row["Контрагент_Key"], Decimal(0)) + Decimal(str(row["СуммаBalance"]))
    return out


def snapshot_by_counterparty(conn) -> dict[str, Decimal]:
    """Our receivables snapshot's balance per counterparty, to the kopeck."""
    return {
        k: Decimal(v)
        for k, v in conn.execute(
            "SELECT counterparty_ref, CAST(sum(balance) AS VARCHAR) FROM receivables.receivables_snapshot GROUP BY 1"
        ).fetchall()
    }


def test_snapshot_equals_1c_balance_per_counterparty(sandbox, run_assets, tmp_path):
    result = run_assets(
        dg.AssetSelection.assets(SNAPSHOT).upstream().required_multi_asset_neighbors(), raise_on_error=False
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[BALANCE_CHECK].passed and checks[BALANCE_CHECK].metadata["compared"].value > 0

    with duckdb.connect(str(tmp_path / "b24_1c.duckdb"), read_only=True) as conn:
        ours = snapshot_by_counterparty(conn)
        raw = conn.execute("SELECT * FROM onec.settlement_movements").df()
        inactive_total = conn.execute('SELECT count(*) FROM onec.settlement_movements WHERE NOT "Active"').fetchone()[0]
    assert inactive_total > 0  # deactivated lines reached the warehouse: counting them would change balances
    # the order as the edition publishes it (3.0 composite `Заказ` + `Заказ_Type`, 1.6 `Заказ_Key`), and
    # under the name asked for
    published = "Заказ_Key" if sandbox.onec.profile.name == "unf16" else "Заказ_Type"
    assert published in raw.columns and "Заказ" in raw.columns
    assert bool(raw["Заказ"].isna().all()) == ("Заказ" in sandbox.empty_dimensions)

    theirs = onec_balance_by_counterparty(sandbox.onec)
    nonzero = {k: v for k, v in ours.items() if v != 0}
    assert nonzero == {k: v for k, v in theirs.items() if v != 0}
    world = sandbox.world
    expected = {counterparty_guid(world, p.key): world.expected_balance(p.key) for p in world.parties}
    assert {k: v for k, v in expected.items() if v != 0} == nonzero


@pytest.mark.parametrize(
    "columns, orders",
    [
        ('"Заказ" VARCHAR, "Заказ_Type" VARCHAR, "Active" BOOLEAN', ["o-1", None]),  # 3.0
        ('"Заказ_Key" VARCHAR, "Active" BOOLEAN', ["o-1", None]),  # 1.6
        ('"Active" BOOLEAN', [None, None]),  # the dimension absent altogether
        ('"Заказ" VARCHAR', ["o-1", None]),  # Active not published: every movement counts
    ],
)
def test_movements_read_whatever_the_published_shape(columns, orders):
    from b24_1c_assets.domain.receivables_sources import settlement_movements_sql
    from b24_1c_assets.warehouse import stored_columns

    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA onec")
    conn.execute(
        f'CREATE TABLE onec.settlement_movements ("Period" TIMESTAMP, "RecordType" VARCHAR, '
        f'"Контрагент_Key" VARCHAR, "Договор_Key" VARCHAR, "ТипРасчетов" VARCHAR, '
        f'"Сумма" DECIMAL(38,2), {columns})'
    )
    names = [c.split('"')[1] for c in columns.split(", ")]
    values = {"Заказ": ["o-1", None], "Заказ_Key": ["o-1", None], "Заказ_Type": ["t", None], "Active": [True, False]}
    for i in range(2):
        extra = ", ".join("?" for _ in names)
        conn.execute(
            f"INSERT INTO onec.settlement_movements VALUES (TIMESTAMP '2026-01-0{i + 1}', 'Receipt', "
            f"'cp', 'c', 'Долг', 10.05, {extra})",
            [values[n][i] for n in names],
        )
    present = stored_columns(conn, "onec", "settlement_movements")
    moves = conn.execute(settlement_movements_sql("onec.settlement_movements", present) + " ORDER BY seq").df()
    active = 2 if "Active" not in names else 1  # a deactivated movement never counts
    assert list(moves["order_ref"].where(moves["order_ref"].notna(), None)) == orders[:active]
    assert len(moves) == active
    assert list(moves["kopecks"]) == [1005] * active
