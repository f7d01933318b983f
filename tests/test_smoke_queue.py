"""An end-to-end walk through a doctor's day: booking, live positions, lateness, the turn, next."""

from datetime import datetime, timedelta, timezone


async def test_doctor_day_end_to_end(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, avgConsultMinutes=10)
    doctor_token, doctor_user = await harness.doctor_account(doctor, admin)
    assert doctor_user["role"] == "doctor" and doctor_user["doctorId"] == doctor["id"]

    soon = datetime.now(timezone.utc) + timedelta(minutes=1)
    patients = [await harness.register(name=f"P{i}") for i in range(4)]
    booked = [await harness.book(token, doctor["id"], soon) for token, _ in patients]

    sockets = []
    for (token, _), appointment in zip(patients, booked):
        ws = await harness.ws(token)
        await ws.send({"type": "queue:subscribe", "appointmentId": appointment["id"]})
        first = await ws.expect("queue:update")
        sockets.append((ws, first["data"]))
    assert [data["position"] for _, data in sockets] == [0, 1, 2, 3]
    assert [data["etaMinutes"] for _, data in sockets][1] - sockets[0][1]["etaMinutes"] == 10

    # The first patient cancels: the three behind all move up, each told without asking.
    cancel = await harness.api.patch(f"/api/appointments/{booked[0]['id']}/status", {"status": "cancelled"},
                                     token=patients[0][0])
    assert cancel.status == 200 and cancel.body["status"] == "cancelled"
    for index in (1, 2, 3):
        update = await sockets[index][0].expect("queue:update")
        assert update["data"]["position"] == index - 1

    # Read-your-writes over REST.
    position = await harness.api.get(f"/api/queue/appointment/{booked[1]['id']}/position", token=patients[1][0])
    assert position.status == 200 and position.body["position"] == 0

    # The doctor calls the next patient: turn:now with a join URL.
    called = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    assert called.status == 200, called.body
    assert called.body["current"]["id"] == booked[1]["id"]
    turn = await sockets[1][0].expect("turn:now")
    assert turn["data"]["appointmentId"] == booked[1]["id"]
    assert turn["data"]["joinUrl"].startswith("https://meet.jit.si/medpharma-")

    for ws, _ in sockets:
        ws.close()
