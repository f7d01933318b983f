"""Call-next as the API contract has it: the head of today's queue only, even when a confirm races it;
`expectCurrent` guards against a stale screen; a double submit changes nothing; watchers see one change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bson import ObjectId

from tests.conftest import future


async def clinic(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, avgConsultMinutes=10)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    return admin, doctor, doctor_token


def next_path(doctor: dict) -> str:
    return f"/api/doctors/{doctor['id']}/queue/next"


async def statuses(harness, token, *appointments) -> list[str]:
    return [(await harness.api.get(f"/api/appointments/{a['id']}", token=token)).body["status"] for a in appointments]


async def test_only_todays_head_is_called(harness):
    admin, doctor, doctor_token = await clinic(harness)
    patient, _ = await harness.register()
    tomorrow = await harness.book(patient, doctor["id"], future(24 * 60 + 30))
    called = await harness.api.post(next_path(doctor), token=doctor_token)
    assert called.status == 200 and called.body == {"completed": None, "current": None}
    assert await statuses(harness, admin, tomorrow) == ["pending"]
    position = await harness.api.get(f"/api/queue/appointment/{tomorrow['id']}/position", token=patient)
    assert position.body["position"] == 0 and position.body["etaMinutes"] > 24 * 60
    today = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)
    assert today.body["list"] == []
    day = (datetime.now(timezone.utc) + timedelta(minutes=24 * 60 + 30)).date().isoformat()
    later = await harness.api.get(f"/api/queue/doctor/{doctor['id']}?date={day}", token=doctor_token)
    assert later.status == 200 and later.body["date"] == day
    assert [e["appointmentId"] for e in later.body["list"]] == [tomorrow["id"]]
    for bad in ("2026-13-01", "tomorrow", "2026-1-1", "2026-11-30T10:00:00Z"):
        refused = await harness.api.get(f"/api/queue/doctor/{doctor['id']}?date={bad}", token=doctor_token)
        assert refused.status == 400 and "date" in refused.body["details"], bad


async def test_a_double_submit_answers_the_first_result_and_changes_nothing(harness):
    admin, doctor, doctor_token = await clinic(harness)
    patients = [await harness.register() for _ in range(3)]
    booked = [await harness.book(token, doctor["id"], future(5 + i)) for i, (token, _) in enumerate(patients)]
    first = await harness.api.post(next_path(doctor), token=doctor_token)
    again = await harness.api.post(next_path(doctor), token=doctor_token)
    assert first.status == again.status == 200
    assert first.body["current"]["id"] == again.body["current"]["id"] == booked[0]["id"]
    assert again.body["completed"] is None
    assert await statuses(harness, admin, *booked) == ["in_consultation", "pending", "pending"]
    # With expectCurrent the caller says what it saw: that is a new call, not a repeat.
    moved = await harness.api.post(next_path(doctor), {"expectCurrent": booked[0]["id"].upper()}, token=admin)
    assert moved.status == 200
    assert (moved.body["completed"]["id"], moved.body["current"]["id"]) == (booked[0]["id"], booked[1]["id"])
    assert await statuses(harness, admin, *booked) == ["completed", "in_consultation", "pending"]


async def test_a_stale_expect_current_changes_nothing(harness):
    admin, doctor, doctor_token = await clinic(harness)
    patients = [await harness.register() for _ in range(2)]
    booked = [await harness.book(token, doctor["id"], future(5 + i)) for i, (token, _) in enumerate(patients)]
    for stale in ({"expectCurrent": booked[1]["id"]}, {"expectCurrent": str(ObjectId())}):
        refused = await harness.api.post(next_path(doctor), stale, token=doctor_token)
        assert refused.status == 409 and refused.body["code"] == "queue_changed", stale
    assert await statuses(harness, admin, *booked) == ["pending", "pending"]
    called = await harness.api.post(next_path(doctor), {"expectCurrent": None}, token=doctor_token)
    assert called.status == 200 and called.body["current"]["id"] == booked[0]["id"]
    # The screen that still shows nobody in consultation is stale now.
    refused = await harness.api.post(next_path(doctor), {"expectCurrent": None}, token=doctor_token)
    assert refused.status == 409 and refused.body["code"] == "queue_changed"
    assert await statuses(harness, admin, *booked) == ["in_consultation", "pending"]
    for bad in ({"expectCurrent": "nope"}, {"expectCurrent": 5}, {"other": 1}, [1]):
        invalid = await harness.api.post(next_path(doctor), bad, token=doctor_token)
        assert invalid.status == 400, bad


async def test_a_confirm_racing_the_call_never_skips_the_head(harness, monkeypatch):
    """The head is confirmed between the call-next's read and its write: its conditional write misses;
    it must read the head again and call it, not move on to the second patient."""
    admin, doctor, doctor_token = await clinic(harness)
    patients = [await harness.register() for _ in range(2)]
    booked = [await harness.book(token, doctor["id"], future(5 + i)) for i, (token, _) in enumerate(patients)]
    store = harness.services.store
    real_update = store.update_appointment_if
    raced = []

    async def confirm_slips_in(appointment_id, expected_status, expected_version, update):
        if not raced and update["$set"]["status"] == "in_consultation":
            raced.append(appointment_id)
            confirm = await harness.api.patch(f"/api/appointments/{booked[0]['id']}/status",
                                              {"status": "confirmed"}, token=admin)
            assert confirm.status == 200
        return await real_update(appointment_id, expected_status, expected_version, update)

    monkeypatch.setattr(store, "update_appointment_if", confirm_slips_in)
    called = await harness.api.post(next_path(doctor), token=doctor_token)
    assert raced and called.status == 200 and called.body["current"]["id"] == booked[0]["id"]
    assert await statuses(harness, admin, *booked) == ["in_consultation", "pending"]


async def test_watchers_see_one_change_per_call_next(harness):
    admin, doctor, doctor_token = await clinic(harness)
    patients = [await harness.register() for _ in range(3)]
    booked = [await harness.book(token, doctor["id"], future(5 + i)) for i, (token, _) in enumerate(patients)]
    await harness.api.post(next_path(doctor), token=doctor_token)
    staff = await harness.ws(doctor_token)
    await staff.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
    await staff.expect("queue:state")
    watcher = await harness.ws(patients[2][0])
    await watcher.send({"type": "queue:subscribe", "appointmentId": booked[2]["id"]})
    await watcher.expect("queue:update")
    await staff.expect("queue:state", predicate=lambda d: [e["present"] for e in d["list"]] == [False, True])
    moved = await harness.api.post(next_path(doctor), {"expectCurrent": booked[0]["id"]}, token=doctor_token)
    assert moved.status == 200
    frames = await staff.drain(0.3)
    states = [f for f in frames if f["event"] == "queue:state"]
    assert len(states) == 1, frames
    assert states[0]["data"]["inConsultation"]["appointmentId"] == booked[1]["id"]
    assert [e["appointmentId"] for e in states[0]["data"]["list"]] == [booked[2]["id"]]
    updates = [f for f in await watcher.drain(0.3) if f["event"] == "queue:update"]
    assert [u["data"]["position"] for u in updates] == [0]
    staff.close()
    watcher.close()


async def test_who_may_call_next(harness):
    admin, doctor, doctor_token = await clinic(harness)
    other = await harness.create_doctor(admin)
    other_token, _ = await harness.doctor_account(other, admin)
    patient, _ = await harness.register()
    booked = await harness.book(patient, doctor["id"], future(5))
    for token in (patient, other_token):
        for path in (next_path(doctor), next_path({"id": doctor["id"].upper()})):
            refused = await harness.api.post(path, token=token)
            assert refused.status == 403, (path, refused.body)
    assert (await harness.api.post(next_path(doctor))).status == 401
    assert (await harness.api.post(next_path({"id": str(ObjectId())}), token=admin)).status == 404
    assert await statuses(harness, admin, booked) == ["pending"]
    called = await harness.api.post(next_path({"id": doctor["id"].upper()}), token=doctor_token)
    assert called.status == 200 and called.body["current"]["id"] == booked["id"]


async def test_a_refused_call_next_leaves_the_previous_calls_window_open(harness):
    """Found by the model-based test. A stale screen's call-next is refused between a click and its
    double: the double must still answer the first call again, not complete the patient just called."""
    admin, doctor, doctor_token = await clinic(harness)
    booked = []
    for minutes in (5, 6):
        patient, _ = await harness.register()
        booked.append(await harness.book(patient, doctor["id"], future(minutes)))
    first = await harness.api.post(next_path(doctor), token=doctor_token)
    assert first.status == 200 and first.body["current"]["id"] == booked[0]["id"]
    stale = await harness.api.post(next_path(doctor), {"expectCurrent": None}, token=doctor_token)
    assert stale.status == 409 and stale.body["code"] == "queue_changed"
    again = await harness.api.post(next_path(doctor), token=doctor_token)
    assert again.status == 200
    assert again.body["completed"] is None and again.body["current"]["id"] == booked[0]["id"], again.body
    assert await statuses(harness, admin, *booked) == ["in_consultation", "pending"]
