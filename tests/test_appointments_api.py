"""Appointments over REST: booking, reading, listing and every status change, with their permissions."""

from datetime import datetime, timedelta

from bson import ObjectId

from schemas.appointments import present
from core.access import Principal

from tests.conftest import future

APPOINTMENT_KEYS = {"id", "patient", "patientName", "patientEmail", "patientPhone", "doctor", "date", "reason",
                    "status", "createdAt", "updatedAt"}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def booking(doctor_id: str, when: str, **fields) -> dict:
    return {"patientName": "Pat Patient", "patientEmail": "pat@example.org", "patientPhone": "+1 555 0199",
            "doctor": doctor_id, "date": when, **fields}


async def clinic(harness, doctors: int = 1):
    """An admin token, doctors with their accounts' tokens, ready to book against."""
    admin = await harness.admin_token()
    made = []
    for i in range(doctors):
        doctor = await harness.create_doctor(admin, name=f"Dr. {i}", avgConsultMinutes=10)
        token, _ = await harness.doctor_account(doctor, admin)
        made.append((doctor, token))
    return admin, made


async def set_status(harness, appointment_id: str, status: str, token: str):
    return await harness.api.patch(f"/api/appointments/{appointment_id}/status", {"status": status}, token=token)


# -- booking -------------------------------------------------------------------------------------------

async def test_patient_books_an_appointment(harness):
    _, [(doctor, _)] = await clinic(harness)
    token, user = await harness.register()
    when = future(90)
    response = await harness.api.post("/api/appointments", booking(
        doctor["id"], iso(when), patientEmail="  Pat@Example.ORG ", reason="Cough"), token=token)
    assert response.status == 201, response.body
    body = response.body
    assert set(body) == APPOINTMENT_KEYS  # no joinUrl, no startedAt/completedAt, no _id
    assert body["status"] == "pending"
    assert body["patient"] == user["id"]
    assert body["doctor"] == doctor["id"]
    assert body["date"] == iso(when)
    assert body["reason"] == "Cough"
    assert body["patientName"] == "Pat Patient"
    assert body["patientEmail"] == "pat@example.org"
    assert body["patientPhone"] == "+1 555 0199"
    assert ObjectId.is_valid(body["id"]) and len(body["id"]) == 24
    assert body["createdAt"].endswith("Z") and body["createdAt"] == body["updatedAt"]

    fetched = await harness.api.get(f"/api/appointments/{body['id']}", token=token)
    assert fetched.status == 200 and fetched.body == body


async def test_booking_without_reason_defaults_to_empty(harness):
    _, [(doctor, _)] = await clinic(harness)
    token, _ = await harness.register()
    response = await harness.api.post("/api/appointments", booking(doctor["id"], iso(future(10))), token=token)
    assert response.status == 201 and response.body["reason"] == ""


async def test_only_patients_book(harness):
    admin, [(doctor, doctor_token)] = await clinic(harness)
    body = booking(doctor["id"], iso(future(30)))
    assert (await harness.api.post("/api/appointments", body, token=doctor_token)).status == 403
    assert (await harness.api.post("/api/appointments", body, token=admin)).status == 403
    anonymous = await harness.api.post("/api/appointments", body)
    assert anonymous.status == 401 and anonymous.body["code"] == "unauthorized"
    bad = await harness.api.post("/api/appointments", body, token="not.a.token")
    assert bad.status == 401
    listed = await harness.api.get("/api/appointments", token=admin)
    assert listed.body["total"] == 0


