"""Shared fixtures: a real server on a free port, real HTTP and WebSocket clients, and factories.

The store is the embedded one unless MEDPHARMA_TEST_MONGO_URI points at a real MongoDB; then each
test gets its own database, dropped afterwards. Nothing here fakes the HTTP layer: tests see exactly
what a client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from config.settings import Settings
from server.app import Server
from infra.store import Store

TEST_MONGO_URI = os.environ.get("MEDPHARMA_TEST_MONGO_URI") or None
ADMIN_EMAIL = "root@medpharma.test"
ADMIN_PASSWORD = "admin-password-1"
JWT_SECRET = "test-secret-that-is-at-least-32-characters-long"


# -- markers (registered in setup.cfg), all given here ----------------------------------------------------
# `make test` runs everything; `make test-fast` deselects these, so its loop needs no browser, no Redis
# and no long runs. `slow` alone is given where it applies, on each test that takes seconds.
BROWSER_FIXTURES = {"browser", "browsers", "site"}  # Debian's chromium, driven by playwright
REDIS_FIXTURES = {"redis_url"}                     # the real Redis on 127.0.0.1:6379
MARKED_FILES = {"test_api_contract.py": "contract",  # schemathesis against the OpenAPI document
                "test_fuzz_inputs.py": "fuzz"}       # hypothesis fuzzing of every input


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if fixtures & REDIS_FIXTURES:
            item.add_marker(pytest.mark.redis)
        if item.path.name in MARKED_FILES:
            item.add_marker(MARKED_FILES[item.path.name])


class LoopThread:
    """An asyncio loop in a background thread, so a synchronous hypothesis test can drive a server
    (`run` submits a coroutine and waits for its result)."""

    def __init__(self, name: str = "test-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending, timeout=5))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def eventually(condition, what: str, timeout: float = 30.0):
    """Waits until `condition()` (a plain or an async callable) is true and returns its value as soon
    as it is. For what the server does after the client has already seen its effect (a counter after
    a close, a socket leaving the set): a readiness wait, never a speed check. The generous deadline
    only stops a broken server from hanging the suite; it fails naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"never happened (waited {timeout:g}s): {what}")
        await asyncio.sleep(0.01)


def free_port() -> int:
    """A loopback port nobody listens on right now, for servers started in a subprocess."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def future(minutes: float) -> datetime:
    """A whole-second UTC time `minutes` from now: a booking time for tests."""
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).replace(microsecond=0)


class FakeClock:
    """Real time plus an offset the test controls; the actors' idea of "now"."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta)


def short_lived(tokens, seconds: float) -> int:
    """Makes the token issuer `tokens` (`infra.auth.TokenIssuer`) issue access tokens that expire at
    the first whole second at least `seconds` from now, by setting its clock back (a JWT's times are
    whole seconds); returns that second. A test then waits for such a token's end as an event (a
    socket closed with 4001), about `seconds` long and never less, so its own few requests fit in
    before. `tokens.clock = time.time` puts the issuer back."""
    ends_at = math.ceil(time.time() + seconds)
    tokens.clock = lambda: ends_at - tokens.expires_seconds
    return ends_at


@dataclass
class Response:
    status: int
    body: Any
    headers: Any
    text: str = ""


def clinic_zone_where_it_is_morning() -> str:
    """A fixed-offset time zone in which it is morning now, on today's UTC date (`Etc/GMT-6` is UTC+6).

    Queues are per clinic day, and tests book "in 30 minutes" or "in 2.5 hours" and expect to find the
    booking in today's queue. In UTC those bookings fall on tomorrow when the suite runs late in the
    evening, so the test servers' clinic keeps a zone where it is 08:00-08:59 now (09:00-11:59
    from 21:00 UTC: no zone is more than 12 hours behind UTC), so bookings up to 12 hours ahead stay
    on one clinic day. The clinic's date stays UTC's, so a test may still name a day by its UTC date."""
    offset_hours = max(-12, 8 - datetime.now(timezone.utc).hour)
    return f"Etc/GMT{-offset_hours:+d}"


TEST_CLINIC_ZONE = clinic_zone_where_it_is_morning()


