"""Live updates over `GET /ws`: the upgrade's checks, frames, rooms, redaction, pushes, slow readers."""

import asyncio
import json
import socket
from datetime import datetime, timedelta

import pytest
from bson import ObjectId
from tornado.httpclient import HTTPClientError

from tests.conftest import eventually, future, start_harness, stop_harness
from core.limits import MAX_SUBSCRIPTIONS

UPDATE_KEYS = {"appointmentId", "status", "position", "etaMinutes", "expectedStartAt", "isRunningLate",
               "lateByMinutes"}
PUBLIC_VIEW_KEYS = {"position", "date", "status", "etaMinutes", "expectedStartAt", "earliestStartAt", "latestStartAt",
                    "delayMinutes", "mine"}
RANGE_KEYS = ("earliestStartAt", "latestStartAt")


def ranged(payload):
    """The payload less the range of each estimate in it, once checked that every one has both times,
    in order (earliest <= expected <= latest; all three null once the appointment left). The range's
    values are tested in tests/test_eta.py and tests/test_queue_api.py."""
    if isinstance(payload, list):
        return [ranged(item) for item in payload]
    if not isinstance(payload, dict):
        return payload
    if "expectedStartAt" in payload:
        times = [payload["earliestStartAt"], payload["expectedStartAt"], payload["latestStartAt"]]
        assert times == sorted(times) if None not in times else times == [None] * 3, times
    return {k: ranged(v) for k, v in payload.items() if k not in RANGE_KEYS}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def clinic(harness, avg: int = 10):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, avgConsultMinutes=avg)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    return admin, doctor, doctor_token


async def patients_booked(harness, doctor, minutes, **fields):
    """One new patient per entry of `minutes`, each booked that many (whole) minutes ahead."""
    base = future(0)
    out = []
    for i, m in enumerate(minutes):
        token, user = await harness.register(name=f"Patient {i}")
        appointment = await harness.book(token, doctor["id"], base + timedelta(minutes=m), **fields)
        out.append((token, user, appointment))
    return base, out


async def subscribed(harness, token, **frame):
    ws = await harness.ws(token)
    await ws.send({"type": "queue:subscribe", **frame})
    return ws


async def settle(ws):
    """Round trip a ping: every frame sent before it has been handled by the server."""
    await ws.send({"type": "ping"})
    await ws.expect("pong")


async def events_before_pong(ws) -> list[dict]:
    """Every frame that arrives before the answer to a ping sent now. Events (turn:now, doctor:status)
    offered before the ping are queued ahead of its pong, so this is a barrier for them."""
    await ws.send({"type": "ping"})
    frames = []
    while True:
        frame = await ws.recv()
        if frame == {"event": "pong"}:
            return frames
        frames.append(frame)


def _user_of_token(harness, token):
    return harness.services.tokens.decode(token).user_id


def server_socket_of(harness, user_id):
    [found] = [s for s in harness.services.sockets if s.viewer.user_id == user_id]
    return found


# -- the upgrade ----------------------------------------------------------------------------------------

async def test_upgrade_refused_without_or_with_a_bad_token(harness):
    with pytest.raises(HTTPClientError) as info:
        await harness.ws()
    assert info.value.code == 401
    with pytest.raises(HTTPClientError) as info:
        await harness.ws("not-a-jwt")
    assert info.value.code == 401
    with pytest.raises(HTTPClientError) as info:
        await harness.ws("not-a-jwt", query_token=True)
    assert info.value.code == 401
    with pytest.raises(HTTPClientError) as info:
        await harness.ws(headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert info.value.code == 401
    assert harness.services.sockets == set()


async def test_token_in_the_query_string(harness):
    token, _ = await harness.register()
    ws = await harness.ws(token, query_token=True)
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"event": "pong"}
    ws.close()


async def test_origin_checked_before_the_upgrade():
    h = await start_harness(settings={"client_origins": ("https://app.example.com",)})
    try:
        token, _ = await h.register()
        with pytest.raises(HTTPClientError) as info:
            await h.ws(token, headers={"Origin": "https://evil.example.com"})
        assert info.value.code == 403
        with pytest.raises(HTTPClientError) as info:
            await h.ws(token, headers={"Origin": "https://app.example.com.evil.net"})
        assert info.value.code == 403
        ws = await h.ws(token, headers={"Origin": "https://app.example.com"})
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"event": "pong"}
        ws.close()
    finally:
        await stop_harness(h)


