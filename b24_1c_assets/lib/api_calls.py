"""HTTP calls an asset made, for its `api_calls` metadata: one counter instead of before/after arithmetic."""

from __future__ import annotations

from b24_1c_assets.bitrix24.client import ClientStats


def _made(client) -> int:
    """HTTP calls a Bitrix24 or 1C client has made so far (each protocol client names its counter its way)."""
    stats = client.stats
    return stats.http_calls if isinstance(stats, ClientStats) else stats.requests


class ApiCalls:
    """Calls the given clients have made since this counter was made; a None client counts nothing.

    calls = ApiCalls(client)
    ...
    metadata["api_calls"] = calls.count
    """

    def __init__(self, *clients):
        self._clients = [c for c in clients if c is not None]
        self._start = [_made(c) for c in self._clients]

    @property
    def count(self) -> int:
        return sum(_made(c) - start for c, start in zip(self._clients, self._start))


def calls_made(calls: int | ApiCalls) -> int:
    """A count, or a counter read now (a read landed chunk by chunk is counted once it has all been read)."""
    return calls.count if isinstance(calls, ApiCalls) else int(calls)
