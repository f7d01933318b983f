"""`python -m bench.notify` (or `make bench-notify`): notifications at scale (issue 23).

One doctor, `--patients` (1,000) patients each booked with them, each watching their own waiting room
on a socket (held by this process's main loop; the server runs on its own thread) and, once
subscribed, each with one Web Push subscription whose endpoint is a loopback push service that
answers after `--answer-ms` (200 ms), on a third thread. Measured:

1. **Socket fan-out, without and with notifications.** A change at the head of the queue (another
   patient's booking at the head, then its cancellation, alternately) moves all N positions: from
   just before the HTTP request to the moment the last of the N sockets has its `queue:update`.
   First with nobody subscribed (the doctor not followed), then with all N subscribed (the doctor
   followed, every change planned for notifications, the new head's `turn:soon` pushed): medians of
   `--changes` each, one series after the other (subscribing cannot be undone between two changes).
2. **A call-next's pushes.** From just before the call-next request until every push it caused
   (`turn:now` for the called patient, `turn:soon` for the new head) has reached the push service.
3. **A doctor running 90 minutes late** (the first booking is 40 minutes ahead): every waiting
   patient's expected start slips by about 50 minutes, so each gets a
   `delay` push: until all N have reached the push service (they go out `CONCURRENCY` at a time,
   each held 200 ms by the push service).
4. **Memory over 10,000 deliveries** (webhooks to a receiver answering at once, in batches of 500):
   this process's resident memory and its count of Python objects after each 2,000. The delivered
   documents are removed after each batch: they are the store's (a real MongoDB keeps them on its own
   server), and mongomock scans a whole collection for every claim.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bench.harness import Client, ServerThread, bench_settings, bounded_gather, iso
from infra.notify.worker import CONCURRENCY


def b64url(data: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ReceiverThread:
    """A push service / webhook receiver on its own thread: `/push/...` answers 201 after `delay`
    seconds, `/hook/...` at once; it counts what arrived by path prefix and keeps arrival times."""

    def __init__(self, delay: float):
        self.delay = delay
        self.loop = asyncio.new_event_loop()
        self.arrivals: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def serve():
            asyncio.set_event_loop(self.loop)
            receiver = self

            class Record(web.RequestHandler):
                async def post(self, path: str) -> None:
                    with receiver.lock:
                        receiver.arrivals.append((time.perf_counter(), path))
                    if path.startswith("push/"):
                        await asyncio.sleep(receiver.delay)
                    self.set_status(201)
                    self.finish()

            HTTPServer(web.Application([(r"/(.*)", Record)])).add_sockets(sockets)
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=serve, daemon=True, name="bench-receiver").start()
        ready.wait()

    def count(self, prefix: str, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for at, path in self.arrivals if at >= since and path.startswith(prefix))

    def last(self, prefix: str, since: float) -> float:
        with self.lock:
            return max(at for at, path in self.arrivals if at >= since and path.startswith(prefix))


def rss_bytes() -> int:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def subscription(endpoint: str) -> dict:
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": b64url(key), "auth": b64url(os.urandom(16))}}


async def wait_until(condition, timeout: float = 60.0, step: float = 0.005):
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the bench waited too long: {condition}")
        await asyncio.sleep(step)


async def drained(server, services) -> None:
    """Until no delivery is pending and no queue moment waits to be planned."""
    records = services.notifier.records
    while True:
        pending = await server.run(records.deliveries.count_documents({"status": "pending"}))
        if pending == 0 and services.notifier.events.empty():
            return
        await asyncio.sleep(0.05)


class Watchers:
    """N sockets, each subscribed to its own appointment's room; records when each got a queue:update."""

    def __init__(self):
        self.sockets = []
        self.last_update: dict[int, float] = {}

    async def open(self, client: Client, tokens: list[str], appointments: list[dict]) -> None:
        async def one(index: int):
            socket = await client.websocket(tokens[index])
            await socket.write_message(json.dumps({"type": "queue:subscribe", "appointmentId": appointments[index]["id"]}))
            self.sockets.append(socket)
            asyncio.get_running_loop().create_task(self.read(index, socket))
        await bounded_gather([one(i) for i in range(len(tokens))], limit=32)

    async def read(self, index: int, socket) -> None:
        while True:
            message = await socket.read_message()
            if message is None:
                return
            if '"queue:update"' in message:
                self.last_update[index] = time.perf_counter()

    def all_updated_since(self, t0: float, n: int) -> bool:
        return sum(1 for at in self.last_update.values() if at >= t0) >= n


