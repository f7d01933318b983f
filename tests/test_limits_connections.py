"""Connections that hold the server's resources: silent or slow ones are closed, and running out of
file descriptors pauses accepting instead of spinning, then heals by itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import sys
from pathlib import Path

import pytest

from server.app import Server
from infra.edge import HEADER_TIMEOUT_SECONDS, IDLE_TIMEOUT_SECONDS
from tests.conftest import eventually, free_port, make_settings, start_harness, stop_harness

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(65536), seconds) == b""
    except asyncio.TimeoutError:
        return False
    except ConnectionError:
        return True


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes = HEALTH) -> str:
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    await asyncio.wait_for(reader.readexactly(length), 10)
    return head.split(b"\r\n")[0].decode()


def test_the_real_timeouts_are_10_and_60_seconds():
    assert (HEADER_TIMEOUT_SECONDS, IDLE_TIMEOUT_SECONDS) == (10.0, 60.0)
    server = Server(make_settings())
    assert (server.header_timeout, server.idle_timeout) == (10.0, 60.0)


async def test_silent_and_half_sent_requests_are_closed_after_the_header_timeout():
    harness = await start_harness(header_timeout=0.5, idle_timeout=30)
    try:
        silent = await asyncio.open_connection("127.0.0.1", harness.port)
        half = await asyncio.open_connection("127.0.0.1", harness.port)
        half[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await half[1].drain()
        assert await closed_within(silent[0], 10)
        assert await closed_within(half[0], 10)
        honest = await asyncio.open_connection("127.0.0.1", harness.port)
        assert await answer(*honest) == "HTTP/1.1 200 OK"
        honest[1].close()
    finally:
        await stop_harness(harness)


async def test_a_kept_alive_connection_gets_the_idle_timeout_then_is_closed():
    harness = await start_harness(header_timeout=0.3, idle_timeout=30)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
        assert await answer(reader, writer) == "HTTP/1.1 200 OK"
        # A silent connection opened after that answer is closed after the header timeout; had the
        # kept-alive one had that timeout too, it would have been closed by then as well.
        silent = await asyncio.open_connection("127.0.0.1", harness.port)
        assert await closed_within(silent[0], 10)
        assert await answer(reader, writer) == "HTTP/1.1 200 OK"
        writer.close()
    finally:
        await stop_harness(harness)
    harness = await start_harness(header_timeout=0.3, idle_timeout=0.6)
    try:  # ...and it does get the idle timeout
        reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
        assert await answer(reader, writer) == "HTTP/1.1 200 OK"
        assert await closed_within(reader, 15)
    finally:
        await stop_harness(harness)



@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
async def test_out_of_file_descriptors_the_server_keeps_serving_and_heals():
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("MONGO_URI", "REDIS_URL", "METRICS_TOKEN", "JWT_SECRET", "SEED_ADMIN_EMAIL",
                          "SEED_ADMIN_PASSWORD")}
    env.update(PORT=str(port), HOST="127.0.0.1", BCRYPT_ROUNDS="4", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")

    def low_descriptor_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", cwd=PROJECT_ROOT, env=env, preexec_fn=low_descriptor_limit,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    listening = asyncio.Event()

    async def read_log() -> None:
        while line := await process.stderr.readline():
            lines.append(line.decode(errors="replace"))
            if '"listening"' in lines[-1]:
                listening.set()

    log_reader = asyncio.ensure_future(read_log())
    attackers: list[tuple] = []
    try:
        await asyncio.wait_for(listening.wait(), 60)
        honest = await asyncio.open_connection("127.0.0.1", port)
        assert await answer(*honest) == "HTTP/1.1 200 OK"

        for _ in range(80):  # far more than the 40 descriptors the server may hold
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HEALTH)  # a whole request, so the accepted ones stay open as kept-alive
            attackers.append((reader, writer))

        async def pauses() -> float:
            metrics = await answer_body(*honest, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            return float(re.search(r"^medpharma_accept_paused_total (\S+)$", metrics, re.M).group(1))

        # Out of descriptors it pauses accepting, longer each time: wait for a few pauses in a row.
        paused = await eventually(lambda: pauses_at_least(pauses, 3), "three pauses of the accept loop")
        # The connection it already had is served as usual.
        for _ in range(3):
            assert await answer(*honest) == "HTTP/1.1 200 OK"
        assert 3 <= paused <= 100  # it backed off (a spinning accept loop would count thousands)
        complaints = [line for line in lines if "out of file descriptors" in line]
        assert len(complaints) == 1, complaints  # at most once a minute
        assert json.loads(complaints[0])["level"] == "error"
        assert process.returncode is None

        for _, writer in attackers:
            writer.close()
        attackers.clear()
        honest[1].close()

        async def served_afresh() -> bool:
            try:
                fresh = await asyncio.open_connection("127.0.0.1", port)
                status = await answer(*fresh)
                fresh[1].close()
                return status == "HTTP/1.1 200 OK"
            except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                return False

        await eventually(served_afresh, "a new client to be served once the descriptors are back")
        assert "Traceback" not in "".join(lines)
        not_access = [line for line in lines if '"medpharma.access"' not in line]
        assert len(not_access) < 15, not_access  # no log flood
    finally:
        for _, writer in attackers:
            writer.close()
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 15)
        await log_reader


async def pauses_at_least(pauses, count: int) -> float:
    """The accept loop's pauses so far if there were at least `count`, else 0."""
    paused = await pauses()
    return paused if paused >= count else 0


async def answer_body(reader, writer, request: bytes) -> str:
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    return (await asyncio.wait_for(reader.readexactly(length), 10)).decode()