def make_settings(**overrides) -> Settings:
    values = dict(port=0, host="127.0.0.1", mongo_uri=TEST_MONGO_URI, clinic_timezone=TEST_CLINIC_ZONE,
                  mongo_db=f"medpharma_test_{uuid.uuid4().hex[:12]}", jwt_secret=JWT_SECRET,
                  jwt_secret_generated=False, bcrypt_rounds=4, seed_admin_email=ADMIN_EMAIL,
                  seed_admin_password=ADMIN_PASSWORD, seed_admin_name="Root Admin",
                  # The suite registers many users and fails many logins from 127.0.0.1; the limits'
                  # own tests (tests/test_rate_limit.py) set the defaults back.
                  registrations_per_hour=100_000, login_failures_per_address_per_minute=100_000)
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """A thin JSON client over Tornado's AsyncHTTPClient; never raises on an error status."""

    base: str
    http: AsyncHTTPClient = field(default_factory=AsyncHTTPClient)

    async def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                      raw: bytes | str | None = None, headers: dict | None = None) -> Response:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        payload = None
        if raw is not None:
            payload = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            payload = json.dumps(body).encode()
        if payload:  # else Tornado's client labels any POST body as a form, which the API refuses (415)
            all_headers.setdefault("Content-Type", "application/json")
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = b""
        request = HTTPRequest(self.base + path, method=method, body=payload, headers=all_headers,
                              allow_nonstandard_methods=True, request_timeout=30)
        response = await self.http.fetch(request, raise_error=False)
        text = response.body.decode() if response.body else ""
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return Response(response.code, parsed, response.headers, text)

    async def get(self, path, **kw):
        return await self.request("GET", path, **kw)

    async def post(self, path, body=None, **kw):
        return await self.request("POST", path, body, **kw)

    async def put(self, path, body=None, **kw):
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path, body=None, **kw):
        return await self.request("PATCH", path, body, **kw)

    async def delete(self, path, **kw):
        return await self.request("DELETE", path, **kw)