async def test_bad_origin_is_refused_even_without_a_token(harness):
    with pytest.raises(HTTPClientError) as info:
        await harness.ws(headers={"Origin": "https://evil.example.com"})
    assert info.value.code == 403


# -- frames ------------------------------------------------------------------------------------------------

async def test_ping_pong(harness):
    token, _ = await harness.register()
    ws = await harness.ws(token)
    for _ in range(3):
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"event": "pong"}
    ws.close()


async def test_bad_frames_answer_errors_and_keep_the_socket(harness):
    admin, doctor, _ = await clinic(harness)
    _, [(owner, _, appointment)] = await patients_booked(harness, doctor, [30])
    token, _ = await harness.register()
    ws = await harness.ws(token)
    bad = [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('"ping"', "bad_frame"),
        (json.dumps({"kind": "ping"}), "bad_frame"),
        (json.dumps({"type": 5}), "bad_frame"),
        (json.dumps({"type": "queue:explode"}), "unknown_type"),
        (json.dumps({"type": "ping", "extra": 1}), "bad_frame"),
        (json.dumps({"type": "queue:subscribe"}), "bad_frame"),
        (json.dumps({"type": "queue:subscribe", "doctorId": "123"}), "bad_frame"),
        (json.dumps({"type": "queue:subscribe", "doctorId": 12345}), "bad_frame"),
        (json.dumps({"type": "queue:subscribe", "appointmentId": "zz" * 12}), "bad_frame"),
        (json.dumps({"type": "queue:unsubscribe"}), "bad_frame"),
        (json.dumps({"type": "queue:subscribe", "doctorId": str(ObjectId())}), "not_found"),
        (json.dumps({"type": "queue:subscribe", "appointmentId": str(ObjectId())}), "not_found"),
        (json.dumps({"type": "queue:subscribe", "appointmentId": appointment["id"]}), "forbidden"),
    ]
    for frame, code in bad:
        await ws.send(frame)
        answer = await ws.recv()
        assert answer["event"] == "error", frame
        assert set(answer["data"]) == {"code", "message"}
        assert answer["data"]["code"] == code, frame
        assert isinstance(answer["data"]["message"], str) and answer["data"]["message"]
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"event": "pong"}
    # Nothing was joined along the way.
    assert server_socket_of(harness, _user_of_token(harness, token)).rooms == set()
    ws.close()


async def test_forbidden_appointment_rooms(harness):
    admin, doctor, doctor_token = await clinic(harness)
    other = await harness.create_doctor(admin)
    other_token, _ = await harness.doctor_account(other, admin)
    _, [(owner, _, appointment)] = await patients_booked(harness, doctor, [30])
    # A cancelled appointment is still forbidden to strangers (the store path, not the live queue).
    _, [(owner2, _, cancelled)] = await patients_booked(harness, doctor, [40])
    await harness.api.patch(f"/api/appointments/{cancelled['id']}/status", {"status": "cancelled"}, token=owner2)
    stranger, _ = await harness.register()
    for token in (stranger, other_token):
        for target in (appointment, cancelled):
            ws = await subscribed(harness, token, appointmentId=target["id"])
            error = await ws.recv()
            assert error["event"] == "error" and error["data"]["code"] == "forbidden"
            await settle(ws)
            ws.close()
    for token in (owner, doctor_token, admin):
        ws = await subscribed(harness, token, appointmentId=appointment["id"])
        update = await ws.recv()
        assert update["event"] == "queue:update" and update["data"]["appointmentId"] == appointment["id"]
        ws.close()


# -- subscribing -------------------------------------------------------------------------------------------

