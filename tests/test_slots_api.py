"""The doctor's hours, free slots and rescheduling over HTTP and the live socket (the API contract's
"The doctor's hours, free slots, rescheduling").

The clinic is in Europe/Paris and the server's clock (a FakeClock) is set to Monday 2027-03-22,
10:07 in Paris (09:07Z), the week before the clocks go forward (Sunday 2027-03-28, 02:00 → 03:00).
The doctor works Monday and Tuesday 09:00-12:00 and Sunday 01:00-04:00, in 30-minute slots.
"""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import start_harness, stop_harness

NOW = datetime(2027, 3, 22, 9, 7, tzinfo=timezone.utc)  # Monday 10:07 in Paris
HOURS = [{"day": "mon", "start": "09:00", "end": "12:00"}, {"day": "tue", "start": "09:00", "end": "12:00"},
         {"day": "sun", "start": "01:00", "end": "04:00"}]


def paris(day: int, hour: int, minute: int = 0, month: int = 3) -> str:
    """A Paris wall-clock time of March 2027 (UTC+1 before the 28th at 02:00), in the API's UTC spelling."""
    offset = 1 if (month, day) < (3, 28) else 2
    moment = datetime(2027, month, day, hour, minute, tzinfo=timezone.utc) - timedelta(hours=offset)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
async def clinic():
    harness = await start_harness(settings={"clinic_timezone": "Europe/Paris"})
    harness.clock.offset = NOW - datetime.now(timezone.utc)
    try:
        admin = await harness.admin_token()
        doctor = await harness.create_doctor(admin, hours=HOURS, slotMinutes=30, avgConsultMinutes=10)
        doctor_token, _ = await harness.doctor_account(doctor, admin)
        yield harness, admin, doctor, doctor_token
    finally:
        await stop_harness(harness)


def booking(doctor_id: str, when: str, **fields) -> dict:
    return {"patientName": "Pat Patient", "patientEmail": "pat@example.org", "patientPhone": "+1 555 0199",
            "doctor": doctor_id, "date": when, **fields}


async def book(harness, token, doctor_id, when, **headers):
    return await harness.api.post("/api/appointments", booking(doctor_id, when), token=token, headers=headers or None)


async def slots(harness, doctor_id, day=None):
    response = await harness.api.get(f"/api/doctors/{doctor_id}/slots" + (f"?date={day}" if day else ""))
    assert response.status == 200, response.body
    return response.body


def free_map(listing) -> dict:
    return {s["start"]: s["free"] for s in listing["slots"]}


# -- the hours on the doctor ------------------------------------------------------------------------------
async def test_hours_are_validated_and_set_by_an_admin_or_that_doctor(clinic):
    harness, admin, doctor, doctor_token = clinic
    assert doctor["hours"] == [{"day": "mon", "start": "09:00", "end": "12:00"},
                               {"day": "tue", "start": "09:00", "end": "12:00"},
                               {"day": "sun", "start": "01:00", "end": "04:00"}]
    assert doctor["slotMinutes"] == 30
    overlapping = [{"day": "wed", "start": "09:00", "end": "12:00"}, {"day": "wed", "start": "11:00", "end": "13:00"}]
    refused = await harness.api.put(f"/api/doctors/{doctor['id']}", {"hours": overlapping}, token=admin)
    assert refused.status == 400 and "overlaps" in refused.body["details"]["hours.1"][0], refused.body
    backwards = await harness.api.patch(f"/api/doctors/{doctor['id']}/status",
                                        {"hours": [{"day": "wed", "start": "13:00", "end": "09:00"}],
                                         "isRunningLate": True}, token=doctor_token)
    assert backwards.status == 400 and "before end" in backwards.body["details"]["hours.0"][0]
    for body in ({"slotMinutes": 4}, {"slotMinutes": 241}, {"hours": [{"day": "wed", "start": "9", "end": "10:00"}]},
                 {"hours": "mon 9-12"}):
        assert (await harness.api.put(f"/api/doctors/{doctor['id']}", body, token=admin)).status == 400, body
    unchanged = await harness.api.get(f"/api/doctors/{doctor['id']}")
    assert unchanged.body["hours"] == doctor["hours"] and unchanged.body["isRunningLate"] is False

    by_doctor = await harness.api.patch(f"/api/doctors/{doctor['id']}/status",
                                        {"hours": [{"day": "wed", "start": "14:00", "end": "18:00"}],
                                         "slotMinutes": 20}, token=doctor_token)
    assert by_doctor.status == 200 and by_doctor.body["hours"] == [{"day": "wed", "start": "14:00", "end": "18:00"}]
    assert by_doctor.body["slotMinutes"] == 20
    other = await harness.create_doctor(admin)
    other_token, _ = await harness.doctor_account(other, admin)
    patient, _ = await harness.register()
    for token in (other_token, patient):
        attempt = await harness.api.patch(f"/api/doctors/{doctor['id']}/status", {"hours": []}, token=token)
        assert attempt.status == 403
    assert (await harness.api.put(f"/api/doctors/{doctor['id']}", {"hours": []}, token=doctor_token)).status == 403
    assert other["hours"] == [] and other["slotMinutes"] == 15


