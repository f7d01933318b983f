"""Limits on what costs a password hash: failed logins per email and per address, registrations per
address, and the bounded hashing pool (503 `busy` instead of an endless queue)."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from core.errors import Busy, RateLimited
from infra.auth import MAX_HASHING_PER_CLIENT, MAX_HASHING_WAITING, HashingPool
from infra.ratelimit import LoginLimits, WindowLimit
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, eventually, start_harness, stop_harness

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OTHER_ADDRESS = "127.0.0.2"  # Linux routes all of 127/8 to loopback: a second client address for free
DEFAULT_LIMITS = {"registrations_per_hour": 20, "login_failures_per_address_per_minute": 50}  # the harness raises them


class ManualClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


async def post_from(harness, address: str, path: str, body: dict):
    """A POST whose TCP connection comes from `address`, so the server sees another client."""
    request = HTTPRequest(harness.base + path, method="POST", body=json.dumps(body),
                          headers={"Content-Type": "application/json"}, network_interface=address,
                          request_timeout=60)
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, json.loads(response.body or b"null"), response.headers


def wrong_login(email: str | None = None) -> dict:
    return {"email": email or f"nobody-{uuid.uuid4().hex[:8]}@example.org", "password": "wrong-password"}


# -- the window, as a unit ------------------------------------------------------------------------
def test_window_counts_events_and_says_when_the_oldest_leaves():
    clock = ManualClock()
    limit = WindowLimit(3, 60, name="login_email", clock=clock)
    for step in range(3):
        limit.check("a", "no")
        limit.take("a")
        clock.now += 10
    with pytest.raises(RateLimited) as refused:
        limit.check("a", "no")
    assert refused.value.headers["Retry-After"] == "30"  # the first event (t=1000) leaves at 1060; now 1030
    limit.check("b", "no")  # another key has its own window
    clock.now += 29
    with pytest.raises(RateLimited):
        limit.check("a", "no")
    clock.now += 1
    limit.check("a", "no")


def test_given_back_events_do_not_count():
    clock = ManualClock()
    limit = WindowLimit(2, 60, name="login_email", clock=clock)
    for _ in range(5):
        limit.give_back("a", limit.take("a"))
    limit.check("a", "no")
    assert limit._events == {}


async def test_an_attempt_that_raises_is_not_counted_but_a_plain_failure_is():
    clock = ManualClock()
    limits = LoginLimits(per_email_per_minute=1, per_address_per_minute=100, clock=clock)
    limits.pause = 0
    with pytest.raises(Busy):
        async with limits.attempt("a@x.org", "1.1.1.1"):
            raise Busy()
    async with limits.attempt("a@x.org", "1.1.1.1") as attempt:
        attempt.forgive()  # a success
    async with limits.attempt("a@x.org", "1.1.1.1"):
        pass  # a failed password
    with pytest.raises(RateLimited):
        async with limits.attempt("a@x.org", "1.1.1.1"):
            pass


class StillLoopClock:
    """Holds the running event loop's clock still (its timers fire only when the test moves it), so a
    pause is measured in the loop's own time rather than waited out."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()

    def __enter__(self):
        self.loop.time = lambda: self.now
        return self

    def __exit__(self, *exc):
        del self.loop.time  # back to the loop's own clock

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for _ in range(5):  # a few turns of the loop: whatever is now due has run
            await asyncio.sleep(0)


async def test_a_refusal_is_answered_after_a_pause_so_a_tight_retry_loop_slows_down():
    limits = LoginLimits(per_email_per_minute=1, per_address_per_minute=100)
    limits.pause = 0.2
    async with limits.attempt("a@x.org", "1.1.1.1"):
        pass
    with StillLoopClock() as clock:
        attempt = asyncio.ensure_future(limits.attempt("a@x.org", "1.1.1.1").__aenter__())
        await clock.advance(0)
        assert not attempt.done()  # refused at once (no await before the check), but still paused
        await clock.advance(0.199)
        assert not attempt.done()
        await clock.advance(0.001)
        assert attempt.done()
    with pytest.raises(RateLimited):
        await attempt


# -- failed logins --------------------------------------------------------------------------------
def without_refusal_pauses(harness) -> None:
    """A refusal's pause (`REFUSAL_PAUSE_SECONDS`, a second) is the subject of its own test above;
    here it would only add that second to every 429 the test provokes."""
    services = harness.services
    services.login_limits.pause = services.registration_limits.pause = services.hasher.pool.refusal_pause = 0


