"""The servers `bench/fanout.py` compares ours with, each in a process of its own.

`python -m bench.fanout_peers` reads one JSON line `{"kind": "bare" | "socketio", "frame": F, "data": D,
"tune_gc": bool, "uvloop": bool}`,
starts that server on a free loopback port and prints `port <P>`; then, one command a line:
- `stamp`: prints `stamp <CLOCK_MONOTONIC when its latest broadcast began, or 0> <this process's CPU
  seconds so far>`;
- `quit` (or end of input): stops.

- **bare tornado** (the floor): a Tornado WebSocket handler that keeps its connections in a set; an
  HTTP POST to `/broadcast` writes one pre-encoded frame `F` (the size of ours) to each with
  `write_message`;
- **python-socketio**: its own server (AsyncServer on Tornado), every socket in one room; a POST to
  `/broadcast` emits `D` as `queue:state` to the room, as a python-socketio application would.

Each runs alone in its process, as a server does in production: no other server's threads compete
with it for the GIL, and its process CPU time is its own (the stdin reader thread waits on a pipe).
Keep-alive pings are off (see `bench/fanout.py`). With `tune_gc` (the bench's default) the process raises
the garbage collector's young threshold as our server does at start-up (`server.app.tune_garbage_collector`),
so that what is compared is the fan-out's work, not a collector setting any of them could have: with
CPython's default, a fan-out to thousands of sockets runs full collections over every socket's objects
(bench/README.md, "The garbage collector's young threshold").
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from bench.watchers import raise_fd_limit

PERIODIC_OFF_SECONDS = 3600  # python-socketio's keep-alive: once an hour is off for the bench


def bare_app(frame: str, stamp):
    watchers: set = set()

    class Watch(WebSocketHandler):
        def open(self):
            watchers.add(self)
            self.write_message("hello")

        def on_close(self):
            watchers.discard(self)

    class Broadcast(RequestHandler):
        def post(self):
            stamp()
            for watcher in tuple(watchers):
                watcher.write_message(frame)
            self.write({"sent": len(watchers)})

    return Application([(r"/ws", Watch), (r"/broadcast", Broadcast)])


def socketio_app(data: dict, stamp):
    import socketio

    sio = socketio.AsyncServer(async_mode="tornado", logger=False, engineio_logger=False,
                               ping_interval=PERIODIC_OFF_SECONDS, ping_timeout=PERIODIC_OFF_SECONDS)

    @sio.event
    async def connect(sid, environ):
        await sio.enter_room(sid, "doctor")

    class Broadcast(RequestHandler):
        async def post(self):
            stamp()
            await sio.emit("queue:state", data, room="doctor")
            self.write({"sent": True})

    return Application([(r"/socket.io/", socketio.get_tornado_handler(sio)), (r"/broadcast", Broadcast)])


async def serve(setup: dict) -> None:
    stamped = [0.0]

    def stamp() -> None:
        stamped[0] = time.monotonic()

    app = bare_app(setup["frame"], stamp) if setup["kind"] == "bare" else socketio_app(setup["data"], stamp)
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    print(f"port {sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def commands() -> None:
        for line in sys.stdin:
            if line.split() == ["stamp"]:
                # read on the loop, so a stamp set by a broadcast still running is not half-seen
                asyncio.run_coroutine_threadsafe(_answer(stamped), loop).result()
            else:
                break
        loop.call_soon_threadsafe(done.set_result, None)

    threading.Thread(target=commands, daemon=True).start()
    await done
    server.stop()


async def _answer(stamped: list) -> None:
    print(f"stamp {stamped[0]:.6f} {time.process_time():.6f}", flush=True)


def main() -> int:
    raise_fd_limit()
    logging.disable(logging.CRITICAL)  # python-socketio's ping tasks, cut short at exit
    setup = json.loads(sys.stdin.readline())
    if setup.get("tune_gc", True):
        from server.app import tune_garbage_collector
        tune_garbage_collector()
    if setup.get("uvloop"):
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve(setup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