# -- the slots of a day ------------------------------------------------------------------------------------
async def test_todays_slots_leave_out_past_ones_and_show_what_is_held(clinic):
    harness, _, doctor, _ = clinic
    today = await slots(harness, doctor["id"])
    assert today["doctorId"] == doctor["id"] and today["date"] == "2027-03-22" and today["slotMinutes"] == 30
    assert [s["start"] for s in today["slots"]] == [paris(22, 10, 30), paris(22, 11), paris(22, 11, 30)]
    assert all(s["free"] for s in today["slots"])
    patient, _ = await harness.register()
    assert (await book(harness, patient, doctor["id"], paris(22, 11))).status == 201
    assert free_map(await slots(harness, doctor["id"])) == {paris(22, 10, 30): True, paris(22, 11): False,
                                                           paris(22, 11, 30): True}
    tuesday = await slots(harness, doctor["id"], "2027-03-23")
    assert [s["start"] for s in tuesday["slots"]] == [paris(23, h, m) for h in (9, 10, 11) for m in (0, 30)]
    assert (await slots(harness, doctor["id"], "2027-03-24"))["slots"] == []   # no hours on Wednesday
    assert (await slots(harness, doctor["id"], "2027-03-15"))["slots"] == []   # a Monday gone by
    no_hours = await harness.create_doctor()
    assert (await slots(harness, no_hours["id"], "2027-03-23")) == {
        "doctorId": no_hours["id"], "date": "2027-03-23", "slotMinutes": 15, "slots": []}
    for bad in ("2027-3-23", "tomorrow", "2027-03-23T00:00:00Z", "1999-12-31"):
        assert (await harness.api.get(f"/api/doctors/{doctor['id']}/slots?date={bad}")).status == 400, bad
    assert (await harness.api.get("/api/doctors/0123456789abcdef01234567/slots")).status == 404


async def test_slots_are_read_from_the_doctors_queue_not_the_store(clinic):
    harness, _, doctor, _ = clinic
    await slots(harness, doctor["id"], "2027-03-23")  # loads the queue
    store = harness.services.store
    before = sum(store.calls.values())
    for day in ("2027-03-22", "2027-03-23", "2027-03-28"):
        await slots(harness, doctor["id"], day)
    assert sum(store.calls.values()) == before