async def test_subscribe_answers_at_once_with_exact_payloads(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, booked = await patients_booked(harness, doctor, [30, 30, 35], reason="Checkup")
    (t0, u0, a0), (t1, u1, a1), (t2, u2, a2) = booked
    starts = [base + timedelta(minutes=m) for m in (30, 40, 50)]

    ws = await subscribed(harness, t1, appointmentId=a1["id"])
    update = ranged(await ws.recv())
    assert update == {"event": "queue:update", "data": {
        "appointmentId": a1["id"], "status": "pending", "date": a1["date"], "position": 1, "etaMinutes": 40,
        "expectedStartAt": iso(starts[1]), "delayMinutes": 10, "isRunningLate": False, "lateByMinutes": 0}}

    staff = await subscribed(harness, doctor_token, doctorId=doctor["id"])
    raw_state = await staff.recv()
    state = ranged(raw_state)
    rest = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)
    rest_day = rest.body["date"]
    assert state == {"event": "queue:state", "data": {
        "doctorId": doctor["id"], "date": rest_day, "isRunningLate": False, "lateByMinutes": 0,
        "avgConsultMinutes": 10, "awayUntil": None, "inConsultation": None,
        "list": [{"appointmentId": a["id"], "patient": u["id"], "patientName": "Pat Patient", "date": a["date"],
                  "status": "pending", "reason": "Checkup", "position": i, "etaMinutes": eta,
                  "expectedStartAt": iso(start), "delayMinutes": delay, "present": i == 1}
                 for i, ((_, u, a), eta, start, delay) in enumerate(zip(booked, (30, 40, 50), starts, (0, 10, 15)))]}}
    assert rest.body == raw_state["data"]

    # Both rooms in one frame: the update and the (redacted) state.
    both = await subscribed(harness, t2, doctorId=doctor["id"], appointmentId=a2["id"])
    frames = {f["event"]: ranged(f["data"]) for f in [await both.recv(), await both.recv()]}
    assert frames["queue:update"] == {"appointmentId": a2["id"], "status": "pending", "date": a2["date"], "position": 2,
                                      "etaMinutes": 50, "expectedStartAt": iso(starts[2]), "delayMinutes": 15,
                                      "isRunningLate": False, "lateByMinutes": 0}
    assert frames["queue:state"]["list"] == [
        {"position": 0, "date": a0["date"], "status": "pending", "etaMinutes": 30,
         "expectedStartAt": iso(starts[0]), "delayMinutes": 0, "mine": False},
        {"position": 1, "date": a1["date"], "status": "pending", "etaMinutes": 40,
         "expectedStartAt": iso(starts[1]), "delayMinutes": 10, "mine": False},
        {"position": 2, "date": a2["date"], "status": "pending", "etaMinutes": 50,
         "expectedStartAt": iso(starts[2]), "delayMinutes": 15, "mine": True, "appointmentId": a2["id"]}]
    for client in (ws, staff, both):
        client.close()


async def test_subscribe_to_a_finished_appointment(harness):
    admin, doctor, doctor_token = await clinic(harness)
    _, [(token, _, appointment)] = await patients_booked(harness, doctor, [30])
    await harness.api.patch(f"/api/appointments/{appointment['id']}/status", {"status": "cancelled"}, token=token)
    ws = await subscribed(harness, token, appointmentId=appointment["id"])
    assert await ws.recv() == {"event": "queue:update", "data": {
        "appointmentId": appointment["id"], "status": "cancelled", "date": appointment["date"], "position": -1,
        "etaMinutes": 0, "expectedStartAt": None, "earliestStartAt": None, "latestStartAt": None, "delayMinutes": 0,
        "isRunningLate": False, "lateByMinutes": 0}}
    ws.close()


