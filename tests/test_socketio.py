"""`/socket.io/` driven by python-socketio's own client: the `/ws` session under the Socket.IO protocol.

Payloads are compared with what a `/ws` socket of the same viewer receives for the same change, so
these tests hold the two endpoints to one behaviour whatever the payloads grow (issue 27)."""

import asyncio
from datetime import timedelta

import pytest
import socketio
from tornado.httpclient import HTTPClientError

from live.socketio import event_packet
from tests.conftest import eventually, future, start_harness, stop_harness
from tests.test_ws import clinic, patients_booked


class SioClient:
    """python-socketio's AsyncClient, every received event queued in arrival order."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue = asyncio.Queue()
        self.refusal: asyncio.Future = asyncio.get_running_loop().create_future()
        self.gone = asyncio.Event()
        self.client.on("*", self._event)
        self.client.on("connect_error", self._refused)
        self.client.on("disconnect", lambda *reason: self.gone.set())

    async def _event(self, event, *args):
        self.events.put_nowait((event, args[0] if args else None))

    async def _refused(self, data):
        if not self.refusal.done():
            self.refusal.set_result(data)

    async def emit(self, event: str, data: dict | None = None) -> None:
        await self.client.emit(event, data)

    async def expect(self, event: str, predicate=None, timeout: float = 10.0):
        while True:
            name, data = await asyncio.wait_for(self.events.get(), timeout)
            if name == event and (predicate is None or predicate(data)):
                return data

    async def before_pong(self) -> list[tuple[str, dict]]:
        """Everything received before the answer to a ping sent now (a barrier, as on /ws)."""
        await self.emit("ping")
        seen = []
        while True:
            name, data = await asyncio.wait_for(self.events.get(), 10)
            if name == "pong":
                return seen
            seen.append((name, data))

    async def close(self) -> None:
        await self.client.disconnect()


async def sio(harness, token: str | None = None, *, how: str = "auth", transports=("websocket",),
              headers: dict | None = None) -> SioClient:
    client = SioClient()
    url, auth, all_headers = harness.base, None, dict(headers or {})
    if token and how == "auth":
        auth = {"token": token}
    elif token and how == "query":
        url += f"?token={token}"
    elif token and how == "header":
        all_headers["Authorization"] = f"Bearer {token}"
    await client.client.connect(url, auth=auth, headers=all_headers, transports=list(transports),
                                wait_timeout=10)
    return client


async def refused(harness, token: str | None = None, **options) -> dict:
    """Connects expecting a refusal; returns the connect_error's data."""
    client = SioClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.client.connect(harness.base, auth={"token": token} if token else None,
                                    headers=options.get("headers", {}),
                                    transports=list(options.get("transports", ("websocket",))), wait_timeout=10)
    assert not client.client.connected
    return (await asyncio.wait_for(client.refusal, 10))["data"]


async def subscribed(harness, token, transports=("websocket",), **frame) -> SioClient:
    client = await sio(harness, token, transports=transports)
    await client.emit("queue:subscribe", frame)
    return client


# -- connecting ---------------------------------------------------------------------------------------

async def test_refused_without_a_token_with_a_bad_one_and_with_an_ended_session(harness):
    assert (await refused(harness))["code"] == "unauthorized"
    assert (await refused(harness, "not-a-token"))["code"] == "bad_token"
    assert (await refused(harness, "not-a-token", transports=("polling",)))["code"] == "bad_token"
    token, _ = await harness.register()
    assert (await harness.api.post("/api/auth/logout", token=token)).status == 204
    assert (await refused(harness, token))["code"] == "bad_token"
    assert not harness.services.sockets and not harness.services.sockets_per_user


@pytest.mark.parametrize("how", ["auth", "query", "header"])
async def test_the_token_in_auth_in_the_query_or_in_the_header(harness, how):
    token, user = await harness.register()
    client = await sio(harness, token, how=how)
    assert await client.before_pong() == []
    [session] = harness.services.sockets
    assert session.viewer.user_id == user["id"]
    await client.close()
    await eventually(lambda: not harness.services.sockets, "the session to leave the registry")


