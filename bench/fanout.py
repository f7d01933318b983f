"""`python -m bench.fanout`: one change reaching N watching sockets, beside its floor and python-socketio
(issue 15, item 1).

For each N (100, 1,000, 5,000 by default) and each server, in one run:
- **medpharma**: this server, one doctor with 20 waiting, N patients (none in the queue) watching the
  doctor's room; the change is a booking (then its cancellation, alternately) by another patient
  over HTTP, and it reaches every socket as a `queue:state`;
- **bare tornado** (the floor): a Tornado WebSocket handler that keeps its connections in a set;
  an HTTP POST writes one pre-encoded frame of the same size to each with `write_message`;
- **python-socketio**: its own server (AsyncServer on Tornado), every socket in one room; an HTTP POST
  emits the same data to the room.

Each server runs in this process on its own thread and event loop; the sockets are held by a child
process (`bench/fanout_clients.py`). The time runs from just before the HTTP request is sent to the
arrival of the frame at the last of the N sockets (CLOCK_MONOTONIC, shared by both processes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import threading
import time

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from bench.harness import Client, ClientProcess, ServerThread, a_while_from_now, bench_settings, percentile
from bench.memory import book_many, patient_token




class LoopThread:
    """A Tornado application listening on a free loopback port, on its own thread and loop."""

    def __init__(self, make_app, loop_factory=asyncio.new_event_loop):
        self.loop = loop_factory()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(make_app,), daemon=True)
        self.thread.start()
        self.ready.wait(30)

    def _serve(self, make_app) -> None:
        asyncio.set_event_loop(self.loop)
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]

        async def start():
            self.server = HTTPServer(make_app())
            self.server.add_sockets(sockets)

        self.loop.run_until_complete(start())
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def bare_app(frame: str):
    watchers: set = set()

    class Watch(WebSocketHandler):
        def open(self):
            watchers.add(self)
            self.write_message("hello")

        def on_close(self):
            watchers.discard(self)

    class Broadcast(RequestHandler):
        def post(self):
            for watcher in tuple(watchers):
                watcher.write_message(frame)
            self.write({"sent": len(watchers)})

    return Application([(r"/ws", Watch), (r"/broadcast", Broadcast)])


def socketio_app(data: dict):
    import socketio

    sio = socketio.AsyncServer(async_mode="tornado", logger=False, engineio_logger=False)

    @sio.event
    async def connect(sid, environ):
        await sio.enter_room(sid, "doctor")

    class Broadcast(RequestHandler):
        async def post(self):
            await sio.emit("queue:state", data, room="doctor")
            self.write({"sent": True})

    return Application([(r"/socket.io/", socketio.get_tornado_handler(sio)), (r"/broadcast", Broadcast)])


def Clients(setup: dict) -> ClientProcess:
    return ClientProcess("bench.fanout_clients", setup, quit_seconds=60)


async def timed_runs(clients: Clients, count: int, trigger, runs: int) -> tuple[list[float], int]:
    times, size = [], 0
    for run in range(runs):
        started = time.monotonic()
        await trigger(run)
        _, reached, last, size = await clients.command("next")
        if int(reached) != count:
            raise RuntimeError(f"only {reached} of {count} sockets had the frame")
        times.append(float(last) - started)
        await asyncio.sleep(0.05)
    return times, int(size)


async def run(args) -> list[tuple]:
    rows = []
    ours = await ServerThread(bench_settings(ws_max_per_user=10_000)).start()
    client = Client(ours.port)
    try:
        admin = await client.admin_token()
        doctor_id = (await client.create_doctor(admin))["id"]
        await book_many(client, ours, doctor_id, args.waiting)
        stranger, _ = patient_token(ours)
        data = await client.ok("GET", f"/api/queue/doctor/{doctor_id}", token=stranger)
        frame = json.dumps({"event": "queue:state", "data": data}, separators=(",", ":"))
        booker, _ = patient_token(ours)
        booked: list[str] = []

        async def change(run: int) -> None:
            if not booked:
                booked.append((await client.book(booker, doctor_id, a_while_from_now(60)))["id"])
            else:
                await client.ok("PATCH", f"/api/appointments/{booked.pop()}/status", {"status": "cancelled"}, booker)

        floor = LoopThread(lambda: bare_app(frame))
        sio = LoopThread(lambda: socketio_app(data))
        try:
            for count in args.sockets:
                results = {}
                setups = {
                    "medpharma": ({"url": f"ws://127.0.0.1:{ours.port}/ws", "kind": "medpharma",
                                   "sockets": [patient_token(ours)[0] for _ in range(count)],
                                   "subscribe": {"doctorId": doctor_id}}, change),
                    "bare tornado": ({"url": f"ws://127.0.0.1:{floor.port}/ws", "kind": "bare",
                                      "sockets": [None] * count}, _poster(client, floor.port)),
                    "python-socketio": ({"url": f"ws://127.0.0.1:{sio.port}/socket.io/?EIO=4&transport=websocket",
                                         "kind": "socketio", "sockets": [None] * count}, _poster(client, sio.port)),
                }
                for name, (setup, trigger) in setups.items():
                    clients = Clients(setup)
                    try:
                        await clients.command("open")
                        results[name] = await timed_runs(clients, count, trigger, args.runs)
                    finally:
                        clients.close()
                floor_p99 = percentile(results["bare tornado"][0], 0.99)
                for name, (times, size) in results.items():
                    p50, p99 = statistics.median(times), percentile(times, 0.99)
                    rows.append((f"fan-out to {count} sockets: {name}", f"{p50 * 1000:.1f} ms",
                                 f"p99 {p99 * 1000:.1f} ms ({p99 / floor_p99:.2f}x the floor's p99)",
                                 f"{args.runs} changes, frame {size} bytes"))
                print("\n".join("| " + " | ".join(r) + " |" for r in rows[-3:]), flush=True)
        finally:
            floor.stop()
            sio.stop()
    finally:
        client.close()
        await ours.stop()
    return rows


def _poster(client: Client, port: int):
    async def post(run: int) -> None:
        await client.http.fetch(f"http://127.0.0.1:{port}/broadcast", method="POST", body=b"")
    return post


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--waiting", type=int, default=20)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--uvloop", action="store_true", help="every server's event loop is uvloop's")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    logging.disable(logging.WARNING)
    print(f"python -m bench.fanout {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print("| measure | p50 | p99 | note |\n|---|---|---|---|", flush=True)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
