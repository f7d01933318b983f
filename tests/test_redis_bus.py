"""Two nodes sharing one store and a Redis bus: a change made through one reaches sockets on the other;
nothing from outside the deployment gets in; a failed publish or a lost connection is repaired.

Needs the Redis on 127.0.0.1:6379 these machines run (the tests that do ask for the `redis_url`
fixture and are marked `redis`). Without CI set and without Redis they fail rather than skip: a
skipped test would count as missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis.asyncio as redis
from bson import ObjectId, json_util

from core import metrics
from core.bus_messages import AppointmentsChanged, DoctorDeleted, PresenceReport, decode, encode
from infra.bus import BadMessage, Envelope, ReplayGuard, channel_name, sign, signing_key, verify
from infra.store import Store
from tests.conftest import JWT_SECRET, TEST_MONGO_URI, eventually, start_harness, stop_harness



def test_changes_survive_the_wire_exactly():
    document = {"_id": ObjectId(), "doctor": ObjectId(), "patient": ObjectId(), "status": "pending",
                "date": datetime(2026, 11, 24, 9, 30, 0, 123000, tzinfo=timezone.utc), "version": 3}
    node, change = decode(encode(AppointmentsChanged(str(document["doctor"]), (document,)), "n1"))
    assert node == "n1"
    assert isinstance(change, AppointmentsChanged)
    assert change.appointments == (document,)
    assert change.doctor_id == str(document["doctor"])
    node, deleted = decode(encode(DoctorDeleted("abc"), "n2"))
    assert (node, deleted) == ("n2", DoctorDeleted("abc"))


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


async def test_a_node_that_loses_its_bus_connection_reloads_its_queues_on_reconnect(two_nodes, redis_url):
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

    admin_client = redis.from_url(redis_url)
    try:
        killed = await admin_client.client_kill_filter(_type="pubsub")
        assert killed >= 1
    finally:
        await admin_client.aclose()

    async def reloaded():
        fresh = await node_a.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)
        return fresh.body["list"] == []

    await eventually(reloaded, "node A to reconnect and reload the queue")
    assert node_a.services.bus.subscribed.is_set()


# -- signatures and isolation ----------------------------------------------------------------------
def rejected(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("medpharma_bus_rejected_total", {"reason": reason}) or 0.0


def test_signatures_are_checked_and_bound_to_the_deployment():
    key = signing_key(JWT_SECRET, "clinic_a")
    stamp = {"node": "n1", "sequence": 7, "sent_at": 1_700_000_000.123}
    signed = sign('{"hello": 1}', key, **stamp)
    assert verify(signed, key) == (Envelope("n1", 7, 1_700_000_000.123), b'{"hello": 1}')
    for raw, reason in ((b'{"hello": 1}', "unsigned"),
                        (sign('{"hello": 1}', signing_key(JWT_SECRET, "clinic_b"), **stamp), "bad_signature"),
                        (sign('{"hello": 1}', signing_key("another-secret-of-at-least-32-chars!", "clinic_a"), **stamp),
                         "bad_signature"),
                        (signed.replace(b"hello", b"hellp"), "bad_signature"),
                        # the envelope is signed too: another node, sequence or time breaks the signature
                        (signed.replace(b"n1:7:", b"n2:7:"), "bad_signature"),
                        (signed.replace(b"n1:7:", b"n1:8:"), "bad_signature"),
                        (signed.replace(b":1700000000123.", b":1700000099123."), "bad_signature"),
                        # the first version signed the body only
                        (b"v1." + hmac.new(key, b'{"hello": 1}', hashlib.sha256).hexdigest().encode()
                         + b'.{"hello": 1}', "unsigned"),
                        (b"v2.short.{}", "unsigned")):
        with pytest.raises(BadMessage) as bad:
            verify(raw, key)
        assert bad.value.reason == reason
    unstamped = b"x:y." + b'{"hello": 1}'
    forged_header = b"v2." + hmac.new(key, unstamped, hashlib.sha256).hexdigest().encode() + b"." + unstamped
    with pytest.raises(BadMessage) as bad:
        verify(forged_header, key)
    assert bad.value.reason == "malformed"
    assert channel_name("clinic_a") != channel_name("clinic_b")


def test_the_replay_guard_takes_each_sequence_once_in_bounded_memory():
    guard = ReplayGuard(window=8, max_age=60)
    now = 1_000_000.0
    assert guard.admit(Envelope("a", 1, now), now) is None
    assert guard.admit(Envelope("a", 3, now), now) is None
    assert guard.admit(Envelope("a", 2, now), now) is None          # a neighbour overtaken: still new
    for sequence in (1, 2, 3):
        assert guard.admit(Envelope("a", sequence, now), now) == "replayed"
    assert guard.admit(Envelope("b", 1, now), now) is None          # sequences are per node
    assert guard.admit(Envelope("a", 100, now), now) is None
    assert guard.admit(Envelope("a", 92, now), now) == "replayed"   # below the window: cannot tell, refused
    assert guard.admit(Envelope("a", 93, now), now) is None
    assert guard.admit(Envelope("a", 4, now - 61), now) == "stale"
    # Nodes that went quiet are forgotten once anything of theirs would be stale anyway.
    later = now + 61
    assert guard.admit(Envelope("c", 1, later), later) is None
    assert len(guard) == 1
    assert guard.admit(Envelope("a", 100, now), later) == "stale"


def stamp(sequence: int, node: str = "x", age: float = 0.0) -> dict:
    return {"node": node, "sequence": sequence, "sent_at": time.time() - age}


async def test_a_forged_publish_reaches_no_socket_and_is_counted(two_nodes, redis_url):
    node_a, node_b = two_nodes
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin)
    token, user = await node_a.register()
    appointment = await node_a.book(token, doctor["id"])
    watcher = await node_a.ws(token)
    await watcher.send({"type": "queue:subscribe", "appointmentId": appointment["id"]})
    await watcher.expect("queue:update")

    stored = await node_a.services.store.appointments.find_one({"_id": ObjectId(appointment["id"])})
    forged_document = {**stored, "status": "in_consultation", "version": stored["version"] + 50,
                       "startedAt": datetime.now(timezone.utc), "joinUrl": "https://phish.example.org/pay"}
    forged = encode(AppointmentsChanged(doctor["id"], (forged_document,)), "attacker")
    other_key = signing_key("not-the-deployment-secret-but-long-enough", node_a.services.settings.mongo_db)
    channel = node_a.services.bus.channel
    before = {reason: rejected(reason) for reason in ("unsigned", "bad_signature", "malformed")}
    client = redis.from_url(redis_url)
    try:
        await client.publish(channel, forged)                              # unsigned
        await client.publish(channel, sign(forged, other_key, **stamp(1)))             # signed with another key
        await client.publish(channel, sign("not json", node_a.services.bus._key, **stamp(2)))  # signed nonsense
        await client.publish(channel, sign(json_util.dumps({"node": "x", "kind": "appointment_changed",
                                                            "doctorId": 7}), node_a.services.bus._key, **stamp(3)))
    finally:
        await client.aclose()
    # each of the two nodes drops each message
    await eventually(lambda: rejected("unsigned") - before["unsigned"] >= 2
                     and rejected("bad_signature") - before["bad_signature"] >= 2
                     and rejected("malformed") - before["malformed"] >= 4, "both nodes to drop all four")
    # A dropped message is never handed on, so every frame it could have caused is before this pong.
    frames = await watcher.before_pong()
    assert not [f for f in frames if f["event"] == "turn:now"], frames
    position = await node_a.api.get(f"/api/queue/appointment/{appointment['id']}/position", token=token)
    assert position.body["status"] == "pending" and position.body["position"] == 0

    # The listeners survived: a real change still travels from B to A's socket.
    cancelled = await node_b.api.patch(f"/api/appointments/{appointment['id']}/status", {"status": "cancelled"},
                                       token=token)
    assert cancelled.status == 200
    await watcher.expect("queue:update", predicate=lambda d: d["status"] == "cancelled")
    watcher.close()


async def test_two_deployments_on_one_redis_never_hear_each_other(redis_url):
    names = {"a": f"medpharma_dep_a_{uuid.uuid4().hex[:6]}", "b": f"medpharma_dep_b_{uuid.uuid4().hex[:6]}"}
    stores = {key: Store.connect(TEST_MONGO_URI, name) for key, name in names.items()}
    nodes = []
    try:
        for key in ("a", "a", "b"):
            nodes.append(await start_harness(settings={"redis_url": redis_url, "mongo_db": names[key]},
                                             store=stores[key], presence_report_seconds=3600))  # no reports
        a1, a2, b = nodes
        assert a1.services.bus.channel == a2.services.bus.channel != b.services.bus.channel
        admin = await a1.admin_token()
        doctor = await a1.create_doctor(admin)
        token, _ = await a1.register()
        await a1.book(token, doctor["id"])
        await eventually(lambda: a2.services.bus.received >= 1, "a2 to hear a1's booking")
        heard_by_a2 = a2.services.bus.received
        client = redis.from_url(redis_url)
        spy = client.pubsub(ignore_subscribe_messages=True)
        await spy.subscribe(b.services.bus.channel)
        b_admin = await b.admin_token()
        b_doctor = await b.create_doctor(b_admin)
        changed = await b.api.put(f"/api/doctors/{b_doctor['id']}", {"specialization": "ENT"}, token=b_admin)
        assert changed.status == 200  # a change B publishes
        # B's change is on Redis once the spy on B's channel has it. Redis hands every subscriber its
        # messages in the order it took them in, so a marker published after it, on each deployment's
        # channel, reaches a node after anything of the other deployment that reached it before.
        assert await eventually(lambda: spy.get_message(timeout=0.5), "B's change on B's channel")
        await spy.aclose()
        marker = PresenceReport((), 1.0)  # signed by a node of each deployment that is not running
        try:
            for key in ("a", "b"):
                await client.publish(channel_name(names[key]),
                                     sign(encode(marker, f"marker-{key}"), signing_key(JWT_SECRET, names[key]),
                                          **stamp(1, node=f"marker-{key}")))
        finally:
            await client.aclose()
        await eventually(lambda: b.services.bus.received >= 1 and a1.services.bus.received >= 1
                         and a2.services.bus.received >= heard_by_a2 + 1, "every node to hear its marker")
        assert b.services.bus.received == 1  # its marker only: nothing of deployment A's
        assert a1.services.bus.received == 1 and a2.services.bus.received == heard_by_a2 + 1  # nothing of B's
    finally:
        for node in nodes:
            await stop_harness(node)


# -- a failed publish is repaired --------------------------------------------------------------------
async def test_when_publishing_gives_up_the_other_node_still_ends_up_right(two_nodes):
    node_a, node_b = two_nodes
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin)
    soon = datetime.now(timezone.utc) + timedelta(minutes=2)
    first_token, _ = await node_a.register()
    second_token, _ = await node_a.register()
    first = await node_a.book(first_token, doctor["id"], soon)
    second = await node_a.book(second_token, doctor["id"], soon)
    watcher = await node_b.ws(second_token)
    await watcher.send({"type": "queue:subscribe", "appointmentId": second["id"]})
    assert (await watcher.expect("queue:update"))["data"]["position"] == 1

    bus = node_a.services.bus
    bus.publish_retry_delays = (0.01, 0.01)
    bus.resync_retry_delays = (0.05,)
    real_publish = bus._client.publish
    calls = {"failed": 0}

    async def flaky_publish(channel, message):
        if calls["failed"] < 5:  # the change and its two retries, then the first resync attempts
            calls["failed"] += 1
            raise ConnectionError("injected")
        return await real_publish(channel, message)

    bus._client.publish = flaky_publish
    failures_before = metrics.REGISTRY.get_sample_value("medpharma_bus_publish_failures_total")
    cancelled = await node_a.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"},
                                       token=first_token)
    assert cancelled.status == 200  # the REST answer did not wait for Redis
    moved = await watcher.expect("queue:update", timeout=10, predicate=lambda d: d["position"] == 0)
    assert moved["data"]["appointmentId"] == second["id"]
    assert calls["failed"] == 5
    assert metrics.REGISTRY.get_sample_value("medpharma_bus_publish_failures_total") == failures_before + 1
    assert bus.owed_resync == set()
    on_b = await node_b.api.get(f"/api/queue/appointment/{second['id']}/position", token=second_token)
    assert on_b.body["position"] == 0
    watcher.close()


async def test_a_slow_queue_does_not_hold_up_other_doctors_changes(two_nodes):
    node_a, node_b = two_nodes
    admin = await node_a.admin_token()
    slow_doctor = await node_a.create_doctor(admin)
    other_doctor = await node_a.create_doctor(admin)
    token, _ = await node_a.register()
    slow_booking = await node_a.book(token, slow_doctor["id"])
    other_token, _ = await node_a.register()
    other_booking = await node_a.book(other_token, other_doctor["id"])
    for doctor in (slow_doctor, other_doctor):  # node B holds both queues
        await node_b.api.get(f"/api/queue/doctor/{doctor['id']}", token=admin)

    registry = node_b.services.queues
    real_deliver = registry.deliver
    stuck = asyncio.Event()

    async def deliver(change):
        if change.doctor_id == slow_doctor["id"]:
            await stuck.wait()  # this doctor's queue is stuck (a slow store, say)
        return await real_deliver(change)

    registry.deliver = deliver
    try:
        await node_a.api.patch(f"/api/appointments/{slow_booking['id']}/status", {"status": "cancelled"},
                               token=token)
        await node_a.api.patch(f"/api/appointments/{other_booking['id']}/status", {"status": "cancelled"},
                               token=other_token)

        async def other_queue_empty():
            response = await node_b.api.get(f"/api/queue/doctor/{other_doctor['id']}", token=admin)
            return response.body["list"] == []

        await eventually(other_queue_empty, "the other doctor's change to reach node B")
    finally:
        stuck.set()


# -- a captured message published again ---------------------------------------------------------------
async def capture(pubsub, wanted: bytes, timeout: float = 5.0) -> bytes:
    """The next message on the channel whose body holds `wanted`, as an eavesdropper on Redis sees it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None and wanted in message["data"]:
            return message["data"]
    raise AssertionError(f"no message with {wanted!r} on the channel")


