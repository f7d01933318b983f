"""Model-based test: whatever happens to a doctor's queue, the live queue never goes stale.

Hypothesis generates a list of operations (bookings, cancellations, every status change a doctor can
make, calling the next patient, the doctor's lateness and average, time passing, queues rebuilt from
the store, and bursts of a few of these sent at once), valid ones and invalid ones mixed, and each list
is replayed against a fresh real server with real HTTP and WebSocket clients. Every answer is checked
against the one the store predicts (in a burst, only answers no race can change). After every operation:

1. the projection equals the source of truth: the queue read straight from the store, ordered and
   estimated here by this file's own reading of API.md's ETA rule, equals `GET /api/queue/doctor/{id}`
   for the doctor, an admin and a patient (redacted), and `GET .../position` for every appointment;
2. live equals REST: the last `queue:update` every appointment socket received equals the position
   read, the last `queue:state` of every doctor-room socket equals the queue read for that viewer, the
   last `doctor:status` equals the doctor's settings, and an appointment that just went into
   consultation got exactly one `turn:now`, with the `joinUrl` its REST read shows;
3. the invariants hold in the store: one consultation per doctor, one waiting booking per patient and
   doctor, positions 0..n-1.

The actors' clock is frozen (it moves only when an operation advances it, then the queues tick), so
every estimate is exact: no tolerance anywhere. Sockets are read to a barrier rather than for a quiet
period: once every server-side outbox is empty, a `ping` is answered after everything sent before it.

One real server per example runs on an event loop in a background thread; hypothesis drives the
examples from a plain synchronous function, so shrinking works as usual.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import FakeClock, LoopThread, start_harness, stop_harness

WAITING = ("pending", "confirmed")
FINISHED = ("completed", "cancelled", "no_show")
TIME_KEYS = {"date", "expectedStartAt", "startedAt"}
# API.md's transition table: (from, to) → who may.
STAFF, EVERYONE = {"doctor", "admin"}, {"owner", "doctor", "admin"}
TRANSITIONS = {("pending", "confirmed"): STAFF, ("pending", "cancelled"): EVERYONE,
               ("confirmed", "cancelled"): EVERYONE, ("pending", "in_consultation"): STAFF,
               ("confirmed", "in_consultation"): STAFF, ("pending", "completed"): STAFF,
               ("confirmed", "completed"): STAFF, ("in_consultation", "completed"): STAFF,
               ("pending", "no_show"): STAFF, ("confirmed", "no_show"): STAFF}
TARGETS = ("confirmed", "cancelled", "in_consultation", "completed", "no_show")
STATUS_BODIES = (  # PATCH /api/doctors/{id}/status: valid ones, then invalid ones (400)
    {"isRunningLate": True, "lateByMinutes": 5}, {"isRunningLate": True, "lateByMinutes": 25},
    {"isRunningLate": False}, {"lateByMinutes": 10}, {"isRunningLate": True},
    {"isRunningLate": False, "lateByMinutes": 7}, {"avgConsultMinutes": 5}, {"avgConsultMinutes": 15},
    {"avgConsultMinutes": 30}, {"isRunningLate": True, "lateByMinutes": 0, "avgConsultMinutes": 8},
    {"lateByMinutes": 601}, {"avgConsultMinutes": 0}, {"isRunningLate": "yes"}, {"colour": "red"},
)
VALID_STATUS_BODIES = 10
PATIENTS = 6
SLOT_MINUTES = 10  # bookings land on a 10-minute grid, so several patients often share a time


class FrozenClock(FakeClock):
    """The actors' "now": a fixed instant (whole seconds) that moves only when the test advances it."""

    def __init__(self) -> None:
        super().__init__()
        self.base = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.base + self.offset


# -- operations -------------------------------------------------------------------------------------
patient_index = st.integers(0, PATIENTS - 1)
doctor_index = st.integers(0, 1)
pick = st.integers(0, 1000)
BOOK = st.tuples(st.just("book"), patient_index, doctor_index, st.integers(0, 12),
                 st.sampled_from(["ok", "ok", "ok", "ok", "past", "unknown_doctor", "as_doctor"]))
BOOK_EARLY = st.tuples(st.just("book"), patient_index, doctor_index, st.integers(0, 2), st.just("ok"))  # ties
CANCEL = st.tuples(st.just("cancel"), patient_index, pick, st.sampled_from(["waiting", "waiting", "any", "other"]))
STATUS = st.tuples(st.just("status"), st.sampled_from(TARGETS), pick,
                   st.sampled_from(["staff", "staff", "staff", "staff", "owner", "wrong_doctor"]),
                   st.sampled_from(["active", "active", "active", "any"]))
