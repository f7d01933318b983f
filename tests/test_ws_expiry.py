"""A WebSocket lives no longer than the token that opened it."""

import asyncio

from server import metrics
from server.auth import TokenIssuer
from tests.conftest import JWT_SECRET


def dropped(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("medpharma_ws_sockets_dropped_total", {"reason": reason}) or 0.0


async def test_socket_is_closed_with_4001_when_its_token_expires(harness):
    _, user = await harness.register()
    short_lived = TokenIssuer(JWT_SECRET, expires_seconds=1).issue(
        {"_id": user["id"], "role": "patient"})
    before = dropped("token_expired")
    ws = await harness.ws(short_lived)
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"event": "pong"}
    closed = await asyncio.wait_for(ws.connection.read_message(), 10)
    assert closed is None
    assert ws.connection.close_code == 4001
    await asyncio.sleep(0.05)
    assert dropped("token_expired") == before + 1


async def test_a_long_lived_token_keeps_the_socket_open(harness):
    token, _ = await harness.register()
    ws = await harness.ws(token)
    for _ in range(3):
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"event": "pong"}
    assert ws.connection.close_code is None
    ws.close()
