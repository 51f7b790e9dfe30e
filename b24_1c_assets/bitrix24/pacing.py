"""Client-side leaky bucket that keeps a portal's request counter under its limit.

The portal keeps one counter per webhook: +1 per HTTP request (a batch is one), draining at `rate`/s;
a request that would take it over `burst` is refused with 503 QUERY_LIMIT_EXCEEDED.

We pace with pyrate-limiter's GCRA (its TokenBucket is the same algorithm). GCRA keeps a theoretical
arrival time TAT; with emission interval T = 1/rate, TAT - now is exactly the portal's counter expressed
in time (counter = (TAT - now) / T, never below 0, drained by the clock). A request is admitted when
(TAT' - now) <= burst * T with TAT' = max(TAT, now) + T, i.e. when counter + 1 <= burst -- the portal's own
rule, so a full burst passes at once and sustained traffic runs at `rate`. SlidingWindowLog/FixedWindow
would not: a window of `burst` per `burst/rate` seconds lets 2*burst through around a window edge.

The only gap between our counter and the portal's is transit jitter (requests admitted apart may arrive
closer together), so we keep a small margin below the burst.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time

from pyrate_limiter import GCRA, Limiter, Rate, StateBucket

# Interval long enough that a fractional rate (0.5/s, 2.5/s) becomes an integer limit without rounding.
_INTERVAL_MS = 1_000_000


def safety_margin(burst: int) -> int:
    """Requests kept in reserve below the portal's bucket: ~4 %, at least 1 (0 for a bucket of 1)."""
    return 0 if burst <= 1 else max(1, math.ceil(burst * 0.04))


class Pacer:
    """A blocking leaky bucket for one portal, safe to share between threads."""

    def __init__(self, rate: float, burst: int, *, margin: int | None = None) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self.margin = safety_margin(self.burst) if margin is None else margin
        self.local_burst = max(1, self.burst - self.margin)
        limit = max(1, round(self.rate * _INTERVAL_MS / 1000))
        bucket = StateBucket([Rate(limit, _INTERVAL_MS, burst=self.local_burst)], algorithm=GCRA())
        # buffer_ms: pyrate-limiter sleeps this much past the computed wait; a few ms is enough.
        self._limiter = Limiter(bucket, buffer_ms=5)
        self._lock = threading.Lock()
        self.waited_seconds = 0.0
        self.acquired = 0

    def acquire(self) -> float:
        """Block until one request may be sent; return the seconds waited."""
        started = time.monotonic()
        if not self._limiter.try_acquire("request", 1, blocking=True):
            raise RuntimeError("pacer refused a request it can never admit")  # weight 1 <= burst: unreachable
        waited = time.monotonic() - started
        with self._lock:
            self.waited_seconds += waited
            self.acquired += 1
        return waited

    def __repr__(self) -> str:
        return f"Pacer(rate={self.rate}, burst={self.burst}, local_burst={self.local_burst})"


_registry: dict[tuple[str, float, int], Pacer] = {}
_registry_lock = threading.Lock()


def shared_pacer(webhook_url: str, rate: float, burst: int) -> Pacer:
    """The one pacer for a webhook in this process: every client and thread using it shares the bucket.

    Keyed by a hash of the URL (the portal counts per webhook), so the secret is not kept as a key.
    """
    key = (hashlib.sha256(webhook_url.encode()).hexdigest(), float(rate), int(burst))
    with _registry_lock:
        pacer = _registry.get(key)
        if pacer is None:
            pacer = _registry[key] = Pacer(rate, burst)
        return pacer
