"""`GET /api/reports/days`: the definitions on days built here, who may read what, the range limits,
CSV equal to JSON, and the per-day summaries kept in the store across a restart."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import datetime, time, timedelta

import pytest
from bson import ObjectId

from domain import reports
from tests.conftest import clinic_zone_where_it_is_morning, future, start_harness, stop_harness



def clinic_day(harness, days_ago: int):
    calendar = harness.services.calendar
    return calendar.day_of(harness.services.clock()) - timedelta(days=days_ago)


def at(harness, day, hour: int, minute: int = 0) -> datetime:
    """A clinic-local time on `day`, as the aware UTC datetime the store keeps."""
    calendar = harness.services.calendar
    return datetime.combine(day, time(hour, minute), calendar.zone).astimezone(calendar.start_of(day).tzinfo)


async def put(harness, doctor_id: str, booked: datetime, status: str, *, started: datetime | None = None,
              completed: datetime | None = None, eta_error: float | None = None, outcome: str | None = None) -> dict:
    """An appointment as the workflows leave it, written straight to the store (these days are past,
    where no booking can go), and the day's summary dropped as any change to a closed day does."""
    document = {"patient": ObjectId(), "doctor": ObjectId(doctor_id), "patientName": "Pat", "date": booked,
                "status": status, "reason": "", "createdAt": booked - timedelta(days=1),
                "updatedAt": booked, "version": 1}
    if started is not None:
        document["startedAt"] = started
    if completed is not None:
        document["completedAt"] = completed
    if eta_error is not None:
        document["etaErrorMinutes"] = eta_error
    if outcome is not None:
        document["etaRange"] = outcome
    stored = await harness.services.store.insert_appointment(document)
    await harness.services.store.forget_day_summary(booked)
    return stored


async def report(harness, token, first, last, doctor=None, accept=None):
    path = f"/api/reports/days?from={first}&to={last}" + (f"&doctor={doctor}" if doctor else "")
    return await harness.api.get(path, token=token, headers={"Accept": accept} if accept else None)


async def build_days(harness) -> dict:
    """Day A: three consultations (one started early), a no-show, a cancellation; day A+1 cancellations
    only; day A+2 one no-show (no consultation); day A+3 nothing; a second doctor on day A."""
    await harness.server.days_rolled_up.wait()
    admin = await harness.admin_token()
    ada = await harness.create_doctor(admin, name="Dr. Ada")
    bob = await harness.create_doctor(admin, name="Dr. Bob")
    day_a = clinic_day(harness, 6)
    t = lambda day, h, m=0: at(harness, day, h, m)  # noqa: E731
    await put(harness, ada["id"], t(day_a, 10), "completed", started=t(day_a, 10, 5), completed=t(day_a, 10, 17),
              eta_error=2.0, outcome="inside")
    await put(harness, ada["id"], t(day_a, 10, 15), "completed", started=t(day_a, 10, 10),
              completed=t(day_a, 10, 20), eta_error=4.0, outcome="early")
    await put(harness, ada["id"], t(day_a, 10, 30), "completed", started=t(day_a, 10, 50),
              completed=t(day_a, 11, 5), outcome="late")
    await put(harness, ada["id"], t(day_a, 11), "no_show")
    await put(harness, ada["id"], t(day_a, 11, 30), "cancelled")
    await put(harness, ada["id"], t(day_a + timedelta(days=1), 9), "cancelled")
    await put(harness, ada["id"], t(day_a + timedelta(days=1), 9, 30), "cancelled")
    await put(harness, ada["id"], t(day_a + timedelta(days=2), 9), "no_show")
    await put(harness, bob["id"], t(day_a, 9), "completed", started=t(day_a, 8, 50), completed=t(day_a, 9, 10))
    return {"admin": admin, "ada": ada, "bob": bob, "day": day_a}


