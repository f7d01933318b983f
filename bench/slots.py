"""`python -m bench.slots`: how fast a doctor's free slots are read with 500 bookings on the day, beside
a position read of the same queue.

One doctor works every day 00:00-24:00 in 5-minute slots (288 slot starts a day, the most any
`slotMinutes` allows) in Europe/Paris. Tomorrow holds 500 waiting appointments: 288 hold every slot
of the day and 212 more were booked before the doctor had hours (no slot), as happens on the day a
clinic switches to hours; so the day's queue is 500 long and every slot is taken. Over HTTP on
loopback against an in-process server on its own thread (`bench.harness`), reads alternate: `GET
/api/doctors/{id}/slots?date=<tomorrow>` (288 slots, all `free: false`) and `GET
/api/queue/appointment/{id}/position` of the queue's last appointment, both as the admin, after one
read of each has loaded the doctor's queue. Also counts the store calls per read (both should be 0:
answered from the doctor's actor). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta

from bson import ObjectId

from bench.harness import Client, ServerThread, bench_settings, percentile
from core.hours import slot_key

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLOT_MINUTES = 5
HOLDING, WITHOUT_SLOT = 288, 212


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def seed(services, doctor_id: str) -> tuple[str, str]:
    """The 500 appointments of tomorrow; returns (tomorrow, the id of the queue's last appointment)."""
    calendar = services.calendar
    now = services.clock()
    tomorrow = calendar.day_of(now) + timedelta(days=1)
    start = calendar.start_of(tomorrow)
    doctor = ObjectId(doctor_id)
    documents = []
    for n in range(HOLDING + WITHOUT_SLOT):
        booked = start + timedelta(minutes=SLOT_MINUTES * (n % HOLDING))
        document = {"patient": ObjectId(), "doctor": doctor, "date": booked, "createdAt": now + timedelta(seconds=n),
                    "updatedAt": now, "version": 0, "status": "pending", "reason": "", "patientName": f"P{n}",
                    "patientEmail": "p@bench.test", "patientPhone": "+1 555 0100"}
        if n < HOLDING:
            document["slot"] = slot_key(doctor_id, booked)
        documents.append(document)
    await services.store.appointments.insert_many(documents)
    last = max(documents, key=lambda d: (d["date"], d["createdAt"], d["_id"]))
    return tomorrow.isoformat(), str(last["_id"])


async def main(reads: int) -> None:
    server = await ServerThread(bench_settings(clinic_timezone="Europe/Paris")).start()
    client = Client(server.port)
    try:
        admin = await client.admin_token()
        doctor = await client.create_doctor(admin)
        await client.ok("PUT", f"/api/doctors/{doctor['id']}", {
            "hours": [{"day": day, "start": "00:00", "end": "24:00"} for day in DAYS],
            "slotMinutes": SLOT_MINUTES}, admin)
        day, last = await server.run(seed(server.services, doctor["id"]))
        paths = {"slots": f"/api/doctors/{doctor['id']}/slots?date={day}",
                 "position": f"/api/queue/appointment/{last}/position"}

        async def read(path: str) -> tuple[float, object]:
            started = time.perf_counter()
            status, answer = await client.call("GET", path, token=admin)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {answer}")
            return time.perf_counter() - started, answer

        _, listing = await read(paths["slots"])
        _, place = await read(paths["position"])
        assert len(listing["slots"]) == HOLDING and not any(s["free"] for s in listing["slots"]), listing
        assert place["position"] == HOLDING + WITHOUT_SLOT - 1, place
        store_calls = server.services.store.calls
        samples: dict[str, list[float]] = {"slots": [], "position": []}
        calls: dict[str, int] = {"slots": 0, "position": 0}
        for _ in range(reads):
            for name, path in paths.items():
                before = sum(store_calls.values())
                seconds, _ = await read(path)
                calls[name] += sum(store_calls.values()) - before
                samples[name].append(seconds)
        slots_median, position_median = (statistics.median(samples[n]) for n in ("slots", "position"))
        print(f"{HOLDING + WITHOUT_SLOT} waiting appointments on {day} (Europe/Paris), {HOLDING} slots all held; "
              f"{reads} reads of each, alternating\n")
        print("| measure | median | p90 | note |\n|---|---|---|---|")
        print(f"| slots read, 288 slots, 500 bookings on the day | {ms(slots_median)} | "
              f"{ms(percentile(samples['slots'], 0.9))} | {calls['slots'] / reads:.2f} store calls per read; "
              f"{slots_median / position_median:.2f}x the position read |")
        print(f"| position read, last of the same 500 | {ms(position_median)} | "
              f"{ms(percentile(samples['position'], 0.9))} | {calls['position'] / reads:.2f} store calls per read |")
    finally:
        client.close()
        await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300)
    asyncio.run(main(parser.parse_args().reads))
