"""Many watching sockets held by a separate process, so the server's process measures only itself.

Reads one JSON line `{"port": P, "sockets": [[token, {subscribe frame fields}], ...]}` on stdin, then
commands, one a line:
- `open`: opens every socket (a bounded number at a time), sends its `queue:subscribe` and waits for
  its first frame; prints `ready <open sockets> <seconds>`;
- `await N EVENT`: waits until every socket has had N more frames of EVENT since the last `await`
  (or `open`); prints `got <sockets that did> <seconds> <bytes read> <CLOCK_MONOTONIC when the
  last of them arrived>`. The seconds count from the command, which a bench sends after the request
  that causes the change has been answered, so they leave out whatever the server wrote before it
  answered; the last arrival's time (the clock is shared by all processes) is what to measure from
  just before that request. Frames are counted as they arrive, whenever the command comes (see
  `Tally`, shared with `bench/fanout_clients.py`);
- `quit` (or end of input): closes everything.

Each socket reads continuously, so the server is never held back by a reader that is not reading.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import defaultdict

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

OPEN_AT_ONCE = 200
WAIT_SECONDS = 120


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Tally:
    """For every frame number: how many sockets have had that many frames, and when the last did."""

    def __init__(self, sockets: int):
        self.sockets = sockets
        self.reached: dict[int, int] = {}
        self.completed_at: dict[int, float] = {}
        self._waiting: dict[int, asyncio.Event] = {}

    def count(self, nth: int) -> None:
        """One socket has just had its `nth` frame."""
        reached = self.reached[nth] = self.reached.get(nth, 0) + 1
        if reached == self.sockets:
            self.completed_at[nth] = time.monotonic()
            if nth in self._waiting:
                self._waiting.pop(nth).set()

    async def everyone(self, nth: int, timeout: float) -> tuple[int, float]:
        """Waits until every socket has had `nth` frames (or the timeout); returns how many have and
        when the last of them had it."""
        if self.reached.get(nth, 0) < self.sockets:
            event = self._waiting.setdefault(nth, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.reached.get(nth, 0), self.completed_at.get(nth, 0.0)


class Watcher:
    def __init__(self, port: int, token: str, subscribe: dict, tallies: dict[str, Tally]):
        self.port, self.token, self.subscribe, self.tallies = port, token, subscribe, tallies
        self.counts: dict[str, int] = {}
        self.bytes = 0
        self.changed = asyncio.Event()

    async def open(self):
        self.connection = await websocket_connect(HTTPRequest(
            f"ws://127.0.0.1:{self.port}/ws", headers={"Authorization": f"Bearer {self.token}"},
            connect_timeout=60, request_timeout=60), max_message_size=64 * 1024 * 1024)
        await self.connection.write_message(json.dumps({"type": "queue:subscribe", **self.subscribe}))
        self.task = asyncio.get_running_loop().create_task(self.read())

    async def read(self) -> None:
        while True:
            message = await self.connection.read_message()
            if message is None:
                return
            self.bytes += len(message)
            event = message[10:message.index('"', 10)] if message.startswith('{"event":"') else "?"
            count = self.counts[event] = self.counts.get(event, 0) + 1
            self.tallies[event].count(count)
            self.changed.set()

    async def until(self, event: str, count: int) -> None:
        while self.counts.get(event, 0) < count:
            self.changed.clear()
            await self.changed.wait()


async def main() -> int:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    readline = lambda: loop.run_in_executor(None, sys.stdin.readline)  # noqa: E731
    setup = json.loads(await readline())
    tallies: dict[str, Tally] = defaultdict(lambda: Tally(len(setup["sockets"])))  # one per event
    watchers = [Watcher(setup["port"], token, frame, tallies) for token, frame in setup["sockets"]]
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    seen: dict[str, int] = {}

    async def open_one(watcher: Watcher) -> None:
        async with gate:
            await watcher.open()
            await watcher.until("queue:state" if "doctorId" in watcher.subscribe else "queue:update", 1)

    try:
        while True:
            command = (await readline()).split()
            if not command or command[0] == "quit":
                return 0
            started = time.perf_counter()
            if command[0] == "open":
                await asyncio.wait_for(asyncio.gather(*(open_one(w) for w in watchers)), WAIT_SECONDS * 5)
                seen = {}
                print(f"ready {len(watchers)} {time.perf_counter() - started:.3f}", flush=True)
            elif command[0] == "await":
                more, event = int(command[1]), command[2]
                target = seen.get(event, 1) + more
                reached, last = await tallies[event].everyone(target, WAIT_SECONDS)
                seen[event] = target
                print(f"got {reached} {time.perf_counter() - started:.3f} "
                      f"{sum(w.bytes for w in watchers)} {last:.6f}", flush=True)
    finally:
        for watcher in watchers:
            watcher.connection.close()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
