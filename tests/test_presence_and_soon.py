"""Who is here (`present` in the staff view) and the heads-up before the turn (`turn:soon`)."""

from __future__ import annotations

import pytest

from tests.conftest import future, nodes_sharing_one_store


async def clinic(harness, avg: int = 15):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin, avgConsultMinutes=avg)
    doctor_token, _ = await harness.doctor_account(doctor, admin)
    return admin, doctor, doctor_token


async def test_presence_follows_the_patients_own_socket(harness):
    admin, doctor, doctor_token = await clinic(harness)
    patient, _ = await harness.register()
    other, _ = await harness.register()
    mine = await harness.book(patient, doctor["id"], future(30))
    await harness.book(other, doctor["id"], future(40))
    staff = await harness.ws(doctor_token)
    await staff.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
    assert [e["present"] for e in (await staff.expect("queue:state"))["data"]["list"]] == [False, False]

    # The doctor (or an admin) watching the appointment's room is not the patient being here.
    for token in (doctor_token, admin):
        looker = await harness.ws(token)
        await looker.send({"type": "queue:subscribe", "appointmentId": mine["id"]})
        await looker.expect("queue:update")
        looker.close()
    rest = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)
    assert [e["present"] for e in rest.body["list"]] == [False, False]

    phone = await harness.ws(patient)
    await phone.send({"type": "queue:subscribe", "appointmentId": mine["id"].upper()})
    await phone.expect("queue:update")
    state = await staff.expect("queue:state", timeout=1.0)
    assert [e["present"] for e in state["data"]["list"]] == [True, False]
    second_device = await harness.ws(patient)
    await second_device.send({"type": "queue:subscribe", "appointmentId": mine["id"]})
    await second_device.expect("queue:update")
    second_device.close()                    # still here on the phone
    phone_watch = await harness.ws(other)
    await phone_watch.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
    public = (await phone_watch.expect("queue:state"))["data"]["list"]
    assert all("present" not in e for e in public)  # other patients never learn who is here
    rest = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert [e["present"] for e in rest.body["list"]] == [True, False]

    phone.close()                            # the phone drops: gone
    state = await staff.expect("queue:state", timeout=1.0,
                               predicate=lambda d: [e["present"] for e in d["list"]] == [False, False])
    assert state["data"]["list"][0]["appointmentId"] == mine["id"]
    staff.close()
    phone_watch.close()


async def test_turn_soon_once_when_next_and_again_only_after_moving_back(harness):
    admin, doctor, doctor_token = await clinic(harness, avg=15)
    first_token, _ = await harness.register()
    mine_token, _ = await harness.register()
    early_token, _ = await harness.register()
    # Booked in 30 minutes: at position 1 the start is then (eta ~45) and "be ready by" is its booked
    # time less the 10 minutes a doctor may call early, both beyond SOON_MINUTES.
    base = future(30)
    first = await harness.book(first_token, doctor["id"], base)
    mine = await harness.book(mine_token, doctor["id"], base)
    ws = await harness.ws(mine_token)
    await ws.send({"type": "queue:subscribe", "appointmentId": mine["id"]})
    assert (await ws.expect("queue:update"))["data"]["position"] == 1
    assert not [f for f in await ws.drain(0.2) if f["event"] == "turn:soon"]

    await harness.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"}, token=first_token)
    soon = await ws.expect("turn:soon")
    assert soon["data"]["appointmentId"] == mine["id"] and soon["data"]["position"] == 0
    assert set(soon["data"]) == {"appointmentId", "position", "etaMinutes", "expectedStartAt", "earliestStartAt"}
    await harness.services.queues.reload_all()                      # a reload never repeats it
    harness.clock.advance(seconds=30)
    await harness.services.queues.tick()
    assert not [f for f in await ws.drain(0.3) if f["event"] == "turn:soon"]

    # Someone booked earlier goes ahead: position 1 and "be ready by" more than SOON_MINUTES away — moved back.
    await harness.book(early_token, doctor["id"], future(1))
    moved = await ws.expect("queue:update", predicate=lambda d: d["position"] == 1)
    assert moved["data"]["etaMinutes"] > 10
    early = (await harness.api.get("/api/appointments/my", token=early_token)).body[0]
    await harness.api.patch(f"/api/appointments/{early['id']}/status", {"status": "cancelled"}, token=early_token)
    again = await ws.expect("turn:soon")
    assert again["data"]["position"] == 0
    ws.close()


async def test_turn_soon_fires_when_be_ready_by_comes_within_soon_minutes(harness):
    """Not next and its expected start more than SOON_MINUTES away, but its earliestStartAt (be ready
    by) within them: the heads-up goes out then, with the time to be ready by."""
    admin, doctor, doctor_token = await clinic(harness, avg=15)
    ahead_token, _ = await harness.register()
    mine_token, _ = await harness.register()
    await harness.book(ahead_token, doctor["id"], future(30))
    mine = await harness.book(mine_token, doctor["id"], future(31))
    ws = await harness.ws(mine_token)
    await ws.send({"type": "queue:subscribe", "appointmentId": mine["id"]})
    first = (await ws.expect("queue:update"))["data"]
    assert first["position"] == 1 and first["etaMinutes"] > 30
    assert not [f for f in await ws.drain(0.2) if f["event"] == "turn:soon"]
    # 21 minutes on: expected at 45 (24 minutes away); be ready from the plain start less the spread
    # of one consultation ahead (the default range: 45 - 1.2 - 1.645 × 8.27 = 30.2, 9 minutes away).
    harness.clock.advance(minutes=21)
    await harness.services.queues.tick()
    soon = await ws.expect("turn:soon")
    assert soon["data"]["position"] == 1 and soon["data"]["etaMinutes"] > 10
    assert soon["data"]["earliestStartAt"] < soon["data"]["expectedStartAt"]
    ws.close()


# -- presence across nodes --------------------------------------------------------------------------------------
@pytest.fixture
async def quick_nodes(redis_url):
    """Two nodes that report presence every 0.3 s and tick every 0.2 s, so expiry is quick to see."""
    async with nodes_sharing_one_store(redis_url, tick_seconds=0.2, presence_report_seconds=0.3) as nodes:
        yield nodes


def presences(state: dict) -> list[bool]:
    return [e["present"] for e in state["list"]]


async def test_presence_on_another_node_reaches_the_staff_view_and_dies_with_that_node(quick_nodes):
    node_a, node_b = quick_nodes
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin, avgConsultMinutes=10)
    doctor_token, _ = await node_a.doctor_account(doctor, admin)
    patient, _ = await node_a.register()
    mine = await node_a.book(patient, doctor["id"], future(30))
    staff = await node_a.ws(doctor_token)
    await staff.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
    assert presences((await staff.expect("queue:state"))["data"]) == [False]

    phone = await node_b.ws(patient)                       # the patient is on the other node
    await phone.send({"type": "queue:subscribe", "appointmentId": mine["id"]})
    await phone.expect("queue:update")
    arrived = await staff.expect("queue:state", timeout=1.0, predicate=lambda d: presences(d) == [True])
    assert arrived["data"]["list"][0]["appointmentId"] == mine["id"]
    rest = await node_a.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)
    assert presences(rest.body) == [True]

    # Node B dies without a word: it stops reporting; what it reported runs out.
    bus_b = node_b.services.bus
    bus_b._presence_reporter.cancel()
    bus_b._listener.cancel()
    gone = await staff.expect("queue:state", timeout=3.0, predicate=lambda d: presences(d) == [False])
    assert gone["data"]["list"][0]["appointmentId"] == mine["id"]
    staff.close()
    phone.close()