NEXT = st.tuples(st.just("next"), doctor_index, st.sampled_from(["staff", "staff", "staff", "patient"]))
DOCTOR_STATUS = st.tuples(st.just("doctor_status"), doctor_index, st.integers(0, len(STATUS_BODIES) - 1),
                          st.sampled_from(["staff", "staff", "staff", "outsider"]))
TICK = st.tuples(st.just("tick"), st.integers(1, 12))
BURST = st.tuples(st.just("burst"), st.lists(st.one_of(BOOK, BOOK_EARLY, CANCEL, STATUS, NEXT, DOCTOR_STATUS),
                                             min_size=2, max_size=3))
# Drawn by name, weighed by repetition; "pause" comes first so that shrinking turns the operations a
# failure does not need into it.
KINDS = {"pause": st.tuples(st.just("pause")), "book": BOOK, "book_early": BOOK_EARLY, "cancel": CANCEL,
         "status": STATUS, "next": NEXT, "doctor_status": DOCTOR_STATUS, "tick": TICK,
         "reload": st.tuples(st.just("reload")), "burst": BURST}
WEIGHTS = {"pause": 1, "book": 5, "book_early": 2, "cancel": 3, "status": 6, "next": 3, "doctor_status": 2,
           "tick": 3, "reload": 1, "burst": 2}
OPERATIONS = st.sampled_from([kind for kind, weight in WEIGHTS.items() for _ in range(weight)]).flatmap(
    KINDS.__getitem__)


