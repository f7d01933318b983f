"""Failed logins are limited per client address and email; nothing else is."""

import pytest

from core.errors import RateLimited
from server.ratelimit import RateLimiter
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, start_harness, stop_harness


class ManualClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_bucket_refills_over_time_and_says_when():
    clock = ManualClock()
    limiter = RateLimiter(per_minute=3, clock=clock)
    for _ in range(3):
        limiter.ensure_allowed("1.2.3.4|a@x.org")
        limiter.record("1.2.3.4|a@x.org")
    with pytest.raises(RateLimited) as refused:
        limiter.ensure_allowed("1.2.3.4|a@x.org")
    assert refused.value.headers["Retry-After"] == "20"
    limiter.ensure_allowed("1.2.3.4|b@x.org")  # another account has its own bucket
    clock.now += 20
    limiter.ensure_allowed("1.2.3.4|a@x.org")
    limiter.record("1.2.3.4|a@x.org")
    with pytest.raises(RateLimited):
        limiter.ensure_allowed("1.2.3.4|a@x.org")


async def test_failed_logins_answer_429_with_retry_after_past_the_limit():
    harness = await start_harness(settings={"login_failures_per_minute": 3})
    try:
        statuses = []
        for _ in range(4):
            response = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": "wrong-pass"})
            statuses.append(response.status)
        assert statuses == [401, 401, 401, 429]
        assert response.body["code"] == "rate_limited"
        assert int(response.headers["Retry-After"]) >= 1
        # Even the right password waits: the guesser must not learn it was right.
        right = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert right.status == 429
        # Another account from the same address is not affected.
        other = await harness.api.post("/api/auth/login", {"email": "x@example.org", "password": "wrong-pass"})
        assert other.status == 401
    finally:
        await stop_harness(harness)


async def test_successful_logins_and_registrations_are_never_limited():
    harness = await start_harness(settings={"login_failures_per_minute": 2})
    try:
        for _ in range(6):
            ok = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            assert ok.status == 200
        for _ in range(6):
            await harness.register()
    finally:
        await stop_harness(harness)
