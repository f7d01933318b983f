"""The queue over REST: a doctor's queue per viewer, an appointment's position and ETA, the doctor's
status, calling the next patient, and deleting a doctor with patients."""

from datetime import datetime, timedelta, timezone

from bson import ObjectId

from tests.conftest import future
from tests.test_eta import default_range

RANGE_KEYS = ("earliestStartAt", "latestStartAt")
DOCTOR_VIEW_KEYS = {"appointmentId", "patient", "patientName", "date", "status", "reason", "position",
                    "etaMinutes", "expectedStartAt", *RANGE_KEYS, "delayMinutes", "present"}
PUBLIC_VIEW_KEYS = {"position", "date", "status", "etaMinutes", "expectedStartAt", *RANGE_KEYS, "delayMinutes",
                    "mine"}
POSITION_KEYS = {"appointmentId", "status", "position", "etaMinutes", "expectedStartAt", *RANGE_KEYS,
                 "delayMinutes", "avgConsultMinutes", "isRunningLate", "lateByMinutes", "awayUntil"}
QUEUE_KEYS = {"doctorId", "date", "isRunningLate", "lateByMinutes", "avgConsultMinutes", "awayUntil",
              "inConsultation", "list"}
DELAYS = [0, 10, 15, 0]  # of four_bookings: start minus booked time


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def clinic(harness, avg: int = 10):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, avgConsultMinutes=avg)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    return admin, doctor, doctor_token


async def four_bookings(harness, doctor):
    """Four patients at base, base, base+5, base+90 minutes, base 30 minutes ahead (avg 10):
    starts base, base+10, base+20, base+90 → ETAs 30, 40, 50, 120."""
    base = future(30)
    patients = [await harness.register(name=f"Patient {i}") for i in range(4)]
    offsets = [0, 0, 5, 90]
    booked = [await harness.book(token, doctor["id"], base + timedelta(minutes=m), reason=f"r{i}")
              for i, ((token, _), m) in enumerate(zip(patients, offsets))]
    return base, patients, booked


def without_range(entry: dict, position: int, booked: list[dict]) -> dict:
    """The entry less its range, after checking the range is the documented default one (no history
    here) for four_bookings: its times do not depend on now, since base is 30 minutes ahead."""
    dates = [datetime.fromisoformat(b["date"].replace("Z", "+00:00")) for b in booked]
    earliest, latest = default_range(dates, 10, 0, None, now=dates[0] - timedelta(minutes=30))[position]
    for key, expected in zip(RANGE_KEYS, (earliest, latest)):
        assert datetime.fromisoformat(entry[key].replace("Z", "+00:00")) == expected, (key, position, entry[key])
    return {k: v for k, v in entry.items() if k not in RANGE_KEYS}


def position_path(appointment):
    return f"/api/queue/appointment/{appointment['id']}/position"


# -- the doctor's status ---------------------------------------------------------------------------------

async def test_status_patch_permissions(harness):
    admin, doctor, doctor_token = await clinic(harness)
    other = await harness.create_doctor(admin)
    other_token, _ = await harness.doctor_account(other, admin)
    patient, _ = await harness.register()
    path = f"/api/doctors/{doctor['id']}/status"

    by_doctor = await harness.api.patch(path, {"isRunningLate": True, "lateByMinutes": 15}, token=doctor_token)
    assert by_doctor.status == 200
    assert (by_doctor.body["id"], by_doctor.body["isRunningLate"], by_doctor.body["lateByMinutes"],
            by_doctor.body["avgConsultMinutes"]) == (doctor["id"], True, 15, 10)
    by_admin = await harness.api.patch(path, {"avgConsultMinutes": 7}, token=admin)
    assert by_admin.status == 200
    assert (by_admin.body["isRunningLate"], by_admin.body["lateByMinutes"], by_admin.body["avgConsultMinutes"]) \
        == (True, 15, 7)
    assert (await harness.api.patch(path, {"lateByMinutes": 1}, token=other_token)).status == 403
    assert (await harness.api.patch(path, {"lateByMinutes": 1}, token=patient)).status == 403
    assert (await harness.api.patch(path, {"lateByMinutes": 1})).status == 401
    stored = await harness.api.get(f"/api/doctors/{doctor['id']}")
    assert (stored.body["lateByMinutes"], stored.body["avgConsultMinutes"]) == (15, 7)
    assert (await harness.api.patch(f"/api/doctors/{ObjectId()}/status", {"lateByMinutes": 1},
                                    token=admin)).status == 404


