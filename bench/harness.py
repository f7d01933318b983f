"""The bench's own small harness: an in-process server on its own thread, and loopback clients.

The server runs on a separate thread with its own event loop, so that the clients' work (reading
200 sockets, timing pings) never sits on the server's event loop and inflates what is measured.
Both share one process (and its GIL), so the figures are, if anything, pessimistic.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Coroutine

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from config.settings import Settings
from server.app import Server

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ADMIN_EMAIL = "bench-admin@medpharma.test"
ADMIN_PASSWORD = "bench-admin-password"
JWT_SECRET = "bench-secret-that-is-at-least-32-characters-long"


def bench_settings(**overrides) -> Settings:
    values = dict(port=0, host="127.0.0.1", mongo_uri=None, mongo_db=f"bench_{uuid.uuid4().hex[:8]}",
                  jwt_secret=JWT_SECRET, jwt_secret_generated=False, bcrypt_rounds=4,
                  seed_admin_email=ADMIN_EMAIL, seed_admin_password=ADMIN_PASSWORD,
                  seed_admin_name="Bench Admin", log_level="ERROR",
                  registrations_per_hour=100_000)  # the bench registers hundreds of patients from 127.0.0.1
    values.update(overrides)
    return Settings(**values)


class ServerThread:
    """`Server` running on a background thread's event loop; `run()` awaits a coroutine there.
    `server_options` go to `Server` (e.g. `tick_seconds`)."""

    def __init__(self, settings: Settings, **server_options):
        self.settings = settings
        self.server_options = server_options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="bench-server", daemon=True)
        self.server: Server | None = None

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def run(self, coroutine: Coroutine) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    async def start(self) -> "ServerThread":
        self.thread.start()
        self.server = Server(self.settings, **self.server_options)
        await self.run(self.server.start())
        return self

    async def stop(self) -> None:
        await self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def services(self):
        return self.server.services

    @property
    def port(self) -> int:
        return self.server.port


class Client:
    """JSON over HTTP plus WebSockets, against one server, from the calling thread's loop."""

    def __init__(self, port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.http = AsyncHTTPClient(force_instance=True, max_clients=64)

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body).encode() if body is not None else (b"" if method in ("POST", "PATCH") else None)
        response = await self.http.fetch(HTTPRequest(self.base + path, method=method, body=payload,
                                                     headers=headers, request_timeout=120), raise_error=False)
        return response.code, (json.loads(response.body) if response.body else None)

    async def ok(self, method: str, path: str, body: Any = None, token: str | None = None,
                 expect: int = 200) -> Any:
        status, answer = await self.call(method, path, body, token)
        if status != expect:
            raise RuntimeError(f"{method} {path} answered {status}: {answer}")
        return answer

    async def websocket(self, token: str):
        return await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{self.port}/ws",
                                                   headers={"Authorization": f"Bearer {token}"}))

    def close(self) -> None:
        self.http.close()

    # -- factories ---------------------------------------------------------------------------------
    async def admin_token(self) -> str:
        return (await self.ok("POST", "/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))["token"]

    async def create_doctor(self, admin: str) -> dict:
        return await self.ok("POST", "/api/doctors", {
            "name": "Dr. Bench", "specialization": "General practice",
            "email": f"doctor-{uuid.uuid4().hex[:8]}@bench.test", "phone": "+1 555 0100"}, admin, expect=201)

    async def register(self, index: int) -> str:
        answer = await self.ok("POST", "/api/auth/register", {
            "name": f"Patient {index}", "email": f"patient-{index}-{uuid.uuid4().hex[:6]}@bench.test",
            "password": "bench-patient-pw"}, expect=201)
        return answer["token"]

    async def book(self, token: str, doctor_id: str, when: datetime) -> dict:
        return await self.ok("POST", "/api/appointments", {
            "patientName": "Pat Bench", "patientEmail": "pat@bench.test", "patientPhone": "+1 555 0199",
            "doctor": doctor_id, "date": iso(when)}, token, expect=201)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def a_while_from_now(minutes: int = 30) -> datetime:
    return datetime.now(timezone.utc) + timedelta(minutes=minutes)


async def bounded_gather(coroutines, limit: int = 16) -> list:
    """Runs coroutines at most `limit` at a time, keeping their order in the result."""
    gate = asyncio.Semaphore(limit)

    async def one(coroutine):
        async with gate:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


class ClientProcess:
    """A child process that holds client sockets (so their work and memory are not the server's),
    driven by one JSON setup line and then one command per line, each answered by one line."""

    def __init__(self, module: str, setup: dict, quit_seconds: float = 60):
        self.module = module
        self.quit_seconds = quit_seconds
        self.process = subprocess.Popen([sys.executable, "-m", module], cwd=PROJECT_ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._send(json.dumps(setup))

    def _send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    async def command(self, line: str) -> list[str]:
        return (await self.ask(line)).split()

    async def ask(self, line: str) -> str:
        """Sends one command; its one-line answer, as it is."""
        self._send(line)
        return await self.answer(line)

    async def answer(self, during: str = "start-up") -> str:
        """The next line the process prints."""
        answer = await asyncio.get_running_loop().run_in_executor(None, self.process.stdout.readline)
        if not answer:
            raise RuntimeError(f"{self.module} ended during {during!r}")
        return answer

    def close(self) -> None:
        try:
            self._send("quit")
            self.process.wait(self.quit_seconds)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.process.kill()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def machine_line() -> str:
    """Date, commit, CPU model and load: every bench run records them (issue 29)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        commit += " (uncommitted changes)" if dirty else ""
    except OSError:
        commit = "?"
    model = "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    except OSError:
        pass
    import tornado
    from importlib.metadata import version
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}, {os.cpu_count()} x {model}, "
            f"Python {platform.python_version()}, Tornado {tornado.version}, python-socketio {version('python-socketio')}, "
            f"load average {load()}")


def load() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())
