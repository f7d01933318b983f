"""The doctor actor and its registry, driven directly: an embedded Store, a Hub with a recording
subscriber, and a fixed clock. No HTTP here."""

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from core.values import format_utc

from actors.doctor import DoctorActor, DoctorNotFound
from actors.rooms import appointment_room, doctor_room
from live.hub import Hub
from actors.messages import Reload
from core.bus_messages import AppointmentsChanged, DoctorChanged
from actors.registry import QueueRegistry
from core.access import Principal
from infra.store import Store

T0 = datetime(2030, 5, 6, 9, 0, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """A hub subscriber that keeps everything it is offered."""

    def __init__(self, viewer=None):
        self.viewer = viewer or Principal("9" * 24, "admin")
        self.latest: list[tuple[str, object]] = []
        self.events: list[object] = []

    def offer(self, key, message):
        self.latest.append((key, message))

    def offer_event(self, message):
        self.events.append(message)

    def updates(self):
        return [m.data for _, m in self.latest if m.event == "queue:update"]

    def states(self):
        return [m for _, m in self.latest if m.event == "queue:state"]


class World:
    def __init__(self, idle_seconds: float = 300.0):
        self.store = Store.connect(None, "x")
        self.hub = Hub()
        self.clock = Clock()
        self.registry = QueueRegistry(self.store, self.hub, clock=self.clock, idle_seconds=idle_seconds)

    async def doctor(self, **fields) -> str:
        doc = {"name": "Dr. X", "specialization": "GP", "email": f"{ObjectId()}@example.org", "phone": "1",
               "availability": [], "avgConsultMinutes": 10, "isRunningLate": False, "lateByMinutes": 0,
               "createdAt": T0, "updatedAt": T0, **fields}
        return str((await self.store.insert_doctor(doc))["_id"])

    def appointment(self, doctor_id: str, date: datetime, created: datetime = T0, *, oid: ObjectId | None = None,
                    status: str = "pending", version: int = 0, **fields) -> dict:
        doc = {"patient": ObjectId(), "patientName": "Pat", "patientEmail": "p@example.org",
               "patientPhone": "123", "doctor": ObjectId(doctor_id), "date": date, "reason": "",
               "status": status, "createdAt": created, "updatedAt": created, "version": version, **fields}
        if oid is not None:
            doc["_id"] = oid
        return doc

    async def stored(self, doc: dict) -> dict:
        return await self.store.insert_appointment(doc)

    async def write(self, doc: dict, **changes) -> dict:
        """What a handler would do: a conditional write bumping the version, returning the new document."""
        updated = await self.store.update_appointment_if(doc["_id"], doc["status"], doc["version"],
                                                         {"$set": changes})
        assert updated is not None
        return updated


@pytest.fixture
async def world():
    w = World()
    try:
        yield w
    finally:
        await w.registry.stop()


def order_key(doc):
    return (doc["date"], doc["createdAt"], str(doc["_id"]))


async def test_concurrent_changes_end_in_queue_order(world):
    doctor_id = await world.doctor()
    await world.registry.snapshot(doctor_id)  # a live, loaded actor with an empty queue
    docs = []
    # Ties on date (ordered by createdAt) and ties on date and createdAt (ordered by id).
    for i in range(30):
        date = T0 + timedelta(minutes=10 * (i % 4))
        created = T0 - timedelta(minutes=i % 3)
        docs.append(await world.stored(world.appointment(doctor_id, date, created)))
    shuffled = docs[:]
    random.Random(7).shuffle(shuffled)
    await asyncio.gather(*(world.registry.deliver(AppointmentsChanged(doctor_id, (d,))) for d in shuffled))

    snapshot = await world.registry.snapshot(doctor_id)
    expected = [str(d["_id"]) for d in sorted(docs, key=order_key)]
    assert [e.id for e in snapshot.waiting] == expected
    assert [snapshot.update_for(i)["position"] for i in expected] == list(range(30))
    # A fresh load from the store reaches the same order.
    await world.registry._evict(doctor_id)
    reloaded = await world.registry.snapshot(doctor_id)
    assert [e.id for e in reloaded.waiting] == expected


async def test_told_and_asked_at_once_are_handled_one_at_a_time(world):
    doctor_id = await world.doctor()
    docs = [await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=i))) for i in range(10)]
    actor = world.registry._actor(doctor_id)
    for d in reversed(docs):
        actor.tell(AppointmentsChanged(doctor_id, (d,)))
    snapshot = await actor.ask(AppointmentsChanged(doctor_id, (docs[0],)))
    assert [e.id for e in snapshot.waiting] == [str(d["_id"]) for d in docs]
    assert [est.eta_minutes for est in snapshot.estimates] == [10 * i for i in range(10)]


