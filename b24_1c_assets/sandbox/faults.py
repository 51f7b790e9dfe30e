"""Fault injection shared by the sandbox servers.

A run of the sandbox chooses its faults once (command-line options or a test fixture); each request then
draws from a seeded random generator, so a failing test can be replayed with the same seed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Shares of requests that fail, each in [0, 1]. All zero = a healthy server."""

    error_503_share: float = 0.0  # portal: 503 QUERY_LIMIT_EXCEEDED-free plain 503; 1C: 503 from IIS
    error_500_share: float = 0.0  # 500 INTERNAL_SERVER_ERROR (portal) / 500 code -1 (1C)
    drop_share: float = 0.0  # the connection is closed without an answer
    slow_share: float = 0.0  # the answer is delayed by slow_seconds
    slow_seconds: float = 2.0
    batch_command_error_share: float = 0.0  # portal only: a command inside `batch` fails on its own
    # Faults apply to write requests only after they were carried out when this is True: the client
    # cannot tell whether its write happened (the hardest case for idempotency).
    fail_after_write: bool = False
    # 1C only: entity sets (a `Set` or `Set/Function`) whose reads always fail with 1C's generic 500, as a
    # query 1C cannot run does; a retry does not help there, unlike a lock conflict's 500.
    always_500: tuple[str, ...] = ()
    seed: int = 0
    _rng: random.Random = field(default=None, init=False, repr=False)  # type: ignore[assignment]
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def any(self) -> bool:
        return any(
            (
                self.error_503_share,
                self.error_500_share,
                self.drop_share,
                self.slow_share,
                self.batch_command_error_share,
                self.always_500,
            )
        )

    def draw(self, share: float) -> bool:
        """True with probability `share` (thread-safe, reproducible for a seed)."""
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

    def pick(self) -> str | None:
        """One outcome for a whole HTTP request: 'drop', '503', '500', 'slow' or None."""
        for name, share in (
            ("drop", self.drop_share),
            ("503", self.error_503_share),
            ("500", self.error_500_share),
            ("slow", self.slow_share),
        ):
            if self.draw(share):
                return name
        return None
