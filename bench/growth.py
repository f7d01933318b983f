"""`python -m bench.growth`: how the cost of a change and of a position read grows (issue 15, items 3-4).

In-process, against the domain layer and the embedded store (no HTTP, no sockets), so the figures
are the queue's own work:
- **queue size** (10, 100, 1,000, 5,000 waiting on one doctor): a change is a booking at the tail
  and its cancellation (`domain.appointments.book` / `change_status`, each returning once the
  doctor's actor has taken it in and rebuilt its snapshot); a position read is
  `locate_appointment(...).position_answer()` for a random waiting appointment;
- **seed design** (same store, same queues): the position recomputed from the store on every read
  as the original Node.js service did: find the appointment, then count the waiting appointments of
  its doctor booked before it;
- **loaded actors** (10 to 10,000 doctors with their queues loaded): the same change and read on a
  doctor with 5 waiting, on a fresh server whose other doctors' queues are loaded but empty (the
  embedded store scans its whole collection to load a queue, which would make loading 10,000 full
  queues take hours; it is the number of live actors that is measured here). This server's
  registry evicts idle actors after a day instead of the default 5 minutes (`BENCH_IDLE_SECONDS`, the
  bench's setting only): loading 10,000 takes longer than 5 minutes on a slow machine, and the
  first ones loaded would be let go before the row is measured. Each row says how many were live.

Writes `docs/growth.png` with `--plot` (matplotlib, from the `bench` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from bson import ObjectId

from bench.harness import bench_settings
from core.access import Principal
from core.statuses import WAITING
from core.values import utcnow
from domain.appointments import book, change_status
from domain.queues import locate_appointment
from server.app import Server

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED = 15
BENCH_IDLE_SECONDS = 24 * 3600  # the loaded-actors server keeps every actor live while it measures


def _appointment(doctor: ObjectId, when, created) -> dict:
    patient = ObjectId()
    return {"patientName": "Pat Bench", "patientEmail": "pat@bench.test", "patientPhone": "+1 555 0199",
            "doctor": doctor, "date": when, "reason": "", "patient": patient, "status": "pending",
            "createdAt": created, "updatedAt": created, "version": 0, "waitingKey": f"{patient}:{doctor}"}


async def new_doctor(services, waiting: int) -> tuple[str, list[tuple[str, str]]]:
    """A doctor with `waiting` appointments written straight to the store (the actor loads them)."""
    doctor = await services.store.insert_doctor({
        "name": "Dr. Growth", "specialization": "General practice", "email": f"{ObjectId()}@bench.test",
        "phone": "+1 555 0100", "avgConsultMinutes": 10, "isRunningLate": False, "lateByMinutes": 0,
        "createdAt": utcnow(), "updatedAt": utcnow()})
    when, created = utcnow() + timedelta(hours=2), utcnow()
    documents = [_appointment(doctor["_id"], when, created + timedelta(milliseconds=i)) for i in range(waiting)]
    if documents:
        await services.store.appointments.insert_many(documents)
    await services.queues.snapshot(str(doctor["_id"]))
    return str(doctor["_id"]), [(str(d["_id"]), str(d["patient"])) for d in documents]


class QueuePart:
    """Times the queue's own share of each change: from the publish of the committed documents until
    the doctor's actor has taken them in, rebuilt its snapshot and offered the pushes (the rest of a
    change is the store's: the embedded store scans its collections, a real MongoDB uses indexes)."""

    def __init__(self, services):
        self.times: list[float] = []
        bus = services.bus
        publish = bus.publish

        async def timed(message):
            started = time.perf_counter()
            await publish(message)
            self.times.append(time.perf_counter() - started)

        bus.publish = timed


async def time_changes(services, doctor_id: str, changes: int) -> tuple[float, float]:
    """Median seconds of one change (a booking, then its cancellation: both counted), whole and the
    queue's part of it."""
    times, part = [], services.queue_part
    part.times.clear()
    for _ in range(changes):
        patient = Principal(str(ObjectId()), "patient")
        started = time.perf_counter()
        booked = await book(services, patient, {"doctor": ObjectId(doctor_id), "date": utcnow() + timedelta(hours=3),
                                                "patientName": "Pat", "patientEmail": "p@b.test",
                                                "patientPhone": "+1 555 0199", "reason": ""})
        middle = time.perf_counter()
        await change_status(services, patient, str(booked["_id"]), "cancelled")
        times += [middle - started, time.perf_counter() - middle]
    return statistics.median(times), statistics.median(part.times)