async def test_the_origin_rule_of_ws_with_its_code():
    h = await start_harness(settings={"client_origins": ("https://app.example.com",)})
    try:
        token, _ = await h.register()
        for evil in ("https://evil.example.com", "https://app.example.com.evil.net"):
            assert (await refused(h, token, headers={"Origin": evil}))["code"] == "origin_not_allowed"
            assert (await refused(h, token, headers={"Origin": evil}, transports=("polling",)))["code"] \
                == "origin_not_allowed"
            with pytest.raises(HTTPClientError) as info:  # and /ws, for the same origins
                await h.ws(token, headers={"Origin": evil})
            assert info.value.code == 403
        for good in ("https://app.example.com", f"http://127.0.0.1:{h.port}"):
            client = await sio(h, token, headers={"Origin": good}, transports=("polling",))
            assert await client.before_pong() == []
            await client.close()
        # Long-polling answers carry CORS headers for an allowed origin only.
        from tornado.httpclient import AsyncHTTPClient
        http = AsyncHTTPClient()
        allowed = await http.fetch(f"{h.base}/socket.io/?EIO=4&transport=polling",
                                   headers={"Origin": "https://app.example.com"})
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        foreign = await http.fetch(f"{h.base}/socket.io/?EIO=4&transport=polling",
                                   headers={"Origin": "https://evil.example.com"})
        assert "Access-Control-Allow-Origin" not in foreign.headers
        assert foreign.headers["X-Request-Id"]
    finally:
        await stop_harness(h)


# -- rooms and events -------------------------------------------------------------------------------------

async def test_subscribing_answers_with_the_payloads_ws_sends(harness):
    admin, doctor, doctor_token = await clinic(harness)
    _, [(token, _, appointment), (other_token, _, _)] = await patients_booked(harness, doctor, [30, 60])
    client = await subscribed(harness, token, doctorId=doctor["id"], appointmentId=appointment["id"])
    ws = await harness.ws(token)
    await ws.send({"type": "queue:subscribe", "doctorId": doctor["id"], "appointmentId": appointment["id"]})
    assert await client.expect("queue:update") == (await ws.expect("queue:update"))["data"]
    state = await client.expect("queue:state")
    assert state == (await ws.expect("queue:state"))["data"]
    # The redaction of /ws: a patient sees no one else's identity, the doctor sees everyone's.
    assert [e.get("patientName") for e in state["list"]] == [None, None]
    assert [e["mine"] for e in state["list"]] == [True, False]
    staff = await subscribed(harness, doctor_token, doctorId=doctor["id"].upper())  # ids in either case
    staff_state = await staff.expect("queue:state")
    assert all(e["patientName"] for e in staff_state["list"])
    for c in (client, staff):
        await c.close()
    ws.close()


async def test_every_event_reaches_socketio_as_it_reaches_ws(harness):
    admin, doctor, doctor_token = await clinic(harness, avg=15)
    base, [(first_token, _, first), (token, _, mine)] = await patients_booked(harness, doctor, [30, 30])
    client = await subscribed(harness, token, appointmentId=mine["id"])
    ws = await harness.ws(token)
    await ws.send({"type": "queue:subscribe", "appointmentId": mine["id"]})
    assert (await client.expect("queue:update"))["position"] == 1
    await ws.expect("queue:update")
    staff = await subscribed(harness, doctor_token, doctorId=doctor["id"])
    staff_ws = await harness.ws(doctor_token)
    await staff_ws.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
    await staff.expect("queue:state")
    await staff_ws.expect("queue:state")

    patch = await harness.api.patch(f"/api/doctors/{doctor['id']}/status",
                                    {"isRunningLate": True, "lateByMinutes": 5}, token=doctor_token)
    assert patch.status == 200
    assert await staff.expect("doctor:status") == (await staff_ws.expect("doctor:status"))["data"]
    assert await client.expect("queue:update", lambda d: d["lateByMinutes"] == 5) \
        == (await ws.expect("queue:update", predicate=lambda d: d["lateByMinutes"] == 5))["data"]

    cancelled = await harness.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"},
                                        token=first_token)
    assert cancelled.status == 200
    soon = await client.expect("turn:soon")
    assert soon == (await ws.expect("turn:soon"))["data"]
    assert soon["appointmentId"] == mine["id"] and soon["position"] == 0

    called = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    assert called.status == 200
    now = await client.expect("turn:now")
    assert now == {"appointmentId": mine["id"], "joinUrl": called.body["current"]["joinUrl"]}
    assert now == (await ws.expect("turn:now"))["data"]
    assert (await client.expect("queue:update", lambda d: d["status"] == "in_consultation"))["position"] == -1

    await client.emit("queue:unsubscribe", {"appointmentId": mine["id"]})
    await harness.api.patch(f"/api/doctors/{doctor['id']}/status", {"isRunningLate": False}, token=doctor_token)
    assert (await staff.expect("doctor:status"))["isRunningLate"] is False
    assert [name for name, _ in await client.before_pong()] == []  # unsubscribed: nothing more
    for c in (client, staff):
        await c.close()
    ws.close()
    staff_ws.close()


