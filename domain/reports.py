"""The clinic over weeks: one row per clinic day per doctor, with the day's statistics' definitions.

A row counts every appointment dated that clinic day (`CLINIC_TIMEZONE`): `booked` (any status),
`completed`, `noShows`, `cancelled`; the wait of each started consultation is its start minus its
booked time (0 when it started early), `meanWaitMinutes` and `p90WaitMinutes` (nearest rank: the
smallest wait at least 90 % of waits do not exceed); `meanConsultMinutes` over completed
consultations; `etaMaeMinutes` the mean of `etaErrorMinutes` over the `etaScored` consultations that
have one; `etaRange` counts each `etaRange` (early / inside / late). Means are rounded to 0.1
and null when there is nothing to average — as `domain.stats.day_stats` does for one day.

The fast path: a day that has closed (its end is past) is summarised once into ONE document per
clinic day holding every doctor's row (`daySummaries`, `_id` = zone and date; the rows kept as one
compact JSON text, which no query looks inside and which the embedded store copies in one piece), so
a 90-day report reads 90 small documents instead of the appointments. A day is summarised by the roll-up
(`roll_up`, run at start and after each clinic midnight: a day that closed while the server was down
is summarised when it comes back) or, failing that, by the first report that needs it. A change to
an appointment of a closed day drops that day's summary (`Store.update_appointment_if`), so the next
read makes it again.

Today is read from this node's ledger of the day (`actors.today`): loaded once with one read of the
store (in the background, by the roll-up, as each day begins), then kept by the changes the bus
brings, as the queues are; on the embedded store, where any read of the appointments filters all of
them, that read is what made a report ending today take seconds. Days still to come are read from the
appointments. The embedded store does those reads off the event loop (`Store.appointments_in`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import takewhile
import asyncio
import json
import uuid
import logging
from datetime import date, timedelta
from statistics import fmean

from core.access import ADMIN
from core.errors import NotFound
from core.policy import guarded
from core.statuses import CANCELLED, COMPLETED, NO_SHOW
from core.values import to_object_id

log = logging.getLogger("medpharma.reports")

ROLL_UP_DAYS = 366      # how far back the roll-up looks for closed days with no summary
# Missing days are made from the appointments a span of days per read, sized so that a read answers
# about READ_ANSWER appointments: the embedded store (mongomock 4.3) copies its whole answer again for
# every document it hands out, so one read's time grows with the square of its answer (75,000
# appointments: 25-45 s; the same in 30-day reads of ~8,000: about 1 s each, mostly the scan).
READ_ANSWER = 8_000
FIRST_READ_DAYS = 14    # before anything is known of how busy the days are
MAX_READ_DAYS = 92
SUMMARY_VERSION = 1     # bumped when a definition changes: older summaries are made again
RANGE_OUTCOMES = ("early", "inside", "late")
FIELDS = ("date", "doctorId", "doctorName", "booked", "completed", "noShows", "cancelled", "meanWaitMinutes",
          "p90WaitMinutes", "meanConsultMinutes", "etaMaeMinutes", "etaScored", "etaRange")


@guarded("reports.days")
async def days_report(services, principal, first: date, last: date, doctor_id: str | None) -> list[dict]:
    """The rows of `first`..`last` (inclusive), oldest first, then by doctor name. A doctor without
    `doctor_id` reads their own; with another doctor's id, `403`."""
    if doctor_id is None and principal.role != ADMIN:
        doctor_id = principal.doctor_id
        if doctor_id is None:
            raise NotFound("This account has no doctor profile.")
    if doctor_id is not None:
        days_report.rule.relate(principal, doctor_id)
    store, calendar = services.store, services.calendar
    oid = to_object_id(doctor_id) if doctor_id is not None else None
    doctors = {str(d["_id"]): d.get("name", "") for d in await store.list_doctors()}
    if oid is not None and doctor_id not in doctors:
        raise NotFound("Doctor not found.")
    today = calendar.day_of(services.clock())
    rows: list[dict] = []
    closed_last = min(last, today - timedelta(days=1))
    if first <= closed_last:
        for day_rows in (await closed_days(services, first, closed_last, doctors)).values():
            rows.extend(r for r in day_rows if oid is None or r["doctorId"] == doctor_id)
    if first <= today <= last:
        found = [d for d in await today_documents(services, today) if oid is None or str(d["doctor"]) == doctor_id]
        for day_rows in summarise(found, calendar, doctors).values():
            rows.extend(day_rows)
    later = max(first, today + timedelta(days=1))
    if later <= last:  # days still to come: what is booked so far, read from the appointments
        found = await store.appointments_in(calendar.start_of(later), calendar.end_of(last), oid)
        for day_rows in summarise(found, calendar, doctors).values():
            rows.extend(day_rows)
    for row in rows:  # the current name; a deleted doctor keeps the one the summary was made with
        row["doctorName"] = doctors.get(row["doctorId"], row["doctorName"])
    rows.sort(key=lambda r: (r["date"], r["doctorName"], r["doctorId"]))
    return rows