async def test_the_day_the_clocks_go_forward_has_no_slot_in_the_missing_hour(clinic):
    harness, _, doctor, _ = clinic
    sunday = await slots(harness, doctor["id"], "2027-03-28")
    # 01:00 and 01:30 are UTC+1, 02:00-02:59 does not exist, 03:00 and 03:30 are UTC+2
    assert [s["start"] for s in sunday["slots"]] == ["2027-03-28T00:00:00Z", "2027-03-28T00:30:00Z",
                                                     "2027-03-28T01:00:00Z", "2027-03-28T01:30:00Z"]
    patient, _ = await harness.register()
    assert (await book(harness, patient, doctor["id"], "2027-03-28T01:00:00Z")).status == 201   # 03:00 CEST
    other, _ = await harness.register()
    gap = await book(harness, other, doctor["id"], "2027-03-28T00:45:00Z")  # 01:45 CET: not a slot start
    assert gap.status == 400 and gap.body["code"] == "outside_hours"
    assert free_map(await slots(harness, doctor["id"], "2027-03-28"))["2027-03-28T01:00:00Z"] is False


async def test_the_day_the_clocks_go_back_offers_the_repeated_hour_once(clinic):
    harness, _, doctor, _ = clinic
    sunday = await slots(harness, doctor["id"], "2027-10-31")  # 03:00 CEST becomes 02:00 CET
    assert [s["start"] for s in sunday["slots"]] == [
        "2027-10-30T23:00:00Z", "2027-10-30T23:30:00Z",   # 01:00, 01:30 CEST
        "2027-10-31T00:00:00Z", "2027-10-31T00:30:00Z",   # 02:00, 02:30 the first time (CEST)
        "2027-10-31T02:00:00Z", "2027-10-31T02:30:00Z"]   # 03:00, 03:30 CET
    patient, _ = await harness.register()
    second_time = await book(harness, patient, doctor["id"], "2027-10-31T01:00:00Z")  # 02:00 CET, the repeat
    assert second_time.status == 400 and second_time.body["code"] == "outside_hours"


# -- booking against the hours --------------------------------------------------------------------------
async def test_a_booking_must_be_a_free_slot_start(clinic):
    harness, _, doctor, _ = clinic
    first, _ = await harness.register()
    second, _ = await harness.register()
    for when, why in ((paris(23, 12), "Outside the doctor's working hours"), (paris(23, 9, 10), "Not the start"),
                      (paris(24, 10), "does not work that day"), (paris(23, 11, 45), "Not the start")):
        refused = await book(harness, first, doctor["id"], when)
        assert refused.status == 400 and refused.body["code"] == "outside_hours", refused.body
        assert why in refused.body["details"]["date"][0], refused.body
    past = await book(harness, first, doctor["id"], paris(22, 10))
    assert past.status == 400 and past.body["details"]["date"] == ["Must be in the future."]
    assert (await book(harness, first, doctor["id"], paris(23, 9, 30))).status == 201
    taken = await book(harness, second, doctor["id"], paris(23, 9, 30))
    assert taken.status == 409 and taken.body["code"] == "slot_taken"
    again = await book(harness, first, doctor["id"], paris(23, 10))
    assert again.status == 409 and again.body["code"] == "already_booked"
    assert (await book(harness, second, doctor["id"], paris(23, 10))).status == 201


async def test_many_patients_racing_for_one_slot_get_exactly_one_booking(clinic):
    harness, _, doctor, _ = clinic
    tokens = [(await harness.register())[0] for _ in range(16)]
    answers = await asyncio.gather(*(book(harness, token, doctor["id"], paris(23, 11)) for token in tokens))
    assert sorted(a.status for a in answers) == [201] + [409] * 15
    assert {a.body["code"] for a in answers if a.status == 409} == {"slot_taken"}
    held = await harness.services.store.appointments.count_documents({"doctor": {"$exists": True},
                                                                       "slot": {"$exists": True}})
    assert held == 1