async def test_booking_validation(harness):
    _, [(doctor, _)] = await clinic(harness)
    token, _ = await harness.register()
    post = lambda body: harness.api.post("/api/appointments", body, token=token)  # noqa: E731

    past = await post(booking(doctor["id"], iso(future(-5))))
    assert past.status == 400 and set(past.body["details"]) == {"date"}
    naive = await post(booking(doctor["id"], future(30).strftime("%Y-%m-%dT%H:%M:%S")))
    assert naive.status == 400 and set(naive.body["details"]) == {"date"}
    garbage_date = await post(booking(doctor["id"], "tomorrow"))
    assert garbage_date.status == 400 and set(garbage_date.body["details"]) == {"date"}
    unknown = await post(booking(str(ObjectId()), iso(future(30))))
    assert unknown.status == 404 and unknown.body["code"] == "doctor_not_found"
    malformed = await post(booking("12345", iso(future(30))))
    assert malformed.status == 400 and set(malformed.body["details"]) == {"doctor"}
    extra = await post(booking(doctor["id"], iso(future(30)), status="completed"))
    assert extra.status == 400 and set(extra.body["details"]) == {"status"}
    missing = await post({"doctor": doctor["id"], "date": iso(future(30))})
    assert missing.status == 400
    assert set(missing.body["details"]) == {"patientName", "patientEmail", "patientPhone"}
    not_json = await harness.api.post("/api/appointments", raw="{nope", token=token,
                                      headers={"Content-Type": "application/json"})
    assert not_json.status == 400
    mine = await harness.api.get("/api/appointments/my", token=token)
    assert mine.body == []


async def test_one_waiting_appointment_per_patient_and_doctor(harness):
    _, [(doctor, _), (other_doctor, _)] = await clinic(harness, doctors=2)
    token, _ = await harness.register()
    first = await harness.book(token, doctor["id"], future(30))
    again = await harness.api.post("/api/appointments", booking(doctor["id"], iso(future(60))), token=token)
    assert again.status == 409 and again.body["code"] == "already_booked"
    # Another doctor is fine, and so is another patient with the same doctor.
    await harness.book(token, other_doctor["id"], future(30))
    other_token, _ = await harness.register()
    await harness.book(other_token, doctor["id"], future(30))

    assert (await set_status(harness, first["id"], "cancelled", token)).status == 200
    rebooked = await harness.api.post("/api/appointments", booking(doctor["id"], iso(future(60))), token=token)
    assert rebooked.status == 201 and rebooked.body["status"] == "pending"


# -- reading -------------------------------------------------------------------------------------------

async def test_my_appointments_newest_first_and_only_mine(harness):
    _, [(d1, _), (d2, _), (d3, _)] = await clinic(harness, doctors=3)
    token, user = await harness.register()
    other_token, _ = await harness.register()
    booked = [await harness.book(token, d["id"], future(60 - 10 * i)) for i, d in enumerate((d1, d2, d3))]
    await harness.book(other_token, d1["id"], future(5))
    mine = await harness.api.get("/api/appointments/my", token=token)
    assert mine.status == 200
    assert [a["id"] for a in mine.body] == [a["id"] for a in reversed(booked)]
    assert {a["patient"] for a in mine.body} == {user["id"]}
    assert (await harness.api.get("/api/appointments/my")).status == 401


async def test_my_appointments_is_for_patients(harness):
    admin, [(_, doctor_token)] = await clinic(harness)
    assert (await harness.api.get("/api/appointments/my", token=doctor_token)).status == 403
    assert (await harness.api.get("/api/appointments/my", token=admin)).status == 403


async def test_get_one_appointment_permissions(harness):
    admin, [(doctor, doctor_token), (_, other_doctor_token)] = await clinic(harness, doctors=2)
    token, _ = await harness.register()
    other_token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"], future(30))
    path = f"/api/appointments/{appointment['id']}"
    for allowed in (token, doctor_token, admin):
        response = await harness.api.get(path, token=allowed)
        assert response.status == 200 and response.body == appointment
    assert (await harness.api.get(path, token=other_token)).status == 403
    assert (await harness.api.get(path, token=other_doctor_token)).status == 403
    assert (await harness.api.get(path)).status == 401
    assert (await harness.api.get(f"/api/appointments/{ObjectId()}", token=admin)).status == 404
    assert (await harness.api.get("/api/appointments/not-an-id", token=admin)).status == 404


