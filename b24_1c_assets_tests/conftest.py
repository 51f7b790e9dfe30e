"""Shared fixtures: one generated world per session, fresh sandbox servers per test on ephemeral ports.

Tests talk real HTTP over loopback to these servers; nothing that can run is mocked.
"""

from __future__ import annotations

import dagster as dg
import pytest

from b24_1c_assets.sandbox import start_sandbox
from b24_1c_assets.sandbox.faults import Faults

WORLD_SEED = 7
WORLD_SCALE = 60


@pytest.fixture(scope="session")
def world():
    from b24_1c_assets.sandbox.world import generate

    return generate(seed=WORLD_SEED, scale=WORLD_SCALE)


@pytest.fixture
def portal_factory(world):
    """Start a sandbox Bitrix24 portal with chosen limits/faults; stopped after the test."""
    from b24_1c_assets.sandbox.bitrix24_portal import PortalServer

    started = []

    def start(*, rate: float = 50.0, burst: int = 50, faults: Faults | None = None, world_=None, **kw):
        server = PortalServer(
            world_ or world, host="127.0.0.1", port=0, rate=rate, burst=burst, faults=faults or Faults(), **kw
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def portal(portal_factory):
    """A healthy portal; its limit is raised so functional tests run fast (limit tests use the factory)."""
    return portal_factory()


@pytest.fixture
def onec_profile():
    """The UNF edition the sandbox 1C follows (`unf30`). A module or test reads both editions with
    `pytestmark = both_onec_profiles` / `@both_onec_profiles` (parametrizes this fixture)."""
    return "unf30"


# Run a test (or a module, as `pytestmark`) against each UNF edition's sandbox 1C: UNF 3.0 and 1.6.
both_onec_profiles = pytest.mark.parametrize("onec_profile", ["unf30", "unf16"])


@pytest.fixture
def onec_factory(world, onec_profile):
    """Start a sandbox 1C OData server (edition `onec_profile` unless `profile=` is given); stopped after
    the test."""
    from b24_1c_assets.sandbox.onec_server import OneCServer

    started = []

    def start(*, faults: Faults | None = None, world_=None, **kw):
        kw.setdefault("profile", onec_profile)
        server = OneCServer(world_ or world, host="127.0.0.1", port=0, faults=faults or Faults(), **kw)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def onec(onec_factory):
    return onec_factory()


@pytest.fixture
def definitions(monkeypatch, tmp_path):
    """The code location's Definitions, loaded and validated as the webserver would (placeholder config)."""
    import dagster as dg

    monkeypatch.setenv("B24_WEBHOOK_URL", "https://portal.example/rest/1/secretcode123/")
    monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(tmp_path / "t.duckdb"))
    from b24_1c_assets.definitions import defs

    loaded = defs()
    dg.Definitions.validate_loadable(loaded)
    return loaded


# The sandbox the product's definitions point at, and a way to run assets: used by the Dagster-level tests
# (defs/) and by the browser tests (ui/).
@pytest.fixture
def onec_options():
    """More options of the sandbox 1C (`unpublished`, `empty_dimensions`, ...): a module overrides this fixture."""
    return {}


@pytest.fixture
def sandbox(world, monkeypatch, tmp_path, onec_profile, onec_options):
    """Both sandbox servers over the session's world, and the environment pointing the product at them; the
    1C base follows `onec_profile` (parametrize it with `both_onec_profiles` to run against UNF 3.0 and 1.6)."""
    running = start_sandbox(world=world, rate=50, burst=50, onec_profile=onec_profile, onec_options=onec_options)
    for name, value in running.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("B24_1C_DUCKDB_PATH", str(tmp_path / "b24_1c.duckdb"))
    monkeypatch.setenv("ONEC_EXCHANGE_DIR", str(tmp_path / "exchange"))
    yield running
    running.stop()


@pytest.fixture
def run_assets(sandbox):
    """Materialize a selection (an AssetSelection or a list of keys/strings) of the whole location."""
    from b24_1c_assets.definitions import defs
    from b24_1c_assets.lib.partitions import daily_partitions

    def run(selection, *, partition_key: str | None = None, tags: dict | None = None, raise_on_error: bool = True):
        loaded = defs()
        assets = list(loaded.assets or [])
        checks = list(loaded.asset_checks or [])
        if not isinstance(selection, dg.AssetSelection):
            selection = dg.AssetSelection.assets(
                *[dg.AssetKey.from_user_string(s) if isinstance(s, str) else s for s in selection]
            )
        graph = loaded.resolve_asset_graph()
        partitioned = any(graph.get(key).partitions_def is not None for key in selection.resolve(graph))
        if partitioned:
            partition_key = partition_key or daily_partitions.get_last_partition_key()
        return dg.materialize(
            [*assets, *checks],
            selection=selection,
            resources=loaded.resources,
            partition_key=partition_key if partitioned else None,
            tags=tags,
            raise_on_error=raise_on_error,
        )

    return run