async def fanout_round(client, watchers, n, head_token, doctor_id, head_at, state) -> float:
    """One change at the head (booking or cancelling the head patient's appointment)."""
    t0 = time.perf_counter()
    if state.get("head") is None:
        state["head"] = await client.ok("POST", "/api/appointments", {
            "patientName": "Head", "patientEmail": "head@bench.test", "patientPhone": "+1 555 0100",
            "doctor": doctor_id, "date": iso(head_at)}, head_token, expect=201)
    else:
        await client.ok("PATCH", f"/api/appointments/{state['head']['id']}/status", {"status": "cancelled"}, head_token)
        state["head"] = None
    await wait_until(lambda: watchers.all_updated_since(t0, n))
    return max(watchers.last_update.values()) - t0


async def main(args) -> None:
    receiver = ReceiverThread(args.answer_ms / 1000)
    server = await ServerThread(bench_settings(notify_allow_hosts=(f"127.0.0.1:{receiver.port}",)),
                                tick_seconds=3600).start()
    client = Client(server.port)
    services = server.services
    n = args.patients
    try:
        admin = await client.admin_token()
        doctor = await client.create_doctor(admin)
        await client.ok("PATCH", f"/api/doctors/{doctor['id']}/status", {"avgConsultMinutes": 1}, admin)
        tokens = await bounded_gather([client.register(i) for i in range(n + 1)], limit=4)
        head_token, tokens = tokens[0], tokens[1:]
        start = datetime.now(timezone.utc) + timedelta(minutes=40)
        appointments = await bounded_gather([client.book(token, doctor["id"], start + timedelta(seconds=12 * i))
                                             for i, token in enumerate(tokens)], limit=16)
        watchers = Watchers()
        await watchers.open(client, tokens, appointments)
        gc.collect()
        head_at = start - timedelta(minutes=20)
        state: dict = {}
        print(f"{n} patients booked and watching; fan-out without notifications ...", flush=True)
        without = [await fanout_round(client, watchers, n, head_token, doctor["id"], head_at, state)
                   for _ in range(args.changes)]
        if state.get("head") is not None:
            await fanout_round(client, watchers, n, head_token, doctor["id"], head_at, state)
        print("subscribing every patient ...", flush=True)
        await bounded_gather([client.ok("POST", "/api/push/subscriptions",
                                        subscription(f"http://127.0.0.1:{receiver.port}/push/{i}"), token, expect=201)
                              for i, token in enumerate(tokens)], limit=16)
        await wait_until(lambda: doctor["id"] in services.queues.followed)
        await drained(server, services)  # the delay pushes of those already late when they subscribed
        with_notify = []
        for _ in range(args.changes):
            with_notify.append(await fanout_round(client, watchers, n, head_token, doctor["id"], head_at, state))
        if state.get("head") is not None:
            await fanout_round(client, watchers, n, head_token, doctor["id"], head_at, state)
        await asyncio.sleep(1)

        print("call-next ...", flush=True)
        records = services.notifier.records
        call_times = []
        current = None
        for _ in range(args.calls):
            before = await server.run(records.deliveries.count_documents({"channel": "push"}))
            t0 = time.perf_counter()
            answer = await client.ok("POST", f"/api/doctors/{doctor['id']}/queue/next", {"expectCurrent": current}, admin)
            current = answer["current"]["id"]
            await asyncio.sleep(0.3)  # the new head's turn:soon is planned after the queue moved
            made = await server.run(records.deliveries.count_documents({"channel": "push"})) - before
            await wait_until(lambda: receiver.count("push/", t0) >= made)
            call_times.append((receiver.last("push/", t0) - t0, made))

        print("running late ...", flush=True)
        before = await server.run(records.deliveries.count_documents({"event": "delay"}))
        t0 = time.perf_counter()
        await client.ok("PATCH", f"/api/doctors/{doctor['id']}/status",
                        {"isRunningLate": True, "lateByMinutes": 90}, admin)
        await wait_until(lambda: receiver.count("push/", t0) >= 1, timeout=60)
        await asyncio.sleep(0.5)
        await drained(server, services)
        delay_pushes = await server.run(records.deliveries.count_documents({"event": "delay"})) - before
        late_all_left = receiver.last("push/", t0) - t0

        print("memory ...", flush=True)
        hook = await client.ok("POST", "/api/admin/webhooks", {"url": f"http://127.0.0.1:{receiver.port}/hook/m",
                                                                "events": ["appointment.rescheduled"]}, admin, expect=201)
        from domain.notifications import notify_appointment_event
        from infra.store import Store  # noqa: F401  (the documents the filter leaves out)
        sample = await server.run(services.store.find_appointment(__import__("bson").ObjectId(appointments[-1]["id"])))

        async def batch(first: int, count: int):
            for k in range(first, first + count):
                await notify_appointment_event(services, "appointment.rescheduled", sample, discriminator=f"m{k}")

        memory = []
        await drained(server, services)
        await server.run(services.notifier.records.deliveries.delete_many({"status": {"$ne": "pending"}}))
        done = 0
        for step in range(args.deliveries // 500):
            t0 = time.perf_counter()
            await server.run(batch(done, 500))
            done += 500
            await wait_until(lambda: receiver.count("hook/m", 0) >= done, timeout=600)
            await drained(server, services)
            # The embedded store scans a whole collection for every query (mongomock has no indexes),
            # so the delivered documents go after each batch, as bench/fanout.py removes its own.
            await server.run(services.notifier.records.deliveries.delete_many({"status": "delivered"}))
            if done % 2000 == 0:
                gc.collect()
                memory.append((done, rss_bytes(), len(gc.get_objects()), time.perf_counter() - t0))
                print(f"  {done} deliveries: RSS {memory[-1][1] / 1e6:.1f} MB, {memory[-1][2]} objects", flush=True)
        _ = hook
    finally:
        client.close()
        for socket in watchers.sockets if "watchers" in dir() else ():
            socket.close()
        await server.stop()

    today = datetime.now(timezone.utc).strftime("%d %b %Y")
    p50_without, p50_with = statistics.median(without), statistics.median(with_notify)
    print(f"\n## Notifications ({today}; {n} patients, push service answering in {args.answer_ms} ms, "
          f"worker concurrency {CONCURRENCY})\n")
    print("| measure | median | spread | note |\n|---|---|---|---|")
    print(f"| socket fan-out, no notifications (change → last of {n} sockets) | {p50_without * 1000:.1f} ms | "
          f"{min(without) * 1000:.1f}–{max(without) * 1000:.1f} ms | {args.changes} changes |")
    print(f"| socket fan-out, all {n} subscribed | {p50_with * 1000:.1f} ms | "
          f"{min(with_notify) * 1000:.1f}–{max(with_notify) * 1000:.1f} ms | ratio {p50_with / p50_without:.3f} |")
    seconds = [s for s, _ in call_times]
    print(f"| call-next → its pushes all reached the push service | {statistics.median(seconds) * 1000:.0f} ms | "
          f"{min(seconds) * 1000:.0f}–{max(seconds) * 1000:.0f} ms | pushes per call: {[m for _, m in call_times]} |")
    print(f"| running 90 min late → every delay push reached the push service | {late_all_left:.2f} s | — | "
          f"{delay_pushes} delay pushes, 200 ms each, {CONCURRENCY} at a time |")
    for done, rss, objects, _ in memory:
        print(f"| resident memory after {done} webhook deliveries | {rss / 1e6:.1f} MB | — | {objects} Python objects (gc) |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--answer-ms", type=int, default=200)
    parser.add_argument("--changes", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--deliveries", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
