"""The bcrypt-spending endpoints are limited per client address; everything else is not."""

from server.ratelimit import RateLimiter
from server.errors import RateLimited
from tests.conftest import start_harness, stop_harness

import pytest


class ManualClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_bucket_refills_over_time_and_says_when():
    clock = ManualClock()
    limiter = RateLimiter(per_minute=3, clock=clock)
    for _ in range(3):
        limiter.check("1.2.3.4")
    with pytest.raises(RateLimited) as refused:
        limiter.check("1.2.3.4")
    assert refused.value.headers["Retry-After"] == "20"
    limiter.check("5.6.7.8")  # another client has its own bucket
    clock.now += 20
    limiter.check("1.2.3.4")
    with pytest.raises(RateLimited):
        limiter.check("1.2.3.4")


async def test_login_answers_429_with_retry_after_past_the_limit():
    harness = await start_harness(settings={"auth_rate_per_minute": 3})
    try:
        statuses = []
        for _ in range(4):
            response = await harness.api.post("/api/auth/login", {"email": "x@example.org", "password": "wrong-pass"})
            statuses.append(response.status)
        assert statuses == [401, 401, 401, 429]
        assert response.body["code"] == "rate_limited"
        assert int(response.headers["Retry-After"]) >= 1
        # Reads are not limited.
        doctors = await harness.api.get("/api/doctors")
        assert doctors.status == 200
    finally:
        await stop_harness(harness)