async def test_status_patch_validation(harness):
    admin, doctor, _ = await clinic(harness)
    path = f"/api/doctors/{doctor['id']}/status"
    for body in ({"lateByMinutes": 601}, {"lateByMinutes": -1}, {"lateByMinutes": "5"}, {"lateByMinutes": 2.5},
                 {"avgConsultMinutes": 0}, {"avgConsultMinutes": 241}, {"isRunningLate": "yes"},
                 {"name": "Dr. Evil"}):
        response = await harness.api.patch(path, body, token=admin)
        assert response.status == 400, body
        assert set(response.body["details"]) == set(body), body
    edge = await harness.api.patch(path, {"lateByMinutes": 600, "avgConsultMinutes": 240}, token=admin)
    assert edge.status == 200 and (edge.body["lateByMinutes"], edge.body["avgConsultMinutes"]) == (600, 240)


async def test_not_running_late_resets_lateness(harness):
    admin, doctor, doctor_token = await clinic(harness)
    path = f"/api/doctors/{doctor['id']}/status"
    await harness.api.patch(path, {"isRunningLate": True, "lateByMinutes": 25}, token=doctor_token)
    reset = await harness.api.patch(path, {"isRunningLate": False}, token=doctor_token)
    assert reset.status == 200 and (reset.body["isRunningLate"], reset.body["lateByMinutes"]) == (False, 0)
    # With an explicit lateByMinutes it is kept.
    kept = await harness.api.patch(path, {"isRunningLate": False, "lateByMinutes": 9}, token=doctor_token)
    assert (kept.body["isRunningLate"], kept.body["lateByMinutes"]) == (False, 9)
    queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert (queue.body["isRunningLate"], queue.body["lateByMinutes"]) == (False, 9)


# -- calling the next patient ------------------------------------------------------------------------------

async def test_next_on_an_empty_queue(harness):
    admin, doctor, doctor_token = await clinic(harness)
    response = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    assert response.status == 200 and response.body == {"completed": None, "current": None}
    response = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", {}, token=admin)
    assert response.status == 200 and response.body == {"completed": None, "current": None}


async def test_next_completes_the_current_and_calls_the_head(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    path = f"/api/doctors/{doctor['id']}/queue/next"
    other = await harness.create_doctor(admin)
    other_token, _ = await harness.doctor_account(other, admin)
    assert (await harness.api.post(path, token=patients[0][0])).status == 403
    assert (await harness.api.post(path, token=other_token)).status == 403
    assert (await harness.api.post(path)).status == 401

    first = await harness.api.post(path, token=doctor_token)
    assert first.status == 200
    assert first.body["completed"] is None
    current = first.body["current"]
    assert current["id"] == booked[0]["id"] and current["status"] == "in_consultation"
    assert current["joinUrl"].startswith("https://meet.jit.si/medpharma-") and "startedAt" in current

    queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)
    assert queue.body["inConsultation"]["appointmentId"] == booked[0]["id"]
    assert [e["appointmentId"] for e in queue.body["list"]] == [b["id"] for b in booked[1:]]
    # The consultation started now and lasts 10: B (base+0) still starts at base, C at base+10.
    assert [e["etaMinutes"] for e in queue.body["list"]] == [30, 40, 120]
    called = await harness.api.get(position_path(booked[0]), token=patients[0][0])
    assert (called.body["status"], called.body["position"], called.body["etaMinutes"]) == ("in_consultation", -1, 0)

    second = await harness.api.post(path, {"expectCurrent": booked[0]["id"]}, token=admin)
    assert second.status == 200
    assert second.body["completed"]["id"] == booked[0]["id"]
    assert second.body["completed"]["status"] == "completed" and "completedAt" in second.body["completed"]
    assert second.body["current"]["id"] == booked[1]["id"]
    assert second.body["current"]["status"] == "in_consultation"
    done = await harness.api.get(position_path(booked[0]), token=patients[0][0])
    assert done.status == 200
    assert (done.body["status"], done.body["position"], done.body["etaMinutes"], done.body["expectedStartAt"]) \
        == ("completed", -1, 0, None)
    mine = await harness.api.get(f"/api/appointments/{booked[0]['id']}", token=patients[0][0])
    assert mine.body["status"] == "completed"