async def today_documents(services, today: date) -> list[dict]:
    """Today's appointments of every doctor, from this node's ledger (`actors.today`): loaded with one
    read of the store the first time a day is asked for (or after the ledger was dropped), kept up to
    date by the bus after that. Readers that arrive during a load wait for it rather than read again."""
    ledger = services.queues.today
    if not ledger.holds(today):
        async with ledger.filling:
            if not ledger.holds(today):
                ticket = ledger.begin(today)
                calendar = services.calendar
                found = await services.store.appointments_in(calendar.start_of(today), calendar.end_of(today))
                if not ledger.fill(ticket, found):
                    return found  # dropped while it read (the bus reconnected): the next report loads it again
    return ledger.documents()


async def closed_days(services, first: date, last: date, doctors: dict[str, str]) -> dict[str, list[dict]]:
    """Every doctor's rows of the closed days `first`..`last`, by date: from the kept summaries, and
    for the days without one, from the appointments (one read over the span of the missing days),
    keeping what was made."""
    store, calendar = services.store, services.calendar
    zone = calendar.zone.key
    kept = {d["date"]: json.loads(d["rows"])
            for d in await store.day_summaries_between(zone, first.isoformat(), last.isoformat())
            if d.get("version") == SUMMARY_VERSION}
    missing = [day for day in _days(first, last) if day.isoformat() not in kept]
    now = services.clock()
    holder = uuid.uuid4().hex
    span, done = FIRST_READ_DAYS, 0
    while done < len(missing):
        chunk = list(takewhile(lambda day: (day - missing[done]).days < span, missing[done:]))
        # A change to one of these days while they are read would be missed by what is made of the
        # read: each day gets a placeholder first, which that change deletes like any summary
        # (`Store.forget_day_summary`), and a summary is kept only in place of its own placeholder.
        for day in chunk:
            await store.save_day_summary(summary_document(services, day, None, now, holder))
        found = await store.appointments_in(calendar.start_of(chunk[0]), calendar.end_of(chunk[-1]))
        made = await asyncio.to_thread(summarise, found, calendar, doctors)  # thousands of appointments: not on the loop
        for day in chunk:
            kept[day.isoformat()] = made.get(day.isoformat(), [])
            await store.save_day_summary(summary_document(services, day, kept[day.isoformat()], now), holder)
        done += len(chunk)
        per_day = len(found) / ((chunk[-1] - chunk[0]).days + 1)
        span = max(1, min(MAX_READ_DAYS, int(READ_ANSWER / per_day) if per_day else MAX_READ_DAYS))
    return {key: [dict(row) for row in kept[key]] for key in sorted(kept)}


def summary_document(services, day: date, rows: list[dict] | None, now, holder: str | None = None) -> dict:
    """The day's summary; with `rows` None, the placeholder `holder` keeps while it reads the day
    (its version 0 is no summary's, so a reader takes the day as missing)."""
    calendar, zone, key = services.calendar, services.calendar.zone.key, day.isoformat()
    document = {"_id": f"{zone}|{key}", "zone": zone, "date": key, "start": calendar.start_of(day),
                "end": calendar.end_of(day), "madeAt": now}
    if rows is None:
        return {**document, "version": 0, "heldBy": holder}
    return {**document, "version": SUMMARY_VERSION, "rows": json.dumps(rows, separators=(",", ":"))}


