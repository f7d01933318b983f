"""Deleting a doctor and booking with that doctor at the same time never leaves a booking with no doctor.

There are no transactions, so each side checks again after its write; the interleavings below are
forced by wrapping one store call so the other side's write lands exactly in the gap.
"""

from datetime import datetime, timedelta, timezone

from bson import ObjectId


def future_iso(minutes: int = 30) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_booking_landing_during_a_delete_keeps_the_doctor(harness, monkeypatch):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    store = harness.services.store
    real_delete = store.delete_doctor

    async def booking_slips_in_then_delete(oid):
        await store.appointments.insert_one({
            "patient": ObjectId(), "patientName": "P", "patientEmail": "p@example.org", "patientPhone": "123",
            "doctor": oid, "date": datetime.now(timezone.utc) + timedelta(hours=1), "reason": "",
            "status": "pending", "createdAt": datetime.now(timezone.utc), "updatedAt": datetime.now(timezone.utc),
            "version": 0})
        return await real_delete(oid)

    monkeypatch.setattr(store, "delete_doctor", booking_slips_in_then_delete)
    response = await harness.api.delete(f"/api/doctors/{doctor['id']}", token=admin)
    assert response.status == 409 and response.body["code"] == "doctor_has_appointments"
    still_there = await harness.api.get(f"/api/doctors/{doctor['id']}", token=admin)
    assert still_there.status == 200 and still_there.body == doctor


async def test_a_delete_landing_during_a_booking_withdraws_the_booking(harness, monkeypatch):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    token, _ = await harness.register()
    store = harness.services.store
    real_insert = store.insert_appointment

    async def insert_then_doctor_deleted(document):
        inserted = await real_insert(document)
        await store.doctors.delete_one({"_id": ObjectId(doctor["id"])})
        return inserted

    monkeypatch.setattr(store, "insert_appointment", insert_then_doctor_deleted)
    response = await harness.api.post("/api/appointments", {
        "patientName": "P", "patientEmail": "p@example.org", "patientPhone": "+1 555 0100",
        "doctor": doctor["id"], "date": future_iso()}, token=token)
    assert response.status == 404 and response.body["code"] == "doctor_not_found"
    mine = await harness.api.get("/api/appointments/my", token=token)
    assert [a["status"] for a in mine.body] == ["cancelled"]
    assert await store.doctor_has_active_appointments(ObjectId(doctor["id"])) is False