async def test_errors_for_a_forbidden_subscription_and_bad_events(harness):
    admin, doctor, _ = await clinic(harness)
    _, [(owner, _, appointment)] = await patients_booked(harness, doctor, [30])
    stranger, _ = await harness.register()
    client = await sio(harness, stranger)
    await client.emit("queue:subscribe", {"appointmentId": appointment["id"]})
    assert await client.expect("error") == {"code": "forbidden", "message": "You may not follow this appointment."}
    await client.emit("queue:subscribe", {"doctorId": "nope"})
    assert (await client.expect("error"))["code"] == "bad_frame"
    await client.emit("queue:subscribe", {"doctorId": doctor["id"], "extra": 1})
    assert (await client.expect("error"))["code"] == "bad_frame"
    await client.emit("queue:subscribe", "a string")
    assert (await client.expect("error"))["code"] == "bad_frame"
    await client.emit("queue:whatever", {})
    assert (await client.expect("error"))["code"] == "unknown_type"
    # The connection stays open after every error.
    await client.emit("queue:subscribe", {"doctorId": doctor["id"]})
    assert (await client.expect("queue:state"))["doctorId"] == doctor["id"]
    await client.close()


# -- token refresh, logout, the cap -----------------------------------------------------------------------

async def test_auth_refreshes_the_token_and_a_stranger_token_is_refused(harness):
    token, _ = await harness.register()
    other, _ = await harness.register()
    client = await sio(harness, token)
    [session] = harness.services.sockets
    login = await harness.api.post("/api/auth/refresh", {"refreshToken": "nothing"})
    assert login.status == 401
    fresh = harness.services.tokens.issue({"_id": session.viewer.user_id, "role": "patient"},
                                          session.viewer.session_id)
    await client.emit("auth", {"token": fresh})
    ok = await client.expect("auth:ok")
    assert ok["expiresAt"].endswith("Z")
    await client.emit("auth", {"token": other})
    assert (await client.expect("error"))["code"] == "bad_token"
    assert session.viewer.user_id != harness.services.tokens.decode(other).user_id
    await client.close()


async def test_logout_disconnects_the_socketio_connection_as_it_closes_ws(harness):
    from tests.test_sessions import closed_with, new_patient
    _, signed = await new_patient(harness)
    token = signed["token"]
    client = await sio(harness, token, transports=("polling",))
    ws = await harness.ws(token)
    await ws.send({"type": "ping"})
    await ws.expect("pong")
    assert await client.before_pong() == []
    assert (await harness.api.post("/api/auth/logout", token=token)).status == 204
    assert await closed_with(ws) == 4001
    told = await client.expect("error")
    assert told["code"] == "session_ended"
    await asyncio.wait_for(client.gone.wait(), 10)
    await eventually(lambda: not harness.services.sockets and not harness.services.sockets_per_user,
                     "both sockets to leave the registry and give their slots back")


async def test_the_per_user_cap_counts_both_endpoints():
    h = await start_harness(settings={"ws_max_per_user": 2})
    try:
        token, _ = await h.register()
        ws = await h.ws(token)
        client = await sio(h, token)
        assert (await refused(h, token))["code"] == "too_many_sockets"
        with pytest.raises(HTTPClientError) as info:
            await h.ws(token)
        assert info.value.code == 429
        await client.close()  # a slot comes back, and either endpoint may take it
        await eventually(lambda: h.services.sockets_per_user[h.services.tokens.decode(token).user_id] == 1,
                         "the Socket.IO slot to be given back")
        again = await sio(h, token, transports=("polling",))
        with pytest.raises(HTTPClientError) as info:
            await h.ws(token)
        assert info.value.code == 429
        await again.close()
        ws.close()
    finally:
        await stop_harness(h)


