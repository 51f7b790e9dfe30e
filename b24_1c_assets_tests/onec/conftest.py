"""Fixtures for the 1C client tests: a client bound to a sandbox server, scripted faults."""

from __future__ import annotations

import pytest

from b24_1c_assets.onec import OneCClient
from b24_1c_assets.sandbox.faults import Faults


class ScriptedFaults(Faults):
    """Faults that fail exactly the next `count` requests with `outcome` ('drop', '503', '500'), then none.

    Swapped into a running server (`server.faults = ScriptedFaults(...)`) right before the call under test,
    so the client's earlier `$metadata` read is not affected.
    """

    def __init__(self, outcome: str, count: int = 1, *, fail_after_write: bool = False):
        super().__init__(fail_after_write=fail_after_write)
        self.outcome, self.left = outcome, count

    @property
    def any(self) -> bool:
        return self.left > 0

    def pick(self):
        with self._lock:
            if self.left > 0:
                self.left -= 1
                return self.outcome
        return None


@pytest.fixture
def client_for():
    """client_for(server, **options) -> an OneCClient with fast backoff; closed after the test."""
    made = []

    def make(server, **kw):
        kw.setdefault("backoff_initial", 0.01)
        kw.setdefault("backoff_max", 0.05)
        kw.setdefault("page_bytes_target", None)  # fixed small pages: paging paths are exercised
        client = OneCClient(server.odata_url, server.username, server.password, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
