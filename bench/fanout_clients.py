"""Watching sockets of three kinds of server, held by a separate process (see `bench/fanout.py`).

Reads one JSON line `{"url": U, "kind": K, "sockets": [token or null, ...], "subscribe": {...}}`:
kind `medpharma` sends `queue:subscribe` and waits for its first `queue:state`; `bare` waits for a
first frame; `socketio` speaks Engine.IO 4 / Socket.IO 5 over a plain WebSocket (open packet, connect
to the default namespace, answer pings) and waits for the connect acknowledgement; `medpharma-socketio`
does the same against our `/socket.io/` (the token in the connect packet's auth), then emits
`queue:subscribe` and waits for its first `queue:state` event. Then commands:
- `open`: prints `ready <sockets>`;
- `next`: waits until every socket has one more broadcast frame than before; prints
  `got <sockets that did> <CLOCK_MONOTONIC when the last one arrived> <bytes of that frame>`.

What a frame costs this process must not depend on when `next` arrives: the bench sends it once
the request that caused the change is answered, which is before the fan-out for a server that
answers first (python-socketio; ours since it answers the booking before writing to the watchers)
and after it for one that writes first (the bare floor). So the sockets count into one `Tally` as
frames arrive (a counter per frame number and the moment the last socket had it), and `next` only
reads it or waits on one event, rather than setting a waiter going per socket: 1,000 waiters made
at the start of a fan-out cost more than 1,000 made at its end, when most had their frame already.
"""

from __future__ import annotations

import asyncio
import json
import sys

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect

from bench.watchers import Tally, raise_fd_limit

OPEN_AT_ONCE = 200
WAIT_SECONDS = 60


class Socket:
    def __init__(self, url: str, kind: str, token: str | None, subscribe: dict, tally: Tally):
        self.url, self.kind, self.token, self.subscribe, self.tally = url, kind, token, subscribe, tally
        self.count, self.last_size = 0, 0
        self.changed = asyncio.Event()

    async def open(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token and self.kind == "medpharma" else {}
        self.connection = await websocket_connect(HTTPRequest(self.url, headers=headers, connect_timeout=60,
                                                              request_timeout=60), max_message_size=64 * 1024 * 1024)
        if self.kind == "medpharma":
            await self.connection.write_message(json.dumps({"type": "queue:subscribe", **self.subscribe}))
        elif self.kind == "socketio":
            opened = await self.connection.read_message()
            assert opened.startswith("0"), opened
            await self.connection.write_message("40")
        elif self.kind == "medpharma-socketio":
            opened = await self.connection.read_message()
            assert opened.startswith("0"), opened
            await self.connection.write_message("40" + json.dumps({"token": self.token}))
            acknowledged = await self.connection.read_message()
            while acknowledged == "2":  # an Engine.IO ping came first (a slow start): answer it
                await self.connection.write_message("3")
                acknowledged = await self.connection.read_message()
            assert acknowledged.startswith("40"), acknowledged
            await self.connection.write_message("42" + json.dumps(["queue:subscribe", self.subscribe]))
        asyncio.get_running_loop().create_task(self.read())
        await self.until(1)  # the first state / hello / connect acknowledgement

    async def read(self) -> None:
        while True:
            message = await self.connection.read_message()
            if message is None:
                return
            if self.kind in ("socketio", "medpharma-socketio"):
                if message == "2":  # Engine.IO ping
                    try:
                        await self.connection.write_message("3")
                    except WebSocketClosedError:  # closing at the end of the run
                        return
                    continue
                if not (message.startswith("40") or message.startswith("42")):
                    continue
                if self.kind == "medpharma-socketio" and not message.startswith('42["queue:state"'):
                    continue
            elif self.kind == "medpharma" and not message.startswith('{"event":"queue:state"'):
                continue
            self.last_size = len(message)
            self.count += 1
            self.tally.count(self.count)
            self.changed.set()

    async def until(self, count: int) -> None:
        while self.count < count:
            self.changed.clear()
            await self.changed.wait()


async def main() -> int:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    readline = lambda: loop.run_in_executor(None, sys.stdin.readline)  # noqa: E731
    setup = json.loads(await readline())
    tally = Tally(len(setup["sockets"]))
    sockets = [Socket(setup["url"], setup["kind"], token, setup.get("subscribe", {}), tally)
               for token in setup["sockets"]]
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    seen = 1

    async def open_one(socket: Socket) -> None:
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
            if hasattr(socket, "connection"):
                socket.connection.close()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