async def test_disabling_the_account_disconnects_it(harness):
    admin = await harness.admin_token()
    token, user = await harness.register()
    client = await sio(harness, token)
    assert await client.before_pong() == []
    assert (await harness.api.patch(f"/api/admin/users/{user['id']}", {"disabled": True}, token=admin)).status == 200
    assert (await client.expect("error"))["code"] == "account_disabled"
    await asyncio.wait_for(client.gone.wait(), 10)


async def test_the_connection_ends_with_its_token(harness):
    from bson import ObjectId

    from infra.auth import TokenIssuer
    from tests.conftest import JWT_SECRET, short_lived
    from tests.test_ws_lifecycle import dropped
    _, user = await harness.register()
    issuer = TokenIssuer(JWT_SECRET, expires_seconds=60)
    short_lived(issuer, seconds=1)
    token = issuer.issue({"_id": user["id"], "role": "patient"}, str(ObjectId()))  # ends in 1-2 s
    before = dropped("token_expired")
    client = await sio(harness, token)
    assert await client.before_pong() == []
    assert (await client.expect("error"))["code"] == "token_expired"
    await asyncio.wait_for(client.gone.wait(), 10)
    await eventually(lambda: dropped("token_expired") >= before + 1, "token_expired to count it")
    assert dropped("token_expired") == before + 1


# -- long-polling, several nodes ----------------------------------------------------------------------------

async def test_long_polling_carries_the_same_session(harness):
    admin, doctor, doctor_token = await clinic(harness)
    _, [(first_token, _, first), (token, _, mine)] = await patients_booked(harness, doctor, [30, 40])
    client = await subscribed(harness, token, transports=("polling",), appointmentId=mine["id"])
    assert client.client.transport() == "polling"
    assert (await client.expect("queue:update"))["position"] == 1
    await harness.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"}, token=first_token)
    assert (await client.expect("queue:update", lambda d: d["position"] == 0))["appointmentId"] == mine["id"]
    await client.close()


async def test_a_change_on_one_node_reaches_socketio_clients_on_another(two_nodes):
    node_a, node_b = two_nodes
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin, avgConsultMinutes=15)
    first_token, _ = await node_a.register()
    token, _ = await node_a.register()
    first = await node_a.book(first_token, doctor["id"], future(2))
    mine = await node_a.book(token, doctor["id"], future(2))
    client = await subscribed(node_b, token, appointmentId=mine["id"])
    assert (await client.expect("queue:update"))["position"] == 1
    cancelled = await node_a.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"},
                                       token=first_token)
    assert cancelled.status == 200
    assert (await client.expect("queue:update", lambda d: d["position"] == 0))["appointmentId"] == mine["id"]
    await client.close()


async def test_a_client_that_stops_reading_is_dropped_not_buffered_for(harness):
    """A long-polling client that sends but never polls: what it is sent piles up in python-socketio's
    queue until the bound, then it is dropped (as /ws drops a socket with 1013)."""
    import json
    from tornado.httpclient import AsyncHTTPClient
    from tests.test_ws_lifecycle import dropped
    token, _ = await harness.register()
    http = AsyncHTTPClient()
    url = f"{harness.base}/socket.io/?EIO=4&transport=polling"
    opened = await http.fetch(url)
    sid = json.loads(opened.body.decode()[1:])["sid"]
    url += f"&sid={sid}"
    await http.fetch(url, method="POST", body="40" + json.dumps({"token": token}))
    await eventually(lambda: harness.services.sockets, "the session to open")
    before = dropped("slow_reader")
    bad = "\x1e".join(['42["queue:subscribe","x"]'] * 16)  # each answered with an `error` event
    for _ in range(40):  # 640 events; the bound is 256
        if not harness.services.sockets:
            break
        await http.fetch(url, method="POST", body=bad, raise_error=False)
    await eventually(lambda: not harness.services.sockets, "the reader that never reads to be dropped")
    assert dropped("slow_reader") == before + 1
    assert not harness.services.sockets_per_user


# -- the packet ---------------------------------------------------------------------------------------------

