"""Canaries for what `live/socketio.py` relies on below python-socketio's documented API (its module
docstring lists each): every test fails with a message naming the change. Run these first after
changing the `python-socketio` pin in setup.cfg (as tests/test_tornado_compat.py for Tornado)."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import version

import pytest
import socketio
from engineio import packet as eio_packet
from tornado.httpclient import AsyncHTTPClient

from live import socketio as ours
from live.socketio import SocketIOHandler, endpoint_of
from tests.conftest import eventually

SEE = "see live/socketio.py's module docstring"


def changed(what: str) -> str:
    return (f"python-socketio {version('python-socketio')} / python-engineio {version('python-engineio')} "
            f"changed {what}; {SEE}")


@pytest.mark.parametrize("package", sorted(ours.CHECKED_VERSIONS))
def test_the_installed_version_is_one_these_canaries_were_checked_against(package):
    installed = ".".join(version(package).split(".")[:2])
    assert installed in ours.CHECKED_VERSIONS[package], \
        f"{package} {version(package)} is not one of {ours.CHECKED_VERSIONS[package]}: run these canaries, {SEE}"


def test_the_server_keeps_its_engineio_sessions_and_handlers_where_we_look():
    sio = socketio.AsyncServer(async_mode="tornado")
    assert isinstance(sio.eio.sockets, dict), changed("where Engine.IO keeps its sessions (eio.sockets)")
    assert callable(sio.eio.handlers.get("disconnect")), \
        changed("where python-socketio registers its Engine.IO disconnect handler (eio.handlers)")
    assert callable(getattr(sio.manager, "eio_sid_from_sid", None)), changed("manager.eio_sid_from_sid")


class Client:
    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue = asyncio.Queue()
        self.client.on("*", lambda event, *args: self.events.put_nowait((event, args)))


async def connected(harness, transport: str):
    token, _ = await harness.register()
    client = Client()
    await client.client.connect(harness.base, auth={"token": token}, transports=[transport], wait_timeout=10)
    endpoint = endpoint_of(harness.server.http.request_callback)
    await eventually(lambda: endpoint.sessions, "the session to open")
    [session] = endpoint.sessions.values()
    return client, endpoint, session


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_packet_put_in_the_engineio_queue_reaches_the_client_as_its_event(harness, transport):
    client, endpoint, session = await connected(harness, transport)
    try:
        assert endpoint.sio.manager.eio_sid_from_sid(session.sid, "/") == session.eio_sid, \
            changed("manager.eio_sid_from_sid")
        socket = endpoint.sio.eio.sockets.get(session.eio_sid)
        assert socket is not None, changed("the key of eio.sockets (the Engine.IO sid)")
        assert socket.closed is False and socket.closing is False, changed("an open session's closed / closing")
        assert isinstance(socket.queue, asyncio.Queue), changed("the session's outgoing queue (queue)")
        assert socket.upgrading is False, changed("a settled session's upgrading")
        if transport == "websocket":
            assert isinstance(session.handler, SocketIOHandler), \
                changed("the connect environ's request handler (environ['tornado.handler'])")
        else:
            assert session.handler is None  # long-polling: always through Engine.IO's queue
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data='2["canary",{"a":[1,"\\u00e9"]}]'))
        event, args = await asyncio.wait_for(client.events.get(), 10)
        assert (event, args) == ("canary", ({"a": [1, "é"]},)), \
            changed("what a MESSAGE packet carrying a Socket.IO EVENT in the queue becomes")
    finally:
        await client.client.disconnect()
    await eventually(lambda: socket.closed, "the session to close")
    assert socket.closed is True, changed("a closed session's closed")


async def test_the_writer_empties_the_queue_only_as_it_hands_packets_to_write_message(harness, monkeypatch):
    """The direct path writes a frame itself only when the session's queue is empty: every packet
    Engine.IO took from it must by then be in Tornado's hands, so nothing can overtake it."""
    written: list = []
    write_message = SocketIOHandler.write_message

    def spy(self, message, binary=False):
        written.append(message)
        return write_message(self, message, binary)

    monkeypatch.setattr(SocketIOHandler, "write_message", spy)
    client, endpoint, session = await connected(harness, "websocket")
    try:
        socket = endpoint.sio.eio.sockets[session.eio_sid]
        seen_empty_with: list = []
        for number in range(5):
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=f'2["canary",{number}]'))
        assert not socket.queue.empty()
        while not socket.queue.empty():
            await asyncio.sleep(0)
        seen_empty_with = [m for m in written if "canary" in m]
        assert seen_empty_with == [f'42["canary",{n}]' for n in range(5)], \
            changed("when the Engine.IO writer takes packets from the queue and writes them")
    finally:
        await client.client.disconnect()


async def test_the_tornado_driver_writes_each_packet_with_write_message_without_waiting(harness, monkeypatch):
    written: list = []
    write_message = SocketIOHandler.write_message

    def spy(self, message, binary=False):
        future = write_message(self, message, binary)
        written.append((message, future))
        return future

    monkeypatch.setattr(SocketIOHandler, "write_message", spy)
    client, endpoint, session = await connected(harness, "websocket")
    try:
        socket = endpoint.sio.eio.sockets[session.eio_sid]
        for number in range(3):
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=f'2["canary",{number}]'))
        for number in range(3):
            assert await asyncio.wait_for(client.events.get(), 10) == ("canary", (number,))
        canaries = [message for message, _ in written if "canary" in message]
        assert canaries == [f'42["canary",{n}]' for n in range(3)], \
            changed("how the Tornado driver sends a packet (one write_message per packet, Engine.IO-encoded)")
        assert all(isinstance(future, asyncio.Future) for _, future in written), \
            changed("what the handler's write_message returns to the driver")
    finally:
        await client.client.disconnect()


async def test_wrapping_the_disconnect_handler_still_tells_python_socketio(harness):
    client, endpoint, session = await connected(harness, "websocket")
    await client.client.disconnect()
    await eventually(lambda: not endpoint.sessions, "python-socketio's disconnect to reach our handler")
    assert not harness.services.sockets, changed("the Engine.IO disconnect handler's arguments")


async def test_none_in_the_queue_answers_a_waiting_long_poll(harness):
    """What the endpoint's Engine.IO disconnect hook does so that a poll waiting on a closed session
    is answered at once rather than at Engine.IO's ping timeout."""
    token, _ = await harness.register()
    http = AsyncHTTPClient()
    url = f"{harness.base}/socket.io/?EIO=4&transport=polling"
    sid = json.loads((await http.fetch(url)).body.decode()[1:])["sid"]
    url += f"&sid={sid}"
    await http.fetch(url, method="POST", body="40" + json.dumps({"token": token}))
    assert (await http.fetch(url)).body.decode().startswith("40")  # the connect acknowledgement
    poll = asyncio.ensure_future(http.fetch(url, raise_error=False, request_timeout=60))
    endpoint = endpoint_of(harness.server.http.request_callback)
    await asyncio.sleep(0.2)
    assert not poll.done()  # waiting, as a long-poll does
    endpoint.sio.eio.sockets[sid].queue.put_nowait(None)
    # A readiness guard, not a speed check: Engine.IO's own ping would answer it after 20 s.
    answer = await asyncio.wait_for(poll, 10)
    assert answer.code in (200, 400), changed("what a poll gets when None is put in the queue")