async def test_a_slot_is_freed_by_a_cancellation_and_a_no_show_but_not_by_a_completion(clinic):
    harness, admin, doctor, doctor_token = clinic
    patient, _ = await harness.register()
    other, _ = await harness.register()
    booked = (await book(harness, patient, doctor["id"], paris(23, 9))).body
    cancel = await harness.api.patch(f"/api/appointments/{booked['id']}/status", {"status": "cancelled"},
                                     token=patient)
    assert cancel.status == 200
    assert free_map(await slots(harness, doctor["id"], "2027-03-23"))[paris(23, 9)] is True
    assert (await book(harness, other, doctor["id"], paris(23, 9))).status == 201

    seen = (await book(harness, patient, doctor["id"], paris(22, 11, 30))).body
    for status in ("in_consultation", "completed"):
        assert (await harness.api.patch(f"/api/appointments/{seen['id']}/status", {"status": status},
                                        token=doctor_token)).status == 200
    assert free_map(await slots(harness, doctor["id"]))[paris(22, 11, 30)] is False

    missed = (await book(harness, patient, doctor["id"], paris(22, 10, 30))).body
    harness.clock.advance(minutes=30)  # 10:37: the 10:30 booking is due and nobody came
    no_show = await harness.api.patch(f"/api/appointments/{missed['id']}/status", {"status": "no_show"},
                                      token=doctor_token)
    assert no_show.status == 200
    stored = await harness.services.store.find_appointment(__import__("bson").ObjectId(missed["id"]))
    assert "slot" not in stored  # the index no longer holds it


# -- rescheduling ------------------------------------------------------------------------------------------
async def test_the_owner_reschedules_into_a_free_slot_and_the_old_one_is_free_at_once(clinic):
    harness, _, doctor, _ = clinic
    patient, _ = await harness.register()
    booked = (await book(harness, patient, doctor["id"], paris(22, 11))).body
    moved = await harness.api.patch(f"/api/appointments/{booked['id']}", {"date": paris(23, 9, 30)}, token=patient)
    assert moved.status == 200, moved.body
    assert moved.body["date"] == paris(23, 9, 30) and moved.body["status"] == "pending"
    assert moved.body["createdAt"] == booked["createdAt"]  # its place in the order of bookings is kept
    assert free_map(await slots(harness, doctor["id"]))[paris(22, 11)] is True
    assert free_map(await slots(harness, doctor["id"], "2027-03-23"))[paris(23, 9, 30)] is False
    tuesday = await harness.api.get(f"/api/queue/doctor/{doctor['id']}?date=2027-03-23", token=patient)
    assert [e.get("appointmentId") for e in tuesday.body["list"]] == [booked["id"]]
    today = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=patient)
    assert today.body["list"] == []

    same = await harness.api.patch(f"/api/appointments/{booked['id']}", {"date": paris(23, 9, 30)}, token=patient)
    assert same.status == 200 and same.body["updatedAt"] == moved.body["updatedAt"]
    reason = await harness.api.patch(f"/api/appointments/{booked['id']}", {"reason": "Follow-up"}, token=patient)
    assert reason.status == 200 and reason.body["reason"] == "Follow-up" and reason.body["date"] == paris(23, 9, 30)


async def test_a_reschedule_keeps_the_booking_rules(clinic):
    harness, _, doctor, doctor_token = clinic
    patient, _ = await harness.register()
    other, _ = await harness.register()
    mine = (await book(harness, patient, doctor["id"], paris(22, 11))).body
    await book(harness, other, doctor["id"], paris(23, 10))
    outside = await harness.api.patch(f"/api/appointments/{mine['id']}", {"date": paris(23, 13)}, token=patient)
    assert outside.status == 400 and outside.body["code"] == "outside_hours"
    past = await harness.api.patch(f"/api/appointments/{mine['id']}", {"date": paris(22, 10)}, token=patient)
    assert past.status == 400 and past.body["details"]["date"] == ["Must be in the future."]
    taken = await harness.api.patch(f"/api/appointments/{mine['id']}", {"date": paris(23, 10)}, token=patient)
    assert taken.status == 409 and taken.body["code"] == "slot_taken"
    for body in ({}, {"date": "2027-03-23T09:00:00"}, {"status": "cancelled"}, {"reason": "x" * 1001}):
        assert (await harness.api.patch(f"/api/appointments/{mine['id']}", body, token=patient)).status == 400, body
    assert (await harness.api.get(f"/api/appointments/{mine['id']}", token=patient)).body["date"] == paris(22, 11)
    await harness.api.patch(f"/api/appointments/{mine['id']}/status", {"status": "cancelled"}, token=patient)
    gone = await harness.api.patch(f"/api/appointments/{mine['id']}", {"date": paris(23, 11)}, token=patient)
    assert gone.status == 409 and gone.body["code"] == "not_waiting"