async def roll_up(services) -> int:
    """Summarises the closed days of the last `ROLL_UP_DAYS` (none before the oldest appointment) that
    have no summary yet (days that closed since the last roll-up, or while the server was down);
    returns how many it made."""
    store, calendar = services.store, services.calendar
    yesterday = calendar.day_of(services.clock()) - timedelta(days=1)
    first = yesterday - timedelta(days=ROLL_UP_DAYS - 1)
    zone = calendar.zone.key
    kept = {d["date"] for d in await store.day_summaries_between(zone, first.isoformat(), yesterday.isoformat())
            if d.get("version") == SUMMARY_VERSION}
    missing = [day for day in _days(first, yesterday) if day.isoformat() not in kept]
    if missing and (not kept or missing[0].isoformat() < min(kept)):
        # days before any summary: none is made before the oldest appointment (an empty store has none)
        oldest = await store.first_appointment_date()
        if oldest is None:
            return 0
        for day in [day for day in missing if day < calendar.day_of(oldest)]:  # no appointment: an empty summary,
            await store.save_day_summary(summary_document(services, day, [], services.clock()))  # asked once
        missing = [day for day in missing if day >= calendar.day_of(oldest)]
    if not missing:
        return 0
    doctors = {str(d["_id"]): d.get("name", "") for d in await store.list_doctors()}
    await closed_days(services, missing[0], missing[-1], doctors)
    return len(missing)


async def keep_rolling_up(services, rolled_up: asyncio.Event | None = None) -> None:
    """The server's roll-up task: at start (days that closed while it was down), then just after
    each clinic midnight; each pass also loads the new day's ledger. A failed roll-up (the store away) is logged and tried again at the next.
    `rolled_up` is set after each pass, so a test can wait for the first."""
    while True:
        try:
            made = await roll_up(services)
            if made:
                log.info("day summaries made", extra={"days": made})
            # and the new day's ledger, so the day's first report does not wait for it
            await today_documents(services, services.calendar.day_of(services.clock()))
        except Exception as exc:  # noqa: BLE001 - a report still works without summaries, only slower
            log.warning("day roll-up failed", extra={"error": type(exc).__name__})
        if rolled_up is not None:
            rolled_up.set()
        await asyncio.sleep(seconds_to_next_day(services) + 5)


def seconds_to_next_day(services) -> float:
    """How long until the clinic's next midnight (when a day closes), from the one clock."""
    now = services.clock()
    calendar = services.calendar
    return max(1.0, (calendar.end_of(calendar.day_of(now)) - now).total_seconds())


def summarise(appointments: list[dict], calendar, doctors: dict[str, str]) -> dict[str, list[dict]]:
    """The rows of these appointments by clinic day: one per doctor with any appointment that day."""
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for appointment in appointments:
        grouped[(calendar.day_of(appointment["date"]).isoformat(), str(appointment["doctor"]))].append(appointment)
    by_day: dict[str, list[dict]] = defaultdict(list)
    for (day, doctor_id), booked in sorted(grouped.items()):
        by_day[day].append(day_row(day, doctor_id, doctors.get(doctor_id, ""), booked))
    return dict(by_day)


def day_row(day: str, doctor_id: str, doctor_name: str, booked: list[dict]) -> dict:
    """One doctor's clinic day in numbers (the definitions in this module's docstring)."""
    waits = sorted(max(0.0, _minutes(a["startedAt"] - a["date"])) for a in booked if a.get("startedAt") is not None)
    consults = [_minutes(a["completedAt"] - a["startedAt"]) for a in booked
                if a["status"] == COMPLETED and a.get("startedAt") is not None and a.get("completedAt") is not None]
    scored = [float(a["etaErrorMinutes"]) for a in booked if a.get("etaErrorMinutes") is not None]
    outcomes = [a.get("etaRange") for a in booked]
    count = lambda status: sum(1 for a in booked if a["status"] == status)  # noqa: E731
    return {"date": day, "doctorId": doctor_id, "doctorName": doctor_name, "booked": len(booked),
            "completed": count(COMPLETED), "noShows": count(NO_SHOW), "cancelled": count(CANCELLED),
            "meanWaitMinutes": _mean(waits), "p90WaitMinutes": p90(waits),
            "meanConsultMinutes": _mean(consults), "etaMaeMinutes": _mean(scored), "etaScored": len(scored),
            "etaRange": {outcome: outcomes.count(outcome) for outcome in RANGE_OUTCOMES}}


def p90(ordered: list[float]) -> float | None:
    """The nearest-rank 90th percentile of sorted values, rounded to 0.1; None for none."""
    if not ordered:
        return None
    return round(ordered[math.ceil(0.9 * len(ordered)) - 1], 1)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _minutes(delta) -> float:
    return delta.total_seconds() / 60


def _mean(values: list[float]) -> float | None:
    return round(fmean(values), 1) if values else None