async def test_stale_versions_are_ignored(world):
    doctor_id = await world.doctor()
    first = await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=30)))
    second = await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=40)))
    await world.registry.snapshot(doctor_id)
    recorder = Recorder()
    world.hub.join(appointment_room(str(second["_id"])), recorder)

    confirmed = await world.write(first, status="confirmed")          # version 1
    await world.registry.deliver(AppointmentsChanged(doctor_id, (confirmed,)))
    # The original booking (version 0) arrives late: it must not undo the confirmation.
    await world.registry.deliver(AppointmentsChanged(doctor_id, (first,)))
    snapshot = await world.registry.snapshot(doctor_id)
    assert [(e.id, e.status, e.version) for e in snapshot.waiting] == [
        (str(first["_id"]), "confirmed", 1), (str(second["_id"]), "pending", 0)]

    cancelled = await world.write(confirmed, status="cancelled")       # version 2
    await world.registry.deliver(AppointmentsChanged(doctor_id, (cancelled,)))
    assert recorder.updates()[-1]["position"] == 0
    published = len(recorder.latest)
    # Late duplicates of older versions of a cancelled appointment do not bring it back.
    await world.registry.deliver(AppointmentsChanged(doctor_id, (confirmed,)))
    await world.registry.deliver(AppointmentsChanged(doctor_id, (first,)))
    await world.registry.deliver(AppointmentsChanged(doctor_id, (cancelled,)))
    snapshot = await world.registry.snapshot(doctor_id)
    assert [e.id for e in snapshot.waiting] == [str(second["_id"])]
    assert not snapshot.contains(str(first["_id"]))
    assert len(recorder.latest) == published  # nothing moved, nothing pushed


async def test_crash_restarts_and_reloads_from_the_store(world, monkeypatch):
    doctor_id = await world.doctor()
    kept = await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=5)))
    await world.registry.snapshot(doctor_id)
    actor = world.registry.live(doctor_id)
    loads = world.store.calls["load_queue"]
    watcher = Recorder()
    world.hub.join(doctor_room(doctor_id), watcher)

    newcomer = await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=1)))
    original = DoctorActor._apply_appointment
    crashes = []

    def explode_once(self, document):
        if not crashes:
            crashes.append(document)
            raise RuntimeError("boom")
        return original(self, document)

    monkeypatch.setattr(DoctorActor, "_apply_appointment", explode_once)
    with pytest.raises(RuntimeError):
        await actor.ask(AppointmentsChanged(doctor_id, (newcomer,)))
    monkeypatch.setattr(DoctorActor, "_apply_appointment", original)

    # The actor restarted in place and rebuilt its queue from the store, newcomer included.
    assert world.registry.live(doctor_id) is actor and not actor.stopped
    assert world.store.calls["load_queue"] == loads + 1
    assert len(crashes) == 1
    snapshot = await world.registry.snapshot(doctor_id)
    assert [e.id for e in snapshot.waiting] == [str(newcomer["_id"]), str(kept["_id"])]
    assert world.registry.doctor_of(str(newcomer["_id"])) == doctor_id
    # The rebuilt queue was pushed to the doctor's room; a reload is not a status change.
    assert watcher.events == []
    state = watcher.states()[-1].payload_for(watcher.viewer)["data"]
    assert [e["appointmentId"] for e in state["list"]] == [str(newcomer["_id"]), str(kept["_id"])]
    # And it goes on handling messages.
    later = await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=9)))
    await world.registry.deliver(AppointmentsChanged(doctor_id, (later,)))
    assert [e.id for e in world.registry.live(doctor_id).snapshot.waiting] == [
        str(newcomer["_id"]), str(kept["_id"]), str(later["_id"])]