async def test_the_definitions_on_days_built_here(harness):
    built = await build_days(harness)
    ada, bob, day_a = built["ada"], built["bob"], built["day"]
    answer = await report(harness, built["admin"], day_a, day_a + timedelta(days=3))
    assert answer.status == 200, answer.body
    rows = answer.body
    assert [(r["date"], r["doctorName"]) for r in rows] == [
        (str(day_a), "Dr. Ada"), (str(day_a), "Dr. Bob"), (str(day_a + timedelta(days=1)), "Dr. Ada"),
        (str(day_a + timedelta(days=2)), "Dr. Ada")]  # oldest first; the empty day has no row
    assert rows[0] == {"date": str(day_a), "doctorId": ada["id"], "doctorName": "Dr. Ada", "booked": 5,
                       "completed": 3, "noShows": 1, "cancelled": 1,
                       "meanWaitMinutes": 8.3,     # (5 + 0 + 20) / 3: the early start waited 0
                       "p90WaitMinutes": 20.0,     # nearest rank: the 3rd of 3
                       "meanConsultMinutes": 12.3,  # (12 + 10 + 15) / 3
                       "etaMaeMinutes": 3.0, "etaScored": 2, "etaRange": {"early": 1, "inside": 1, "late": 1}}
    # waits that all ended early: 0, not negative
    assert rows[1]["meanWaitMinutes"] == 0.0 and rows[1]["p90WaitMinutes"] == 0.0
    assert rows[1]["meanConsultMinutes"] == 20.0 and rows[1]["etaMaeMinutes"] is None
    assert rows[1]["etaRange"] == {"early": 0, "inside": 0, "late": 0}  # no outcome recorded: 0
    nothing = {"meanWaitMinutes": None, "p90WaitMinutes": None, "meanConsultMinutes": None, "etaMaeMinutes": None,
               "etaScored": 0}
    assert rows[2] | nothing == rows[2] and (rows[2]["booked"], rows[2]["cancelled"], rows[2]["completed"]) == (2, 2, 0)
    assert rows[3] | nothing == rows[3] and (rows[3]["booked"], rows[3]["noShows"]) == (1, 1)
    # the same numbers as the day's statistics
    stats = await harness.api.get(f"/api/doctors/{ada['id']}/stats?date={day_a}", token=built["admin"])
    for key in ("booked", "completed", "noShows", "cancelled", "meanWaitMinutes", "meanConsultMinutes",
                "etaMaeMinutes", "etaScored"):
        assert stats.body[key] == rows[0][key], key
    one = await report(harness, built["admin"], day_a, day_a + timedelta(days=3), doctor=bob["id"])
    assert one.body == [rows[1]]


async def test_a_change_to_a_closed_day_is_counted_again(harness):
    built = await build_days(harness)
    first = await report(harness, built["admin"], built["day"], built["day"])
    assert first.body[0]["noShows"] == 1
    store = harness.services.store
    no_show = await store.appointments.find_one({"status": "no_show", "doctor": ObjectId(built["ada"]["id"]),
                                                 "date": {"$lt": at(harness, built["day"], 23)}})
    changed = await store.update_appointment_if(no_show["_id"], "no_show", no_show["version"],
                                                {"$set": {"status": "cancelled"}})
    assert changed is not None
    again = await report(harness, built["admin"], built["day"], built["day"])
    assert (again.body[0]["noShows"], again.body[0]["cancelled"]) == (0, 2)


async def test_a_clinic_day_crossing_utc_midnight():
    harness = await start_harness(settings={"clinic_timezone": "Pacific/Kiritimati"})  # UTC+14
    try:
        await harness.server.days_rolled_up.wait()
        admin = await harness.admin_token()
        ada = await harness.create_doctor(admin, name="Dr. Ada")
        day = clinic_day(harness, 4)
        # 09:00 and 23:30 on one clinic day: 19:00 UTC the day before, 09:30 UTC that day
        early, late = at(harness, day, 9), at(harness, day, 23, 30)
        assert early.date() != late.date()
        await put(harness, ada["id"], early, "completed", started=early + timedelta(minutes=4),
                  completed=early + timedelta(minutes=14))
        await put(harness, ada["id"], late, "no_show")
        await put(harness, ada["id"], at(harness, day + timedelta(days=1), 0, 10), "cancelled")
        rows = (await report(harness, admin, day - timedelta(days=1), day + timedelta(days=1))).body
        assert [(r["date"], r["booked"], r["completed"], r["noShows"], r["cancelled"]) for r in rows] == [
            (str(day), 2, 1, 1, 0), (str(day + timedelta(days=1)), 1, 0, 0, 1)]
        assert rows[0]["meanWaitMinutes"] == 4.0
    finally:
        await stop_harness(harness)