async def test_doctor_list_in_queue_order(harness):
    admin, [(doctor, doctor_token), (_, other_doctor_token)] = await clinic(harness, doctors=2)
    patients = [await harness.register() for _ in range(4)]
    base = future(10)
    minutes = [50, 35, 20, 20]
    booked = [await harness.book(t, doctor["id"], base + timedelta(minutes=m)) for (t, _), m in zip(patients, minutes)]
    # The one at 50 minutes is cancelled: it is no longer waiting.
    assert (await set_status(harness, booked[0]["id"], "cancelled", patients[0][0])).status == 200
    expected = [booked[2]["id"], booked[3]["id"], booked[1]["id"]]  # (date, createdAt, id)
    path = f"/api/appointments/doctor/{doctor['id']}"
    for allowed in (doctor_token, admin):
        response = await harness.api.get(path, token=allowed)
        assert response.status == 200
        assert [a["id"] for a in response.body] == expected
        assert {a["status"] for a in response.body} == {"pending"}
    assert (await harness.api.get(path, token=other_doctor_token)).status == 403
    assert (await harness.api.get(path, token=patients[1][0])).status == 403
    assert (await harness.api.get(path)).status == 401
    assert (await harness.api.get(f"/api/appointments/doctor/{ObjectId()}", token=admin)).status == 404
    assert (await harness.api.get("/api/appointments/doctor/xyz", token=admin)).status in (400, 404)


async def test_admin_list_paging_and_filters(harness):
    admin, [(d1, _), (d2, _)] = await clinic(harness, doctors=2)
    patients = [await harness.register() for _ in range(5)]
    booked = []
    for i, (token, _) in enumerate(patients):
        booked.append(await harness.book(token, (d1 if i < 3 else d2)["id"], future(10 * (i + 1))))
    assert (await set_status(harness, booked[1]["id"], "cancelled", patients[1][0])).status == 200
    by_date_desc = [a["id"] for a in reversed(booked)]

    everything = await harness.api.get("/api/appointments", token=admin)
    assert everything.status == 200
    assert everything.body["total"] == 5 and everything.body["limit"] == 50 and everything.body["offset"] == 0
    assert [a["id"] for a in everything.body["items"]] == by_date_desc

    page = await harness.api.get("/api/appointments?limit=2&offset=1", token=admin)
    assert page.status == 200
    assert (page.body["total"], page.body["limit"], page.body["offset"]) == (5, 2, 1)
    assert [a["id"] for a in page.body["items"]] == by_date_desc[1:3]
    beyond = await harness.api.get("/api/appointments?offset=10", token=admin)
    assert beyond.body["items"] == [] and beyond.body["total"] == 5

    cancelled = await harness.api.get("/api/appointments?status=cancelled", token=admin)
    assert [a["id"] for a in cancelled.body["items"]] == [booked[1]["id"]] and cancelled.body["total"] == 1
    of_d2 = await harness.api.get(f"/api/appointments?doctor={d2['id']}", token=admin)
    assert [a["id"] for a in of_d2.body["items"]] == [booked[4]["id"], booked[3]["id"]]
    both = await harness.api.get(f"/api/appointments?doctor={d1['id']}&status=pending", token=admin)
    assert [a["id"] for a in both.body["items"]] == [booked[2]["id"], booked[0]["id"]]

    for query in ("limit=0", "limit=201", "limit=x", "offset=-1", "status=bogus", "doctor=nope",
                  "limit=1&limit=2", "color=red"):
        response = await harness.api.get(f"/api/appointments?{query}", token=admin)
        assert response.status == 400, query
    assert (await harness.api.get("/api/appointments?limit=200", token=admin)).status == 200
    assert (await harness.api.get("/api/appointments", token=patients[0][0])).status == 403
    assert (await harness.api.get("/api/appointments")).status == 401


# -- status changes -------------------------------------------------------------------------------------

async def test_status_change_idor_attempts(harness):
    admin, [(doctor, doctor_token), (_, other_doctor_token)] = await clinic(harness, doctors=2)
    token, _ = await harness.register()
    other_token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"], future(30))
    for status in ("cancelled", "confirmed", "completed", "in_consultation", "no_show"):
        by_other_patient = await set_status(harness, appointment["id"], status, other_token)
        assert by_other_patient.status == 403, status
        by_other_doctor = await set_status(harness, appointment["id"], status, other_doctor_token)
        assert by_other_doctor.status == 403, status
    assert (await set_status(harness, appointment["id"], "cancelled", None)).status == 401
    still = await harness.api.get(f"/api/appointments/{appointment['id']}", token=token)
    assert still.body["status"] == "pending" and still.body["updatedAt"] == appointment["updatedAt"]