async def test_crash_during_delivery_still_answers_after_reload(world, monkeypatch):
    doctor_id = await world.doctor()
    await world.registry.snapshot(doctor_id)
    doc = await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=5)))
    original = DoctorActor._apply_appointment
    state = {"raised": False}

    def explode_once(self, document, **options):
        if not state["raised"]:
            state["raised"] = True
            raise ValueError("bad message")
        return original(self, document, **options)

    monkeypatch.setattr(DoctorActor, "_apply_appointment", explode_once)
    await world.registry.deliver(AppointmentsChanged(doctor_id, (doc,)))  # does not raise
    snapshot = await world.registry.snapshot(doctor_id)
    assert [e.id for e in snapshot.waiting] == [str(doc["_id"])]


async def test_unknown_doctor(world):
    with pytest.raises(DoctorNotFound):
        await world.registry.snapshot(str(ObjectId()))
    with pytest.raises(DoctorNotFound):
        await world.registry.snapshot("not-an-id")
    assert world.registry.actors == {}


async def test_idle_unwatched_actor_is_evicted_and_respawned_with_the_same_state():
    w = World(idle_seconds=0)
    try:
        doctor_id = await w.doctor(avgConsultMinutes=15, isRunningLate=True, lateByMinutes=5)
        docs = [await w.stored(w.appointment(doctor_id, T0 + timedelta(minutes=m))) for m in (20, 0, 10)]
        current = await w.stored(w.appointment(doctor_id, T0 - timedelta(minutes=30), status="in_consultation",
                                               startedAt=T0 - timedelta(minutes=3)))
        before = await w.registry.snapshot(doctor_id)
        first_actor = w.registry.live(doctor_id)
        ids = [str(d["_id"]) for d in sorted(docs, key=order_key)]
        assert [e.id for e in before.waiting] == ids
        assert w.registry.doctor_of(ids[0]) == doctor_id

        # A watched actor stays, however idle.
        watcher = Recorder()
        w.hub.join(doctor_room(doctor_id), watcher)
        await w.registry.tick()
        assert w.registry.live(doctor_id) is first_actor
        w.hub.leave(doctor_room(doctor_id), watcher)

        await w.registry.tick()
        assert doctor_id not in w.registry.actors
        assert first_actor.stopped
        assert w.registry.doctor_of(ids[0]) is None

        after = await w.registry.snapshot(doctor_id)
        assert w.registry.live(doctor_id) is not first_actor
        assert [e.id for e in after.waiting] == ids
        assert after.in_consultation.id == str(current["_id"])
        assert after.settings == before.settings
        assert [(e.eta_minutes, e.expected_start_at) for e in after.estimates] == [
            (est.eta_minutes, est.expected_start_at) for est in before.estimates]
        # free at T0-3+15 = T0+12, plus 5 late = T0+17; then 32; then 47
        assert [e.eta_minutes for e in after.estimates] == [17, 32, 47]
    finally:
        await w.registry.stop()


