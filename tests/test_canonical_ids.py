"""Hex digits in either case name the same id, on every surface: paths, bodies, query strings, socket
frames. Whatever case comes in, only the lower-case id travels inward and every answer writes it."""

from __future__ import annotations

from tests.conftest import future


async def test_upper_case_ids_on_every_rest_surface(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, avgConsultMinutes=10)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    patient, user = await harness.register()
    up = doctor["id"].upper()
    booked = await harness.book(patient, up, future(30))          # a body id
    assert booked["doctor"] == doctor["id"]
    other, _ = await harness.register()
    second = await harness.book(other, doctor["id"], future(40))
    aup = booked["id"].upper()

    assert (await harness.api.get(f"/api/doctors/{up}")).body["id"] == doctor["id"]
    status = await harness.api.patch(f"/api/doctors/{up}/status", {"isRunningLate": True, "lateByMinutes": 5},
                                     token=doctor_token)                       # the doctor's own, upper-case
    assert status.status == 200 and status.body["id"] == doctor["id"]
    queue = await harness.api.get(f"/api/queue/doctor/{up}", token=doctor_token)
    assert queue.body["doctorId"] == doctor["id"]
    assert [e["appointmentId"] for e in queue.body["list"]] == [booked["id"], second["id"]]
    position = await harness.api.get(f"/api/queue/appointment/{aup}/position", token=patient)
    assert position.status == 200 and (position.body["appointmentId"], position.body["position"]) == (booked["id"], 0)
    shown = await harness.api.get(f"/api/appointments/{aup}", token=patient)
    assert shown.status == 200 and shown.body["id"] == booked["id"]
    listing = await harness.api.get(f"/api/appointments/doctor/{up}", token=doctor_token)
    assert [a["id"] for a in listing.body] == [booked["id"], second["id"]]
    paged = await harness.api.get(f"/api/appointments?doctor={up}", token=admin)
    assert paged.status == 200 and paged.body["total"] == 2
    confirmed = await harness.api.patch(f"/api/appointments/{aup}/status", {"status": "confirmed"},
                                        token=doctor_token)
    assert confirmed.status == 200 and confirmed.body["id"] == booked["id"]
    # A second waiting booking with the same doctor, spelled differently, is still the same doctor.
    again = await harness.api.post("/api/appointments", {
        "patientName": "P", "patientEmail": "p@example.org", "patientPhone": "+1 555 0100",
        "doctor": up.lower(), "date": future(50).strftime("%Y-%m-%dT%H:%M:%SZ")}, token=patient)
    assert again.status == 409 and again.body["code"] == "already_booked"
    cancelled = await harness.api.patch(f"/api/appointments/{aup}/status", {"status": "cancelled"}, token=patient)
    assert cancelled.status == 200


async def test_upper_case_ids_in_socket_frames_join_the_same_rooms(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, avgConsultMinutes=10)
    patient, _ = await harness.register()
    other, _ = await harness.register()
    first = await harness.book(other, doctor["id"], future(30))
    mine = await harness.book(patient, doctor["id"], future(30))
    ws = await harness.ws(patient)
    await ws.send({"type": "queue:subscribe", "appointmentId": mine["id"].upper(), "doctorId": doctor["id"].upper()})
    frames = {f["event"]: f["data"] for f in [await ws.recv(), await ws.recv()]}
    assert frames["queue:update"]["appointmentId"] == mine["id"] and frames["queue:update"]["position"] == 1
    assert frames["queue:state"]["doctorId"] == doctor["id"]
    # A change made with lower-case ids reaches the rooms joined with upper-case ones.
    await harness.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"}, token=other)
    moved = await ws.expect("queue:update", predicate=lambda d: d["appointmentId"] == mine["id"])
    assert moved["data"]["position"] == 0
    state = await ws.expect("queue:state")
    assert [e["mine"] for e in state["data"]["list"]] == [True]
    # Unsubscribing with the other spelling leaves the same room.
    await ws.send({"type": "queue:unsubscribe", "appointmentId": mine["id"], "doctorId": doctor["id"]})
    await ws.send({"type": "ping"})
    assert (await ws.expect("pong"))["event"] == "pong"
    sockets = [s for s in harness.services.sockets if s.viewer.user_id != ""]
    assert all(not s.rooms for s in sockets)
    ws.close()
