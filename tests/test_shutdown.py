"""Graceful shutdown of the real process: `python -m server` in a subprocess, stopped by a signal.

On SIGTERM or SIGINT the server stops accepting, closes every WebSocket with 1001 ("going away"),
lets a request already in progress finish, closes the store and exits 0 within 10 seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from tests.conftest import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ADMIN_EMAIL = "root@shutdown.test"
ADMIN_PASSWORD = "shutdown-admin-pw-1"
EXIT_BUDGET_SECONDS = 10  # what the operations issue promises, not a speed target

pytestmark = pytest.mark.slow  # each test starts `python -m server` in a process of its own: a second or more



class ServerProcess:
    def __init__(self, process: asyncio.subprocess.Process, port: int):
        self.process = process
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self._seen = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        while line := await self.process.stderr.readline():
            async with self._seen:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
                self._seen.notify_all()
        async with self._seen:
            self._seen.notify_all()

    async def wait_for_line(self, text: str) -> str:
        async with self._seen:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                if self._reader.done():
                    raise AssertionError(f"the server ended without logging {text!r}: {self.lines}")
                await self._seen.wait()

    async def exit_code(self) -> int:
        code = await asyncio.wait_for(self.process.wait(), EXIT_BUDGET_SECONDS)
        await self._reader
        return code

    @property
    def log_text(self) -> str:
        return "\n".join(self.lines)


@asynccontextmanager
async def server_process():
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("MONGO_URI", "REDIS_URL", "METRICS_TOKEN", "JWT_SECRET", "CLIENT_ORIGIN")}
    env.update(PORT=str(port), HOST="127.0.0.1", SEED_ADMIN_EMAIL=ADMIN_EMAIL, SEED_ADMIN_PASSWORD=ADMIN_PASSWORD,
               BCRYPT_ROUNDS="4", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "server", cwd=PROJECT_ROOT, env=env,
                                                   stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    server = ServerProcess(process, port)
    try:
        await server.wait_for_line('"listening"')
        yield server
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def login(server: ServerProcess) -> str:
    response = await AsyncHTTPClient().fetch(
        server.base + "/api/auth/login", method="POST",
        body=json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        headers={"Content-Type": "application/json"})
    return json.loads(response.body)["token"]


async def read_until_closed(connection) -> list[str]:
    frames = []
    while (message := await asyncio.wait_for(connection.read_message(), EXIT_BUDGET_SECONDS)) is not None:
        frames.append(message)
    return frames


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_closes_every_socket_with_1001_and_exits_0(signum):
    async with server_process() as server:
        token = await login(server)
        doctor = await AsyncHTTPClient().fetch(
            server.base + "/api/doctors", method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            body=json.dumps({"name": "Dr. Stop", "specialization": "GP", "email": "stop@example.org",
                             "phone": "+1 555 0100"}))
        doctor_id = json.loads(doctor.body)["id"]
        by_header = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{server.port}/ws",
                                                        headers={"Authorization": f"Bearer {token}"}))
        by_query = await websocket_connect(f"ws://127.0.0.1:{server.port}/ws?token={token}")
        for connection in (by_header, by_query):
            await connection.write_message(json.dumps({"type": "queue:subscribe", "doctorId": doctor_id}))
            assert json.loads(await connection.read_message())["event"] == "queue:state"

        server.process.send_signal(signum)

        for connection in (by_header, by_query):
            await read_until_closed(connection)
            assert connection.close_code == 1001
        assert await server.exit_code() == 0

    log = server.log_text
    assert '"stopped"' in log
    # The real process's stderr, every line JSON, with no token (header or ?token=) and no password.
    for line in server.lines:
        json.loads(line)
    assert token not in log and token.split(".")[2] not in log
    assert ADMIN_PASSWORD not in log


async def test_request_in_progress_is_answered_before_exit():
    """A login whose body is still arriving when SIGTERM comes in gets its answer; then the process exits."""
    async with server_process() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body = json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode()
        half = len(body) // 2
        writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        await writer.drain()
        # The 100 Continue proves the server has the request's headers: the request is in progress.
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
        writer.write(body[:half])
        await writer.drain()

        server.process.send_signal(signal.SIGTERM)
        await server.wait_for_line("\"stopped accepting connections\"")
        writer.write(body[half:])
        await writer.drain()

        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EXIT_BUDGET_SECONDS)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        answer = json.loads(await reader.readexactly(length))
        assert answer["user"]["email"] == ADMIN_EMAIL and answer["token"]
        writer.close()
        assert await server.exit_code() == 0


async def test_no_new_connections_once_stopping():
    async with server_process() as server:
        token = await login(server)
        held = await websocket_connect(f"ws://127.0.0.1:{server.port}/ws?token={token}")
        server.process.send_signal(signal.SIGTERM)
        await server.wait_for_line("\"stopped accepting connections\"")
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", server.port)
        await read_until_closed(held)
        assert held.close_code == 1001
        assert await server.exit_code() == 0