async def test_change_for_an_evicted_doctor_is_read_on_next_load():
    w = World(idle_seconds=0)
    try:
        doctor_id = await w.doctor()
        await w.registry.snapshot(doctor_id)
        await w.registry.tick()
        assert doctor_id not in w.registry.actors
        doc = await w.stored(w.appointment(doctor_id, T0 + timedelta(minutes=5)))
        await w.registry.deliver(AppointmentsChanged(doctor_id, (doc,)))  # no live actor: dropped
        assert doctor_id not in w.registry.actors
        snapshot = await w.registry.snapshot(doctor_id)
        assert [e.id for e in snapshot.waiting] == [str(doc["_id"])]
    finally:
        await w.registry.stop()


async def test_one_actor_under_concurrent_first_use(world):
    doctor_id = await world.doctor()
    docs = [await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=i))) for i in range(3)]
    snapshots = await asyncio.gather(*(world.registry.snapshot(doctor_id) for _ in range(25)))
    assert len(world.registry.actors) == 1
    assert world.store.calls["load_queue"] == 1
    assert world.store.calls["find_doctor"] == 1
    expected = [str(d["_id"]) for d in docs]
    assert all([e.id for e in s.waiting] == expected for s in snapshots)


async def test_repeated_snapshot_reads_make_no_store_calls(world):
    doctor_id = await world.doctor()
    docs = [await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=30))) for _ in range(2)]
    await world.registry.snapshot(doctor_id)
    calls = dict(world.store.calls)
    etas = []
    for step in range(5):
        world.clock.now = T0 + timedelta(minutes=step)  # re-estimation, still no store read
        snapshot = await world.registry.snapshot(doctor_id)
        etas.append([e.eta_minutes for e in snapshot.estimates])
    assert dict(world.store.calls) == calls
    assert etas == [[30 - s, 40 - s] for s in range(5)]
    assert [e.id for e in snapshot.waiting] == [str(d["_id"]) for d in docs]


async def test_a_cancellation_pushes_to_every_appointment_it_moves(world):
    doctor_id = await world.doctor()
    docs = [await world.stored(world.appointment(doctor_id, T0)) for _ in range(4)]
    docs.sort(key=order_key)
    await world.registry.snapshot(doctor_id)
    recorders = {}
    for d in docs:
        recorders[str(d["_id"])] = r = Recorder()
        world.hub.join(appointment_room(str(d["_id"])), r)
    doctor_watcher = Recorder(Principal("8" * 24, "patient"))
    world.hub.join(doctor_room(doctor_id), doctor_watcher)

    cancelled = await world.write(docs[0], status="cancelled")
    await world.registry.deliver(AppointmentsChanged(doctor_id, (cancelled,)))

    gone = recorders[str(docs[0]["_id"])].updates()
    assert gone == [{"appointmentId": str(docs[0]["_id"]), "status": "cancelled", "date": format_utc(docs[0]["date"]),
                     "position": -1,
                     "etaMinutes": 0, "expectedStartAt": None, "earliestStartAt": None, "latestStartAt": None,
                     "delayMinutes": 0, "isRunningLate": False,
                     "lateByMinutes": 0}]
    for position, d in enumerate(docs[1:]):
        updates = recorders[str(d["_id"])].updates()
        assert [(u["appointmentId"], u["position"], u["etaMinutes"]) for u in updates] == [
            (str(d["_id"]), position, 10 * position)]
        assert recorders[str(d["_id"])].latest[0][0] == f"queue:update:{d['_id']}"
    states = doctor_watcher.states()
    assert len(states) == 1
    rendered = states[0].payload_for(doctor_watcher.viewer)["data"]
    assert [entry["position"] for entry in rendered["list"]] == [0, 1, 2]
    assert all(set(entry) == {"position", "date", "status", "etaMinutes", "expectedStartAt", "earliestStartAt",
                              "latestStartAt", "delayMinutes", "mine"}
               for entry in rendered["list"])


