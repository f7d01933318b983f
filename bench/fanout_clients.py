"""Watching sockets of several kinds of server, held by a separate process (see `bench/fanout.py`).

Reads one JSON line `{"url": U, "kind": K, "sockets": [token or null, ...], "subscribe": {...}}`:
- `medpharma`: our `/ws` (token in the Authorization header); sends `queue:subscribe` and waits for
  its first `queue:state`;
- `medpharma-waiting`: the same, each socket subscribed to its own appointment (`"subscribes"`: one
  `queue:subscribe` body per socket, in the order of `"sockets"`), counting its `queue:update`s
  (`bench/notify.py`);
- `bare`: the bare Tornado floor; waits for its first frame;
- `socketio`: python-socketio's own server, Engine.IO 4 / Socket.IO 5 over a WebSocket (open packet,
  connect to the default namespace, answer pings); waits for the connect acknowledgement;
- `medpharma-socketio`: the same against our `/socket.io/` (the token in the connect packet's auth),
  then emits `queue:subscribe` and waits for its first `queue:state` event;
- `medpharma-polling`: the same over Engine.IO's HTTP long-polling transport (a GET outstanding at
  all times, on a keep-alive connection of its own; sends go on a second connection).
Then commands:
- `open`: prints `ready <sockets>`;
- `next`: waits until every socket has one more broadcast frame than before; prints
  `got <sockets that did> <CLOCK_MONOTONIC when the last one arrived> <bytes of that frame>`.

**The reader must be much faster than the servers**, or every server measures the same: the client.
Tornado's WebSocket client costs about 0.4 ms of Python per frame read (a coroutine step, futures,
the frame parser, UTF-8 decoding), so 1,000 sockets took ~0.4 s to read in one process whatever the
server, and the three servers came out within 10 % of each other (bench/README.md, history). Here
each socket is a bare `asyncio.Protocol`: the WebSocket handshake is written by hand, frames are
parsed from the received bytes (server frames are unmasked; ours are sent masked with a zero key,
which RFC 6455 allows and which leaves the payload as it is), and a broadcast frame is recognised by
its first bytes, never decoded. That costs a few microseconds per frame.

What a frame costs this process must not depend on when `next` arrives: the bench sends it once
the request that caused the change is answered, which is before the fan-out for a server that
answers first (python-socketio; ours, which answers the booking before writing to the watchers)
and after it for one that writes first (the bare floor). So the sockets count into one `Tally` as
frames arrive, and `next` only reads it or waits on one event.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from urllib.parse import urlsplit

from bench.watchers import Tally, raise_fd_limit

OPEN_AT_ONCE = 200
WAIT_SECONDS = 60
_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # any 16 bytes, base64: the server only hashes it back
# How a counted broadcast begins, per kind (None: every data frame after the first counts).
BROADCAST_PREFIX = {"medpharma": b'{"event":"queue:state"', "medpharma-waiting": b'{"event":"queue:update"',
                    "bare": None, "socketio": b'42["queue:state"', "medpharma-socketio": b'42["queue:state"',
                    "medpharma-polling": b'42["queue:state"'}

OUR_WS_KINDS = ("medpharma", "medpharma-waiting")  # our /ws: the token in a header, then queue:subscribe


def control_frame(opcode: int, payload: bytes) -> bytes:
    """A client's control frame (pong): at most 125 bytes of payload, masked with the zero key."""
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + b"\0\0\0\0" + payload


