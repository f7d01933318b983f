"""How sockets end: token expiry, and the reason each ending is counted under."""

import asyncio

from bson import ObjectId

from core import metrics
from infra.auth import TokenIssuer
from tests.conftest import JWT_SECRET, eventually, short_lived


def dropped(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("medpharma_ws_sockets_dropped_total", {"reason": reason}) or 0.0


async def test_socket_is_closed_with_4001_when_its_token_expires(harness):
    _, user = await harness.register()
    issuer = TokenIssuer(JWT_SECRET, expires_seconds=60)
    short_lived(issuer, seconds=1)
    token = issuer.issue({"_id": user["id"], "role": "patient"}, str(ObjectId()))  # ends in 1-2 s
    before = dropped("token_expired")
    ws = await harness.ws(token)
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"event": "pong"}
    closed = await asyncio.wait_for(ws.connection.read_message(), 10)
    assert closed is None
    assert ws.connection.close_code == 4001
    await eventually(lambda: dropped("token_expired") >= before + 1, "token_expired to count it")
    assert dropped("token_expired") == before + 1


async def test_a_long_lived_token_keeps_the_socket_open(harness):
    token, _ = await harness.register()
    ws = await harness.ws(token)
    for _ in range(3):
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"event": "pong"}
    assert ws.connection.close_code is None
    ws.close()


async def test_a_close_with_a_code_counts_as_client_closed(harness):
    token, _ = await harness.register()
    before, lost_before = dropped("client_closed"), dropped("connection_lost")
    ws = await harness.ws(token)
    ws.connection.close(1000)
    await eventually(lambda: dropped("client_closed") == before + 1, "client_closed to count it")
    assert dropped("connection_lost") == lost_before


async def test_a_vanished_peer_counts_as_connection_lost(harness):
    token, _ = await harness.register()
    before = dropped("connection_lost")
    open_before = metrics.REGISTRY.get_sample_value("medpharma_ws_connections_open")
    ws = await harness.ws(token)
    ws.connection.stream.close()  # TCP gone, no close frame
    await eventually(lambda: dropped("connection_lost") == before + 1, "connection_lost to count it")
    assert metrics.REGISTRY.get_sample_value("medpharma_ws_connections_open") == open_before



async def test_subscribing_while_already_called_repeats_turn_now_after_the_update(harness):
    """A patient whose page reloads after being called must still learn where to join."""
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    token, _ = await harness.register()
    other_token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"])
    called = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=admin)
    join_url = called.body["current"]["joinUrl"]

    ws = await harness.ws(token)
    await ws.send({"type": "queue:subscribe", "appointmentId": appointment["id"]})
    first, second = await ws.recv(), await ws.recv()
    assert first["event"] == "queue:update" and first["data"]["status"] == "in_consultation"
    assert second == {"event": "turn:now", "data": {"appointmentId": appointment["id"], "joinUrl": join_url}}

    # Someone else still cannot follow it, let alone learn the link.
    intruder = await harness.ws(other_token)
    await intruder.send({"type": "queue:subscribe", "appointmentId": appointment["id"]})
    refused = await intruder.recv()
    assert refused["event"] == "error" and refused["data"]["code"] == "forbidden"
    assert await intruder.drain() == []

    # A waiting appointment gets no turn:now on subscribe.
    waiting = await harness.book(other_token, doctor["id"])
    await intruder.send({"type": "queue:subscribe", "appointmentId": waiting["id"]})
    frames = [await intruder.recv()] + await intruder.drain()
    assert [f["event"] for f in frames] == ["queue:update"]
    ws.close()
    intruder.close()


async def test_a_refused_upgrade_carries_the_request_id(harness):
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(f"ws://127.0.0.1:{harness.port}/ws", headers={"X-Request-Id": "trace-ws-1"})
    try:
        await websocket_connect(request)
    except HTTPClientError as refused:
        assert refused.code == 401
        assert refused.response.headers["X-Request-Id"] == "trace-ws-1"
    else:
        raise AssertionError("the upgrade was accepted without a token")


async def test_an_open_socket_keeps_nothing_of_the_upgrade_request(harness):
    """What only the upgrade needed is let go once the socket is open (it would cost memory on every
    socket for as long as it lives); the access token is not kept in its headers either."""
    token, _ = await harness.register()
    user_id = harness.services.tokens.decode(token).user_id
    ws = await harness.ws(token, headers={"X-Request-Id": "upgrade-1"})
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"event": "pong"}
    [handler] = [s for s in harness.services.sockets if s.viewer.user_id == user_id]
    assert handler.request.connection is None and handler.request.server_connection is None
    assert dict(handler.request.headers) == {}
    assert handler.request_id == "upgrade-1" and handler.request.path == "/ws"
    ws.close()
