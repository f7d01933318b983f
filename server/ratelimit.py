"""Per-client token buckets for the endpoints that cost a bcrypt hash.

Login, registration and invite registration each spend ~0.25 s of CPU in bcrypt; without a limit one
client could keep the hashing pool busy and lock everyone else out. Each client address gets a
bucket of `per_minute` tokens refilled continuously; an empty bucket answers `429` with
`Retry-After` saying when the next token arrives. Buckets are dropped once full again, so memory
follows the clients active in the last minute.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from server.errors import RateLimited


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000):
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, updated_at)

    def check(self, key: str) -> None:
        """Takes one token for `key`, or raises `RateLimited` with a Retry-After."""
        now = self.clock()
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.refill_per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            retry_after = max(1, math.ceil((1.0 - tokens) / self.refill_per_second))
            raise RateLimited("Too many attempts from this address; try again later.",
                              headers={"Retry-After": str(retry_after)})
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_clients:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forgets buckets that have refilled completely: they hold no information."""
        full_after = self.capacity / self.refill_per_second
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