def masked_text_frame(text: str) -> bytes:
    """A client's text frame: masked, as RFC 6455 requires of clients, with the zero key."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
    return header + b"\0\0\0\0" + payload


class WebSocketClient(asyncio.Protocol):
    """One watching WebSocket, driven by its received bytes."""

    def __init__(self, url: str, kind: str, token: str | None, subscribe: dict, tally: Tally):
        self.kind, self.token, self.subscribe, self.tally = kind, token, subscribe, tally
        self.prefix = BROADCAST_PREFIX[kind]
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.target = parts.path + ("?" + parts.query if parts.query else "")
        self.buffer = bytearray()
        self.upgraded = False
        self.step = 0  # Socket.IO: 0 wait open packet, 1 wait connect ack, 2 subscribed
        self.count, self.last_size = 0, 0
        self.first = asyncio.get_running_loop().create_future()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, self.host, self.port)
        await asyncio.wait_for(self.first, WAIT_SECONDS)

    def connection_made(self, transport) -> None:
        self.transport = transport
        headers = [f"GET {self.target} HTTP/1.1", f"Host: {self.host}:{self.port}", "Upgrade: websocket",
                   "Connection: Upgrade", f"Sec-WebSocket-Key: {_KEY}", "Sec-WebSocket-Version: 13"]
        if self.token and self.kind in OUR_WS_KINDS:
            headers.append(f"Authorization: Bearer {self.token}")
        transport.write(("\r\n".join(headers) + "\r\n\r\n").encode())

    def send(self, text: str) -> None:
        self.transport.write(masked_text_frame(text))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.fail(bytes(buffer[:end]).decode(errors="replace"))
                return
            del buffer[:end + 4]
            self.upgraded = True
            if self.kind in OUR_WS_KINDS:
                self.send(json.dumps({"type": "queue:subscribe", **self.subscribe}))
        at, size = 0, len(buffer)
        while size - at >= 2:
            length = buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length = int.from_bytes(buffer[at + 2:at + 4], "big")
                start = at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length = int.from_bytes(buffer[at + 2:at + 10], "big")
                start = at + 10
            if size - start < length:
                break
            opcode = buffer[at] & 0x0F
            at = start + length
            if opcode == 0x1:
                self.on_text(buffer, start, length)
            elif opcode == 0x8:  # the server closes
                self.transport.close()
            elif opcode == 0x9:  # a ping: answer it, or a server that checks its sockets closes this one
                self.transport.write(control_frame(0xA, bytes(buffer[start:start + length])))
        if at:
            del buffer[:at]

    def on_text(self, buffer: bytearray, start: int, length: int) -> None:
        kind = self.kind
        if kind in ("socketio", "medpharma-socketio"):
            if length == 1 and buffer[start] == 0x32:  # "2": Engine.IO ping
                self.send("3")
                return
            if self.step < 2:
                self.handshake(bytes(buffer[start:start + length]).decode())
                return
        prefix = self.prefix
        if prefix is not None and buffer[start:start + len(prefix)] != prefix:
            return
        self.last_size = length
        self.count += 1
        self.tally.count(self.count)
        if self.count == 1 and not self.first.done():
            self.first.set_result(None)

    def handshake(self, message: str) -> None:
        if self.step == 0:
            if not message.startswith("0"):
                return self.fail(message)
            self.send("40" + (json.dumps({"token": self.token}) if self.kind == "medpharma-socketio" else ""))
            self.step = 1
        elif message.startswith("40"):
            self.step = 2
            if self.kind == "socketio":  # python-socketio's room: the acknowledgement is the first frame
                self.count = 1
                self.tally.count(1)
                self.first.set_result(None)
            else:
                self.send("42" + json.dumps(["queue:subscribe", self.subscribe]))
        elif message.startswith("44"):
            self.fail(message)

    def fail(self, why: str) -> None:
        if not self.first.done():
            self.first.set_exception(RuntimeError(f"{self.kind}: {why[:200]}"))
        self.transport.close()

    def connection_lost(self, exc) -> None:
        if not self.first.done():
            self.first.set_exception(RuntimeError(f"{self.kind}: connection lost"))

    def close(self) -> None:
        if hasattr(self, "transport"):
            self.transport.close()


class PollingClient:
    """One Socket.IO client on Engine.IO's long-polling transport: a GET waits on one keep-alive
    connection for the next packets (answered at once when there are some), and anything it sends goes
    as a POST on a second connection."""

    def __init__(self, url: str, kind: str, token: str | None, subscribe: dict, tally: Tally):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.token, self.subscribe, self.tally = token, subscribe, tally
        self.prefix = BROADCAST_PREFIX[kind]
        self.count, self.last_size = 0, 0
        self.first = asyncio.get_running_loop().create_future()
        self.task = None

    async def open(self) -> None:
        self.polls = await asyncio.open_connection(self.host, self.port)
        self.posts = await asyncio.open_connection(self.host, self.port)
        opened = await self.get("")
        assert opened[0].startswith("0"), opened
        self.sid = json.loads(opened[0][1:])["sid"]
        await self.post("40" + json.dumps({"token": self.token}))
        acknowledged = await self.get(self.sid)
        assert acknowledged[0].startswith("40"), acknowledged
        await self.post("42" + json.dumps(["queue:subscribe", self.subscribe]))
        self.task = asyncio.get_running_loop().create_task(self.poll())
        await asyncio.wait_for(self.first, WAIT_SECONDS)

    async def exchange(self, connection, request: bytes) -> bytes:
        reader, writer = connection
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        return await reader.readexactly(length)

    async def get(self, sid: str) -> list[str]:
        query = f"EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")
        body = await self.exchange(self.polls, f"GET {self.path}?{query} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        return body.decode().split("\x1e")

    async def post(self, packet: str) -> None:
        body = packet.encode()
        await self.exchange(self.posts, (f"POST {self.path}?EIO=4&transport=polling&sid={self.sid} HTTP/1.1\r\n"
                                         f"Host: {self.host}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                                         f"Content-Length: {len(body)}\r\n\r\n").encode() + body)

    async def poll(self) -> None:
        prefix = self.prefix.decode()
        while True:
            try:
                packets = await self.get(self.sid)
            except (OSError, asyncio.IncompleteReadError, RuntimeError):
                return
            for packet in packets:
                if packet == "2":
                    await self.post("3")
                elif packet.startswith(prefix):
                    self.last_size = len(packet)
                    self.count += 1
                    self.tally.count(self.count)
                    if not self.first.done():
                        self.first.set_result(None)
                elif packet.startswith("1") or packet.startswith("41"):  # closed by the server
                    return

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        for connection in ("polls", "posts"):
            if hasattr(self, connection):
                getattr(self, connection)[1].close()


async def main() -> int:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    readline = lambda: loop.run_in_executor(None, sys.stdin.readline)  # noqa: E731
    setup = json.loads(await readline())
    tally = Tally(len(setup["sockets"]))
    kind = setup["kind"]
    make = PollingClient if kind == "medpharma-polling" else WebSocketClient
    subscribes = setup.get("subscribes") or [setup.get("subscribe", {})] * len(setup["sockets"])
    sockets = [make(setup["url"], kind, token, subscribe, tally)
               for token, subscribe in zip(setup["sockets"], subscribes, strict=True)]
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    seen = 1

    async def open_one(socket) -> None:
        async with gate:
            await socket.open()

    try:
        while True:
            command = (await readline()).split()
            if not command or command[0] == "quit":
                return 0
            if command[0] == "open":
                await asyncio.wait_for(asyncio.gather(*(open_one(s) for s in sockets)), WAIT_SECONDS * 5)
                print(f"ready {len(sockets)}", flush=True)
            elif command[0] == "next":
                seen += 1
                reached, last = await tally.everyone(seen, WAIT_SECONDS)
                print(f"got {reached} {last:.6f} {sockets[0].last_size}", flush=True)
                seen = min(s.count for s in sockets)  # a socket that coalesced two states catches up here
    finally:
        for socket in sockets:
            socket.close()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