async def test_who_may_reschedule_and_who_may_edit_the_reason(clinic):
    harness, admin, doctor, doctor_token = clinic
    patient, _ = await harness.register()
    stranger, _ = await harness.register()
    other = await harness.create_doctor(admin)
    other_token, _ = await harness.doctor_account(other, admin)
    mine = (await book(harness, patient, doctor["id"], paris(22, 11))).body
    url = f"/api/appointments/{mine['id']}"
    assert (await harness.api.patch(url, {"date": paris(23, 9)})).status == 401
    for token in (stranger, other_token):
        refused = await harness.api.patch(url, {"date": paris(23, 9)}, token=token)
        assert refused.status == 403, refused.body
    for token in (doctor_token, admin):
        refused = await harness.api.patch(url, {"reason": "staff note"}, token=token)
        assert refused.status == 403 and refused.body["code"] == "reason_owner_only"
        refused = await harness.api.patch(url, {"date": paris(23, 9), "reason": "staff note"}, token=token)
        assert refused.status == 403
    stored = (await harness.api.get(url, token=patient)).body
    assert stored["date"] == paris(22, 11) and stored["reason"] == ""
    assert (await harness.api.patch(url, {"date": paris(23, 9)}, token=doctor_token)).status == 200
    assert (await harness.api.patch(url, {"date": paris(23, 9, 30)}, token=admin)).status == 200


async def test_staff_reschedules_are_audited_and_the_patients_own_are_not(clinic):
    harness, admin, doctor, doctor_token = clinic
    patient, _ = await harness.register()
    mine = (await book(harness, patient, doctor["id"], paris(22, 11))).body
    url = f"/api/appointments/{mine['id']}"
    assert (await harness.api.patch(url, {"date": paris(23, 9)}, token=patient)).status == 200
    assert (await harness.api.patch(url, {"date": paris(23, 10)}, token=doctor_token)).status == 200
    assert (await harness.api.patch(url, {"date": paris(23, 10)}, token=admin)).status == 200  # the same: no change
    log = await harness.api.get("/api/admin/audit?action=appointment.rescheduled", token=admin)
    assert log.status == 200
    assert [(e["actorRole"], e["target"], e["details"]) for e in log.body["items"]] == [
        ("doctor", mine["id"], {"from": paris(23, 9), "to": paris(23, 10)})]


async def test_a_reschedule_honours_the_idempotency_key(clinic):
    harness, _, doctor, _ = clinic
    patient, _ = await harness.register()
    mine = (await book(harness, patient, doctor["id"], paris(22, 11))).body
    url = f"/api/appointments/{mine['id']}"
    first = await harness.api.patch(url, {"date": paris(23, 9)}, token=patient, headers={"Idempotency-Key": "mv-1"})
    assert first.status == 200
    assert (await harness.api.patch(url, {"date": paris(23, 11)}, token=patient)).status == 200
    retry = await harness.api.patch(url, {"date": paris(23, 9)}, token=patient, headers={"Idempotency-Key": "mv-1"})
    assert retry.status == 200 and retry.body == first.body  # the first answer, not a second move
    assert (await harness.api.get(url, token=patient)).body["date"] == paris(23, 11)
    mismatch = await harness.api.patch(url, {"date": paris(23, 10)}, token=patient,
                                       headers={"Idempotency-Key": "mv-1"})
    assert mismatch.status == 409 and mismatch.body["code"] == "idempotency_mismatch"
    refused = await harness.api.patch(url, {"date": paris(23, 13)}, token=patient, headers={"Idempotency-Key": "mv-2"})
    assert refused.status == 400
    corrected = await harness.api.patch(url, {"date": paris(23, 10)}, token=patient,
                                        headers={"Idempotency-Key": "mv-2"})
    assert corrected.status == 200 and corrected.body["date"] == paris(23, 10)