async def time_reads(services, waiting: list[tuple[str, str]], reads: int, rng: random.Random) -> float:
    times = []
    for _ in range(reads):
        appointment_id, patient_id = rng.choice(waiting)
        started = time.perf_counter()
        (await locate_appointment(services, Principal(patient_id, "patient"), appointment_id)).position_answer()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def seed_position(services, appointment_id: str) -> dict:
    """The original design: every read asks the store for the appointment and counts those ahead."""
    appointments = services.store.appointments
    appointment = await appointments.find_one({"_id": ObjectId(appointment_id)})
    ahead = await appointments.count_documents({
        "doctor": appointment["doctor"], "status": {"$in": sorted(WAITING)},
        "$or": [{"date": {"$lt": appointment["date"]}},
                {"date": appointment["date"], "createdAt": {"$lt": appointment["createdAt"]}},
                {"date": appointment["date"], "createdAt": appointment["createdAt"], "_id": {"$lt": appointment["_id"]}}]})
    return {"appointmentId": appointment_id, "position": ahead}


async def time_seed_reads(services, waiting: list[tuple[str, str]], reads: int, rng: random.Random) -> float:
    times = []
    for _ in range(reads):
        appointment_id, _ = rng.choice(waiting)
        started = time.perf_counter()
        await seed_position(services, appointment_id)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def run(args) -> dict:
    server = Server(bench_settings())
    await server.start()
    services = server.services
    services.queue_part = QueuePart(services)
    rng = random.Random(SEED)
    results = {"queue": [], "doctors": []}
    try:
        for size in args.sizes:
            doctor_id, waiting = await new_doctor(services, size)
            # the seed design's answers agree with ours before anything is timed
            for appointment_id, patient_id in rng.sample(waiting, min(5, len(waiting))):
                ours = (await locate_appointment(services, Principal(patient_id, "patient"), appointment_id)).update
                assert (await seed_position(services, appointment_id))["position"] == ours["position"]
            change, part = await time_changes(services, doctor_id, args.changes)
            read = await time_reads(services, waiting, args.reads, rng)
            seed = await time_seed_reads(services, waiting, max(5, args.reads // (1 + size // 100)), rng)
            results["queue"].append((size, change, read, seed, part))
            print(f"| {size} waiting | {change * 1e3:.2f} ms | {part * 1e3:.2f} ms | {read * 1e6:.1f} µs | {seed * 1e3:.2f} ms | "
                  f"{seed / read:.0f}x |", flush=True)
    finally:
        await server.stop()
    server = Server(bench_settings(), idle_seconds=BENCH_IDLE_SECONDS)  # see the module docstring
    await server.start()
    services = server.services
    services.queue_part = QueuePart(services)
    try:
        loaded = 0
        print("\n| loaded actors (live when measured) | change (median) | queue's part of it | position read (median) |\n|---|---|---|---|",
              flush=True)
        for count in args.doctors:
            while loaded < count - 1:
                await new_doctor(services, 0)
                loaded += 1
            doctor_id, waiting = await new_doctor(services, 5)
            loaded += 1
            change, part = await time_changes(services, doctor_id, args.changes)
            read = await time_reads(services, waiting, args.reads, rng)
            live = len(services.queues.actors)
            results["doctors"].append((live, change, read, part))
            print(f"| {loaded:,} ({live:,} live) | {change * 1e3:.2f} ms | {part * 1e3:.2f} ms | {read * 1e6:.1f} µs |",
                  flush=True)
    finally:
        await server.stop()
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = [r[0] for r in results["queue"]]
    left.loglog(sizes, [r[1] * 1e3 for r in results["queue"]], "o-", label="change (book or cancel), whole")
    left.loglog(sizes, [r[4] * 1e3 for r in results["queue"]], "o:", label="change, the queue's part")
    left.loglog(sizes, [r[2] * 1e3 for r in results["queue"]], "s-", label="position read (ours)")
    left.loglog(sizes, [r[3] * 1e3 for r in results["queue"]], "^--", label="position read (seed: count in store)")
    left.set_xlabel("appointments waiting on the doctor")
    left.set_ylabel("median time (ms, log)")
    left.set_title("Growing one queue")
    left.legend(fontsize=8)
    actors = [r[0] for r in results["doctors"]]
    right.semilogx(actors, [r[1] * 1e3 for r in results["doctors"]], "o-", label="change, whole")
    right.semilogx(actors, [r[3] * 1e3 for r in results["doctors"]], "o:", label="change, the queue's part")
    right.semilogx(actors, [r[2] * 1e3 for r in results["doctors"]], "s-", label="position read")
    right.set_xlabel("doctors with a loaded queue (actors)")
    right.set_ylabel("median time (ms)")
    right.set_title("Growing the number of doctors")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--doctors", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--plot", type=Path, help="write the PNG here (e.g. docs/growth.png)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"python -m bench.growth {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print("| queue | change (median) | queue's part of it | position read, ours (median) | "
          "position read, seed design (median) | seed / ours |\n|---|---|---|---|---|---|", flush=True)
    results = asyncio.run(run(args))
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