class WsClient:
    """A WebSocket client that reads JSON frames with a timeout."""

    def __init__(self, connection):
        self.connection = connection

    async def send(self, frame: dict | str) -> None:
        await self.connection.write_message(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict | None:
        message = await asyncio.wait_for(self.connection.read_message(), timeout)
        return None if message is None else json.loads(message)

    async def expect(self, event: str, timeout: float = 5.0, predicate=None) -> dict:
        """The next frame with this event (skipping others); fails after `timeout`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {event} frame within {timeout}s")
            frame = await self.recv(remaining)
            if frame is None:
                raise AssertionError(f"socket closed while waiting for {event}")
            if frame.get("event") == event and (predicate is None or predicate(frame["data"])):
                return frame

    async def before_pong(self, timeout: float = 5.0) -> list[dict]:
        """Sends a ping and returns every frame that arrives before its pong: the server writes a
        socket's frames in order, so the pong comes after everything offered to the socket before."""
        await self.send({"type": "ping"})
        frames = []
        while (frame := await self.recv(timeout)) != {"event": "pong"}:
            if frame is None:
                raise AssertionError("socket closed while waiting for pong")
            frames.append(frame)
        return frames

    async def drain(self, quiet: float = 0.2) -> list[dict]:
        """Every frame that arrives until none has for `quiet` seconds."""
        frames = []
        while True:
            try:
                frame = await self.recv(quiet)
            except asyncio.TimeoutError:
                return frames
            if frame is None:
                return frames
            frames.append(frame)

    def close(self) -> None:
        self.connection.close()


@dataclass
class Harness:
    server: Server
    api: Api
    clock: FakeClock
    port: int

    @property
    def services(self):
        return self.server.services

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ws(self, token: str | None = None, query_token: bool = False, headers: dict | None = None):
        url = f"ws://127.0.0.1:{self.port}/ws"
        all_headers = dict(headers or {})
        if token and query_token:
            url += f"?token={token}"
        elif token:
            all_headers["Authorization"] = f"Bearer {token}"
        connection = await websocket_connect(HTTPRequest(url, headers=all_headers))
        return WsClient(connection)

    # -- factories ---------------------------------------------------------------------------------
    async def admin_token(self) -> str:
        response = await self.api.post("/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert response.status == 200, response.body
        return response.body["token"]

    async def register(self, name: str | None = None, email: str | None = None,
                       password: str = "patient-password") -> tuple[str, dict]:
        email = email or f"patient-{uuid.uuid4().hex[:10]}@example.org"
        response = await self.api.post("/api/auth/register",
                                       {"name": name or "Pat Patient", "email": email, "password": password})
        assert response.status == 201, response.body
        return response.body["token"], response.body["user"]

    async def create_doctor(self, admin_token: str | None = None, **fields) -> dict:
        admin_token = admin_token or await self.admin_token()
        body = {"name": "Dr. Ada", "specialization": "General practice",
                "email": f"doctor-{uuid.uuid4().hex[:10]}@example.org", "phone": "+1 555 0100", **fields}
        response = await self.api.post("/api/doctors", body, token=admin_token)
        assert response.status == 201, response.body
        return response.body

    async def doctor_account(self, doctor: dict, admin_token: str | None = None) -> tuple[str, dict]:
        """Invites a user for this doctor profile and registers it; returns (token, user)."""
        admin_token = admin_token or await self.admin_token()
        invite = await self.api.post("/api/admin/invites", {"email": doctor["email"], "role": "doctor",
                                                            "doctorId": doctor["id"]}, token=admin_token)
        assert invite.status == 201, invite.body
        response = await self.api.post("/api/auth/register/invite", {"token": invite.body["token"],
                                                                     "name": doctor["name"],
                                                                     "password": "doctor-password"})
        assert response.status == 201, response.body
        return response.body["token"], response.body["user"]

    async def book(self, token: str, doctor_id: str, when: datetime | None = None, **fields) -> dict:
        when = when or datetime.now(timezone.utc) + timedelta(minutes=5)
        body = {"patientName": "Pat Patient", "patientEmail": "pat@example.org", "patientPhone": "+1 555 0199",
                "doctor": doctor_id, "date": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", **fields}
        response = await self.api.post("/api/appointments", body, token=token)
        assert response.status == 201, response.body
        return response.body


async def start_harness(**options) -> Harness:
    clock = options.pop("clock", None) or FakeClock()
    settings = make_settings(**options.pop("settings", {}))
    server = Server(settings, clock=clock, **options)
    await server.start()
    return Harness(server=server, api=Api(f"http://127.0.0.1:{server.port}"), clock=clock, port=server.port)


async def stop_harness(harness: Harness) -> None:
    services = harness.server.services
    await harness.server.stop()
    if TEST_MONGO_URI:
        client = Store.connect(TEST_MONGO_URI, services.settings.mongo_db)
        await client.client.drop_database(services.settings.mongo_db)
        await client.close()


# The Redis these machines (and CI) run; MEDPHARMA_TEST_REDIS_URL points the tests at another one.
REDIS_URL = os.environ.get("MEDPHARMA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    """The Redis to use. A test that needs Redis asks for this fixture, itself or through another
    (`two_nodes`), and is marked `redis` for it (see `pytest_collection_modifyitems`)."""
    return REDIS_URL


@contextlib.asynccontextmanager
async def nodes_sharing_one_store(redis_url: str, count: int = 2, **options):
    """Several servers on one store and the real Redis bus, as a deployment of several nodes."""
    database = f"medpharma_nodes_{uuid.uuid4().hex[:8]}"
    store = Store.connect(TEST_MONGO_URI, database)
    nodes = []
    try:
        for _ in range(count):
            nodes.append(await start_harness(settings={"redis_url": redis_url, "mongo_db": database}, store=store,
                                             **options))
        yield nodes
    finally:
        for node in nodes:
            await stop_harness(node)


@pytest.fixture
async def two_nodes(redis_url):
    async with nodes_sharing_one_store(redis_url) as nodes:
        yield nodes


@pytest.fixture
async def harness():
    """A running server on a free port, with a controllable clock for the actors."""
    h = await start_harness()
    try:
        yield h
    finally:
        await stop_harness(h)


# -- the browser tests' server and browser (tests/test_web_*.py) ---------------------------------------------
@pytest.fixture(scope="module")
def site(request):
    """A real server for one browser-test module; a module may set SITE_SETTINGS to change settings."""
    from tests.web_browser import Site
    settings = getattr(request.module, "SITE_SETTINGS", None)
    site = Site(**({"settings": settings} if settings else {}))
    yield site
    site.close()


@pytest.fixture(scope="module")
def browser():
    """One Debian chromium per browser-test module (contexts per test)."""
    from playwright.sync_api import sync_playwright

    from tests.web_browser import launch_browser
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def browsers(browser, site):
    from tests.web_browser import Browsers
    opened = Browsers(browser, site)
    yield opened
    opened.close()