async def test_who_may_read_what(harness):
    built = await build_days(harness)
    ada, bob, day = built["ada"], built["bob"], built["day"]
    ada_token, _ = await harness.doctor_account(ada, built["admin"])
    patient_token, _ = await harness.register()
    span = (day, day + timedelta(days=2))
    assert (await report(harness, None, *span)).status == 401
    refused = await report(harness, patient_token, *span)
    assert refused.status == 403 and refused.body["code"] == "forbidden"
    assert (await report(harness, patient_token, *span, doctor=ada["id"])).status == 403
    other = await report(harness, ada_token, *span, doctor=bob["id"])
    assert other.status == 403
    assert (await report(harness, ada_token, *span, accept="text/csv", doctor=bob["id"])).status == 403
    own = await report(harness, ada_token, *span)  # no `doctor`: their own
    assert own.status == 200 and {r["doctorId"] for r in own.body} == {ada["id"]} and len(own.body) == 3
    assert (await report(harness, ada_token, *span, doctor=ada["id"])).body == own.body
    everyone = await report(harness, built["admin"], *span)
    assert {r["doctorId"] for r in everyone.body} == {ada["id"], bob["id"]}
    missing = await report(harness, built["admin"], *span, doctor=str(ObjectId()))
    assert missing.status == 404


@pytest.mark.parametrize("query, field", [
    ("from=2026-01-01&to=2027-01-02", "to"),      # 367 days
    ("from=2026-02-02&to=2026-02-01", "from"),    # from after to
    ("from=2026-02-30&to=2026-03-01", "from"),    # no such day
    ("from=2026-2-1&to=2026-03-01", "from"),      # not YYYY-MM-DD
    ("from=1999-12-31&to=2000-01-01", "from"),    # before 2000
    ("from=2099-12-31&to=2100-01-01", "to"),      # after 2099
    ("to=2026-03-01", "from"),                    # missing
    ("from=2026-03-01", "to"),
    ("from=2026-03-01&to=2026-03-02&doctor=nope", "doctor"),
    ("from=2026-03-01&to=2026-03-02&extra=1", "extra"),
])
async def test_the_range_limits(harness, query, field):
    admin = await harness.admin_token()
    answer = await harness.api.get(f"/api/reports/days?{query}", token=admin)
    assert answer.status == 400, answer.body
    assert answer.body["code"] == "validation_error" and field in answer.body["details"]


async def test_a_year_is_the_most(harness):
    admin = await harness.admin_token()
    assert (await harness.api.get("/api/reports/days?from=2024-01-01&to=2024-12-31", token=admin)).status == 200
    assert (await harness.api.get("/api/reports/days?from=2024-01-01&to=2025-01-01", token=admin)).status == 400


async def test_csv_equals_json_row_for_row(harness):
    built = await build_days(harness)
    await harness.api.put(f"/api/doctors/{built['bob']['id']}", {"name": "=Dr, \"Bob\""}, token=built["admin"])
    span = (built["day"], built["day"] + timedelta(days=3))
    as_json = (await report(harness, built["admin"], *span)).body
    answer = await report(harness, built["admin"], *span, accept="text/csv")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/csv")
    lines = answer.text.splitlines()
    assert lines[0] == ("date,doctorId,doctorName,booked,completed,noShows,cancelled,meanWaitMinutes,"
                        "p90WaitMinutes,meanConsultMinutes,etaMaeMinutes,etaScored,etaEarly,etaInside,etaLate")
    parsed = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(parsed) == len(as_json) == 4
    for row, record in zip(as_json, parsed):
        flat = {k: v for k, v in row.items() if k != "etaRange"}
        flat.update(etaEarly=row["etaRange"]["early"], etaInside=row["etaRange"]["inside"],
                    etaLate=row["etaRange"]["late"])
        if flat["doctorName"].startswith("="):  # a spreadsheet must not run it as a formula
            assert record["doctorName"] == "'" + flat["doctorName"]
            flat["doctorName"] = record["doctorName"]
        assert record == {k: "" if v is None else str(v) for k, v in flat.items()}
    # JSON stays the answer without Accept, with */*, or when JSON is preferred
    for accept in (None, "*/*", "application/json, text/csv;q=0.5"):
        assert (await report(harness, built["admin"], *span, accept=accept)).body == as_json
    assert (await report(harness, built["admin"], *span, accept="text/csv, application/json;q=0.9")).text == answer.text


