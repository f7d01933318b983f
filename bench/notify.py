"""`python -m bench.notify` (or `make bench-notify`): notifications at scale (issue 23).

Two doctors, `--patients` (1,000) patients booked with each, every patient watching their own waiting
room on a socket; the sockets are held by two child processes (`bench.fanout_clients`, one per
doctor), so reading 2,000 sockets costs the server's process nothing. The server runs on a thread of
this process; the push service, a loopback server answering after `--answer-ms` (200 ms), on
another. Doctor A's patients each get one Web Push subscription to it; doctor B's never do.
Measured:

1. **Socket fan-out, with and without notifications, interleaved.** A change at the head of a queue
   (another patient's booking at the head, then its cancellation, alternately) moves all N
   positions: from just before the HTTP request to the moment the last of the N sockets has its
   `queue:update` (the child's CLOCK_MONOTONIC, the same clock as this process's). Each round makes
   one change on A and one on B, taking turns at going first. First `--changes` rounds with nobody
   subscribed (the control: A against B should be 1.0 give or take the noise), then, once all of
   A's patients are subscribed (A followed, every change planned for notifications, the new head's
   `turn:soon` pushed), `--changes` more: the target is A's median within 10 % of B's.
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
import os
import statistics
import threading
import time
from functools import partial
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bench.harness import Client, ClientProcess, ServerThread, bench_settings, bounded_gather, iso, machine_line
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


async def change_at_head(client, holder: ClientProcess, n: int, head_token: str, doctor_id: str,
                         head_at: datetime, state: dict) -> float:
    """One change at the head of one doctor's queue (booking, or cancelling, the head patient's
    appointment); seconds until the last of its N watchers had the `queue:update` it caused."""
    t0 = time.monotonic()
    if state.get("head") is None:
        state["head"] = await client.ok("POST", "/api/appointments", {
            "patientName": "Head", "patientEmail": "head@bench.test", "patientPhone": "+1 555 0100",
            "doctor": doctor_id, "date": iso(head_at)}, head_token, expect=201)
    else:
        await client.ok("PATCH", f"/api/appointments/{state['head']['id']}/status", {"status": "cancelled"}, head_token)
        state["head"] = None
    _, reached, last, _size = await holder.command("next")
    if int(reached) < n:
        raise RuntimeError(f"only {reached} of {n} watchers had the change")
    return float(last) - t0


async def interleaved(rounds: int, doctors: list[dict]) -> dict[str, list[float]]:
    """`rounds` changes on each doctor, one of each per round, taking turns at going first."""
    times: dict[str, list[float]] = {d["name"]: [] for d in doctors}
    for r in range(rounds):
        for d in (doctors if r % 2 == 0 else doctors[::-1]):
            times[d["name"]].append(await d["change"]())
    for d in doctors:  # leave each queue as it was (no head)
        if d["state"].get("head") is not None:
            await d["change"]()
    return times


async def main(args) -> None:
    receiver = ReceiverThread(args.answer_ms / 1000)
    server = await ServerThread(bench_settings(notify_allow_hosts=(f"127.0.0.1:{receiver.port}",)),
                                tick_seconds=3600).start()
    client = Client(server.port)
    services = server.services
    n = args.patients
    holders: list[ClientProcess] = []
    try:
        admin = await client.admin_token()
        start = datetime.now(timezone.utc) + timedelta(minutes=40)
        head_at = start - timedelta(minutes=20)
        doctors = []
        for name in ("A", "B"):
            doctor = await client.create_doctor(admin)
            await client.ok("PATCH", f"/api/doctors/{doctor['id']}/status", {"avgConsultMinutes": 1}, admin)
            head_token, *tokens = await bounded_gather([client.register(i) for i in range(n + 1)], limit=4)
            booked = await bounded_gather([client.book(token, doctor["id"], start + timedelta(seconds=12 * i))
                                           for i, token in enumerate(tokens)], limit=16)
            holder = ClientProcess("bench.fanout_clients", {
                "url": f"ws://127.0.0.1:{server.port}/ws", "kind": "medpharma-waiting", "sockets": tokens,
                "subscribes": [{"appointmentId": a["id"]} for a in booked]})
            holders.append(holder)
            await holder.command("open")
            state: dict = {}
            doctors.append({"name": name, "doctor": doctor, "tokens": tokens, "booked": booked, "state": state,
                            "change": partial(change_at_head, client, holder, n, head_token, doctor["id"],
                                              head_at, state)})
            print(f"doctor {name}: {n} patients booked and watching", flush=True)
        doctor, tokens, appointments = doctors[0]["doctor"], doctors[0]["tokens"], doctors[0]["booked"]
        gc.collect()
        print("fan-out, nobody subscribed (the control) ...", flush=True)
        control = await interleaved(args.changes, doctors)
        print("subscribing every patient of doctor A ...", flush=True)
        await bounded_gather([client.ok("POST", "/api/push/subscriptions",
                                        subscription(f"http://127.0.0.1:{receiver.port}/push/{i}"), token, expect=201)
                              for i, token in enumerate(tokens)], limit=16)
        await wait_until(lambda: doctor["id"] in services.queues.followed)
        await drained(server, services)  # the delay pushes of those already late when they subscribed
        print("fan-out, doctor A's patients subscribed ...", flush=True)
        notified = await interleaved(args.changes, doctors)
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
        for holder in holders:
            holder.close()
        await server.stop()

    median = {phase: {name: statistics.median(t) for name, t in times.items()}
              for phase, times in (("control", control), ("notified", notified))}
    spread = {phase: {name: f"{min(t) * 1000:.1f}–{max(t) * 1000:.1f}" for name, t in times.items()}
              for phase, times in (("control", control), ("notified", notified))}
    print(f"\n## Notifications ({machine_line()}; {n} patients per doctor, push service answering in "
          f"{args.answer_ms} ms, worker concurrency {CONCURRENCY})\n")
    print("| measure | median | spread | note |\n|---|---|---|---|")
    for phase, what in (("control", "nobody subscribed"), ("notified", f"A's {n} patients subscribed")):
        for name in ("A", "B"):
            print(f"| socket fan-out, {what}: change on {name} → last of its {n} sockets | "
                  f"{median[phase][name] * 1000:.1f} ms | {spread[phase][name]} ms | {args.changes} changes |")
        print(f"| ratio A / B, {what} | {median[phase]['A'] / median[phase]['B']:.3f} | — | interleaved |")
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