async def test_a_patient_never_sees_other_patients_identities(harness):
    admin, doctor, doctor_token = await clinic(harness)
    _, booked = await patients_booked(harness, doctor, [10, 20, 30], reason="private reason")
    stranger, _ = await harness.register()
    # Two owners, a stranger, the doctor and an admin all watch the same room; each sees its own view.
    viewers = {"owner1": (booked[1][0], booked[1][2]["id"]), "owner2": (booked[2][0], booked[2][2]["id"]),
               "stranger": (stranger, None), "doctor": (doctor_token, "staff"), "admin": (admin, "staff")}
    sockets = {name: await subscribed(harness, token, doctorId=doctor["id"]) for name, (token, _) in viewers.items()}
    states = {name: [(await ws.expect("queue:state"))["data"]] for name, ws in sockets.items()}
    # A change makes the server push the state again, rendered for each viewer.
    newcomer, _ = await harness.register(name="Secret Name")
    await harness.book(newcomer, doctor["id"], future(5), reason="also private")
    for name, ws in sockets.items():
        states[name].append((await ws.expect("queue:state", predicate=lambda d: len(d["list"]) == 4))["data"])

    for name, (_, mine_id) in viewers.items():
        for state in states[name]:
            if mine_id == "staff":
                assert all(set(e) == {"appointmentId", "patient", "patientName", "date", "status", "reason",
                                      "position", "etaMinutes", "expectedStartAt", *RANGE_KEYS, "delayMinutes",
                                      "present"}
                           for e in state["list"])
                continue
            for entry in state["list"]:
                assert "patient" not in entry and "patientName" not in entry and "reason" not in entry
                if entry["mine"]:
                    assert set(entry) == PUBLIC_VIEW_KEYS | {"appointmentId"}
                    assert entry["appointmentId"] == mine_id
                else:
                    assert set(entry) == PUBLIC_VIEW_KEYS
            assert [e["mine"] for e in state["list"]].count(True) == (0 if mine_id is None else 1), name
            text = json.dumps(state)
            assert "private" not in text and "Secret" not in text and "Patient" not in text
            for _, user, appointment in booked:
                assert user["id"] not in text
                if appointment["id"] != mine_id:
                    assert appointment["id"] not in text
    for ws in sockets.values():
        ws.close()


async def test_too_many_subscriptions(harness):
    admin = await harness.admin_token()
    doctors = [await harness.create_doctor(admin, name=f"Dr. {i}") for i in range(MAX_SUBSCRIPTIONS + 1)]
    token, _ = await harness.register()
    ws = await harness.ws(token)
    for doctor in doctors[:MAX_SUBSCRIPTIONS]:
        await ws.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
        assert (await ws.recv())["event"] == "queue:state"
    # Subscribing again to a room already joined is not a new subscription.
    await ws.send({"type": "queue:subscribe", "doctorId": doctors[0]["id"]})
    assert (await ws.recv())["event"] == "queue:state"
    await ws.send({"type": "queue:subscribe", "doctorId": doctors[-1]["id"]})
    error = await ws.recv()
    assert error["event"] == "error" and error["data"]["code"] == "too_many_subscriptions"
    assert len(server_socket_of(harness, _user_of_token(harness, token)).rooms) == MAX_SUBSCRIPTIONS
    # Room is made by leaving one.
    await ws.send({"type": "queue:unsubscribe", "doctorId": doctors[0]["id"]})
    await ws.send({"type": "queue:subscribe", "doctorId": doctors[-1]["id"]})
    assert (await ws.expect("queue:state"))["data"]["doctorId"] == doctors[-1]["id"]
    ws.close()


# -- pushes ---------------------------------------------------------------------------------------------------

async def test_cancellation_pushes_to_all_three_behind(harness):
    admin, doctor, _ = await clinic(harness)
    base, booked = await patients_booked(harness, doctor, [30, 30, 30, 30])
    sockets = []
    for token, _, appointment in booked:
        ws = await subscribed(harness, token, appointmentId=appointment["id"])
        sockets.append(ws)
        await ws.expect("queue:update")
    cancel = await harness.api.patch(f"/api/appointments/{booked[0][2]['id']}/status", {"status": "cancelled"},
                                     token=booked[0][0])
    assert cancel.status == 200
    final = await sockets[0].expect("queue:update")
    assert ranged(final["data"]) == {"appointmentId": booked[0][2]["id"], "status": "cancelled",
                             "date": booked[0][2]["date"], "position": -1,
                             "etaMinutes": 0, "expectedStartAt": None, "delayMinutes": 0,
                             "isRunningLate": False, "lateByMinutes": 0}
    for index in (1, 2, 3):
        update = await sockets[index].expect("queue:update")
        assert ranged(update["data"]) == {"appointmentId": booked[index][2]["id"], "status": "pending",
                                  "date": booked[index][2]["date"], "position": index - 1, "etaMinutes": 30 + 10 * (index - 1),
                                  "expectedStartAt": iso(base + timedelta(minutes=30 + 10 * (index - 1))),
                                  "delayMinutes": 10 * (index - 1), "isRunningLate": False, "lateByMinutes": 0}
    for ws in sockets:
        ws.close()