async def test_a_captured_account_disabled_published_again_later_locks_nobody_out(two_nodes, redis_url):
    """The attack: whoever can reach Redis records a signed `account_disabled` and publishes it again
    after the account was enabled, to lock that person out on every other node. It is dropped as
    `replayed` while the nodes remember its sequence, and as `stale` once it is older than a minute
    (for a node started later, which never saw it)."""
    node_a, node_b = two_nodes
    admin = await node_a.admin_token()
    email = f"victim-{uuid.uuid4().hex[:8]}@example.org"
    _, user = await node_a.register(email=email)
    spy = redis.from_url(redis_url)
    pubsub = spy.pubsub()
    try:
        await pubsub.subscribe(node_a.services.bus.channel)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        response = await node_a.api.patch(f"/api/admin/users/{user['id']}", {"disabled": True}, token=admin)
        assert response.status == 200
        disabled = await capture(pubsub, b'"disabled": true')
        response = await node_a.api.patch(f"/api/admin/users/{user['id']}", {"disabled": False}, token=admin)
        assert response.status == 200
        await capture(pubsub, b'"disabled": false')
        revocations_b = node_b.services.revocations
        await eventually(lambda: revocations_b.is_refused(user["id"], None) is None, "the re-enabling reaches node B")
        signed_in = await node_a.api.post("/api/auth/login", {"email": email, "password": "patient-password"})
        assert signed_in.status == 200
        token = signed_in.body["token"]
        assert (await node_b.api.get("/api/auth/me", token=token)).status == 200

        replayed, stale = rejected("replayed"), rejected("stale")
        await spy.publish(node_a.services.bus.channel, disabled)
        await eventually(lambda: rejected("replayed") == replayed + 1, "the replay counted")  # node B drops it; A ignores its own
        assert revocations_b.is_refused(user["id"], None) is None
        assert (await node_b.api.get("/api/auth/me", token=token)).status == 200

        # A minute later, to a node that never saw it (started since, or restarted): too old.
        node_b.services.bus.replays = ReplayGuard()
        node_b.services.bus.wall_clock = lambda: time.time() + 61
        await spy.publish(node_a.services.bus.channel, disabled)
        await eventually(lambda: rejected("stale") == stale + 1, "the stale message counted")
        assert revocations_b.is_refused(user["id"], None) is None
        assert (await node_b.api.get("/api/auth/me", token=token)).status == 200
        assert rejected("replayed") == replayed + 1
    finally:
        await pubsub.aclose()
        await spy.aclose()