def test_a_ws_frame_becomes_the_socketio_event_packet():
    assert event_packet((b'{"event":"pong"}',)) == '2["pong"]'
    assert event_packet((b'{"event":"turn:now","data":{"a":"\\u00e9"}}',)) == '2["turn:now",{"a":"\\u00e9"}]'
    assert event_packet((b'{"event":"queue:state","data":{"list":[', memoryview(b'1,2'), b']}}')) \
        == '2["queue:state",{"list":[1,2]}]'
    with pytest.raises(ValueError):
        event_packet((b'[1]',))


async def test_a_websocket_client_that_stops_reading_never_holds_up_anyone(harness):
    """The WebSocket transport's slow reader, as tests/test_ws.py's for /ws: a Socket.IO client stops
    reading; the doctor's queue goes on changing; another client hears every change at once; the
    stalled one holds at most one unsent value per subscription, however much changed (its frames go
    straight to its socket, as /ws's do, so its outbox waits for the kernel and coalesces)."""
    import gc
    import json
    import socket as sockets
    from bench.fanout_clients import masked_text_frame
    from live.socketio import SocketIOHandler

    admin, doctor, doctor_token = await clinic(harness)
    # Big staff-view frames (long reasons), so the stalled connection's buffers fill quickly.
    _, booked = await patients_booked(harness, doctor, [60 + i for i in range(12)], reason="x" * 1000)
    slow_user = harness.services.tokens.decode(doctor_token).user_id
    # A bare Engine.IO client on the WebSocket transport, over a plain socket: a WebSocket client
    # library keeps reading into its own memory, and this one must really stop reading.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(harness.base.rsplit(":", 1)[1]), limit=4096)
    writer.write(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")

    async def read_text() -> str:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        return (await reader.readexactly(length)).decode()

    assert (await read_text()).startswith("0")
    writer.write(masked_text_frame("40" + json.dumps({"token": doctor_token})))
    assert (await read_text()).startswith("40")
    writer.write(masked_text_frame("42" + json.dumps(["queue:subscribe", {"doctorId": doctor["id"]}])))
    assert (await read_text()).startswith('42["queue:state"')
    client_socket = writer.get_extra_info("socket")
    client_socket.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)
    port = client_socket.getsockname()[1]
    [server_side] = [o for o in gc.get_objects() if isinstance(o, SocketIOHandler) and o.ws_connection is not None
                     and o.ws_connection.stream.socket.getpeername()[1] == port]
    server_side.ws_connection.stream.socket.setsockopt(sockets.SOL_SOCKET, sockets.SO_SNDBUF, 4096)
    # From here on, `slow` never reads again.

    def slow_is_open() -> bool:
        return any(s.viewer.user_id == slow_user for s in harness.services.sockets)

    watcher_token, _, watched = booked[5]
    fast = await subscribed(harness, watcher_token, appointmentId=watched["id"])
    assert (await fast.expect("queue:update"))["position"] == 5
    churner, _ = await harness.register()
    [session] = [s for s in harness.services.sockets if s.viewer.user_id == slow_user]
    assert session.handler is server_side  # the direct path: it came on a WebSocket
    subscriptions = len(session.rooms)
    most_pending = 0
    for round_ in range(40):
        appointment = await harness.book(churner, doctor["id"], future(1), reason="y" * 1000)
        most_pending = max(most_pending, session.outbox.pending)
        # The other client hears that it moved back, now, despite the stalled connection.
        assert (await fast.expect("queue:update", timeout=10))["position"] == 6, round_
        cancel = await harness.api.patch(f"/api/appointments/{appointment['id']}/status",
                                         {"status": "cancelled"}, token=churner)
        assert cancel.status == 200
        most_pending = max(most_pending, session.outbox.pending)
        assert (await fast.expect("queue:update", timeout=10))["position"] == 5, round_
    # The stalled client holds at most one value per subscription, however much changed.
    assert most_pending <= subscriptions and session.outbox.pending <= subscriptions
    # And it really was stalled: a value was waiting for it, and Tornado held unsent bytes.
    assert session.outbox.pending >= 1
    assert slow_is_open()  # still open: latest-value messages never overflow
    writer.close()
    await eventually(lambda: not slow_is_open(), "the closed client's session to end")
    assert slow_user not in harness.services.sockets_per_user
    assert fast.client.connected
    await fast.close()
