"""WebSocket limits: sockets per user per node, frame size, subscriptions per socket."""

from __future__ import annotations

import asyncio
import json

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.conftest import eventually, start_harness, stop_harness


async def refused_upgrade(harness, token: str) -> HTTPClientError:
    try:
        connection = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{harness.port}/ws",
                                                         headers={"Authorization": f"Bearer {token}"}))
    except HTTPClientError as error:
        return error
    connection.close()
    raise AssertionError("the upgrade was accepted")


async def test_one_socket_more_than_ws_max_per_user_is_refused_with_429():
    harness = await start_harness(settings={"ws_max_per_user": 3})
    try:
        token, _ = await harness.register()
        other_token, _ = await harness.register()
        sockets = [await harness.ws(token) for _ in range(3)]
        for socket in sockets:  # all three work
            await socket.send({"type": "ping"})
            assert await socket.recv() == {"event": "pong"}
        refused = await refused_upgrade(harness, token)
        assert refused.code == 429
        body = json.loads(refused.response.body)
        assert body["code"] == "too_many_sockets" and set(body) == {"message", "code"}
        assert int(refused.response.headers["Retry-After"]) >= 1
        # Another user is not affected.
        other = await harness.ws(other_token)
        await other.send({"type": "ping"})
        assert await other.recv() == {"event": "pong"}
        # Closing one frees its place.
        sockets.pop().close()
        user_id = harness.services.tokens.decode(token).user_id
        await eventually(lambda: harness.services.sockets_per_user.get(user_id) == 2,
                         "the server to give the closed socket's place back")
        again = await harness.ws(token)
        await again.send({"type": "ping"})
        assert await again.recv() == {"event": "pong"}
        for socket in sockets + [again, other]:
            socket.close()
    finally:
        await stop_harness(harness)


async def test_concurrent_upgrades_cannot_slip_past_the_limit():
    harness = await start_harness(settings={"ws_max_per_user": 4})
    try:
        token, _ = await harness.register()
        url = f"ws://127.0.0.1:{harness.port}/ws"
        results = await asyncio.gather(*(websocket_connect(HTTPRequest(url, headers={"Authorization": f"Bearer {token}"}))
                                         for _ in range(12)), return_exceptions=True)
        opened = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, HTTPClientError)]
        assert len(opened) == 4 and len(refused) == 8
        assert all(r.code == 429 for r in refused)
        for connection in opened:
            connection.close()
    finally:
        await stop_harness(harness)


async def test_upgrades_that_fail_after_authenticating_give_their_place_back(harness):
    token, _ = await harness.register()
    for _ in range(25):  # more than the default 20
        reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
        writer.write(f"GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 99\r\n\r\n".encode())
        status_line = await asyncio.wait_for(reader.readline(), 5)
        assert b" 426 " in status_line, status_line  # Tornado refuses the unknown protocol version
        writer.close()
    socket = await harness.ws(token)
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"event": "pong"}
    socket.close()


async def test_a_frame_over_4_kib_closes_the_socket_with_1009(harness):
    token, _ = await harness.register()
    socket = await harness.ws(token)
    await socket.send(json.dumps({"type": "ping", "pad": "x" * 4000}))  # under the limit: an error frame
    answer = await socket.recv()
    assert answer["event"] == "error"
    await socket.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
    assert await socket.recv() is None
    assert socket.connection.close_code == 1009