async def test_delete_doctor_with_waiting_patients(harness):
    admin, doctor, doctor_token = await clinic(harness)
    p1, _ = await harness.register()
    p2, _ = await harness.register()
    a1 = await harness.book(p1, doctor["id"], future(30))
    a2 = await harness.book(p2, doctor["id"], future(40))
    path = f"/api/doctors/{doctor['id']}"
    blocked = await harness.api.delete(path, token=admin)
    assert blocked.status == 409 and blocked.body["code"] == "doctor_has_appointments"
    await harness.api.patch(f"/api/appointments/{a1['id']}/status", {"status": "cancelled"}, token=p1)
    called = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    assert called.body["current"]["id"] == a2["id"]
    in_consultation = await harness.api.delete(path, token=admin)
    assert in_consultation.status == 409
    finished = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", {"expectCurrent": a2["id"]},
                                      token=doctor_token)
    assert finished.body["completed"]["id"] == a2["id"] and finished.body["current"] is None
    deleted = await harness.api.delete(path, token=admin)
    assert deleted.status == 200
    assert (await harness.api.get(path)).status == 404
    assert (await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)).status == 404


# -- the queue ---------------------------------------------------------------------------------------------

async def test_queue_for_the_doctor_and_admins(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    starts = [base, base + timedelta(minutes=10), base + timedelta(minutes=20), base + timedelta(minutes=90)]
    for token in (doctor_token, admin):
        response = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=token)
        assert response.status == 200
        body = response.body
        assert set(body) == QUEUE_KEYS
        assert (body["doctorId"], body["isRunningLate"], body["lateByMinutes"], body["avgConsultMinutes"],
                body["inConsultation"]) == (doctor["id"], False, 0, 10, None)
        assert [without_range(e, i, booked) for i, e in enumerate(body["list"])] == [
            {"appointmentId": b["id"], "patient": user["id"], "patientName": "Pat Patient",
             "date": b["date"], "status": "pending", "reason": f"r{i}", "position": i,
             "etaMinutes": eta, "expectedStartAt": iso(start), "delayMinutes": DELAYS[i], "present": False}
            for i, (b, (_, user), eta, start) in enumerate(zip(booked, patients, [30, 40, 50, 120], starts))]
        assert all(set(e) == DOCTOR_VIEW_KEYS for e in body["list"])


async def test_queue_for_another_patient_has_no_identities(harness):
    admin, doctor, _ = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    viewer_token = patients[2][0]  # owns the third
    response = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=viewer_token)
    assert response.status == 200
    listing = response.body["list"]
    starts = [base, base + timedelta(minutes=10), base + timedelta(minutes=20), base + timedelta(minutes=90)]
    expected = [{"position": i, "date": b["date"], "status": "pending", "etaMinutes": eta,
                 "expectedStartAt": iso(start), "delayMinutes": DELAYS[i], "mine": i == 2}
                for i, (b, eta, start) in enumerate(zip(booked, [30, 40, 50, 120], starts))]
    expected[2]["appointmentId"] = booked[2]["id"]
    assert [without_range(e, i, booked) for i, e in enumerate(listing)] == expected
    assert [set(e) for e in listing] == [PUBLIC_VIEW_KEYS, PUBLIC_VIEW_KEYS,
                                         PUBLIC_VIEW_KEYS | {"appointmentId"}, PUBLIC_VIEW_KEYS]

    # A stranger (no appointment here) and another doctor see the same, with nothing mine.
    stranger, _ = await harness.register()
    other = await harness.create_doctor(admin)
    other_token, _ = await harness.doctor_account(other, admin)
    for token in (stranger, other_token):
        seen = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=token)
        assert [set(e) for e in seen.body["list"]] == [PUBLIC_VIEW_KEYS] * 4
        assert [e["mine"] for e in seen.body["list"]] == [False] * 4
        assert "Patient" not in seen.text and patients[0][1]["id"] not in seen.text

    assert (await harness.api.get(f"/api/queue/doctor/{doctor['id']}")).status == 401
    assert (await harness.api.get(f"/api/queue/doctor/{ObjectId()}", token=stranger)).status == 404
    assert (await harness.api.get("/api/queue/doctor/zzz", token=stranger)).status in (400, 404)