async def test_doctor_change_pushes_status_and_moved_etas(world):
    doctor_id = await world.doctor()
    doc = await world.stored(world.appointment(doctor_id, T0))
    await world.registry.snapshot(doctor_id)
    room, status_room = Recorder(), Recorder()
    world.hub.join(appointment_room(str(doc["_id"])), room)
    world.hub.join(doctor_room(doctor_id), status_room)
    doctor = await world.store.update_doctor(ObjectId(doctor_id), {"isRunningLate": True, "lateByMinutes": 20})
    await world.registry.deliver(DoctorChanged(doctor_id, doctor))
    assert [m.data for m in status_room.events] == [
        {"doctorId": doctor_id, "isRunningLate": True, "lateByMinutes": 20, "avgConsultMinutes": 10,
         "awayUntil": None}]
    assert [(u["etaMinutes"], u["isRunningLate"], u["lateByMinutes"]) for u in room.updates()] == [(20, True, 20)]
    # The same settings again: nothing to push.
    await world.registry.deliver(DoctorChanged(doctor_id, doctor))
    assert len(status_room.events) == 1 and len(room.updates()) == 1



async def test_reloading_a_queue_with_a_running_consultation_announces_no_new_turn(world):
    """A Reload (after missed bus messages) must not tell a patient already in the call "your turn" again."""
    doctor_id = await world.doctor()
    running = await world.stored(world.appointment(doctor_id, T0, status="in_consultation", startedAt=T0,
                                                   joinUrl="https://call/x"))
    watcher = Recorder()
    world.hub.join(appointment_room(str(running["_id"])), watcher)
    await world.registry.snapshot(doctor_id)
    await world.registry.live(doctor_id).ask(Reload())
    assert watcher.events == []

    # A consultation that really starts now does announce itself.
    nxt = await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=5)))
    world.hub.join(appointment_room(str(nxt["_id"])), watcher)
    await world.store.update_appointment_if(running["_id"], "in_consultation", 0, {"$set": {"status": "completed"}})
    started = await world.write(nxt, status="in_consultation", startedAt=T0, joinUrl="https://call/y")
    await world.registry.deliver(AppointmentsChanged(doctor_id, (started,)))
    assert [(m.event, m.data["joinUrl"]) for m in watcher.events] == [("turn:now", "https://call/y")]


async def test_a_late_older_doctor_change_does_not_undo_a_newer_one(world):
    doctor_id = await world.doctor()
    await world.registry.snapshot(doctor_id)
    base = await world.store.find_doctor(ObjectId(doctor_id))
    # Same millisecond, so only the version tells them apart.
    newer = {**base, "isRunningLate": True, "lateByMinutes": 20, "version": 2}
    older = {**base, "isRunningLate": True, "lateByMinutes": 5, "version": 1}
    await world.registry.deliver(DoctorChanged(doctor_id, newer))
    await world.registry.deliver(DoctorChanged(doctor_id, older))
    assert (await world.registry.snapshot(doctor_id)).settings.late_by_minutes == 20