async def test_the_summaries_survive_a_restart_of_the_roll_up():
    """Closed days are summarised into the store; a fresh app over the same store reads them without
    reading the appointments, and a day that closed while no server ran is summarised at start."""
    first = await start_harness()
    store, database, clock = first.services.store, first.services.settings.mongo_db, first.clock
    try:
        built = await build_days(first)
        span = (built["day"], clinic_day(first, 1))  # closed days only
        before = (await report(first, built["admin"], *span)).body
        kept = await store.day_summaries.count_documents({})
        assert kept >= 6
        # today is open: booked now, it is read live and has no summary yet
        today = clinic_day(first, 0)
        await put(first, built["ada"]["id"], at(first, today, 0, 30), "no_show")
        assert await store.day_summaries.count_documents({"date": str(today)}) == 0
    finally:
        await stop_harness(first)
    clock.advance(days=1)  # the server was down when today closed
    second = await start_harness(store=store, clock=clock, settings={"mongo_db": database})
    try:
        await second.server.days_rolled_up.wait()
        made = await store.day_summaries.find_one({"date": str(today)})
        assert made is not None and [(r["doctorId"], r["noShows"]) for r in json.loads(made["rows"])] == [(built["ada"]["id"], 1)]
        reads_before = store.calls["report_appointments"]
        admin = await second.admin_token()
        after = (await report(second, admin, *span)).body
        assert after == before
        whole = (await report(second, admin, span[0], today)).body
        assert whole[-1]["date"] == str(today) and whole[-1]["noShows"] == 1
        assert store.calls["report_appointments"] == reads_before  # all from the summaries
    finally:
        await stop_harness(second)


async def test_the_roll_up_and_the_zone(harness):
    """The roll-up summarises each closed day from the oldest appointment to yesterday, once; a summary
    is kept per clinic zone, so another zone's are not read as this one's."""
    store = harness.services.store
    await harness.server.days_rolled_up.wait()
    assert await store.day_summaries.count_documents({}) == 0  # an empty store: nothing to summarise
    built = await build_days(harness)
    assert await reports.roll_up(harness.services) == 6  # day A (6 days ago) to yesterday
    assert await reports.roll_up(harness.services) == 0  # nothing new has closed
    zone = harness.services.calendar.zone.key
    yesterday = clinic_day(harness, 1)
    kept = await store.day_summaries_between(zone, str(built["day"]), str(yesterday))
    assert [d["_id"] for d in kept] == [f"{zone}|{built['day'] + timedelta(days=n)}" for n in range(6)]
    assert await store.day_summaries_between("Asia/Tokyo", str(built["day"]), str(yesterday)) == []


def test_p90_is_the_nearest_rank():
    assert reports.p90([]) is None
    assert reports.p90([3.0]) == 3.0
    assert reports.p90([float(n) for n in range(1, 11)]) == 9.0
    assert reports.p90([float(n) for n in range(1, 12)]) == 10.0


