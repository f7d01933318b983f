"""`python -m bench` (or `make bench`): the speed and memory figures the tests deliberately do not assert.

(a) WebSocket ping round trip, idle and during a burst of 8 logins at bcrypt cost 12;
(b) position read latency on a 200-appointment queue, and store calls per read (should be 0);
(c) fan-out: a cancellation at the head of a 200-patient queue, each patient on its own socket,
    until the last socket has its queue:update (median of several runs);
(d) memory per idle subscribed socket, by tracemalloc, with the sockets held by another process.

Everything runs on loopback against an in-process server; every loop is bounded. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import Client, ServerThread, a_while_from_now, bench_settings, bounded_gather, percentile
from core import metrics
from infra.auth import MAX_HASHING_PER_CLIENT

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    measure: str
    median: str
    spread: str
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args, **kwargs) -> None:
        self.rows.append(Row(*args, **kwargs))

    def markdown(self) -> str:
        lines = ["| measure | median | spread | note |", "|---|---|---|---|"]
        lines += [f"| {r.measure} | {r.median} | {r.spread} | {r.note} |" for r in self.rows]
        return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"



# -- (a) ping round trip, idle and during a bcrypt burst ------------------------------------------

async def ping_once(connection) -> float:
    started = time.perf_counter()
    await connection.write_message('{"type":"ping"}')
    while True:
        message = await asyncio.wait_for(connection.read_message(), 30)
        if message is None:
            raise RuntimeError("socket closed during a ping")
        if json.loads(message).get("event") == "pong":
            return time.perf_counter() - started


async def bench_ping(report: Report, idle_pings: int, bursts: int) -> None:
    server = await ServerThread(bench_settings(bcrypt_rounds=12)).start()
    client = Client(server.port)
    try:
        token = await client.admin_token()
        connection = await client.websocket(token)
        for _ in range(20):
            await ping_once(connection)
        idle = [await ping_once(connection) for _ in range(idle_pings)]

        during, login_seconds, lag_peak = [], [], 0.0
        for _ in range(bursts):
            async def timed_login():
                started = time.perf_counter()
                await client.admin_token()
                return time.perf_counter() - started

            logins = [asyncio.ensure_future(timed_login()) for _ in range(8)]
            for _ in range(20_000):  # bounded; a burst ends long before
                if all(task.done() for task in logins):
                    break
                during.append(await ping_once(connection))
                lag_peak = max(lag_peak, metrics.REGISTRY.get_sample_value("medpharma_event_loop_lag_seconds") or 0)
            login_seconds += await asyncio.gather(*logins)
        connection.close()

        idle_median, burst_median = statistics.median(idle), statistics.median(during)
        report.add("WS ping round trip, idle", ms(idle_median), f"p99 {ms(percentile(idle, 0.99))}",
                   f"{len(idle)} pings")
        report.add("WS ping round trip, during 8 logins at bcrypt cost 12", ms(burst_median),
                   f"p99 {ms(percentile(during, 0.99))}",
                   f"{len(during)} pings over {bursts} bursts; median {burst_median / idle_median:.1f}x idle")
        report.add("login at cost 12, inside the burst of 8", ms(statistics.median(login_seconds)),
                   f"max {ms(max(login_seconds))}", "2 hashing threads; the loop is not one of them")
        report.add("event-loop lag probe, peak during bursts", ms(lag_peak), "",
                   "medpharma_event_loop_lag_seconds")
    finally:
        client.close()
        await server.stop()


# -- a 200-patient queue for (b), (c), (d) ---------------------------------------------------------

@dataclass
class Patient:
    token: str
    appointment: str


async def build_queue(client: Client, size: int) -> tuple[str, list[Patient]]:
    admin = await client.admin_token()
    doctor = await client.create_doctor(admin)
    when = a_while_from_now(30)  # one shared slot: the queue order is the booking order
    # At most MAX_HASHING_PER_CLIENT registrations in flight: one address may hash no more at once.
    tokens = await bounded_gather([client.register(i) for i in range(size)], limit=MAX_HASHING_PER_CLIENT)
    patients = []
    for token in tokens:  # sequential, so that createdAt (and so the queue) follows this list
        patients.append(Patient(token, (await client.book(token, doctor["id"], when))["id"]))
    return doctor["id"], patients


# -- (b) position reads ----------------------------------------------------------------------------

async def bench_position_reads(report: Report, server: ServerThread, client: Client,
                               patients: list[Patient], reads: int) -> None:
    async def read(patient: Patient) -> float:
        started = time.perf_counter()
        status, _ = await client.call("GET", f"/api/queue/appointment/{patient.appointment}/position",
                                      token=patient.token)
        if status != 200:
            raise RuntimeError(f"position read answered {status}")
        return time.perf_counter() - started

    await read(patients[0])  # the first read loads the doctor's queue into its actor
    store_calls = server.services.store.calls
    calls_before = sum(store_calls.values())
    latencies = [await read(patients[i % len(patients)]) for i in range(reads)]
    calls_per_read = (sum(store_calls.values()) - calls_before) / reads

    baseline = []
    for _ in range(reads):
        started = time.perf_counter()
        await client.call("GET", "/healthz")
        baseline.append(time.perf_counter() - started)

    position_median, healthz_median = statistics.median(latencies), statistics.median(baseline)
    report.add(f"position read, {len(patients)}-appointment queue", ms(position_median),
               f"p99 {ms(percentile(latencies, 0.99))}",
               f"{reads} reads; {position_median / healthz_median:.2f}x a bare GET /healthz ({ms(healthz_median)})")
    report.add("store calls per position read", f"{calls_per_read:.2f}", "", "must be 0: served from the actor")


# -- (c) fan-out -------------------------------------------------------------------------------------

async def bench_fanout(report: Report, client: Client, doctor_id: str, patients: list[Patient],
                       runs: int) -> None:
    sockets = await bounded_gather([client.websocket(p.token) for p in patients], limit=32)
    inboxes: list[asyncio.Queue] = [asyncio.Queue() for _ in patients]

    async def reader(connection, inbox: asyncio.Queue) -> None:
        while (message := await connection.read_message()) is not None:
            inbox.put_nowait((time.perf_counter(), json.loads(message)))

    readers = [asyncio.ensure_future(reader(s, q)) for s, q in zip(sockets, inboxes)]

    async def expect_update(index: int, predicate) -> float:
        while True:
            received_at, frame = await asyncio.wait_for(inboxes[index].get(), 30)
            if frame.get("event") == "queue:update" and predicate(frame["data"]):
                return received_at

    async def subscribe(index: int) -> None:
        await sockets[index].write_message(json.dumps({"type": "queue:subscribe",
                                                       "appointmentId": patients[index].appointment}))
        await expect_update(index, lambda d, a=patients[index].appointment: d["appointmentId"] == a)

    await bounded_gather([subscribe(i) for i in range(len(patients))], limit=32)
    order = list(range(len(patients)))  # patient indexes in queue order
    when = a_while_from_now(30)
    durations, answered = [], []
    for _ in range(runs):
        for inbox in inboxes:
            while not inbox.empty():
                inbox.get_nowait()
        head = order[0]
        expectations = [expect_update(head, lambda d: d["status"] == "cancelled")]
        expectations += [expect_update(index, lambda d, p=position: d["position"] == p and d["status"] != "cancelled")
                         for position, index in enumerate(order[1:])]
        waiting = asyncio.gather(*expectations)
        started = time.perf_counter()
        await client.ok("PATCH", f"/api/appointments/{patients[head].appointment}/status",
                        {"status": "cancelled"}, patients[head].token)
        answered.append(time.perf_counter() - started)
        durations.append(max(await waiting) - started)

        # Back to 200: the cancelled patient books again, at the tail, and follows the new booking.
        old = patients[head].appointment
        await sockets[head].write_message(json.dumps({"type": "queue:unsubscribe", "appointmentId": old}))
        patients[head].appointment = (await client.book(patients[head].token, doctor_id, when))["id"]
        await subscribe(head)
        order = order[1:] + [head]

    for connection in sockets:
        connection.close()
    await asyncio.gather(*readers, return_exceptions=True)
    report.add(f"fan-out: head cancelled, {len(patients)} sockets, until the last has its queue:update",
               ms(statistics.median(durations)), f"min {ms(min(durations))}, max {ms(max(durations))}",
               f"{runs} runs; the REST answer itself: median {ms(statistics.median(answered))}")


# -- (d) memory per idle subscribed socket ----------------------------------------------------------

async def bench_memory(report: Report, server: ServerThread, patients: list[Patient], port: int) -> None:
    for _ in range(500):  # the fan-out sockets are closing; start from none
        if not server.services.sockets:
            break
        await asyncio.sleep(0.01)
    half = len(patients) // 2
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.idle_clients", cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

    async def command(text: str) -> None:
        holder.stdin.write((text + "\n").encode())
        await holder.stdin.drain()

    async def open_more(count: int, total: int) -> int:
        await command(f"open {count}")
        line = (await asyncio.wait_for(holder.stdout.readline(), 60)).decode().strip()
        if line != f"ready {total}":
            raise RuntimeError(f"socket holder said {line!r}")
        for _ in range(500):
            if len(server.services.sockets) == total:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    try:
        await command(json.dumps({"port": port, "clients": [[p.token, p.appointment] for p in patients]}))
        gc.collect()
        tracemalloc.start()
        first = await open_more(half, half)
        second = await open_more(len(patients) - half, len(patients))
        per_socket = (second - first) / (len(patients) - half)
        report.add("memory per idle subscribed socket (server side)", f"{per_socket / 1024:.1f} KiB",
                   f"first {half}: {first / half / 1024:.1f} KiB each",
                   "tracemalloc, slope between 100 and 200 sockets held by another process")
    finally:
        tracemalloc.stop()
        if holder.returncode is None:
            try:
                await command("quit")
            except (BrokenPipeError, ConnectionResetError):
                pass
        await asyncio.wait_for(holder.wait(), 30)


async def bench_queue(report: Report, size: int, reads: int, runs: int) -> None:
    server = await ServerThread(bench_settings()).start()
    client = Client(server.port)
    try:
        doctor_id, patients = await build_queue(client, size)
        await bench_position_reads(report, server, client, patients, reads)
        await bench_fanout(report, client, doctor_id, patients, runs)
        await bench_memory(report, server, patients, server.port)
    finally:
        client.close()
        await server.stop()


async def run(args) -> Report:
    report = Report()
    await bench_ping(report, args.pings, args.bursts)
    await bench_queue(report, args.queue, args.reads, args.runs)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=300, help="idle pings (default 300)")
    parser.add_argument("--bursts", type=int, default=3, help="login bursts (default 3)")
    parser.add_argument("--queue", type=int, default=200, help="queue length (default 200)")
    parser.add_argument("--reads", type=int, default=1000, help="position reads (default 1000)")
    parser.add_argument("--runs", type=int, default=7, help="fan-out runs (default 7)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    report = asyncio.run(run(args))
    print(report.markdown())
    print(f"\n(took {time.perf_counter() - started:.0f} s; Python {sys.version.split()[0]}, loopback, in-process server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
