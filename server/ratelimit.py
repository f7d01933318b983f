"""Token buckets that slow down password guessing.

Failed logins are counted per client address *and* email: each pair has a bucket of `per_minute`
tokens refilled continuously, a failed login takes one, and an empty bucket answers `429` with
`Retry-After` (when the next token arrives) before any password is checked. Successful logins take
nothing, so a busy clinic desk or a test suite signing in again and again is never slowed, while
guessing one account's password from one address is held to `per_minute` tries. Buckets are dropped
once full again, so memory follows the pairs that failed in the last minute.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from core.errors import RateLimited


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, updated_at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - updated) * self.refill_per_second)

    def ensure_allowed(self, key: str) -> None:
        """Raises `RateLimited` with a Retry-After if `key` has no token left; takes nothing."""
        tokens = self._tokens(key, self.clock())
        if tokens < 1.0:
            retry_after = max(1, math.ceil((1.0 - tokens) / self.refill_per_second))
            raise RateLimited("Too many failed attempts; try again later.",
                              headers={"Retry-After": str(retry_after)})

    def record(self, key: str) -> None:
        """Takes one token from `key` (a failure happened)."""
        now = self.clock()
        self._buckets[key] = (max(0.0, self._tokens(key, now) - 1.0), now)
        if len(self._buckets) > self.max_keys:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forgets buckets that have refilled completely: they hold no information."""
        full_after = self.capacity / self.refill_per_second
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