async def test_today_is_read_from_the_ledger_and_agrees_with_the_appointments():
    """A report of today reads no appointment once the day's ledger is loaded (the roll-up loads it at
    start), and says what the appointments say after bookings, calls, a cancellation and a no-show."""
    harness = await start_harness(settings={"clinic_timezone": clinic_zone_where_it_is_morning()})
    try:
        await harness.server.days_rolled_up.wait()
        services, store = harness.services, harness.services.store
        admin = await harness.admin_token()
        ada = await harness.create_doctor(admin, name="Dr. Ada")
        bob = await harness.create_doctor(admin, name="Dr. Bob")
        ada_token, _ = await harness.doctor_account(ada, admin)
        booked = []
        for minutes, doctor in ((5, ada), (10, ada), (15, ada), (20, ada), (25, bob)):
            token, _ = await harness.register()
            booked.append((token, await harness.book(token, doctor["id"], future(minutes))))
        today = clinic_day(harness, 0)
        reads = store.calls["report_appointments"]
        assert [r["booked"] for r in (await report(harness, admin, today, today)).body] == [4, 1]
        next_path = f"/api/doctors/{ada['id']}/queue/next"
        assert (await harness.api.post(next_path, token=ada_token)).status == 200   # the first starts
        harness.clock.advance(minutes=12)
        assert (await harness.api.post(next_path, token=ada_token)).status == 200   # done; the second starts
        cancelled = await harness.api.patch(f"/api/appointments/{booked[3][1]['id']}/status",
                                            {"status": "cancelled"}, token=booked[3][0])
        assert cancelled.status == 200
        harness.clock.advance(minutes=10)
        no_show = await harness.api.patch(f"/api/appointments/{booked[2][1]['id']}/status",
                                          {"status": "no_show"}, token=ada_token)
        assert no_show.status == 200, no_show.body
        rows = (await report(harness, admin, today, today)).body
        assert store.calls["report_appointments"] == reads  # from the ledger, no read of the appointments
        doctors = {ada["id"]: "Dr. Ada", bob["id"]: "Dr. Bob"}
        found = await store.appointments_in(services.calendar.start_of(today), services.calendar.end_of(today))
        assert rows == reports.summarise(found, services.calendar, doctors)[str(today)]
        assert [(r["doctorName"], r["booked"], r["completed"], r["cancelled"], r["noShows"]) for r in rows] == [
            ("Dr. Ada", 4, 1, 1, 1), ("Dr. Bob", 1, 0, 0, 0)]
        assert rows[0]["meanConsultMinutes"] is not None and rows[0]["meanWaitMinutes"] is not None
        own = (await report(harness, ada_token, today, today)).body
        assert own == rows[:1]
        # a node that may have missed changes drops the ledger; the next report loads it again, once
        await services.queues.reload_all()
        assert (await report(harness, admin, today, today)).body == rows
        assert (await report(harness, admin, today, today)).body == rows
        assert store.calls["report_appointments"] == reads + 2  # the check above, and one load
    finally:
        await stop_harness(harness)


async def test_the_embedded_store_reads_a_report_off_the_event_loop(harness, monkeypatch):
    """The scan of every appointment (the embedded store has no index to use) runs in a worker
    thread; the event loop's thread never runs it."""
    import mongomock.collection

    threads = []
    find = mongomock.collection.Collection.find

    def spy(self, *args, **kwargs):
        if self.name == "appointments":
            threads.append(threading.get_ident())
        return find(self, *args, **kwargs)

    monkeypatch.setattr(mongomock.collection.Collection, "find", spy)
    built = await build_days(harness)
    threads.clear()
    rows = (await report(harness, built["admin"], built["day"], built["day"] + timedelta(days=3))).body
    assert len(rows) == 4 and threads  # the closed days had no summary: read from the appointments
    assert threading.get_ident() not in threads


async def test_a_change_while_the_day_is_read_is_not_lost_in_its_summary(harness, monkeypatch):
    """A closed day's appointment changes after the roll-up (or a report) read the day and before it
    kept the summary: the summary of that read is not kept, and the next report counts the change."""
    built = await build_days(harness)
    store, day = harness.services.store, built["day"]
    no_show = await store.appointments.find_one({"status": "no_show", "doctor": ObjectId(built["ada"]["id"]),
                                                 "date": {"$lt": at(harness, day, 23)}})
    read = store.appointments_in

    async def read_then_change(*args, **kwargs):
        found = await read(*args, **kwargs)
        monkeypatch.setattr(store, "appointments_in", read)  # once
        changed = await store.update_appointment_if(no_show["_id"], "no_show", no_show["version"],
                                                    {"$set": {"status": "cancelled"}})
        assert changed is not None
        return found

    monkeypatch.setattr(store, "appointments_in", read_then_change)
    first = await report(harness, built["admin"], day, day)
    assert first.body[0]["noShows"] == 1  # what it read: the change came after
    zone = harness.services.calendar.zone.key
    assert (await store.day_summaries.find_one({"_id": f"{zone}|{day}"})) is None  # not kept
    again = await report(harness, built["admin"], day, day)
    assert (again.body[0]["noShows"], again.body[0]["cancelled"]) == (0, 2)
    assert (await store.day_summaries.find_one({"_id": f"{zone}|{day}"}))["version"] == reports.SUMMARY_VERSION