@pytest.fixture
async def default_limits():
    """A server with the limits' default settings (the shared harness raises the registration one)."""
    harness = await start_harness(settings=DEFAULT_LIMITS)
    without_refusal_pauses(harness)
    try:
        yield harness
    finally:
        await stop_harness(harness)


async def test_ten_failures_for_one_email_answer_429_until_the_minute_has_passed(default_limits):
    harness = default_limits
    statuses = [(await harness.api.post("/api/auth/login", wrong_login(ADMIN_EMAIL))).status for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    refused = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert refused.status == 429  # even the right password: the guesser must not learn it was right
    assert refused.body["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # ... from any address: the limit is the account's
    code, _, headers = await post_from(harness, OTHER_ADDRESS, "/api/auth/login",
                                       {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert code == 429 and int(headers["Retry-After"]) >= 1
    # Another account from the same address is not affected.
    assert (await harness.api.post("/api/auth/login", wrong_login())).status == 401
    # A minute later the account signs in again.
    clock = ManualClock()
    clock.now = time.monotonic() + 61
    harness.services.login_limits.by_email.clock = clock
    ok = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert ok.status == 200


async def test_spraying_fifty_emails_from_one_address_is_limited_too(default_limits):
    harness = default_limits
    for _ in range(50):
        assert (await harness.api.post("/api/auth/login", wrong_login())).status == 401
    refused = await harness.api.post("/api/auth/login", wrong_login())
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    right = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert right.status == 429
    # The limit is that address's: another client signs in.
    code, body, _ = await post_from(harness, OTHER_ADDRESS, "/api/auth/login",
                                    {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert code == 200 and body["user"]["role"] == "admin"


async def test_a_concurrent_burst_cannot_slip_past_the_address_limit(default_limits):
    harness = default_limits
    responses = await asyncio.gather(*(harness.api.post("/api/auth/login", wrong_login()) for _ in range(80)))
    statuses = [r.status for r in responses]
    assert statuses.count(401) <= 50
    assert set(statuses) <= {401, 429, 503}
    assert statuses.count(401) + statuses.count(429) + statuses.count(503) == 80


async def test_successful_logins_never_count(default_limits):
    harness = default_limits
    for _ in range(15):
        ok = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert ok.status == 200


# -- registrations -----------------------------------------------------------------------------------
async def test_twenty_registrations_per_address_per_hour(default_limits):
    """Every attempt counts, refused ones included (API.md: `409`s count towards REGISTRATIONS_PER_HOUR;
    this test used to assert that a 409 was given back)."""
    harness = default_limits
    taken = f"taken-{uuid.uuid4().hex[:6]}@example.org"
    await harness.register(email=taken)
    for _ in range(3):
        again = await harness.api.post("/api/auth/register", {"name": "P", "email": taken,
                                                              "password": "patient-password"})
        assert again.status == 409
    for _ in range(16):
        await harness.register()
    refused = await harness.api.post("/api/auth/register", {"name": "P", "email": f"x-{uuid.uuid4().hex[:6]}@e.org",
                                                            "password": "patient-password"})
    assert refused.status == 429 and refused.body["code"] == "rate_limited"
    assert 60 < int(refused.headers["Retry-After"]) <= 3600
    code, _, _ = await post_from(harness, OTHER_ADDRESS, "/api/auth/register",
                                 {"name": "P", "email": f"y-{uuid.uuid4().hex[:6]}@e.org", "password": "patient-password"})
    assert code == 201


async def test_registration_is_no_free_test_of_which_emails_have_an_account(default_limits):
    """The attack: 40 registrations with emails that may have an account, in a tenth of a second, each
    `409 email_taken` telling which do (staff emails the public directory hides among them), with the
    allowance given back each time. Now every attempt counts: past 20, all answer 429 alike."""
    harness = default_limits
    harness.services.registration_limits.pause = 0  # the one-second pause is tested above; 20 of them here would only slow the suite
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    await harness.doctor_account(doctor, admin)
    patient_email = f"known-{uuid.uuid4().hex[:6]}@example.org"
    code, _, _ = await post_from(harness, OTHER_ADDRESS, "/api/auth/register",
                                 {"name": "P", "email": patient_email, "password": "patient-password"})
    assert code == 201
    candidates = [doctor["email"], patient_email, "root@medpharma.test"] + \
        [f"guess-{n}-{uuid.uuid4().hex[:6]}@example.org" for n in range(37)]
    statuses = []
    for email in candidates:
        response = await harness.api.post("/api/auth/register", {"name": "P", "email": email,
                                                                 "password": "patient-password"})
        statuses.append(response.status)
    assert statuses[:3] == [409, 409, 409]  # the first few still tell; the allowance is then spent
    assert statuses[3:20] == [201] * 17
    assert statuses[20:] == [429] * 20
    # Known or not, an email past the limit answers the same.
    for email in (doctor["email"], f"unknown-{uuid.uuid4().hex[:6]}@example.org"):
        response = await harness.api.post("/api/auth/register", {"name": "P", "email": email,
                                                                 "password": "patient-password"})
        assert response.status == 429 and response.body["code"] == "rate_limited"


# -- changing the password ------------------------------------------------------------------------------
async def test_guessing_the_current_password_with_a_stolen_access_token_is_limited(default_limits):
    """The attack: a stolen 15-minute access token and unlimited tries at `currentPassword`. A wrong one
    is a failed login for that account and address: ten, then 429 (the right one too), and the account's
    sign-ins share the limit."""
    harness = default_limits
    harness.services.login_limits.pause = 0
    email = f"victim-{uuid.uuid4().hex[:6]}@example.org"
    token, _ = await harness.register(email=email)
    statuses = []
    for attempt in range(11):
        response = await harness.api.post("/api/auth/password", {"currentPassword": f"guess-{attempt}-password",
                                                                 "newPassword": "stolen-account-1"}, token=token)
        statuses.append(response.status)
    assert statuses == [401] * 10 + [429]
    right = await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                          "newPassword": "stolen-account-1"}, token=token)
    assert right.status == 429 and right.body["code"] == "rate_limited" and int(right.headers["Retry-After"]) >= 1
    login = await harness.api.post("/api/auth/login", {"email": email, "password": "patient-password"})
    assert login.status == 429
    # Nothing changed: a minute later the old password still signs in.
    clock = ManualClock()
    clock.now = time.monotonic() + 61
    harness.services.login_limits.by_email.clock = clock
    harness.services.login_limits.by_address.clock = clock
    assert (await harness.api.post("/api/auth/login", {"email": email, "password": "patient-password"})).status == 200
    # A right current password does not count.
    for _ in range(12):
        changed = await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                                "newPassword": "patient-password"}, token=token)
        assert changed.status == 204


async def test_a_password_change_holds_only_the_callers_share_of_the_hashing_pool(harness):
    token, _ = await harness.register()
    blocked = BlockedHashings(harness.services.hasher.pool)
    try:
        await blocked.add(MAX_HASHING_PER_CLIENT, client="127.0.0.1")
        response = await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                                 "newPassword": "another-password-1"}, token=token)
        assert response.status == 429 and response.body["code"] == "rate_limited"
    finally:
        await blocked.finish()
    assert harness.services.login_limits.by_email._events == {}  # refused by the pool: no failed login counted
    changed = await harness.api.post("/api/auth/password", {"currentPassword": "patient-password",
                                                            "newPassword": "another-password-1"}, token=token)
    assert changed.status == 204


