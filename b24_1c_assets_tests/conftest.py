"""Shared fixtures: one generated world per session, fresh sandbox servers per test on ephemeral ports.

Tests talk real HTTP over loopback to these servers; nothing that can run is mocked.
"""

from __future__ import annotations

import pytest

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
        server = PortalServer(world_ or world, host="127.0.0.1", port=0, rate=rate, burst=burst,
                              faults=faults or Faults(), **kw)
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
