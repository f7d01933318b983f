"""Two nodes sharing one store and a Redis bus: a change made through one reaches sockets on the other.

Needs the Redis on 127.0.0.1:6379 these machines run. Without CI set and without Redis the tests
fail rather than skip: a skipped test would count as missing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from actors.messages import AppointmentsChanged, DoctorDeleted
from server.bus import decode_change, encode_change
from server.store import Store
from tests.conftest import TEST_MONGO_URI, start_harness, stop_harness

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_changes_survive_the_wire_exactly():
    document = {"_id": ObjectId(), "doctor": ObjectId(), "patient": ObjectId(), "status": "pending",
                "date": datetime(2026, 11, 24, 9, 30, 0, 123000, tzinfo=timezone.utc), "version": 3}
    node, change = decode_change(encode_change(AppointmentsChanged(str(document["doctor"]), (document,)), "n1"))
    assert node == "n1"
    assert isinstance(change, AppointmentsChanged)
    assert change.appointments == (document,)
    assert change.doctor_id == str(document["doctor"])
    node, deleted = decode_change(encode_change(DoctorDeleted("abc"), "n2"))
    assert (node, deleted) == ("n2", DoctorDeleted("abc"))


@pytest.fixture
async def two_nodes():
    channel_db = f"medpharma_bus_{uuid.uuid4().hex[:8]}"
    store = Store.connect(TEST_MONGO_URI, channel_db)
    settings = {"redis_url": REDIS_URL, "mongo_db": channel_db}
    first = await start_harness(settings=settings, store=store)
    second = await start_harness(settings=settings, store=store)
    try:
        yield first, second
    finally:
        await stop_harness(first)
        await stop_harness(second)


async def test_a_cancellation_on_one_node_moves_patients_watching_another(two_nodes):
    node_a, node_b = two_nodes
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin, avgConsultMinutes=15)
    soon = datetime.now(timezone.utc) + timedelta(minutes=2)
    first_token, _ = await node_a.register()
    second_token, _ = await node_a.register()
    first = await node_a.book(first_token, doctor["id"], soon)
    second = await node_a.book(second_token, doctor["id"], soon)

    watcher = await node_a.ws(second_token)
    await watcher.send({"type": "queue:subscribe", "appointmentId": second["id"]})
    initial = await watcher.expect("queue:update")
    assert initial["data"]["position"] == 1

    # Node B has its own actor for this doctor once someone reads through it.
    before = await node_b.api.get(f"/api/queue/appointment/{second['id']}/position", token=second_token)
    assert before.body["position"] == 1

    cancelled = await node_b.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"},
                                       token=first_token)
    assert cancelled.status == 200
    moved = await watcher.expect("queue:update", predicate=lambda d: d["position"] == 0)
    assert moved["data"]["appointmentId"] == second["id"]
    after_a = await node_a.api.get(f"/api/queue/appointment/{second['id']}/position", token=second_token)
    assert after_a.body["position"] == 0
    watcher.close()


async def test_a_node_reloads_its_queues_when_told_it_missed_messages(two_nodes):
    node_a, _ = two_nodes
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin)
    token, _ = await node_a.register()
    appointment = await node_a.book(token, doctor["id"])
    await node_a.api.get(f"/api/queue/doctor/{doctor['id']}", token=token)
    # Simulate a change the bus never delivered: written straight to the store.
    await node_a.services.store.appointments.update_one(
        {"_id": ObjectId(appointment["id"])}, {"$set": {"status": "cancelled"}, "$inc": {"version": 1},
                                               "$unset": {"waitingKey": ""}})
    stale = await node_a.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert len(stale.body["list"]) == 1
    await node_a.services.queues.reload_all()
    fresh = await node_a.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert fresh.body["list"] == []


async def test_a_node_that_loses_its_bus_connection_reloads_its_queues_on_reconnect(two_nodes):
    import asyncio

    import redis.asyncio as redis

    node_a, _ = two_nodes
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin)
    token, _ = await node_a.register()
    appointment = await node_a.book(token, doctor["id"])
    loaded = await node_a.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
    assert len(loaded.body["list"]) == 1
    # A change this node never hears of, as if published while its connection was down.
    await node_a.services.store.appointments.update_one(
        {"_id": ObjectId(appointment["id"])}, {"$set": {"status": "cancelled"}, "$inc": {"version": 1},
                                               "$unset": {"waitingKey": ""}})

    admin_client = redis.from_url(REDIS_URL)
    try:
        killed = await admin_client.client_kill_filter(_type="pubsub")
        assert killed >= 1
    finally:
        await admin_client.aclose()

    for _ in range(100):
        fresh = await node_a.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
        if fresh.body["list"] == []:
            break
        await asyncio.sleep(0.05)
    assert fresh.body["list"] == []
    assert node_a.services.bus.subscribed.is_set()