async def test_two_reschedules_racing_for_one_slot_one_wins(clinic):
    harness, _, doctor, _ = clinic
    patients = [(await harness.register())[0] for _ in range(2)]
    booked = [(await book(harness, token, doctor["id"], when)).body
              for token, when in zip(patients, (paris(22, 11), paris(22, 11, 30)))]
    answers = await asyncio.gather(*(harness.api.patch(f"/api/appointments/{a['id']}", {"date": paris(23, 9)},
                                                       token=token) for token, a in zip(patients, booked)))
    assert sorted(a.status for a in answers) == [200, 409]
    loser = booked[[a.status for a in answers].index(409)]
    kept = (await harness.api.get(f"/api/appointments/{loser['id']}", token=patients[booked.index(loser)])).body
    assert kept["date"] == loser["date"]  # nothing half-written
    assert free_map(await slots(harness, doctor["id"]))[loser["date"]] is False


# -- the live move between two day queues -------------------------------------------------------------------
async def test_a_reschedule_moves_between_day_queues_as_one_change_for_watchers_of_both(clinic):
    harness, _, doctor, doctor_token = clinic
    tokens = [(await harness.register())[0] for _ in range(3)]
    moving = (await book(harness, tokens[0], doctor["id"], paris(22, 10, 30))).body   # today, next
    staying = (await book(harness, tokens[1], doctor["id"], paris(22, 11))).body      # today, behind it
    tomorrow = (await book(harness, tokens[2], doctor["id"], paris(23, 10))).body     # Tuesday, first
    sockets = {}
    for token, appointment in zip(tokens, (moving, staying, tomorrow)):
        ws = await harness.ws(token)
        await ws.send({"type": "queue:subscribe", "appointmentId": appointment["id"]})
        first = await ws.expect("queue:update")
        assert first["data"]["date"] == appointment["date"]
        sockets[appointment["id"]] = ws
    room = await harness.ws(doctor_token)
    await room.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
    await room.expect("queue:state")

    moved = await harness.api.patch(f"/api/appointments/{moving['id']}", {"date": paris(23, 9, 30)},
                                    token=tokens[0])
    assert moved.status == 200

    update = (await sockets[moving["id"]].expect("queue:update"))["data"]
    assert update["date"] == paris(23, 9, 30) and update["position"] == 0
    behind_today = (await sockets[staying["id"]].expect("queue:update"))["data"]
    assert behind_today["position"] == 0 and behind_today["date"] == staying["date"]
    behind_tomorrow = (await sockets[tomorrow["id"]].expect("queue:update"))["data"]
    assert behind_tomorrow["position"] == 1 and behind_tomorrow["date"] == tomorrow["date"]
    states = [f for f in await room.before_pong() if f["event"] == "queue:state"]
    assert len(states) == 1, states  # one change: never a state with the appointment in both days or neither
    assert [e["appointmentId"] for e in states[0]["data"]["list"]] == [staying["id"]]
    tuesday = await harness.api.get(f"/api/queue/doctor/{doctor['id']}?date=2027-03-23", token=doctor_token)
    assert [e["appointmentId"] for e in tuesday.body["list"]] == [moving["id"], tomorrow["id"]]
    for ws in (*sockets.values(), room):
        ws.close()