async def test_owner_cancels_but_may_not_confirm(harness):
    _, [(doctor, _)] = await clinic(harness)
    token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"], future(30))
    for status in ("confirmed", "in_consultation", "completed", "no_show"):
        response = await set_status(harness, appointment["id"], status, token)
        assert response.status == 403 and response.body["code"] == "forbidden", status
    cancelled = await set_status(harness, appointment["id"], "cancelled", token)
    assert cancelled.status == 200
    assert cancelled.body["status"] == "cancelled"
    assert set(cancelled.body) == APPOINTMENT_KEYS
    # Cancelling twice is a transition the table does not have.
    twice = await set_status(harness, appointment["id"], "cancelled", token)
    assert twice.status == 409 and twice.body["code"] == "invalid_transition"


async def test_doctor_confirms_then_completed_cannot_be_cancelled(harness):
    admin, [(doctor, doctor_token)] = await clinic(harness)
    token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"], future(30))
    confirmed = await set_status(harness, appointment["id"], "confirmed", doctor_token)
    assert confirmed.status == 200 and confirmed.body["status"] == "confirmed"
    back = await set_status(harness, appointment["id"], "pending", admin)
    assert back.status == 409 and back.body["code"] == "invalid_transition"
    completed = await set_status(harness, appointment["id"], "completed", admin)
    assert completed.status == 200 and completed.body["status"] == "completed"
    assert "completedAt" in completed.body and "startedAt" not in completed.body
    for caller in (token, doctor_token, admin):
        response = await set_status(harness, appointment["id"], "cancelled", caller)
        assert response.status == 409 and response.body["code"] == "invalid_transition"
        assert response.body["details"] == {"from": "completed", "to": "cancelled"}


async def test_consultation_sets_started_join_url_and_completed_at(harness):
    admin, [(doctor, doctor_token), (_, other_doctor_token)] = await clinic(harness, doctors=2)
    token, user = await harness.register()
    other_token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"], future(30))
    second = await harness.book(other_token, doctor["id"], future(40))

    started = await set_status(harness, appointment["id"], "in_consultation", doctor_token)
    assert started.status == 200
    body = started.body
    assert body["status"] == "in_consultation"
    assert set(body) == APPOINTMENT_KEYS | {"startedAt", "joinUrl"}
    assert body["joinUrl"].startswith("https://meet.jit.si/medpharma-")
    assert len(body["joinUrl"]) > len("https://meet.jit.si/medpharma-") + 10
    assert body["startedAt"].endswith("Z")

    path = f"/api/appointments/{appointment['id']}"
    for viewer in (token, doctor_token, admin):
        seen = await harness.api.get(path, token=viewer)
        assert seen.status == 200 and seen.body["joinUrl"] == body["joinUrl"]
    assert (await harness.api.get(path, token=other_token)).status == 403
    assert (await harness.api.get(path, token=other_doctor_token)).status == 403
    listed = await harness.api.get("/api/appointments?status=in_consultation", token=admin)
    assert [a["joinUrl"] for a in listed.body["items"]] == [body["joinUrl"]]
    # Whoever else might be shown the document never sees the join URL.
    stored = await harness.services.store.find_appointment(ObjectId(appointment["id"]))
    assert "joinUrl" not in present(stored, Principal(str(ObjectId()), "patient"))
    assert "joinUrl" not in present(stored, Principal(str(ObjectId()), "doctor", str(ObjectId())))
    assert "joinUrl" not in present(stored, None)
    assert present(stored, Principal(user["id"], "patient"))["joinUrl"] == body["joinUrl"]

    # One consultation per doctor.
    busy = await set_status(harness, second["id"], "in_consultation", admin)
    assert busy.status == 409 and busy.body["code"] == "doctor_busy"
    assert (await harness.api.get(f"/api/appointments/{second['id']}", token=admin)).body["status"] == "pending"
    # In consultation, it can no longer be cancelled, even by the doctor.
    no_cancel = await set_status(harness, appointment["id"], "cancelled", doctor_token)
    assert no_cancel.status == 409 and no_cancel.body["code"] == "invalid_transition"

    completed = await set_status(harness, appointment["id"], "completed", doctor_token)
    assert completed.status == 200
    assert completed.body["status"] == "completed"
    assert completed.body["startedAt"] == body["startedAt"]
    assert completed.body["completedAt"] >= body["startedAt"]
    assert completed.body["joinUrl"] == body["joinUrl"]
    # The doctor is free again.
    now_second = await set_status(harness, second["id"], "in_consultation", admin)
    assert now_second.status == 200 and now_second.body["joinUrl"] != body["joinUrl"]


