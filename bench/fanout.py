"""`python -m bench.fanout`: one change reaching N watching sockets, beside its floor and python-socketio
(issue 15, item 1).

For each N (100, 1,000, 5,000 by default) and each server, in one run:
- **medpharma**: this server, one doctor with 20 waiting, N patients (none in the queue) watching the
  doctor's room; the change is a booking (then its cancellation, alternately) by another patient
  over HTTP, and it reaches every socket as a `queue:state`;
- **bare tornado** (the floor): a Tornado WebSocket handler that keeps its connections in a set;
  an HTTP POST writes one pre-encoded frame of the same size to each with `write_message`;
- **python-socketio**: its own server (AsyncServer on Tornado), every socket in one room; an HTTP POST
  emits the same data to the room;
- **medpharma socket.io**: this server again, N Socket.IO clients (over WebSocket) watching a second
  doctor with as many waiting through `/socket.io/` (issue 27): the same change on that doctor, the
  same `queue:state`, written by the same outboxes as Socket.IO event packets.

Each server runs in this process on its own thread and event loop; the sockets are held by three
child processes (`bench/fanout_clients.py`), one per server, all open at once, and the changes take
turns (medpharma, floor, python-socketio, medpharma, ...), so a busier or quieter moment of the shared
machine falls on all three alike. Two times per change, both ending when the frame reaches the last
of the N sockets (CLOCK_MONOTONIC, shared by all the processes):
- **end to end**: from just before the HTTP request that causes the change is sent. For us that
  request is a booking or cancellation (token check, validation, the store write, the queue's new
  snapshot); for the other two it is a bare POST that only broadcasts;
- **from the change**: from the moment the server has the change to send: for us when the doctor's
  queue hands its new `queue:state` to the room (a stamp taken on the server's thread, around the
  hub's publish), for the other two when their POST handler starts its broadcast.
Keep-alive pings are off in all three servers while measuring (ours sends one every 20 s, socketio
every 25 s, the bare server none): a round of thousands of pings on one server's thread would land
in another's timing. So is our queues' clock tick (every 10 s by default; here once an hour): as the
clock moves the waiting patients' ETAs, a tick sends the doctor's room a new `queue:state` about once
a minute, a fan-out to all N sockets that is no measured change; it lands on whichever server's turn
is running, and between two of ours our clients would count its frames as the next change's. For
the same reason the heap is frozen (`gc.freeze()`) once the sockets are open: the three servers
share this process, and a full garbage collection scanning all their sockets (200-250 ms here at
3 x 1,000 sockets) otherwise lands on whichever server's change happens to be running; a server in
a process of its own pauses in proportion to its own heap only (and ours raises the collector's
young threshold at start-up, `server.app.tune_garbage_collector`, which is this whole process's
setting here, so all three servers have it).

Every change meets the same store: the bench removes each cancelled booking's document again
(between changes, outside the measured time). The embedded store (mongomock) finds a document by
scanning the collection, so without this each change would be slower than the one before: over a
run of 1,001 changes the collection grew from 21 to 521 documents and our end-to-end p50 at 100
sockets from 11.7 to 13.3 ms (1 Dec 2026) while our from-the-change times did not move. MongoDB
finds by index and does not slow so; what is measured is the change, not the bench's history.

p99 is nearest-rank over `changes_for(N)` changes per server: about 100,000 deliveries per server
at each N, at least 101 and at most 1,001 changes (1,001 at 100 sockets, 101 at 1,000 and 5,000), so
each N takes about the same time and p99 is never just the slowest (the 100th of 101 at least; at
100 sockets, where a change takes 10-20 ms and the machine's hiccups are of that size, the 991st of
1,001). Measured in two runs of `--sockets 5000` on 1 Dec 2026 (02:31 and 02:37 UTC): a round of
three changes (each reaching 5,000 sockets in 0.5-0.6 s, then a pause) took 2.25 and 1.76 s, so the
101 take 3-4 minutes (4 min 7 s and 3 min 20 s for the command with its 15,000 sockets opened). The
note column gives the seconds a round took in each run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import statistics
import sys
import threading
import time

from bson import ObjectId
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from bench.harness import Client, ClientProcess, ServerThread, a_while_from_now, bench_settings, percentile
from bench.memory import book_many, patient_token
from live.socketio import endpoint_of

DELIVERIES_PER_SERVER = 100_000  # changes x sockets at each N: each N takes about the same time
FEWEST_CHANGES, MOST_CHANGES = 101, 1001  # p99 (nearest rank) is then never just the slowest change
PAUSE_SECONDS = 0.05  # between changes: the previous one's last frames are read and settled
PERIODIC_OFF_SECONDS = 3600  # socketio's keep-alive and our queues' clock tick: once an hour is off for the bench


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


def changes_for(sockets: int) -> int:
    """How many changes each server makes at N sockets (see the module docstring)."""
    return min(MOST_CHANGES, max(FEWEST_CHANGES, DELIVERIES_PER_SERVER // sockets + 1))


def Clients(setup: dict) -> ClientProcess:
    return ClientProcess("bench.fanout_clients", setup, quit_seconds=60)


class Stamps:
    """When each server had its latest change to send (set on the servers' threads, read here)."""

    def __init__(self):
        self.at: dict[str, float] = {}

    def clear(self) -> None:
        self.at.clear()

    def setter(self, name: str):
        def stamp() -> None:
            self.at.setdefault(name, time.monotonic())
        return stamp


def stamp_state_publishes(hub, stamps_by_room: dict) -> None:
    """Stamps the moment a doctor's queue hands a new `queue:state` to its room (bench only: wraps
    this server's hub instance); one stamp per watched doctor's room."""
    publish = hub.publish

    def stamped(room, message, key=None):
        if key is not None and key.startswith("queue:state:") and room in stamps_by_room:
            stamps_by_room[room]()
        return publish(room, message, key)

    hub.publish = stamped


SERVERS = ("medpharma", "bare tornado", "python-socketio", "medpharma socket.io")


async def run(args) -> list[tuple]:
    rows = []
    stamps = Stamps()
    ours = await ServerThread(bench_settings(ws_max_per_user=20_000), tick_seconds=PERIODIC_OFF_SECONDS).start()
    ours.server.http.request_callback.settings["websocket_ping_interval"] = 0  # see the module docstring
    engine = endpoint_of(ours.server.http.request_callback).sio.eio  # and our Socket.IO endpoint's
    engine.ping_interval = engine.ping_timeout = PERIODIC_OFF_SECONDS
    client = Client(ours.port)
    try:
        admin = await client.admin_token()
        doctor_id = (await client.create_doctor(admin))["id"]
        await book_many(client, ours, doctor_id, args.waiting)
        sio_doctor_id = (await client.create_doctor(admin))["id"]  # watched over /socket.io/
        await book_many(client, ours, sio_doctor_id, args.waiting)
        stamp_state_publishes(ours.services.hub, {f"doctor:{doctor_id}": stamps.setter("medpharma"),
                                                  f"doctor:{sio_doctor_id}": stamps.setter("medpharma socket.io")})
        stranger, _ = patient_token(ours)
        data = await client.ok("GET", f"/api/queue/doctor/{doctor_id}", token=stranger)
        frame = json.dumps({"event": "queue:state", "data": data}, separators=(",", ":"))
        booker, _ = patient_token(ours)
        booked: list[str] = []
        cancelled: list[ObjectId] = []

        def changes_of(doctor: str, booked: list):
            async def change(run: int) -> None:
                if not booked:
                    booked.append((await client.book(booker, doctor, a_while_from_now(60)))["id"])
                else:
                    cancelled.append(ObjectId(booked[-1]))
                    await client.ok("PATCH", f"/api/appointments/{booked.pop()}/status", {"status": "cancelled"},
                                    booker)
            return change

        change = changes_of(doctor_id, booked)
        sio_change = changes_of(sio_doctor_id, [])

        async def tidy() -> None:
            """Removes the cancelled bookings' documents (see the module docstring)."""
            async def remove():
                await ours.services.store.appointments.delete_many({"_id": {"$in": cancelled}})
            if cancelled:
                await ours.run(remove())
                cancelled.clear()

        floor = LoopThread(lambda: bare_app(frame, stamps.setter("bare tornado")))
        sio = LoopThread(lambda: socketio_app(data, stamps.setter("python-socketio")))
        try:
            for count in args.sockets:
                runs = args.runs or changes_for(count)
                setups = {
                    "medpharma": ({"url": f"ws://127.0.0.1:{ours.port}/ws", "kind": "medpharma",
                                   "sockets": [patient_token(ours)[0] for _ in range(count)],
                                   "subscribe": {"doctorId": doctor_id}}, change),
                    "bare tornado": ({"url": f"ws://127.0.0.1:{floor.port}/ws", "kind": "bare",
                                      "sockets": [None] * count}, _poster(client, floor.port)),
                    "python-socketio": ({"url": f"ws://127.0.0.1:{sio.port}/socket.io/?EIO=4&transport=websocket",
                                         "kind": "socketio", "sockets": [None] * count}, _poster(client, sio.port)),
                    "medpharma socket.io": (
                        {"url": f"ws://127.0.0.1:{ours.port}/socket.io/?EIO=4&transport=websocket",
                         "kind": "medpharma-socketio", "sockets": [patient_token(ours)[0] for _ in range(count)],
                         "subscribe": {"doctorId": sio_doctor_id}}, sio_change),
                }
                clients = {}
                try:
                    for name, (setup, _) in setups.items():
                        clients[name] = Clients(setup)
                        await clients[name].command("open")
                    gc.collect()
                    gc.freeze()  # see the module docstring
                    started = time.monotonic()
                    results = await turns(clients, {name: trigger for name, (_, trigger) in setups.items()},
                                          {"medpharma": tidy, "medpharma socket.io": tidy}, stamps, count, runs)
                    round_seconds = (time.monotonic() - started) / runs
                finally:
                    gc.unfreeze()
                    for process in clients.values():
                        process.close()
                rows += table_rows(count, runs, results, round_seconds)
                print("\n".join("| " + " | ".join(r) + " |" for r in rows[-len(SERVERS):]), flush=True)
        finally:
            floor.stop()
            sio.stop()
    finally:
        client.close()
        await ours.stop()
    return rows


async def turns(clients: dict, triggers: dict, tidies: dict, stamps: Stamps, count: int, runs: int) -> dict:
    """Each server's changes, taking turns; per server: end-to-end times, from-the-change times, frame size.
    A server's `tidies` coroutine (if any) runs after each of its changes, outside the measured time."""
    results = {name: ([], [], 0) for name in SERVERS}
    for run in range(runs):
        for name in SERVERS:
            stamps.clear()
            started = time.monotonic()
            await triggers[name](run)
            _, reached, last, size = await clients[name].command("next")
            if int(reached) != count:
                raise RuntimeError(f"{name}: only {reached} of {count} sockets had the frame")
            if name not in stamps.at:
                raise RuntimeError(f"{name}: no server-side stamp for the change")
            end_to_end, from_change, _ = results[name]
            end_to_end.append(float(last) - started)
            from_change.append(float(last) - stamps.at[name])
            results[name] = (end_to_end, from_change, int(size))
            if name in tidies:
                await tidies[name]()
            await asyncio.sleep(PAUSE_SECONDS)
    return results


def table_rows(count: int, runs: int, results: dict, round_seconds: float) -> list[tuple]:
    floor_e2e, floor_change, _ = results["bare tornado"]
    rows = []
    for name in SERVERS:
        end_to_end, from_change, size = results[name]
        e2e_p99, change_p99 = percentile(end_to_end, 0.99), percentile(from_change, 0.99)
        rows.append((f"{count:,}", name,
                     f"{statistics.median(end_to_end) * 1000:.1f} / {e2e_p99 * 1000:.1f} ms",
                     f"{e2e_p99 / percentile(floor_e2e, 0.99):.2f}x",
                     f"{statistics.median(from_change) * 1000:.1f} / {change_p99 * 1000:.1f} ms",
                     f"{change_p99 / percentile(floor_change, 0.99):.2f}x",
                     f"{runs} changes, frame {size} bytes, {round_seconds:.2f} s a round of {len(SERVERS)}"))
    return rows


def _poster(client: Client, port: int):
    async def post(run: int) -> None:
        await client.http.fetch(f"http://127.0.0.1:{port}/broadcast", method="POST", body=b"")
    return post


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--waiting", type=int, default=20)
    parser.add_argument("--runs", type=int, default=None,
                        help=f"changes per server at every N (default: {FEWEST_CHANGES}-{MOST_CHANGES}, see changes_for)")
    parser.add_argument("--uvloop", action="store_true", help="every server's event loop is uvloop's")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    logging.disable(logging.WARNING)
    print(f"python -m bench.fanout {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print("| N | server | end to end p50 / p99 | p99 / floor's | from the change p50 / p99 | p99 / floor's | note |\n"
          "|---|---|---|---|---|---|---|", flush=True)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
