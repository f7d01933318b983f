"""`python -m bench.reports`: how fast `GET /api/reports/days` answers at a year's history.

50 doctors, 100,000 appointments over the 365 closed days before today plus today (seed 28, the only
seed run; nothing was tuned on it), on the embedded store (mongomock). Measured by calling the
workflow (`domain.reports.days_report`) and serialising its answer to JSON as the handler does:
(1) a 90-day report of every doctor when no day has a summary yet (the slow path: it reads the
appointments and keeps the summaries); (2) the same report again (the fast path: summaries only);
(3) the 90 days ending today (summaries plus today's appointments, read live); (4) one doctor's 90
closed days; (5) the roll-up when one day has closed. Prints a markdown table.
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
from server.app import build_services

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


async def main(runs: int) -> None:
    services = build_services(settings())
    await services.store.ensure_indexes()
    started = time.perf_counter()
    doctors = await seed(services, random.Random(28))
    seeding = time.perf_counter() - started
    admin = Principal(user_id=str(ObjectId()), role="admin")
    today = services.calendar.day_of(services.clock())
    closed = (today - timedelta(days=90), today - timedelta(days=1))
    to_today = (today - timedelta(days=89), today)
    table = ["| measure | median | spread | note |", "|---|---|---|---|"]

    cold, rows = await timed(lambda: reports.days_report(services, admin, *closed, None))
    table.append(f"| 90 days x 50 doctors, no summaries yet (slow path) | {cold * 1000:.0f} ms | one run | "
                 f"{rows} rows; reads the 90 days' appointments and keeps 90 summaries |")
    for name, span, doctor in (("90 closed days x 50 doctors, from the summaries", closed, None),
                               ("90 days ending today x 50 doctors (today read live)", to_today, None),
                               ("one doctor's 90 closed days", closed, doctors[0])):
        samples = []
        for _ in range(runs):
            seconds, rows = await timed(lambda: reports.days_report(services, admin, *span, doctor))
            samples.append(seconds)
        table.append(f"| {name} | {statistics.median(samples) * 1000:.1f} ms | min {min(samples) * 1000:.1f}, "
                     f"max {max(samples) * 1000:.1f} ms | {runs} runs, {rows} rows |")
    started = time.perf_counter()
    made = await reports.roll_up(services)
    table.append(f"| roll-up catching up on the rest of the year | {time.perf_counter() - started:.1f} s | one run "
                 f"| {made} days summarised, {reports.READ_DAYS} days per read; runs in the background |")
    yesterday = (today - timedelta(days=1)).isoformat()
    await services.store.day_summaries.delete_one({"date": yesterday})
    started = time.perf_counter()
    made = await reports.roll_up(services)
    table.append(f"| roll-up at a clinic midnight (one day closed) | {(time.perf_counter() - started) * 1000:.0f} ms "
                 f"| one run | {made} day summarised; runs in the background |")
    print(f"seeded {APPOINTMENTS} appointments, {DOCTORS} doctors in {seeding:.1f} s (seed 28)\n")
    print("\n".join(table))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    asyncio.run(main(parser.parse_args().runs))