async def test_no_show_by_staff_only_once_the_booked_time_has_passed(harness):
    """A doctor could mark a patient no_show 40 minutes before the booked time, while the patient sat in the
    waiting room: `409 too_early` now (this test marked a booking 30 minutes ahead a no-show; API.md no
    longer allows it), and a no-show once the time has passed."""
    admin, [(doctor, doctor_token)] = await clinic(harness)
    token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"], future(40))
    for who in (doctor_token, admin):
        early = await set_status(harness, appointment["id"], "no_show", who)
        assert early.status == 409 and early.body["code"] == "too_early", early.body
    assert (await set_status(harness, appointment["id"], "no_show", token)).status == 403
    confirmed = await set_status(harness, appointment["id"], "confirmed", doctor_token)
    assert confirmed.status == 200
    assert (await set_status(harness, appointment["id"], "no_show", doctor_token)).body["code"] == "too_early"
    harness.clock.advance(minutes=41)
    response = await set_status(harness, appointment["id"], "no_show", doctor_token)
    assert response.status == 200 and response.body["status"] == "no_show"
    assert "completedAt" not in response.body and "joinUrl" not in response.body


async def test_a_called_patient_who_never_joined_is_a_no_show(harness):
    """In consultation (called early, say) and never joined: the doctor marks it no_show at once, and is
    free to call the next patient."""
    admin, [(doctor, doctor_token)] = await clinic(harness)
    first_token, _ = await harness.register()
    second_token, _ = await harness.register()
    first = await harness.book(first_token, doctor["id"], future(20))
    second = await harness.book(second_token, doctor["id"], future(30))
    called = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    assert called.body["current"]["id"] == first["id"]
    assert (await set_status(harness, first["id"], "no_show", first_token)).status == 403
    response = await set_status(harness, first["id"], "no_show", doctor_token)
    assert response.status == 200 and response.body["status"] == "no_show", response.body
    assert "completedAt" not in response.body
    queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)
    assert queue.body["inConsultation"] is None and [e["appointmentId"] for e in queue.body["list"]] == [second["id"]]
    following = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", {"expectCurrent": None},
                                       token=doctor_token)  # (within 5 s, a plain call-next is a double submit)
    assert following.status == 200 and following.body["completed"] is None
    assert following.body["current"]["id"] == second["id"]


async def test_status_body_and_id_validation(harness):
    admin, [(doctor, _)] = await clinic(harness)
    token, _ = await harness.register()
    appointment = await harness.book(token, doctor["id"], future(30))
    path = f"/api/appointments/{appointment['id']}/status"
    unknown = await harness.api.patch(path, {"status": "teleported"}, token=admin)
    assert unknown.status == 400 and set(unknown.body["details"]) == {"status"}
    extra = await harness.api.patch(path, {"status": "confirmed", "version": 3}, token=admin)
    assert extra.status == 400
    empty = await harness.api.patch(path, {}, token=admin)
    assert empty.status == 400
    malformed = await harness.api.patch("/api/appointments/123/status", {"status": "cancelled"}, token=admin)
    assert malformed.status == 404
    missing = await harness.api.patch(f"/api/appointments/{ObjectId()}/status", {"status": "cancelled"},
                                      token=admin)
    assert missing.status == 404
    unchanged = await harness.api.get(f"/api/appointments/{appointment['id']}", token=token)
    assert unchanged.body["status"] == "pending"