# -- reloads push exactly what was missed -----------------------------------------------------------------
async def test_a_reload_pushes_what_changed_while_the_queue_was_deaf(world):
    """Changes written to the store but never delivered (a lost bus message): a reload must end in the
    same pushes as if nothing had been missed — the cancelled one's final update, the next one's move,
    the new consultation's turn:now (once), the doctor's new status — and repeat nothing else."""
    doctor_id = await world.doctor()
    first, second, third = [await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=i)))
                            for i in range(3)]
    await world.registry.snapshot(doctor_id)
    rooms = {str(d["_id"]): Recorder() for d in (first, second, third)}
    for appointment_id, recorder in rooms.items():
        world.hub.join(appointment_room(appointment_id), recorder)
    doctor_watcher = Recorder()
    world.hub.join(doctor_room(doctor_id), doctor_watcher)

    await world.write(first, status="cancelled")                       # none of these is delivered
    await world.write(second, status="in_consultation", startedAt=T0, joinUrl="https://call/2")
    await world.store.update_doctor(ObjectId(doctor_id), {"isRunningLate": True, "lateByMinutes": 5})
    assert all(r.latest == [] and r.events == [] for r in rooms.values())

    await world.registry.reload([doctor_id])
    first_id, second_id, third_id = (str(d["_id"]) for d in (first, second, third))
    assert [(u["status"], u["position"]) for u in rooms[first_id].updates()] == [("cancelled", -1)]
    assert [m.event for m in rooms[second_id].events] == ["turn:now"]
    assert rooms[second_id].events[0].data == {"appointmentId": second_id, "joinUrl": "https://call/2"}
    assert [(u["status"], u["position"]) for u in rooms[second_id].updates()] == [("in_consultation", -1)]
    assert [(u["position"], u["isRunningLate"]) for u in rooms[third_id].updates()] == [(0, True)]
    # It is next now, but its "be ready by" (earliestStartAt) was already within SOON_MINUTES before
    # the reload, at position 2: turn:soon fires on that, so there is nothing new to announce.
    assert [m.event for m in rooms[third_id].events] == []
    assert [m.event for m in doctor_watcher.events] == ["doctor:status"]
    assert doctor_watcher.events[0].data["lateByMinutes"] == 5
    assert len(doctor_watcher.states()) == 1

    # A second reload finds nothing new: nothing is sent twice.
    await world.registry.reload([doctor_id])
    assert [len(r.updates()) for r in rooms.values()] == [1, 1, 1]
    assert [len(r.events) for r in rooms.values()] == [0, 1, 0]
    assert len(doctor_watcher.events) == 1 and len(doctor_watcher.states()) == 1


async def test_a_crash_restart_keeps_what_was_published(world):
    """A crashed actor rebuilds from the store; what its watchers were told survives the crash, so a
    consultation that started meanwhile still gets its one turn:now and nothing is repeated."""
    doctor_id = await world.doctor()
    waiting = await world.stored(world.appointment(doctor_id, T0))
    await world.registry.snapshot(doctor_id)
    room = Recorder()
    world.hub.join(appointment_room(str(waiting["_id"])), room)
    actor = world.registry.live(doctor_id)
    await world.write(waiting, status="in_consultation", startedAt=T0, joinUrl="https://call/c")
    await actor.on_restart()
    assert [m.event for m in room.events] == ["turn:now"]
    await actor.on_restart()
    assert [m.event for m in room.events] == ["turn:now"]


async def test_one_message_for_a_call_next_is_one_doctor_room_change(world):
    """The completion and the call arrive as one message: the doctor's room hears one queue:state."""
    doctor_id = await world.doctor()
    running = await world.stored(world.appointment(doctor_id, T0, status="in_consultation", startedAt=T0))
    head = await world.stored(world.appointment(doctor_id, T0 + timedelta(minutes=1)))
    await world.registry.snapshot(doctor_id)
    doctor_watcher = Recorder()
    world.hub.join(doctor_room(doctor_id), doctor_watcher)
    completed = await world.write(running, status="completed")
    called = await world.write(head, status="in_consultation", startedAt=T0)
    await world.registry.deliver(AppointmentsChanged(doctor_id, (completed, called)))
    assert len(doctor_watcher.states()) == 1
    state = doctor_watcher.states()[0].payload_for(doctor_watcher.viewer)["data"]
    assert state["inConsultation"]["appointmentId"] == str(head["_id"]) and state["list"] == []


