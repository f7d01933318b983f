"""`python -m bench.reports`: how fast `GET /api/reports/days` answers at a year's history.

50 doctors, 100,000 appointments over the 365 closed days before today plus today (seed 28, the only
seed run; nothing was tuned on it), on the embedded store (mongomock). Measured by calling the
workflow (`domain.reports.days_report`) and serialising its answer to JSON as the handler does:
(1) a 90-day report of every doctor when no day has a summary yet (the slow path: it reads the
appointments and keeps the summaries); (2) the same report again (the fast path: summaries only);
(3) the 90 days ending today, the first time (today's ledger loaded by one read of the store) and
then as every later report reads it (summaries plus today's ledger, `actors.today`); (4) one doctor's
90 days ending today; (5) the roll-up: a first start's catch-up on the year, after a week down, and at
a clinic midnight (one day closed, the new day's ledger loaded). Beside each slow step, the longest
the event loop stalled while it ran (a 10 ms timer's lateness). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from datetime import timedelta

from bson import ObjectId

from config.settings import Settings
from core.access import Principal
from domain import reports
from server.app import build_services, tune_garbage_collector

DOCTORS = 50
APPOINTMENTS = 100_000
HISTORY_DAYS = 365


def settings() -> Settings:
    return Settings(port=0, host="127.0.0.1", mongo_uri=None, mongo_db="bench_reports", jwt_secret="x" * 40,
                    jwt_secret_generated=True, bcrypt_rounds=4, clinic_timezone="Europe/Paris")


async def seed(services, rng: random.Random) -> list[str]:
    now = services.clock()
    calendar = services.calendar
    today = calendar.day_of(now)
    doctors = []
    for n in range(DOCTORS):
        doctor = await services.store.insert_doctor({"name": f"Dr. {n:02d}", "email": f"d{n}@bench.example",
                                                     "createdAt": now, "updatedAt": now, "version": 0})
        doctors.append(doctor["_id"])
    batch = []
    for n in range(APPOINTMENTS):
        day = today - timedelta(days=rng.randrange(0, HISTORY_DAYS + 1))
        booked = calendar.start_of(day) + timedelta(hours=8, minutes=rng.randrange(0, 9 * 60))
        document = {"patient": ObjectId(), "doctor": rng.choice(doctors), "date": booked, "createdAt": booked,
                    "updatedAt": booked, "version": 2, "reason": "", "patientName": "Pat"}
        roll = rng.random()
        if roll < 0.08:
            document["status"] = "cancelled"
        elif roll < 0.13:
            document["status"] = "no_show"
        else:
            started = booked + timedelta(minutes=rng.uniform(-5, 40))
            document.update(status="completed", startedAt=started,
                            completedAt=started + timedelta(minutes=rng.uniform(5, 25)),
                            etaErrorMinutes=round(rng.uniform(0, 15), 2),
                            etaRange=rng.choice(("early", "inside", "inside", "late")))
        batch.append(document)
    for start in range(0, len(batch), 10_000):
        await services.store.appointments.insert_many(batch[start:start + 10_000])
    return [str(d) for d in doctors]


async def timed(call) -> tuple[float, int]:
    started = time.perf_counter()
    rows = await call()
    body = json.dumps(rows, separators=(",", ":"))
    return time.perf_counter() - started, len(rows) if body else 0


class LoopProbe:
    """How late a 10 ms timer fires while something runs: the longest stall of the event loop."""

    def __init__(self):
        self.worst = 0.0
        self._task = None

    async def _run(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, time.perf_counter() - asked - 0.01)

    async def during(self, call):
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        try:
            result = await call()
        finally:
            seconds = time.perf_counter() - started
            self._task.cancel()
        return result, seconds, self.worst


async def main(runs: int) -> None:
    tune_garbage_collector()  # as the server does at start
    services = build_services(settings())
    started = time.perf_counter()
    doctors = await seed(services, random.Random(28))
    seeding = time.perf_counter() - started
    # After seeding, as a server starting on an existing store does: with the slots' partial unique
    # index in place, mongomock checks every insert against every appointment (hours for 100,000).
    await services.store.ensure_indexes()
    admin = Principal(user_id=str(ObjectId()), role="admin")
    today = services.calendar.day_of(services.clock())
    closed = (today - timedelta(days=90), today - timedelta(days=1))
    to_today = (today - timedelta(days=89), today)
    probe = LoopProbe()
    table = ["| measure | median | spread | longest event-loop stall | note |", "|---|---|---|---|---|"]

    (rows, seconds, stall) = await probe.during(lambda: reports.days_report(services, admin, *closed, None))
    table.append(f"| 90 days x 50 doctors, no summaries yet (slow path) | {seconds * 1000:.0f} ms | one run | "
                 f"{stall * 1000:.0f} ms | {len(rows)} rows; reads the 90 days' appointments "
                 f"({reports.READ_ANSWER:,} a read at most, about) and keeps 90 summaries |")
    (rows, seconds, stall) = await probe.during(lambda: reports.days_report(services, admin, *to_today, None))
    table.append(f"| 90 days ending today, today's ledger not loaded yet | {seconds * 1000:.0f} ms | one run | "
                 f"{stall * 1000:.0f} ms | {len(rows)} rows; one read of the store loads today (the server "
                 f"does it in the background as the day begins) |")
    for name, span, doctor in (("90 closed days x 50 doctors, from the summaries", closed, None),
                               ("**90 days ending today x 50 doctors** (today from the ledger)", to_today, None),
                               ("one doctor's 90 days ending today", to_today, doctors[0])):
        samples = []
        for _ in range(runs):
            seconds, count = await timed(lambda: reports.days_report(services, admin, *span, doctor))
            samples.append(seconds)
        table.append(f"| {name} | {statistics.median(samples) * 1000:.1f} ms | min {min(samples) * 1000:.1f}, "
                     f"max {max(samples) * 1000:.1f} ms | | {runs} runs, {count} rows |")
    (made, seconds, stall) = await probe.during(lambda: reports.roll_up(services))
    table.append(f"| roll-up catching up on the rest of the year (a first start) | {seconds:.1f} s | one run | "
                 f"{stall * 1000:.0f} ms | {made} days summarised; in the background |")
    zone = services.calendar.zone.key
    week = [(today - timedelta(days=n)).isoformat() for n in range(1, 8)]
    await services.store.day_summaries.delete_many({"zone": zone, "date": {"$in": week}})
    (made, seconds, stall) = await probe.during(lambda: reports.roll_up(services))
    table.append(f"| roll-up after a week down | {seconds * 1000:.0f} ms | one run | {stall * 1000:.0f} ms | "
                 f"{made} days summarised |")
    samples, stalls = [], []
    for _ in range(runs):  # a clinic midnight: yesterday closes, today's ledger is loaded afresh
        await services.store.day_summaries.delete_one({"zone": zone, "date": week[0]})
        services.queues.today.forget()

        async def midnight():
            made = await reports.roll_up(services)
            await reports.today_documents(services, today)
            return made
        (made, seconds, stall) = await probe.during(midnight)
        samples.append(seconds)
        stalls.append(stall)
    table.append(f"| roll-up at a clinic midnight (one day closed, today's ledger loaded) | "
                 f"{statistics.median(samples) * 1000:.0f} ms | min {min(samples) * 1000:.0f}, max "
                 f"{max(samples) * 1000:.0f} ms | {max(stalls) * 1000:.0f} ms (worst of {runs}) | {runs} runs, "
                 f"{made} day summarised each |")
    print(f"seeded {APPOINTMENTS} appointments, {DOCTORS} doctors in {seeding:.1f} s (seed 28)\n")
    print("\n".join(table))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    asyncio.run(main(parser.parse_args().runs))