# -- sockets ----------------------------------------------------------------------------------------
class Tap:
    """A WebSocket whose every frame is recorded by a reader task."""

    def __init__(self, name: str, client, token: str):
        self.name = name
        self.client = client
        self.token = token
        self.frames: list[dict] = []
        self.appointments: set[str] = set()  # appointment rooms joined
        self.doctors: set[str] = set()  # doctor rooms joined
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.client.connection.read_message()
            if message is None:
                self._arrived.set()
                return
            self.frames.append(json.loads(message))
            self._arrived.set()

    async def until(self, predicate, start: int, timeout: float = 5.0) -> int:
        """Index of the first frame from `start` on that matches; fails after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i in range(start, len(self.frames)):
                if predicate(self.frames[i]):
                    return i
            start = len(self.frames)
            self._arrived.clear()
            remaining = deadline - loop.time()
            assert remaining > 0 and not self._task.done(), f"{self.name}: frame never came"
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def subscribe(self, doctor_id: str | None = None, appointment_id: str | None = None) -> None:
        """Joins a room and waits for the answer it gets at once."""
        frame = {"type": "queue:subscribe"}
        start = len(self.frames)
        if doctor_id is not None:
            frame["doctorId"] = doctor_id
            self.doctors.add(doctor_id)
            await self.client.send(frame)
            await self.until(lambda f: f["event"] == "queue:state" and f["data"]["doctorId"] == doctor_id, start)
        else:
            frame["appointmentId"] = appointment_id
            self.appointments.add(appointment_id)
            await self.client.send(frame)
            await self.until(lambda f: f["event"] == "queue:update"
                             and f["data"]["appointmentId"] == appointment_id, start)

    def last(self, event: str, key: str, value: str) -> dict | None:
        for frame in reversed(self.frames):
            if frame["event"] == event and frame["data"][key] == value:
                return frame["data"]
        return None

    async def close(self) -> None:
        self.client.close()
        try:
            await asyncio.wait_for(self._task, 2)
        except asyncio.TimeoutError:
            self._task.cancel()


# -- the world one example runs in --------------------------------------------------------------------
@dataclass
class Doctor:
    id: str
    staff_token: str  # its doctor account (first doctor) or an admin (second doctor)
    outsider_token: str  # someone who may not manage it


@dataclass
class Patient:
    token: str
    user_id: str
    tap: Tap


@dataclass
class World:
    harness: object
    admin: str
    doctor_token: str
    doctors: list[Doctor]
    patients: list[Patient]
    watchers: list[tuple[Tap, str | None]]  # doctor-room sockets and the user id of their viewer (None: staff)
    slot_base: datetime
    log: list[str] = field(default_factory=list)

    @property
    def api(self):
        return self.harness.api

    @property
    def taps(self) -> list[Tap]:
        return [p.tap for p in self.patients] + [tap for tap, _ in self.watchers]

    def patient_of(self, user_id: str) -> Patient:
        return next(p for p in self.patients if p.user_id == user_id)


async def build_world(harness) -> World:
    admin = await harness.admin_token()
    first = await harness.create_doctor(admin, avgConsultMinutes=10)
    second = await harness.create_doctor(admin, name="Dr. Bo", avgConsultMinutes=15)
    doctor_token, _ = await harness.doctor_account(first, admin)
    patients = []
    for i in range(PATIENTS):
        token, user = await harness.register(name=f"Patient {i}")
        patients.append(Patient(token, user["id"], Tap(f"patient {i}", await harness.ws(token), token)))
    doctors = [Doctor(first["id"], doctor_token, patients[0].token), Doctor(second["id"], admin, doctor_token)]
    watchers = []
    for name, token, viewer in (("doctor", doctor_token, "doctor"), ("admin", admin, None),
                                ("watching patient", patients[0].token, patients[0].user_id)):
        tap = Tap(name, await harness.ws(token), token)
        for doctor in doctors:
            await tap.subscribe(doctor_id=doctor.id)
        watchers.append((tap, viewer))
    now = datetime.now(timezone.utc)
    slot_base = now.replace(second=0, microsecond=0) + timedelta(minutes=3)
    return World(harness, admin, doctor_token, doctors, patients, watchers, slot_base)


# -- the source of truth and this file's own estimates ------------------------------------------------
def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ceil_minutes(delta: timedelta) -> int:
    micros = delta // timedelta(microseconds=1)
    return -(-micros // 60_000_000)


async def read_store(world: World) -> tuple[dict, dict]:
    """Doctors by id and every appointment of the world by id, straight from the store."""
    store = world.harness.services.store
    doctors = {}
    for doctor in world.doctors:
        doc = await store.doctors.find_one({"_id": ObjectId(doctor.id)})
        doctors[doctor.id] = doc
    appointments = {}
    oids = [ObjectId(d.id) for d in world.doctors]
    for doc in await store.appointments.find({"doctor": {"$in": oids}}).to_list(None):
        for key in ("date", "createdAt", "startedAt", "completedAt"):
            if doc.get(key) is not None:
                doc[key] = utc(doc[key])
        appointments[str(doc["_id"])] = doc
    return doctors, appointments


@dataclass
class ExpectedQueue:
    doctor: dict
    current: dict | None
    rows: list[tuple[dict, int, int, datetime]]  # (appointment, position, etaMinutes, expectedStartAt)

    @property
    def settings(self) -> dict:
        return {"isRunningLate": self.doctor["isRunningLate"], "lateByMinutes": self.doctor["lateByMinutes"],
                "avgConsultMinutes": self.doctor["avgConsultMinutes"]}


def expected_queue(doctor: dict, appointments: dict, now: datetime) -> ExpectedQueue:
    """API.md's queue order and ETA rule, written out again here."""
    mine = [a for a in appointments.values() if a["doctor"] == doctor["_id"]]
    waiting = sorted((a for a in mine if a["status"] in WAITING), key=lambda a: (a["date"], a["createdAt"], a["_id"]))
    consulting = [a for a in mine if a["status"] == "in_consultation"]
    assert len(consulting) <= 1, f"two consultations in the store: {[str(a['_id']) for a in consulting]}"
    current = consulting[0] if consulting else None
    avg = timedelta(minutes=doctor["avgConsultMinutes"])
    late = timedelta(minutes=doctor["lateByMinutes"] if doctor["isRunningLate"] else 0)
    free_at = max(now, current["startedAt"] + avg) if current is not None else now
    free_at += late
    rows = []
    for position, appointment in enumerate(waiting):
        start = max(free_at, appointment["date"])
        rows.append((appointment, position, ceil_minutes(start - now), start))
        free_at = start + avg
    return ExpectedQueue(doctor, current, rows)