async def test_doctor_status_and_updated_etas(harness):
    admin, doctor, doctor_token = await clinic(harness)
    base, booked = await patients_booked(harness, doctor, [30, 60])
    staff = await subscribed(harness, doctor_token, doctorId=doctor["id"])
    await staff.expect("queue:state")
    watchers = []
    for token, _, appointment in booked:
        ws = await subscribed(harness, token, appointmentId=appointment["id"])
        await ws.expect("queue:update")
        watchers.append(ws)

    patch = await harness.api.patch(f"/api/doctors/{doctor['id']}/status",
                                    {"isRunningLate": True, "lateByMinutes": 45}, token=doctor_token)
    assert patch.status == 200
    status = await staff.expect("doctor:status")
    assert status == {"event": "doctor:status", "data": {"doctorId": doctor["id"], "isRunningLate": True,
                                                         "lateByMinutes": 45, "avgConsultMinutes": 10,
                                                         "awayUntil": None}}
    state = await staff.expect("queue:state")
    assert (state["data"]["isRunningLate"], state["data"]["lateByMinutes"]) == (True, 45)
    assert [e["etaMinutes"] for e in state["data"]["list"]] == [45, 60]
    first = await watchers[0].expect("queue:update")
    assert (first["data"]["etaMinutes"], first["data"]["isRunningLate"], first["data"]["lateByMinutes"]) \
        == (45, True, 45)
    second = await watchers[1].expect("queue:update")
    assert (second["data"]["etaMinutes"], second["data"]["expectedStartAt"], second["data"]["lateByMinutes"]) \
        == (60, iso(base + timedelta(minutes=60)), 45)
    # doctor:status goes to the doctor's room only.
    for ws in watchers:
        assert [f for f in await events_before_pong(ws) if f["event"] == "doctor:status"] == []
        ws.close()
    staff.close()


async def test_turn_now_only_to_the_called_appointment(harness):
    admin, doctor, doctor_token = await clinic(harness)
    _, booked = await patients_booked(harness, doctor, [1, 2, 3])
    rooms = []
    for token, _, appointment in booked:
        ws = await subscribed(harness, token, appointmentId=appointment["id"])
        await ws.expect("queue:update")
        rooms.append(ws)
    staff = await subscribed(harness, doctor_token, doctorId=doctor["id"])
    await staff.expect("queue:state")

    called = await harness.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
    assert called.status == 200
    turn = await rooms[0].expect("turn:now")
    assert turn == {"event": "turn:now", "data": {"appointmentId": booked[0][2]["id"],
                                                  "joinUrl": called.body["current"]["joinUrl"]}}
    for ws in rooms[1:] + [staff]:
        assert [f for f in await events_before_pong(ws) if f["event"] == "turn:now"] == []
    state = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)
    assert state.body["inConsultation"]["appointmentId"] == booked[0][2]["id"]
    for ws in rooms + [staff]:
        ws.close()


async def test_eta_moves_with_the_clock(harness):
    admin, doctor, _ = await clinic(harness)
    _, [(token, _, appointment)] = await patients_booked(harness, doctor, [30])
    ws = await subscribed(harness, token, appointmentId=appointment["id"])
    first = await ws.expect("queue:update")
    assert first["data"]["etaMinutes"] == 30
    harness.clock.advance(minutes=3)
    await harness.services.queues.tick()
    moved = await ws.expect("queue:update")
    assert (moved["data"]["etaMinutes"], moved["data"]["position"], moved["data"]["expectedStartAt"]) \
        == (27, 0, appointment["date"])
    # Nothing moved: no push.
    await harness.services.queues.tick()
    assert await ws.drain(0.2) == []
    ws.close()