async def test_replayed_queue_changes_and_presence_reports_are_dropped_and_real_ones_still_flow(two_nodes, redis_url):
    node_a, node_b = two_nodes
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin)
    token, _ = await node_a.register()
    spy = redis.from_url(redis_url)
    pubsub = spy.pubsub()
    try:
        await pubsub.subscribe(node_a.services.bus.channel)
        await pubsub.get_message(timeout=1)
        appointment = await node_a.book(token, doctor["id"])
        booked = await capture(pubsub, b'"appointment_changed"')
        node_a.services.bus.local_presence_changed()
        presence = await capture(pubsub, b'"presence"')
        replayed = rejected("replayed")
        received = node_b.services.bus.received
        for raw in (booked, presence, booked):
            await spy.publish(node_a.services.bus.channel, raw)
        await eventually(lambda: rejected("replayed") >= replayed + 3, "the replays counted")
        # A real change still travels: the guard let the next sequence through.
        cancelled = await node_a.api.patch(f"/api/appointments/{appointment['id']}/status",
                                           {"status": "cancelled"}, token=token)
        assert cancelled.status == 200
        await eventually(lambda: node_b.services.bus.received > received, "node B received it")
    finally:
        await pubsub.aclose()
        await spy.aclose()


async def test_todays_report_on_one_node_counts_a_booking_made_on_another(two_nodes):
    """Each node keeps today's ledger from the bus, as it keeps its queues: a report on node A, whose
    ledger is loaded, counts a booking made through node B without reading the appointments."""
    node_a, node_b = two_nodes
    await node_a.server.days_rolled_up.wait()
    await node_b.server.days_rolled_up.wait()  # (the nodes share one store, and its read counter)
    admin = await node_a.admin_token()
    doctor = await node_a.create_doctor(admin, name="Dr. Ada")
    today = node_a.services.calendar.day_of(node_a.services.clock())
    path = f"/api/reports/days?from={today}&to={today}"
    assert (await node_a.api.get(path, token=admin)).body == []
    reads = node_a.services.store.calls["report_appointments"]
    token, _ = await node_b.register()
    await node_b.book(token, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=30))

    async def counted():
        rows = (await node_a.api.get(path, token=admin)).body
        return [(r["doctorId"], r["booked"]) for r in rows] == [(doctor["id"], 1)]
    await eventually(counted, "node A's report counts node B's booking")
    assert node_a.services.store.calls["report_appointments"] == reads