async def test_queues_are_per_clinic_day_and_roll_over_at_the_clinic_midnight(world):
    """In a zone east of UTC, 23:30 UTC is already tomorrow: a booking then waits in tomorrow's queue,
    at position 0 there, and joins today's queue when the clinic's midnight passes."""
    from core.days import ClinicCalendar
    world.registry.calendar = ClinicCalendar.named("Asia/Tokyo")    # UTC+9: local midnight = 15:00 UTC
    world.clock.now = datetime(2030, 5, 6, 14, 0, tzinfo=timezone.utc)  # 23:00 in Tokyo
    doctor_id = await world.doctor()
    today = await world.stored(world.appointment(doctor_id, datetime(2030, 5, 6, 14, 30, tzinfo=timezone.utc)))
    tomorrow = await world.stored(world.appointment(doctor_id, datetime(2030, 5, 6, 15, 10, tzinfo=timezone.utc)))
    snapshot = await world.registry.snapshot(doctor_id)
    assert snapshot.today.isoformat() == "2030-05-06"
    assert [snapshot.update_for(str(d["_id"]))["position"] for d in (today, tomorrow)] == [0, 0]
    assert [e["appointmentId"] for e in snapshot.state_for(True, None)["list"]] == [str(today["_id"])]
    later = snapshot.state_for(True, None, snapshot.days and list(snapshot.days)[-1])
    assert later["date"] == "2030-05-07" and [e["appointmentId"] for e in later["list"]] == [str(tomorrow["_id"])]

    room = Recorder()
    world.hub.join(appointment_room(str(tomorrow["_id"])), room)
    world.clock.now = datetime(2030, 5, 6, 15, 1, tzinfo=timezone.utc)  # 00:01 in Tokyo: a new day
    await world.registry.tick()
    rolled = world.registry.live(doctor_id).snapshot
    assert rolled.today.isoformat() == "2030-05-07"
    assert [e["appointmentId"] for e in rolled.state_for(True, None)["list"]] == [str(today["_id"]), str(tomorrow["_id"])]
    assert room.updates()[-1]["position"] == 1  # behind yesterday's unresolved one, pushed by the tick


async def test_a_break_moves_every_eta_and_ends_by_itself(world):
    doctor_id = await world.doctor(awayUntil=T0 + timedelta(minutes=20))
    booked = await world.stored(world.appointment(doctor_id, T0))
    snapshot = await world.registry.snapshot(doctor_id)
    update = snapshot.update_for(str(booked["_id"]))
    assert (update["etaMinutes"], update["delayMinutes"]) == (20, 20)
    assert snapshot.state_for(True, None)["awayUntil"] == "2030-05-06T09:20:00Z"
    watcher, room = Recorder(), Recorder()
    world.hub.join(doctor_room(doctor_id), watcher)
    world.hub.join(appointment_room(str(booked["_id"])), room)
    world.clock.now = T0 + timedelta(minutes=21)
    await world.registry.tick()
    assert [m.data["awayUntil"] for m in watcher.events if m.event == "doctor:status"] == [None]
    assert room.updates()[-1]["etaMinutes"] == 0


async def test_actor_learns_a_finished_consultation_and_a_reloaded_actor_keeps_it():
    """The write workflow records the lesson in the store and the live actor applies the same one in
    memory; an actor that reloads (a restart) reads it back identically."""
    from domain.learning import learn_from
    from infra.store import Store

    store = Store.connect(None, "actor_learning")
    now = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
    doctor = (await store.insert_doctor({"name": "D", "email": "d@x.org", "avgConsultMinutes": 12}))["_id"]
    registry = QueueRegistry(store, Hub(), clock=lambda: now)
    doctor_id = str(doctor)
    await registry.snapshot(doctor_id)
    for i in range(6):
        started = now - timedelta(minutes=200 - 30 * i)
        document = {"_id": ObjectId(), "doctor": doctor, "patient": ObjectId(), "date": started,
                    "createdAt": started, "status": "completed", "startedAt": started,
                    "completedAt": started + timedelta(minutes=25), "version": 3}
        await learn_from(store, document)
        await registry.deliver(AppointmentsChanged(doctor_id, (document,)))
    live = registry.live(doctor_id).stats
    assert live.consultations == 6 and live.usable
    await registry.live(doctor_id).ask(Reload())
    assert registry.live(doctor_id).stats == live
    await registry.stop()