async def test_unsubscribe_stops_updates(harness):
    admin, doctor, doctor_token = await clinic(harness)
    _, [(token, _, appointment), (token2, _, appointment2)] = await patients_booked(harness, doctor, [30, 40])
    ws = await subscribed(harness, token2, appointmentId=appointment2["id"], doctorId=doctor["id"])
    await ws.expect("queue:update")
    await ws.expect("queue:state")
    await ws.send({"type": "queue:unsubscribe", "appointmentId": appointment2["id"], "doctorId": doctor["id"]})
    await settle(ws)
    assert server_socket_of(harness, _user_of_token(harness, token2)).rooms == set()
    await harness.api.patch(f"/api/appointments/{appointment['id']}/status", {"status": "cancelled"}, token=token)
    await harness.api.patch(f"/api/doctors/{doctor['id']}/status", {"isRunningLate": True, "lateByMinutes": 5},
                            token=doctor_token)
    assert await events_before_pong(ws) == []
    assert await ws.drain(0.1) == []
    # Unsubscribing from a room never joined is harmless.
    await ws.send({"type": "queue:unsubscribe", "doctorId": str(ObjectId())})
    await settle(ws)
    ws.close()


async def test_closed_socket_leaves_its_rooms(harness):
    admin, doctor, _ = await clinic(harness)
    _, [(token, _, appointment)] = await patients_booked(harness, doctor, [30])
    ws = await subscribed(harness, token, appointmentId=appointment["id"], doctorId=doctor["id"])
    await ws.expect("queue:update")
    hub = harness.services.hub
    assert hub.member_count(f"appointment:{appointment['id']}") == 1
    ws.close()
    await eventually(lambda: not harness.services.sockets, "the server to see the socket close")
    assert harness.services.sockets == set()
    assert hub.member_count(f"appointment:{appointment['id']}") == 0
    assert hub.member_count(f"doctor:{doctor['id']}") == 0


def _shrink_buffers(client_ws, server_handler) -> None:
    """Small kernel buffers on both ends, so that a reader that stops really stalls the server's writes."""
    client_sock = client_ws.connection.protocol.stream.socket
    client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server_sock = server_handler.ws_connection.stream.socket
    server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def test_a_reader_that_stops_never_holds_up_anyone(harness):
    admin, doctor, doctor_token = await clinic(harness)
    # Big staff-view frames (long reasons), so the stalled socket's buffers fill quickly.
    _, booked = await patients_booked(harness, doctor, [60 + i for i in range(12)], reason="x" * 1000)
    slow_user = harness.services.tokens.decode(doctor_token).user_id
    slow = await subscribed(harness, doctor_token, doctorId=doctor["id"], appointmentId=booked[-1][2]["id"])
    await slow.expect("queue:update")
    await slow.expect("queue:state")
    slow_handler = server_socket_of(harness, slow_user)
    _shrink_buffers(slow, slow_handler)
    subscriptions = len(slow_handler.rooms)
    assert subscriptions == 2
    # From here on, `slow` never reads again.

    watcher_token, _, watched = booked[5]
    fast = await subscribed(harness, watcher_token, appointmentId=watched["id"])
    assert (await fast.expect("queue:update"))["data"]["position"] == 5

    churner, _ = await harness.register()
    most_pending = 0
    for round_ in range(40):
        appointment = await harness.book(churner, doctor["id"], future(1), reason="y" * 1000)
        most_pending = max(most_pending, slow_handler.outbox.pending)
        # The other client hears that it moved back, now, despite the stalled socket.
        update = await fast.expect("queue:update", timeout=10)
        assert update["data"]["position"] == 6, round_
        cancel = await harness.api.patch(f"/api/appointments/{appointment['id']}/status",
                                         {"status": "cancelled"}, token=churner)
        assert cancel.status == 200
        most_pending = max(most_pending, slow_handler.outbox.pending)
        update = await fast.expect("queue:update", timeout=10)
        assert update["data"]["position"] == 5, round_

    # The stalled socket holds at most one value per subscription, however much changed.
    assert slow_handler.outbox.pending <= subscriptions
    assert most_pending <= subscriptions
    # And it really was stalled: values were waiting for it.
    assert slow_handler.outbox.pending >= 1
    assert slow_handler in harness.services.sockets  # still open: latest-value messages never overflow
    fast.close()
    slow.close()