async def test_consultation_in_progress_for_another_patient(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    seen = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=patients[1][0])
    current = seen.body["inConsultation"]
    assert current["mine"] is False and current["status"] == "in_consultation"
    assert not {"appointmentId", "patient", "patientName", "reason", "joinUrl"} & set(current)
    own = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=patients[0][0])
    assert own.body["inConsultation"]["mine"] is True
    assert own.body["inConsultation"]["appointmentId"] == booked[0]["id"]
    assert "joinUrl" not in own.text


async def test_position_exact_figures_and_permissions(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    other = await harness.create_doctor(admin)
    other_token, _ = await harness.doctor_account(other, admin)
    starts = [base, base + timedelta(minutes=10), base + timedelta(minutes=20), base + timedelta(minutes=90)]
    for i, ((token, _), appointment) in enumerate(zip(patients, booked)):
        expected = {"appointmentId": appointment["id"], "status": "pending", "position": i,
                    "etaMinutes": [30, 40, 50, 120][i], "expectedStartAt": iso(starts[i]),
                    "delayMinutes": DELAYS[i], "avgConsultMinutes": 10, "isRunningLate": False,
                    "lateByMinutes": 0, "awayUntil": None}
        for viewer in (token, doctor_token, admin):
            response = await harness.api.get(position_path(appointment), token=viewer)
            assert response.status == 200 and without_range(response.body, i, booked) == expected
        another_patient = patients[(i + 1) % 4][0]
        assert (await harness.api.get(position_path(appointment), token=another_patient)).status == 403
        assert (await harness.api.get(position_path(appointment), token=other_token)).status == 403
        assert (await harness.api.get(position_path(appointment))).status == 401
    assert (await harness.api.get(f"/api/queue/appointment/{ObjectId()}/position", token=admin)).status == 404
    assert (await harness.api.get("/api/queue/appointment/nope/position", token=admin)).status in (400, 404)


async def test_position_of_appointments_not_waiting(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    await harness.api.patch(f"/api/appointments/{booked[3]['id']}/status", {"status": "cancelled"},
                            token=patients[3][0])
    # Booked 35 minutes ahead, it can be a no-show only once called (API.md: a waiting one is `too_early`).
    for status in ("in_consultation", "no_show"):
        changed = await harness.api.patch(f"/api/appointments/{booked[2]['id']}/status", {"status": status},
                                          token=doctor_token)
        assert changed.status == 200, changed.body
    for i, status in ((3, "cancelled"), (2, "no_show")):
        for viewer in (patients[i][0], doctor_token, admin):
            response = await harness.api.get(position_path(booked[i]), token=viewer)
            assert response.status == 200
            assert response.body == {"appointmentId": booked[i]["id"], "status": status, "position": -1,
                                     "etaMinutes": 0, "expectedStartAt": None, "earliestStartAt": None,
                                     "latestStartAt": None, "delayMinutes": 0, "avgConsultMinutes": 10, "isRunningLate": False, "lateByMinutes": 0,
                                     "awayUntil": None}
        assert (await harness.api.get(position_path(booked[i]), token=patients[0][0])).status == 403
    # Also when the doctor's queue is not loaded in memory (evicted): the answer is the same.
    await harness.services.queues._evict(doctor["id"])
    response = await harness.api.get(position_path(booked[3]), token=patients[3][0])
    assert (response.body["status"], response.body["position"], response.body["etaMinutes"]) == ("cancelled", -1, 0)
    waiting = await harness.api.get(position_path(booked[1]), token=patients[1][0])
    assert (waiting.body["position"], waiting.body["etaMinutes"]) == (1, 40)


async def test_lateness_changes_etas(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    path = f"/api/doctors/{doctor['id']}/status"
    await harness.api.patch(path, {"isRunningLate": True, "lateByMinutes": 45}, token=doctor_token)
    # free at now+45 (after base = now+30): 45, 55, 65, then the one at base+90 = 120.
    queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert (queue.body["isRunningLate"], queue.body["lateByMinutes"]) == (True, 45)
    assert [e["etaMinutes"] for e in queue.body["list"]] == [45, 55, 65, 120]
    first = await harness.api.get(position_path(booked[0]), token=patients[0][0])
    assert (first.body["etaMinutes"], first.body["isRunningLate"], first.body["lateByMinutes"]) == (45, True, 45)
    gap = parse(first.body["expectedStartAt"]) - datetime.now(timezone.utc)
    assert timedelta(minutes=44) < gap <= timedelta(minutes=45)
    # Flag off: a stale lateByMinutes is ignored.
    await harness.api.patch(path, {"isRunningLate": False, "lateByMinutes": 45}, token=doctor_token)
    queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert [e["etaMinutes"] for e in queue.body["list"]] == [30, 40, 50, 120]
    # A longer average consultation stretches the chain.
    await harness.api.patch(path, {"avgConsultMinutes": 30}, token=doctor_token)
    queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert [e["etaMinutes"] for e in queue.body["list"]] == [30, 60, 90, 120]
    assert queue.body["avgConsultMinutes"] == 30


async def test_etas_follow_the_clock(harness):
    admin, doctor, _ = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    harness.clock.advance(minutes=40)
    # now = base+10: due now 0, 10, then the third (base+5) right after: 20; the last at base+90: 80.
    queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert [e["etaMinutes"] for e in queue.body["list"]] == [0, 10, 20, 80]
    position = await harness.api.get(position_path(booked[3]), token=patients[3][0])
    assert (position.body["etaMinutes"], position.body["expectedStartAt"]) == (80, booked[3]["date"])


async def test_read_your_writes(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)  # the queue is live
    cancel = await harness.api.patch(f"/api/appointments/{booked[0]['id']}/status", {"status": "cancelled"},
                                     token=patients[0][0])
    assert cancel.status == 200
    moved = await harness.api.get(position_path(booked[1]), token=patients[1][0])
    assert (moved.body["position"], moved.body["etaMinutes"]) == (0, 30)
    queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert [e["appointmentId"] for e in queue.body["list"]] == [b["id"] for b in booked[1:]]

    newcomer, _ = await harness.register()
    early = await harness.book(newcomer, doctor["id"], base - timedelta(minutes=20))
    first = await harness.api.get(position_path(early), token=newcomer)
    assert (first.body["position"], first.body["etaMinutes"]) == (0, 10)
    pushed = await harness.api.get(position_path(booked[1]), token=patients[1][0])
    assert (pushed.body["position"], pushed.body["etaMinutes"]) == (1, 30)

    await harness.api.patch(f"/api/doctors/{doctor['id']}/status", {"isRunningLate": True, "lateByMinutes": 60},
                            token=doctor_token)
    late = await harness.api.get(position_path(early), token=newcomer)
    assert (late.body["etaMinutes"], late.body["lateByMinutes"]) == (60, 60)


async def test_position_reads_make_no_store_calls_once_loaded(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, patients, booked = await four_bookings(harness, doctor)
    first = await harness.api.get(position_path(booked[0]), token=patients[0][0])  # loads the queue
    assert first.body["position"] == 0
    calls = dict(harness.services.store.calls)
    answers = []
    for _ in range(3):
        for (token, _), appointment in zip(patients, booked):
            response = await harness.api.get(position_path(appointment), token=token)
            answers.append(response.body["position"])
        answers.append((await harness.api.get(position_path(booked[2]), token=doctor_token)).body["position"])
        queue = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=patients[1][0])
        answers.append(len(queue.body["list"]))
    harness.clock.advance(minutes=1)  # re-estimation is in memory too
    answers.append((await harness.api.get(position_path(booked[3]), token=admin)).body["etaMinutes"])
    assert dict(harness.services.store.calls) == calls
    assert answers == [0, 1, 2, 3, 2, 4] * 3 + [119]