def expected_state(queue: ExpectedQueue, viewer: str | None) -> dict:
    """The queue as `viewer` sees it (None: staff, else a user id), per API.md's redaction."""
    listing = []
    for appointment, position, eta, start in queue.rows:
        if viewer is None:
            listing.append({"appointmentId": str(appointment["_id"]), "patient": str(appointment["patient"]),
                            "patientName": appointment["patientName"], "date": appointment["date"],
                            "status": appointment["status"], "reason": appointment.get("reason", ""),
                            "position": position, "etaMinutes": eta, "expectedStartAt": start})
        else:
            entry = {"position": position, "date": appointment["date"], "status": appointment["status"],
                     "etaMinutes": eta, "expectedStartAt": start,
                     "mine": str(appointment["patient"]) == viewer}
            if entry["mine"]:
                entry["appointmentId"] = str(appointment["_id"])
            listing.append(entry)
    current = queue.current
    if current is None:
        in_consultation = None
    elif viewer is None:
        in_consultation = {"appointmentId": str(current["_id"]), "patient": str(current["patient"]),
                           "patientName": current["patientName"], "date": current["date"],
                           "status": "in_consultation", "reason": current.get("reason", ""),
                           "startedAt": current["startedAt"]}
    else:
        in_consultation = {"date": current["date"], "status": "in_consultation", "startedAt": current["startedAt"],
                           "mine": str(current["patient"]) == viewer}
        if in_consultation["mine"]:
            in_consultation["appointmentId"] = str(current["_id"])
    return {"doctorId": str(queue.doctor["_id"]), **queue.settings, "inConsultation": in_consultation,
            "list": listing}


def expected_position(queue: ExpectedQueue, appointment: dict) -> dict:
    answer = {"appointmentId": str(appointment["_id"]), "status": appointment["status"], "position": -1,
              "etaMinutes": 0, **queue.settings}
    if appointment["status"] in FINISHED:  # it left the queue: nobody's lateness is its business any more
        answer.update(isRunningLate=False, lateByMinutes=0)
    for row, position, eta, start in queue.rows:
        if row["_id"] == appointment["_id"]:
            answer.update(position=position, etaMinutes=eta, expectedStartAt=start)
    return answer