# -- the hashing pool ----------------------------------------------------------------------------
class BlockedHashings:
    """Occupies a pool with hashings that wait on an event, as a flood of logins would."""

    def __init__(self, pool: HashingPool):
        self.pool = pool
        self.release = threading.Event()
        self.tasks: list[asyncio.Task] = []
        self.running: list[None] = []  # one entry per hashing a worker thread has started

    def _hashing(self) -> bool:
        self.running.append(None)
        return self.release.wait(30)

    async def add(self, count: int, client: str | None = None) -> None:
        """Returns once each added hashing is running on a worker or waiting in the pool's queue."""
        for _ in range(count):
            self.tasks.append(asyncio.ensure_future(self.pool.run(client, self._hashing)))
        await eventually(lambda: len(self.running) + self.pool.waiting == len(self.tasks),
                         "every blocked hashing to be running or waiting")

    async def finish(self) -> None:
        self.release.set()
        await asyncio.gather(*self.tasks)


async def test_with_32_hashings_waiting_a_login_or_registration_is_503_busy_at_once(harness):
    blocked = BlockedHashings(harness.services.hasher.pool)
    try:
        await blocked.add(2)  # both workers busy
        await blocked.add(MAX_HASHING_WAITING - 1)
        assert harness.services.hasher.pool.waiting == MAX_HASHING_WAITING - 1
        squeezed = asyncio.ensure_future(harness.api.post("/api/auth/login",
                                                          {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        await eventually(lambda: harness.services.hasher.pool.waiting == MAX_HASHING_WAITING,
                         "the 33rd login to queue for a worker")
        for response in (await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
                         await harness.api.post("/api/auth/register", {"name": "P", "email": "busy@example.org",
                                                                       "password": "patient-password"})):
            assert response.status == 503, response.body
            assert response.body["code"] == "busy"
            assert response.headers["Retry-After"] == "1"
        assert not squeezed.done()  # the 33rd waiter was queued, the 34th refused
    finally:
        await blocked.finish()
    assert (await squeezed).status == 200
    assert (await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).status == 200
    # A refused attempt did not count as a failed login.
    assert harness.services.login_limits.by_email._events == {}


async def test_one_address_holds_only_its_share_of_the_pool(harness):
    without_refusal_pauses(harness)
    blocked = BlockedHashings(harness.services.hasher.pool)
    try:
        await blocked.add(MAX_HASHING_PER_CLIENT, client="127.0.0.1")
        mine = await harness.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert mine.status == 429 and mine.body["code"] == "rate_limited"
        assert mine.headers["Retry-After"] == "1"
        waiting = harness.services.hasher.pool.waiting
        other = asyncio.ensure_future(post_from(harness, OTHER_ADDRESS, "/api/auth/login",
                                                {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        await eventually(lambda: harness.services.hasher.pool.waiting == waiting + 1,
                         "the other address's login to queue for a worker")
        assert not other.done()  # queued behind the blocked ones, not refused
    finally:
        await blocked.finish()
    code, _, _ = await other
    assert code == 200


@pytest.mark.slow  # a 4-second spray from another process, and sign-ins at bcrypt cost 10
async def test_honest_sign_ins_stay_quick_during_a_login_spray():
    """Failed logins for made-up emails sprayed from one address (by another process, so its own work
    is not on the server's loop); honest sign-ins from another address take at most a few times what
    they take on an idle server — a ratio, not a time, as the machine is shared."""
    harness = await start_harness(settings={**DEFAULT_LIMITS, "bcrypt_rounds": 10})
    try:
        honest = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}

        async def timed_sign_in() -> float:
            started = time.perf_counter()
            code, _, _ = await post_from(harness, OTHER_ADDRESS, "/api/auth/login", honest)
            assert code == 200
            return time.perf_counter() - started

        idle = [await timed_sign_in() for _ in range(7)]
        sprayer = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.attackers", "spray", "--port", str(harness.port), "--seconds", "4",
            "--concurrency", "48", cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE)
        assert (await asyncio.wait_for(sprayer.stdout.readline(), 30)).strip() == b"ready"
        during = [await timed_sign_in() for _ in range(7)]
        report = json.loads(await asyncio.wait_for(sprayer.stdout.readline(), 60))
        await sprayer.wait()
        statuses = {int(k): v for k, v in report["statuses"].items()}
        assert set(statuses) <= {401, 429, 503} and statuses.get(401, 0) <= 50
        ratio = statistics.median(during) / statistics.median(idle)
        assert ratio < 10, (ratio, idle, during)
    finally:
        await stop_harness(harness)


async def test_waiting_clients_take_turns_for_a_free_worker():
    pool = HashingPool(workers=1, max_waiting=32, per_client=8)
    gate = threading.Event()
    order: list[str] = []

    def job(name: str) -> None:
        gate.wait(10)
        order.append(name)

    tasks = [asyncio.ensure_future(pool.run("sprayer", job, f"s{i}")) for i in range(4)]
    await eventually(lambda: pool.waiting == 3, "s1-s3 to queue behind s0")
    tasks.append(asyncio.ensure_future(pool.run("honest", job, "h")))  # the honest one comes after them
    await eventually(lambda: pool.waiting == 4, "h to queue too")
    gate.set()
    await asyncio.gather(*tasks)
    assert order == ["s0", "s1", "h", "s2", "s3"]  # not behind the sprayer's whole backlog
    assert pool.waiting == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_the_worker_moves_on():
    pool = HashingPool(workers=1, max_waiting=32, per_client=8)
    gate, holding = threading.Event(), threading.Event()

    def hold() -> bool:
        holding.set()
        return gate.wait(10)

    running = asyncio.ensure_future(pool.run("a", hold))
    await eventually(holding.is_set, "a to hold the only worker")
    waiting = asyncio.ensure_future(pool.run("b", lambda: "b"))
    after = asyncio.ensure_future(pool.run("c", lambda: "c"))
    await eventually(lambda: pool.waiting == 2, "b and c to queue")
    waiting.cancel()
    await eventually(lambda: pool.waiting == 1, "the cancelled b to leave the queue")
    assert waiting.cancelled()
    gate.set()
    assert await running is True
    assert await after == "c"
    assert pool.waiting == 0 and pool._free == 1
