"""Sliding-window limits on the requests that cost a password hash: failed logins and registrations.

A `WindowLimit` allows `limit` events per key within `window` seconds. An attempt *reserves* its slot
before any password is hashed — so a burst of concurrent guesses cannot all slip in before the first
failure is counted — and gives it back when the attempt turns out not to count (a login that
succeeded, a registration that failed, a request the server could not serve). Past the limit the
answer is `429` with `Retry-After`: the seconds until the oldest counted event leaves the window.

A refusal is answered after `REFUSAL_PAUSE_SECONDS`: a client that keeps retrying in a tight loop
then sends one request a second per connection instead of thousands, and its refusals cost the
server a timer instead of its event loop (honest clients are never refused, so never paused).

`LoginLimits` keeps two such windows, per email and per client address, so guessing one account's
password from many addresses and spraying many accounts from one address are both held back, while a
successful sign-in never counts (a wrong current password given to change one counts as a failed
login too). `RegistrationLimits` counts registration attempts per address per hour, refused ones too.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from core import metrics
from core.errors import ApiError, RateLimited

REFUSAL_PAUSE_SECONDS = 1.0


class WindowLimit:
    def __init__(self, limit: int, window: float, *, name: str, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000):
        self.limit = limit
        self.window = window
        self.name = name  # the metrics label of refusals
        self.clock = clock
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def check(self, key: str, message: str) -> None:
        """Raises `RateLimited` (with Retry-After) if `key` has used up its window; changes nothing."""
        now = self.clock()
        events = self._recent(key, now)
        if events is not None and len(events) >= self.limit:
            retry_after = max(1, math.ceil(events[0] + self.window - now))
            metrics.requests_refused_total.labels(self.name).inc()
            raise RateLimited(message, headers={"Retry-After": str(retry_after)})

    def take(self, key: str) -> float:
        """Counts one event for `key` now; returns its stamp, for `give_back`."""
        now = self.clock()
        events = self._recent(key, now)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._sweep(now)
            events = self._events[key] = deque()
        events.append(now)
        return now

    def give_back(self, key: str, stamp: float) -> None:
        events = self._events.get(key)
        if events is not None:
            try:
                events.remove(stamp)
            except ValueError:
                pass
            if not events:
                del self._events[key]

    def _sweep(self, now: float) -> None:
        """Forgets keys with nothing left in the window: they hold no information."""
        for key in list(self._events):
            self._recent(key, now)


class Attempt:
    """One reserved attempt; `forgive()` un-counts it. An exception out of the `async with` block (the server
    was busy, the store was down, the body was invalid) un-counts it too: it was not the client's
    attempt that failed."""

    def __init__(self, reservations: list[tuple[WindowLimit, str, float]]):
        self._reservations = reservations

    def forgive(self) -> None:
        for limit, key, stamp in self._reservations:
            limit.give_back(key, stamp)
        self._reservations = []


@asynccontextmanager
async def _reserve(pause: float, *limits: tuple[WindowLimit, str, str],
                   counts: Callable[[BaseException], bool] = lambda exc: False) -> AsyncIterator[Attempt]:
    """Reserves a slot in each limit; an exception out of the block gives them back unless `counts(exc)`."""
    try:
        for limit, key, message in limits:
            limit.check(key, message)
    except RateLimited:
        await asyncio.sleep(pause)
        raise
    attempt = Attempt([(limit, key, limit.take(key)) for limit, key, _ in limits])
    try:
        yield attempt
    except BaseException as exc:
        if not counts(exc):
            attempt.forgive()
        raise


class LoginLimits:
    def __init__(self, per_email_per_minute: int, per_address_per_minute: int,
                 clock: Callable[[], float] = time.monotonic):
        self.by_email = WindowLimit(per_email_per_minute, 60, name="login_email", clock=clock)
        self.by_address = WindowLimit(per_address_per_minute, 60, name="login_address", clock=clock)
        self.pause = REFUSAL_PAUSE_SECONDS

    def attempt(self, email: str, address: str | None):
        """`async with limits.attempt(email, ip) as attempt:` check the password; `attempt.forgive()` if it
        was right. Refused (429) before any hashing when either window is used up — even for the
        right password, so a guesser cannot tell."""
        return _reserve(self.pause, (self.by_email, email, "Too many failed sign-ins for this account; try again later."),
                        (self.by_address, address or "", "Too many failed sign-ins from your address; "
                                                         "try again later."))


class RegistrationLimits:
    def __init__(self, per_hour: int, clock: Callable[[], float] = time.monotonic):
        self.by_address = WindowLimit(per_hour, 3600, name="registration_address", clock=clock)
        self.pause = REFUSAL_PAUSE_SECONDS

    def attempt(self, address: str | None):
        """`async with limits.attempt(ip):` register. Every attempt counts, refused ones too (`409`
        `email_taken` included: else registering is a free, unlimited test of which emails have an
        account); only a failure of the server's own (`5xx`, the store away, a bug) is given back."""
        return _reserve(self.pause, (self.by_address, address or "", "Too many registrations from your address; "
                                                         "try again later."),
                        counts=lambda exc: isinstance(exc, ApiError) and exc.status < 500)