def parsed(value):
    """Times in an answer as datetimes (checking each is UTC with a Z), the rest as is."""
    if isinstance(value, list):
        return [parsed(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in TIME_KEYS and isinstance(item, str):
                assert item.endswith("Z"), f"{key}={item!r} is not UTC with a Z"
                item = datetime.fromisoformat(item[:-1] + "+00:00")
            out[key] = parsed(item)
        return out
    return value


# -- applying one operation ------------------------------------------------------------------------
ANSWERS = (200, 201, 400, 403, 404, 409)


def expect(response, status: int, code: str | None = None, what: str = "") -> None:
    assert response.status == status, f"{what}: expected {status}, got {response.status} {response.text[:300]}"
    if code is not None:
        assert response.body.get("code") == code, f"{what}: expected code {code}, got {response.body}"


def answered(response, status: int, code: str | None, what: str, strict: bool) -> bool:
    """Checks an answer against the one predicted from the store; True when it succeeded.

    In a burst (operations sent at once) an answer that depends on the state may depend on who won a
    race, so only answers that cannot (400, 403, 404) are held to the prediction there."""
    if strict or status in (400, 403, 404):
        expect(response, status, code, what)
    else:
        assert response.status in (200, 201, 409), f"{what}: got {response.status} {response.text[:300]}"
    if response.status >= 400:
        assert set(response.body) <= {"message", "code", "details"} and response.body["code"], (what, response.body)
    return response.status in (200, 201)


def chosen(items: list, index: int):
    return items[index % len(items)] if items else None


async def apply(world: World, op: tuple, appointments: dict, doctors: dict,
                strict: bool = True) -> tuple[str, dict[str, list[str]]]:
    """Runs one operation, checks its answer against what the store said before it, and returns a
    description and, for each appointment it changed, the statuses it set."""
    api, kind = world.api, op[0]
    changes: dict[str, list[str]] = {}

    def staff_relation(appointment: dict) -> str:
        return "doctor" if str(appointment["doctor"]) == world.doctors[0].id else "admin"

    def staff_token(appointment: dict) -> str:
        return world.doctor_token if staff_relation(appointment) == "doctor" else world.admin

    def busy(doctor_oid, except_id) -> bool:
        return any(a["doctor"] == doctor_oid and a["status"] == "in_consultation" and a["_id"] != except_id
                   for a in appointments.values())

    if kind == "burst":
        done = await asyncio.gather(*(apply(world, sub, appointments, doctors, strict=False) for sub in op[1]))
        for _, sub_changes in done:
            for aid, statuses in sub_changes.items():
                changes.setdefault(aid, []).extend(statuses)
        return "at once: " + "; ".join(what for what, _ in done), changes

    if kind == "book":
        _, p, d, slot, variant = op
        patient, doctor = world.patients[p], world.doctors[d]
        when = world.slot_base + timedelta(minutes=SLOT_MINUTES * slot)
        doctor_id, token = doctor.id, patient.token
        if variant == "past":
            when = datetime.now(timezone.utc) - timedelta(minutes=1)
        elif variant == "unknown_doctor":
            doctor_id = str(ObjectId())
        elif variant == "as_doctor":
            token = world.doctor_token
        body = {"patientName": f"Patient {p}", "patientEmail": f"p{p}@example.org", "patientPhone": "+1 555 0199",
                "doctor": doctor_id, "date": iso(when), "reason": f"visit {len(world.log)}"}
        response = await api.post("/api/appointments", body, token=token)
        what = f"patient {p} books doctor {d} at +{SLOT_MINUTES * slot}m ({variant})"
        already = any(str(a["patient"]) == patient.user_id and str(a["doctor"]) == doctor.id
                      and a["status"] in WAITING for a in appointments.values())
        predicted = {"past": (400, None), "unknown_doctor": (404, None), "as_doctor": (403, None)}.get(
            variant, (409, "already_booked") if already else (201, None))
        if answered(response, *predicted, what, strict):
            assert response.body["status"] == "pending" and response.body["doctor"] == doctor.id, response.body
            changes[response.body["id"]] = ["pending"]
            await patient.tap.subscribe(appointment_id=response.body["id"])
        return what, changes

    if kind == "cancel":
        _, p, index, variant = op
        patient = world.patients[p]
        candidates = [a for a in appointments.values()
                      if (str(a["patient"]) == patient.user_id) != (variant == "other")
                      and (variant != "waiting" or a["status"] in WAITING)]
        appointment = chosen(sorted(candidates, key=lambda a: a["_id"]), index)
        if appointment is None:
            return f"patient {p} cancels ({variant}): nothing to cancel", changes
        aid = str(appointment["_id"])
        what = f"patient {p} cancels {variant} {aid} ({appointment['status']})"
        response = await api.patch(f"/api/appointments/{aid}/status", {"status": "cancelled"}, token=patient.token)
        if variant == "other":
            predicted = (403, None)
        elif appointment["status"] in WAITING:
            predicted = (200, None)
        else:
            predicted = (409, "invalid_transition")
        if answered(response, *predicted, what, strict):
            assert response.body["status"] == "cancelled", response.body
            changes[aid] = ["cancelled"]
        return what, changes

    if kind == "status":
        _, target, index, who, among = op
        everything = sorted((a for a in appointments.values() if among == "any" or a["status"] not in FINISHED),
                            key=lambda a: a["_id"])
        if who == "wrong_doctor":
            everything = [a for a in everything if str(a["doctor"]) != world.doctors[0].id]
        appointment = chosen(everything, index)
        if appointment is None:
            return f"{who} sets {target}: no appointment", changes
        aid, current = str(appointment["_id"]), appointment["status"]
        if who == "staff":
            token, relation = staff_token(appointment), staff_relation(appointment)
        elif who == "owner":
            token, relation = world.patient_of(str(appointment["patient"])).token, "owner"
        else:
            token, relation = world.doctor_token, None
        what = f"{who} sets {aid} {current} -> {target}"
        response = await api.patch(f"/api/appointments/{aid}/status", {"status": target}, token=token)
        may_ever = any(relation in roles for (_, to), roles in TRANSITIONS.items() if to == target)
        if relation is None or not may_ever:
            predicted = (403, None)
        elif relation not in TRANSITIONS.get((current, target), ()):
            predicted = (409, "invalid_transition")
        elif target == "in_consultation" and busy(appointment["doctor"], appointment["_id"]):
            predicted = (409, "doctor_busy")
        else:
            predicted = (200, None)
        if answered(response, *predicted, what, strict):
            assert response.body["status"] == target, response.body
            changes[aid] = [target]
        return what, changes

    if kind == "next":
        _, d, who = op
        doctor = world.doctors[d]
        token = doctor.staff_token if who == "staff" else world.patients[1].token
        what = f"{who} calls next for doctor {d}"
        response = await api.post(f"/api/doctors/{doctor.id}/queue/next", token=token)
        if not answered(response, 200 if who == "staff" else 403, None, what, strict):
            return what, changes
        queue = expected_queue(doctors[doctor.id], appointments, world.harness.clock())
        completed = str(queue.current["_id"]) if queue.current is not None else None
        head = str(queue.rows[0][0]["_id"]) if queue.rows else None
        got_completed = response.body["completed"] and response.body["completed"]["id"]
        got_current = response.body["current"] and response.body["current"]["id"]
        if strict:
            assert (got_completed, got_current) == (completed, head), (what, response.body, completed, head)
        if got_completed:
            changes[got_completed] = ["completed"]
            assert response.body["completed"]["status"] == "completed"
        if got_current:
            changes.setdefault(got_current, []).append("in_consultation")
            assert response.body["current"]["status"] == "in_consultation"
            assert response.body["current"]["joinUrl"], response.body
        return what + f": completed {got_completed}, called {got_current}", changes

    if kind == "doctor_status":
        _, d, b, who = op
        doctor, body = world.doctors[d], STATUS_BODIES[b]
        token = doctor.staff_token if who == "staff" else doctor.outsider_token
        what = f"{who} patches doctor {d} status {body}"
        response = await api.patch(f"/api/doctors/{doctor.id}/status", body, token=token)
        predicted = 403 if who != "staff" else 400 if b >= VALID_STATUS_BODIES else 200
        if answered(response, predicted, None, what, strict) and strict:
            wanted = {k: doctors[doctor.id][k] for k in ("isRunningLate", "lateByMinutes", "avgConsultMinutes")}
            wanted.update(body)
            if body.get("isRunningLate") is False and "lateByMinutes" not in body:
                wanted["lateByMinutes"] = 0
            assert {k: response.body[k] for k in wanted} == wanted, (what, response.body)
        return what, changes

    if kind == "tick":
        world.harness.clock.advance(minutes=op[1])
        await world.harness.services.queues.tick()
        return f"clock +{op[1]}m, tick", changes

    if kind == "pause":
        return "nothing happens", changes

    if kind == "reload":
        await world.harness.services.queues.reload_all()
        return "every queue reloads from the store", changes

    raise AssertionError(f"unknown operation {op}")


# -- the checks after every operation -------------------------------------------------------------------
async def settle(world: World) -> list[int]:
    """Reads every socket up to a barrier; returns, per tap, the index of its barrier's pong."""
    services = world.harness.services
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    # Every message an operation causes is offered to the outboxes before its REST answer goes out;
    # wait until each outbox has handed all of them to its socket...
    while any(s.outbox is not None and s.outbox.pending for s in services.sockets):
        assert loop.time() < deadline, "outboxes never emptied"
        await asyncio.sleep(0)
    # ...then a ping's pong is written after every one of them.
    starts = [len(tap.frames) for tap in world.taps]
    for tap in world.taps:
        await tap.client.send({"type": "ping"})
    return [await tap.until(lambda f: f["event"] == "pong", start) for tap, start in zip(world.taps, starts)]


async def check(world: World, marks: list[int], barriers: list[int], changed_to: dict[str, list[str]],
                before: dict) -> None:
    api, harness = world.api, world.harness
    doctors, appointments = await read_store(world)
    trail = "\n  ".join(world.log[-12:])
    context = f"after:\n  {trail}"

    # The operation did what it answered, and nothing else.
    for aid, appointment in appointments.items():
        previous = before.get(aid)
        if aid in changed_to:
            assert appointment["status"] in changed_to[aid], (context, aid, appointment["status"])
        else:
            assert previous is not None and previous["version"] == appointment["version"], (
                context, f"{aid} changed unasked", previous, appointment)

    # 3. Invariants of the store.
    waiting_pairs = [(a["patient"], a["doctor"]) for a in appointments.values() if a["status"] in WAITING]
    assert len(waiting_pairs) == len(set(waiting_pairs)), (context, "a patient waits twice for one doctor")

    # 1. Projection == source of truth: every doctor's queue as its doctor, an admin and a patient read it.
    queues = {doctor.id: expected_queue(doctors[doctor.id], appointments, harness.clock())
              for doctor in world.doctors}
    for tap, viewer in world.watchers:
        for doctor_id in sorted(tap.doctors):
            response = await api.get(f"/api/queue/doctor/{doctor_id}", token=tap.token)
            expect(response, 200, what="queue read")
            actor = harness.services.queues.live(doctor_id)
            assert actor is not None and actor.snapshot is not None, (context, "no live queue after a read")
            assert actor.snapshot.computed_at == harness.clock(), (
                context, "the queue was estimated at another time", actor.snapshot.computed_at, harness.clock())
            staff = viewer is None or (viewer == "doctor" and doctor_id == world.doctors[0].id)
            assert parsed(response.body) == expected_state(queues[doctor_id], None if staff else viewer), (
                context, tap.name, doctor_id, response.body)
            assert [e["position"] for e in response.body["list"]] == list(range(len(response.body["list"])))
            # 2. Live == REST: the doctor room's last queue:state and doctor:status.
            state = tap.last("queue:state", "doctorId", doctor_id)
            assert state == response.body, (context, f"{tap.name}'s last queue:state for {doctor_id} is stale",
                                            state, response.body)
            status = tap.last("doctor:status", "doctorId", doctor_id)
            if status is None:
                initial = {"isRunningLate": False, "lateByMinutes": 0,
                           "avgConsultMinutes": 10 if doctor_id == world.doctors[0].id else 15}
                assert queues[doctor_id].settings == initial, (context, f"{tap.name} got no doctor:status")
            else:
                assert status == {"doctorId": doctor_id, **queues[doctor_id].settings}, (
                    context, f"{tap.name}'s last doctor:status is stale", status)

    # Went into consultation during the operation (and maybe out again, in a burst).
    turned = {aid for aid, a in appointments.items()
              if a.get("startedAt") is not None and (before.get(aid) or {}).get("startedAt") is None}
    for tap_index, patient in enumerate(world.patients):
        tap = patient.tap
        new_frames = tap.frames[marks[tap_index]:barriers[tap_index]]
        for frame in tap.frames[:barriers[tap_index]]:
            assert frame["event"] in ("queue:update", "turn:now", "pong"), (context, tap.name, frame)
            if frame["event"] != "pong":
                assert frame["data"]["appointmentId"] in tap.appointments, (context, tap.name, "not subscribed", frame)
        for aid in sorted(tap.appointments):
            appointment = appointments[aid]
            queue = queues[str(appointment["doctor"])]
            response = await api.get(f"/api/queue/appointment/{aid}/position", token=patient.token)
            expect(response, 200, what="position read")
            wanted = expected_position(queue, appointment)
            got = parsed(response.body)
            if appointment["status"] not in WAITING:
                # API.md leaves expectedStartAt open once not waiting: the start of a consultation, or nothing.
                assert got.get("expectedStartAt") == (appointment.get("startedAt")
                                                      if appointment["status"] == "in_consultation" else None), (
                    context, aid, got)
                wanted["expectedStartAt"] = got.get("expectedStartAt")
            assert got == wanted, (context, f"position of {aid}", got, wanted)
            update = tap.last("queue:update", "appointmentId", aid)
            rest = {k: v for k, v in response.body.items() if k != "avgConsultMinutes"}
            assert update == rest, (context, f"{tap.name}'s last queue:update for {aid} is stale", update, rest)
            turns = [f for f in new_frames if f["event"] == "turn:now" and f["data"]["appointmentId"] == aid]
            if aid in turned:
                assert len(turns) == 1, (context, f"{aid} went into consultation: {len(turns)} turn:now", turns)
                shown = await api.get(f"/api/appointments/{aid}", token=patient.token)
                expect(shown, 200, what="appointment read")
                assert shown.body["joinUrl"] and turns[0]["data"] == {"appointmentId": aid,
                                                                      "joinUrl": shown.body["joinUrl"]}, (
                    context, turns, shown.body)
            else:
                assert not turns, (context, f"{aid} got turn:now without going into consultation", turns)
    for tap in world.taps:
        assert not [f for f in tap.frames if f["event"] == "error"], (context, tap.name, "error frame")


async def run_operations(ops: list[tuple]) -> None:
    harness = await start_harness(clock=FrozenClock(), tick_seconds=3600)
    world = None
    try:
        world = await build_world(harness)
        marks = await settle(world)
        for op in ops:
            doctors, before = await read_store(world)
            what, changed_to = await apply(world, op, before, doctors)
            world.log.append(what)
            barriers = await settle(world)
            await check(world, marks, barriers, changed_to, before)
            marks = barriers
        # Nothing arrives late: after a quiet spell every socket still agrees with the REST reads.
        await asyncio.sleep(0.2)
        barriers = await settle(world)
        await check(world, marks, barriers, {}, (await read_store(world))[1])
    finally:
        if world is not None:
            for tap in world.taps:
                await tap.close()
        await stop_harness(harness)
        harness.api.http.close()


@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(ops=st.lists(OPERATIONS, min_size=25, max_size=40))
def run_model(runner: LoopThread, ops: list[tuple]) -> None:
    runner.run(run_operations(ops))


def test_the_live_queue_never_goes_stale():
    runner = LoopThread()
    try:
        run_model(runner)
    finally:
        runner.close()


# -- regressions the model found ------------------------------------------------------------------------
@pytest.fixture
async def frozen():
    """A server whose actors' clock stands still until the test advances it."""
    harness = await start_harness(clock=FrozenClock(), tick_seconds=3600)
    try:
        yield harness
    finally:
        await stop_harness(harness)


async def test_the_doctor_room_hears_when_only_an_expected_start_moves(frozen):
    """A booking whose time has passed starts "now": as the clock moves, its expectedStartAt moves with
    it while its etaMinutes stays 0. Its room was told; the doctor's room's queue:state was not (its
    change detection ignored expectedStartAt), so the doctor's screen kept the old start for good."""
    admin = await frozen.admin_token()
    doctor = await frozen.create_doctor(admin)
    doctor_token, _ = await frozen.doctor_account(doctor, admin)
    patient, _ = await frozen.register()
    booked = await frozen.book(patient, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=2))
    doctor_socket, patient_socket = await frozen.ws(doctor_token), await frozen.ws(patient)
    await doctor_socket.send({"type": "queue:subscribe", "doctorId": doctor["id"]})
    await doctor_socket.expect("queue:state")
    await patient_socket.send({"type": "queue:subscribe", "appointmentId": booked["id"]})
    await patient_socket.expect("queue:update")
    for minutes in (10, 5):  # the first passes the booked time (eta 2 → 0), the second only moves the start
        frozen.clock.advance(minutes=minutes)
        await frozen.services.queues.tick()
        states = [f["data"] for f in await doctor_socket.drain(0.2) if f["event"] == "queue:state"]
        updates = [f["data"] for f in await patient_socket.drain(0.2) if f["event"] == "queue:update"]
        queue = await frozen.api.get(f"/api/queue/doctor/{doctor['id']}", token=doctor_token)
        position = await frozen.api.get(f"/api/queue/appointment/{booked['id']}/position", token=patient)
        now = frozen.clock()  # the booked time has passed: it starts now
        assert parsed(queue.body)["list"][0]["expectedStartAt"] == parsed(position.body)["expectedStartAt"] == now
        assert updates and parsed(updates[-1])["expectedStartAt"] == now
        assert states and states[-1] == queue.body
    doctor_socket.close()
    patient_socket.close()


async def test_an_appointment_that_left_the_queue_reads_as_it_was_last_pushed(frozen):
    """A cancelled appointment's last queue:update said isRunningLate false; the doctor then ran late
    and a REST read of the same appointment said true (with the new lateByMinutes), though nothing was
    pushed to it, nor ever would be: live and REST disagreed for good."""
    admin = await frozen.admin_token()
    doctor = await frozen.create_doctor(admin)
    doctor_token, _ = await frozen.doctor_account(doctor, admin)
    patient, _ = await frozen.register()
    booked = await frozen.book(patient, doctor["id"], datetime.now(timezone.utc) + timedelta(minutes=30))
    socket = await frozen.ws(patient)
    await socket.send({"type": "queue:subscribe", "appointmentId": booked["id"]})
    await socket.expect("queue:update")
    cancelled = await frozen.api.patch(f"/api/appointments/{booked['id']}/status", {"status": "cancelled"},
                                       token=patient)
    assert cancelled.status == 200
    late = await frozen.api.patch(f"/api/doctors/{doctor['id']}/status",
                                  {"isRunningLate": True, "lateByMinutes": 20}, token=doctor_token)
    assert late.status == 200
    updates = [f["data"] for f in await socket.drain(0.2) if f["event"] == "queue:update"]
    position = await frozen.api.get(f"/api/queue/appointment/{booked['id']}/position", token=patient)
    assert position.status == 200
    assert updates[-1] == {k: v for k, v in position.body.items() if k != "avgConsultMinutes"}
    assert (position.body["status"], position.body["isRunningLate"], position.body["lateByMinutes"]) == (
        "cancelled", False, 0)
    # A client that subscribes only now hears the same.
    late_comer = await frozen.ws(patient)
    await late_comer.send({"type": "queue:subscribe", "appointmentId": booked["id"]})
    assert (await late_comer.expect("queue:update"))["data"] == updates[-1]
    socket.close()
    late_comer.close()
