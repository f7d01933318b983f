"""Model-based test: whatever happens to a doctor's queue, the live queue never goes stale.

Hypothesis generates a list of operations, valid ones and invalid ones mixed: bookings (today and on
later clinic days), cancellations, every status change a doctor can make, call-nexts (plain, doubled,
with a right or a stale `expectCurrent`), the doctor's lateness, average and breaks, time passing
(across midnight: the clock starts late in the UTC day), patients leaving and rejoining their
appointment's room, staff rejoining a doctor's room, ids spelt in upper case in paths, bodies and
socket frames, queues rebuilt from the store, "dropped bus messages" (changes written straight to
the store, as another node would, that no actor hears of until a reload), and bursts of a few of
these sent at once. Each list is replayed against a fresh real server with real HTTP and WebSocket
clients. Every answer is checked against the one the store predicts (in a burst, only answers no race
can change). After every operation:

1. the projection equals the source of truth: the queues read straight from the store, split into
   clinic days, ordered and estimated here by this file's own reading of the API contract's rules, equal
   `GET /api/queue/doctor/{id}` (today's and later days') for the doctor, an admin and a patient
   (redacted), and `GET .../position` for every appointment;
2. live equals REST: the last `queue:update` every appointment socket received equals the position
   read, the last `queue:state` of every doctor-room socket equals the queue read for that viewer, the
   last `doctor:status` equals the doctor's settings (a break that has passed reads as none);
3. what was pushed during the operation is what the model predicts: exactly one `turn:now` for an
   appointment that went into consultation (live or while the actors were deaf; never again on a
   second reload), a `turn:soon` exactly when an appointment first comes within reach, nothing at all
   for an operation that changes nothing (a refused request, a double submit, a reload with nothing
   missed), and at most one `queue:state` per doctor room and one `queue:update` per appointment for
   an operation that is one published change (a call-next, a reload);
4. the invariants hold in the store: one consultation per doctor, one waiting booking per patient and
   doctor, positions 0..n-1 in each day.

The actors' clock is frozen (it moves only when an operation advances it, then the queues tick), so
every estimate is exact: no tolerance anywhere. Sockets are read to a barrier rather than for a quiet
period: once every actor's mailbox and every server-side outbox is empty, a `ping` is answered after
everything sent before it.

One real server per example runs on an event loop in a background thread; hypothesis drives the
examples from a plain synchronous function, so shrinking works as usual.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings, strategies as st

from core.values import format_utc
from tests.conftest import FakeClock, LoopThread, start_harness, stop_harness
from tests.test_eta import default_range

WAITING = ("pending", "confirmed")
FINISHED = ("completed", "cancelled", "no_show")
TIME_KEYS = {"date", "expectedStartAt", "earliestStartAt", "latestStartAt", "startedAt", "awayUntil"}
CLINIC_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")  # a queue's `date`: a day, not a time
SOON_MINUTES = 10  # the server's default SOON_MINUTES
DOUBLE_SUBMIT = timedelta(seconds=5)
# the API contract's transition table: (from, to) → who may.
STAFF, EVERYONE = {"doctor", "admin"}, {"owner", "doctor", "admin"}
TRANSITIONS = {("pending", "confirmed"): STAFF, ("pending", "cancelled"): EVERYONE,
               ("confirmed", "cancelled"): EVERYONE, ("pending", "in_consultation"): STAFF,
               ("confirmed", "in_consultation"): STAFF, ("pending", "completed"): STAFF,
               ("confirmed", "completed"): STAFF, ("in_consultation", "completed"): STAFF,
               ("pending", "no_show"): STAFF, ("confirmed", "no_show"): STAFF,
               ("in_consultation", "no_show"): STAFF}  # a waiting one only once its date has passed (too_early)
TARGETS = ("confirmed", "cancelled", "in_consultation", "completed", "no_show")


@dataclass(frozen=True)
class Away:
    """A break's end in a status body, `minutes` from the server's one clock, resolved when sent."""

    minutes: int

    def resolve(self, clock_now: datetime) -> str:
        return iso(clock_now + timedelta(minutes=self.minutes))


STATUS_BODIES = (  # PATCH /api/doctors/{id}/status: valid ones, then invalid ones (400)
    {"isRunningLate": True, "lateByMinutes": 5}, {"isRunningLate": True, "lateByMinutes": 25},
    {"isRunningLate": False}, {"lateByMinutes": 10}, {"isRunningLate": True},
    {"isRunningLate": False, "lateByMinutes": 7}, {"avgConsultMinutes": 5}, {"avgConsultMinutes": 15},
    {"avgConsultMinutes": 30}, {"isRunningLate": True, "lateByMinutes": 0, "avgConsultMinutes": 8},
    {"awayUntil": Away(25)}, {"awayUntil": Away(4)}, {"awayUntil": None},
    {"isRunningLate": True, "lateByMinutes": 5, "awayUntil": Away(12)},
    {"awayUntil": Away(-10)}, {"awayUntil": Away(13 * 60)},  # more than a minute past, more than 12 h ahead
    {"lateByMinutes": 601}, {"avgConsultMinutes": 0}, {"isRunningLate": "yes"}, {"colour": "red"},
    {"awayUntil": "2030-01-01T10:00:00"}, {"awayUntil": "soon"},
)
VALID_STATUS_BODIES = 14
MALFORMED_STATUS_BODIES = 16  # from here on the body is refused before anyone is asked who may send it
PATIENTS = 6
SLOT_MINUTES = 5  # bookings land on a 5-minute grid, so several patients often share a time
# How far ahead of the real clock the server's clock may start (late in the UTC day, to cross midnight).
MAX_CLOCK_LEAD = timedelta(hours=10)
# This model reads clinic days in UTC and sets its clock near midnight UTC to cross one, so its servers
# keep UTC rather than the suite's morning zone (tests/conftest.py, `clinic_zone_where_it_is_morning`).
MODEL_SETTINGS = {"clinic_timezone": "UTC"}


class FrozenClock(FakeClock):
    """The actors' "now": a fixed instant (whole seconds) that moves only when the test advances it."""

    def __init__(self, base: datetime | None = None) -> None:
        super().__init__()
        self.base = base or datetime.now(timezone.utc).replace(microsecond=0)

    @classmethod
    def late_in_the_day(cls) -> "FrozenClock":
        """Starts at 23:35 UTC (when that is no more than MAX_CLOCK_LEAD ahead), so that bookings fall
        on both sides of midnight and ticks cross it: today's queue rolls over, and yesterday's
        unresolved bookings join the head of the new day's queue."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        evening = now.replace(hour=23, minute=35, second=0)
        return cls(min(max(now, evening), now + MAX_CLOCK_LEAD))

    def __call__(self) -> datetime:
        return self.base + self.offset


# -- operations -------------------------------------------------------------------------------------
patient_index = st.integers(0, PATIENTS - 1)
doctor_index = st.integers(0, 1)
pick = st.integers(0, 1000)
upper = st.booleans()  # spell the ids of this operation in upper case
BOOK = st.tuples(st.just("book"), patient_index, doctor_index, st.integers(0, 12),
                 st.sampled_from(["ok", "ok", "ok", "ok", "tomorrow", "past", "unknown_doctor", "as_doctor"]), upper)
BOOK_EARLY = st.tuples(st.just("book"), patient_index, doctor_index, st.integers(0, 2), st.just("ok"), upper)  # ties
CANCEL = st.tuples(st.just("cancel"), patient_index, pick, st.sampled_from(["waiting", "waiting", "any", "other"]),
                   upper)
STATUS = st.tuples(st.just("status"), st.sampled_from(TARGETS), pick,
                   st.sampled_from(["staff", "staff", "staff", "staff", "owner", "wrong_doctor"]),
                   st.sampled_from(["active", "active", "active", "any"]), upper)
NEXT = st.tuples(st.just("next"), doctor_index, st.sampled_from(["staff", "staff", "staff", "staff", "patient"]),
                 st.sampled_from(["plain", "plain", "double", "right", "right", "stale"]), pick, upper)
DOCTOR_STATUS = st.tuples(st.just("doctor_status"), doctor_index, st.integers(0, len(STATUS_BODIES) - 1),
                          st.sampled_from(["staff", "staff", "staff", "outsider"]), upper)
TICK = st.tuples(st.just("tick"), st.integers(1, 12))
WATCH = st.tuples(st.just("watch"), patient_index, pick, upper)  # a patient leaves or (re)joins a room
WATCH_DOCTOR = st.tuples(st.just("watch_doctor"), st.integers(0, 2), doctor_index, upper)
DEAF = st.tuples(st.just("deaf"), doctor_index,
                 st.lists(st.sampled_from(["cancel", "call", "finish", "confirm", "late"]), min_size=1, max_size=3,
                          unique=True),
                 pick)
BURST = st.tuples(st.just("burst"), st.lists(st.one_of(BOOK, BOOK_EARLY, CANCEL, STATUS, NEXT, DOCTOR_STATUS),
                                             min_size=2, max_size=3))
# Drawn by name, weighed by repetition; "pause" comes first so that shrinking turns the operations a
# failure does not need into it.
KINDS = {"pause": st.tuples(st.just("pause")), "book": BOOK, "book_early": BOOK_EARLY, "cancel": CANCEL,
         "status": STATUS, "next": NEXT, "doctor_status": DOCTOR_STATUS, "tick": TICK,
         "reload": st.tuples(st.just("reload")), "deaf": DEAF, "watch": WATCH, "watch_doctor": WATCH_DOCTOR,
         "burst": BURST}
WEIGHTS = {"pause": 1, "book": 7, "book_early": 3, "cancel": 3, "status": 4, "next": 5, "doctor_status": 3,
           "tick": 4, "reload": 1, "deaf": 3, "watch": 1, "watch_doctor": 1, "burst": 2}
OPERATIONS = st.sampled_from([kind for kind, weight in WEIGHTS.items() for _ in range(weight)]).flatmap(
    KINDS.__getitem__)


def spell(identifier: str, upper_case: bool) -> str:
    """An id as a client may write it: hex in either case names the same id."""
    return identifier.upper() if upper_case else identifier


# -- sockets ----------------------------------------------------------------------------------------
class Tap:
    """A WebSocket whose every frame is recorded by a reader task."""

    def __init__(self, name: str, client, token: str):
        self.name = name
        self.client = client
        self.token = token
        self.frames: list[dict] = []
        self.appointments: set[str] = set()  # appointment rooms joined (canonical ids)
        self.doctors: set[str] = set()  # doctor rooms joined (canonical ids)
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

    async def subscribe(self, doctor_id: str | None = None, appointment_id: str | None = None,
                        upper_case: bool = False) -> None:
        """Joins a room (its id spelt as asked) and waits for the answer it gets at once, which always
        names the room in lower case."""
        frame = {"type": "queue:subscribe"}
        start = len(self.frames)
        if doctor_id is not None:
            frame["doctorId"] = spell(doctor_id, upper_case)
            self.doctors.add(doctor_id)
            await self.client.send(frame)
            await self.until(lambda f: f["event"] == "queue:state" and f["data"]["doctorId"] == doctor_id, start)
        else:
            frame["appointmentId"] = spell(appointment_id, upper_case)
            self.appointments.add(appointment_id)
            await self.client.send(frame)
            await self.until(lambda f: f["event"] == "queue:update"
                             and f["data"]["appointmentId"] == appointment_id, start)

    async def unsubscribe(self, doctor_id: str | None = None, appointment_id: str | None = None,
                          upper_case: bool = False) -> None:
        """Leaves a room; the next barrier orders it before anything later."""
        frame = {"type": "queue:unsubscribe"}
        if doctor_id is not None:
            frame["doctorId"] = spell(doctor_id, upper_case)
            self.doctors.discard(doctor_id)
        else:
            frame["appointmentId"] = spell(appointment_id, upper_case)
            self.appointments.discard(appointment_id)
        await self.client.send(frame)
        start = len(self.frames)
        await self.client.send({"type": "ping"})  # once answered, the server has acted on the frame
        await self.until(lambda f: f["event"] == "pong", start)

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
class CallMemory:
    """What the model knows of a doctor's last successful call-next: when (on the actors' clock) and
    what it did. After a burst it is not known which of several racing call-nexts ran last."""

    at: datetime | None = None
    result: tuple[str | None, str | None] = (None, None)  # (completed, current) ids
    known: bool = True

    def window_open(self, now: datetime) -> bool:
        return self.at is not None and now - self.at < DOUBLE_SUBMIT


@dataclass
class World:
    harness: object
    admin: str
    doctor_token: str
    doctors: list[Doctor]
    patients: list[Patient]
    watchers: list[tuple[Tap, str | None]]  # doctor-room sockets and the user id of their viewer (None: staff)
    slot_base: datetime
    calls: dict[str, CallMemory]
    soon: dict[str, dict] = field(default_factory=dict)  # appointment id → its turn:soon, as last published
    log: list[str] = field(default_factory=list)
    deaf_writes: int = 0

    @property
    def api(self):
        return self.harness.api

    @property
    def taps(self) -> list[Tap]:
        return [p.tap for p in self.patients] + [tap for tap, _ in self.watchers]

    def patient_of(self, user_id: str) -> Patient:
        return next(p for p in self.patients if p.user_id == user_id)

    def present(self) -> set[str]:
        """Appointments whose patient watches their room right now (the API contract's `present`)."""
        return {aid for patient in self.patients for aid in patient.tap.appointments}


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
        for i, doctor in enumerate(doctors):
            await tap.subscribe(doctor_id=doctor.id, upper_case=i == 1)
        watchers.append((tap, viewer))
    # Bookings follow the actors' clock (which may run hours ahead of the real one, see FrozenClock).
    slot_base = harness.clock().replace(second=0) + timedelta(minutes=3)
    return World(harness, admin, doctor_token, doctors, patients, watchers, slot_base,
                 {doctor.id: CallMemory() for doctor in doctors})


# -- the source of truth and this file's own estimates ------------------------------------------------
def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def nearest_minutes(delta: timedelta) -> int:
    """`delayMinutes`: whole minutes, to the nearest (half a minute up); 0 if not after."""
    micros = delta // timedelta(microseconds=1)
    return max(0, (micros + 30_000_000) // 60_000_000)


def ceil_minutes(delta: timedelta) -> int:
    micros = delta // timedelta(microseconds=1)
    return -(-micros // 60_000_000)


async def read_store(world: World) -> tuple[dict, dict]:
    """Doctors by id and every appointment of the world by id, straight from the store."""
    store = world.harness.services.store
    doctors = {}
    for doctor in world.doctors:
        doc = await store.doctors.find_one({"_id": ObjectId(doctor.id)})
        doc["awayUntil"] = utc(doc.get("awayUntil"))
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
class Row:
    """One waiting appointment's place: in its clinic day's queue, with its estimate."""

    appointment: dict
    day: date
    position: int
    eta: int
    start: datetime
    delay: int
    earliest: datetime | None = None  # the default range (no history in these tests), see tests/test_eta.py
    latest: datetime | None = None

    @property
    def id(self) -> str:
        return str(self.appointment["_id"])


@dataclass
class ExpectedQueue:
    doctor: dict
    now: datetime
    current: dict | None
    rows: list[Row]  # every waiting appointment, in queue order: today's queue first, then each later day

    @property
    def today(self) -> date:
        return self.now.date()  # the servers here run with CLINIC_TIMEZONE=UTC (MODEL_SETTINGS)

    @property
    def away(self) -> datetime | None:
        """The break, while it holds: one that has passed reads as none."""
        away = self.doctor.get("awayUntil")
        return away if away is not None and away > self.now else None

    @property
    def settings(self) -> dict:
        return {"isRunningLate": self.doctor["isRunningLate"], "lateByMinutes": self.doctor["lateByMinutes"],
                "avgConsultMinutes": self.doctor["avgConsultMinutes"]}

    @property
    def status(self) -> dict:
        """`doctor:status`."""
        return {"doctorId": str(self.doctor["_id"]), **self.settings, "awayUntil": self.away}

    def days(self) -> list[date]:
        return sorted({row.day for row in self.rows})

    def of_day(self, day: date) -> list[Row]:
        return [row for row in self.rows if row.day == day]

    def row(self, appointment_id: str) -> Row | None:
        return next((row for row in self.rows if row.id == appointment_id), None)

    def head(self) -> str | None:
        """Today's head: the only one a call-next may take."""
        today = self.of_day(self.today)
        return today[0].id if today else None

    def soon(self) -> dict[str, dict]:
        """`turn:soon` data of today's appointments that are next or whose earliestStartAt (be ready by)
        is within SOON_MINUTES."""
        return {row.id: {"appointmentId": row.id, "position": row.position, "etaMinutes": row.eta,
                         "expectedStartAt": row.start, "earliestStartAt": row.earliest}
                for row in self.of_day(self.today)
                if row.position == 0 or ceil_minutes(row.earliest - self.now) <= SOON_MINUTES}


def expected_queue(doctor: dict, appointments: dict, now: datetime) -> ExpectedQueue:
    """the API contract's clinic days, queue order and ETA rule, written out again here: today's queue holds the
    waiting appointments dated before the end of today (earlier days' at its head); each later day is
    its own queue, estimated by the same rule but with no consultation in progress."""
    mine = [a for a in appointments.values() if a["doctor"] == doctor["_id"]]
    waiting = sorted((a for a in mine if a["status"] in WAITING), key=lambda a: (a["date"], a["createdAt"], a["_id"]))
    consulting = [a for a in mine if a["status"] == "in_consultation"]
    assert len(consulting) <= 1, f"two consultations in the store: {[str(a['_id']) for a in consulting]}"
    current = consulting[0] if consulting else None
    queue = ExpectedQueue(doctor, now, current, [])
    avg = timedelta(minutes=doctor["avgConsultMinutes"])
    late = timedelta(minutes=doctor["lateByMinutes"] if doctor["isRunningLate"] else 0)
    free = {}  # day → [when the doctor is free, next position]
    for appointment in waiting:
        day = max(queue.today, appointment["date"].date())
        if day not in free:
            free_at = max(now, current["startedAt"] + avg) if current is not None and day == queue.today else now
            free_at += late
            if queue.away is not None:
                free_at = max(free_at, queue.away)
            free[day] = [free_at, 0]
        free_at, position = free[day]
        start = max(free_at, appointment["date"])
        queue.rows.append(Row(appointment, day, position, ceil_minutes(start - now), start,
                              nearest_minutes(start - appointment["date"])))
        free[day] = [start + avg, position + 1]
    for day in queue.days():
        rows = queue.of_day(day)
        started = current["startedAt"] if current is not None and day == queue.today else None
        ranges = default_range([row.appointment["date"] for row in rows], doctor["avgConsultMinutes"],
                               doctor["lateByMinutes"] if doctor["isRunningLate"] else 0, started,
                               doctor.get("awayUntil"), now=now)
        for row, (earliest, latest) in zip(rows, ranges):
            row.earliest, row.latest = earliest, latest
    return queue


def expected_state(queue: ExpectedQueue, viewer: str | None, present: set[str], day: date | None = None) -> dict:
    """One clinic day's queue (today by default) as `viewer` sees it (None: staff, else a user id), per
    the API contract's redaction; `present` only in the staff view."""
    day = queue.today if day is None else day
    listing = []
    for row in queue.of_day(day):
        appointment = row.appointment
        if viewer is None:
            listing.append({"appointmentId": row.id, "patient": str(appointment["patient"]),
                            "patientName": appointment["patientName"], "date": appointment["date"],
                            "status": appointment["status"], "reason": appointment.get("reason", ""),
                            "position": row.position, "etaMinutes": row.eta, "expectedStartAt": row.start,
                            "earliestStartAt": row.earliest, "latestStartAt": row.latest,
                            "delayMinutes": row.delay, "present": row.id in present})
        else:
            entry = {"position": row.position, "date": appointment["date"], "status": appointment["status"],
                     "etaMinutes": row.eta, "expectedStartAt": row.start, "earliestStartAt": row.earliest,
                     "latestStartAt": row.latest, "delayMinutes": row.delay,
                     "mine": str(appointment["patient"]) == viewer}
            if entry["mine"]:
                entry["appointmentId"] = row.id
            listing.append(entry)
    current = queue.current if day == queue.today else None  # the running consultation belongs to today
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
    return {"doctorId": str(queue.doctor["_id"]), "date": day.isoformat(), **queue.settings,
            "awayUntil": queue.away, "inConsultation": in_consultation, "list": listing}


def expected_position(queue: ExpectedQueue, appointment: dict) -> dict:
    """`GET .../position`; a later day's appointment has its place within its own day."""
    aid = str(appointment["_id"])
    answer = {"appointmentId": aid, "status": appointment["status"], "position": -1, "etaMinutes": 0,
              "expectedStartAt": None, "earliestStartAt": None, "latestStartAt": None, "delayMinutes": 0,
              **queue.settings, "awayUntil": queue.away}
    row = queue.row(aid)
    if row is not None:
        answer.update(position=row.position, etaMinutes=row.eta, expectedStartAt=row.start,
                      earliestStartAt=row.earliest, latestStartAt=row.latest, delayMinutes=row.delay)
    elif appointment["status"] == "in_consultation":
        started = appointment["startedAt"]
        answer.update(expectedStartAt=started, earliestStartAt=started, latestStartAt=started,
                      delayMinutes=max(0, nearest_minutes(started - appointment["date"])))
    else:  # it left the queue: nobody's lateness is its business any more
        answer.update(isRunningLate=False, lateByMinutes=0)
    return answer


def as_update(position: dict) -> dict:
    """The `queue:update` a position answer corresponds to, less the booked `date` it does not carry."""
    return {k: v for k, v in position.items() if k not in ("avgConsultMinutes", "awayUntil")}


def without_date(update: dict) -> dict:
    return {k: v for k, v in update.items() if k != "date"}


def parsed(value):
    """Times in an answer as datetimes (checking each is UTC with a Z), the rest as is. A queue's
    `date` is its clinic day, not a time: it stays a string."""
    if isinstance(value, list):
        return [parsed(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in TIME_KEYS and isinstance(item, str) and not (key == "date" and CLINIC_DAY.fullmatch(item)):
                assert item.endswith("Z"), f"{key}={item!r} is not UTC with a Z"
                item = datetime.fromisoformat(item[:-1] + "+00:00")
            out[key] = parsed(item)
        return out
    return value


# -- applying one operation ------------------------------------------------------------------------
@dataclass
class Step:
    """What one operation did, as far as the checks after it need to know."""

    strict: bool = True  # False in a burst: answers and pushes may depend on who won a race
    changes: dict[str, list[str]] = field(default_factory=dict)  # appointment → the statuses it was set to
    effective: bool = False  # a request succeeded that may have changed something
    rejoined: set[str] = field(default_factory=set)  # appointment rooms a patient (re)joined
    quiet: bool = False  # nothing at all may be pushed
    one_change: bool = False  # one published change: each room hears at most once
    heard: bool = True  # the actors were told of each change (False: they learnt them all at once on a reload)

    def settle_expectations(self, kind: str) -> None:
        if kind in ("pause", "reload") or (
                kind in ("book", "cancel", "status", "next", "doctor_status") and not self.effective):
            self.quiet = True  # refused requests, double submits and reloads with nothing missed push nothing
        if kind in ("next", "deaf"):
            self.one_change = True
        if kind == "deaf":
            self.heard = False

    def changed(self, appointment_id: str, status: str) -> None:
        self.changes.setdefault(appointment_id, []).append(status)
        self.effective = True


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


def now_ms() -> datetime:
    moment = datetime.now(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def deaf_write(world: World, appointment: dict, step: Step, unset: tuple[str, ...] = (), **changes) -> None:
    """Writes a change straight to the store, as another node would (bumping `version`, keeping the
    index fields honest), and tells no actor: a bus message that got lost."""
    update: dict = {"$set": {**changes, "updatedAt": now_ms()}, "$inc": {"version": 1}}
    if unset:
        update["$unset"] = {key: "" for key in unset}
    written = await world.harness.services.store.appointments.find_one_and_update(
        {"_id": appointment["_id"], "version": appointment["version"]}, update)
    assert written is not None, f"the deaf write to {appointment['_id']} missed"
    step.changed(str(appointment["_id"]), changes["status"])


async def call_next(world: World, doctor: Doctor, who: str, mode: str, index: int, up: bool, step: Step) -> str:
    """One call-next, its answer predicted from the store and from the model's memory of the doctor's
    last successful call-next (a plain one within DOUBLE_SUBMIT of it, on the actors' clock, repeats it)."""
    api, clock = world.api, world.harness.clock
    doctors, appointments = await read_store(world)
    now = clock()
    queue = expected_queue(doctors[doctor.id], appointments, now)
    running = str(queue.current["_id"]) if queue.current is not None else None
    head = queue.head()
    token = doctor.staff_token if who == "staff" else world.patients[1].token
    body = None
    if mode == "right":
        body = {"expectCurrent": running and spell(running, up)}
    elif mode == "stale":
        others = sorted(aid for aid, a in appointments.items() if aid != running and a["doctor"] == queue.doctor["_id"])
        wrong = chosen(([None] if running else []) + others + ["0123456789abcdef01234567"], index)
        body = {"expectCurrent": wrong and spell(wrong, up)}
    what = f"{who} calls next for doctor {doctor.id[-4:]} ({mode}, {body}; in consultation {running}, head {head})"
    response = await api.post(f"/api/doctors/{spell(doctor.id, up)}/queue/next", body, token=token)
    if who != "staff":
        answered(response, 403, None, what, step.strict)
        return what
    memory = world.calls[doctor.id]
    repeat = mode == "plain" and memory.window_open(now)
    if not step.strict:  # a burst: record what the answer says; who won is not known
        if answered(response, 409 if mode == "stale" else 200, None, what, False):
            for key in ("completed", "current"):
                if response.body[key] is not None:
                    step.changed(response.body[key]["id"], response.body[key]["status"])
        return what
    if mode == "stale":  # refused: nothing changes, and the last successful call's window stays as it was
        answered(response, 409, "queue_changed", what, True)
        return what + ": refused, queue_changed"
    expect(response, 200, what=what)
    got = tuple(response.body[key] and response.body[key]["id"] for key in ("completed", "current"))
    assert all(i is None or i == i.lower() for i in got), (what, response.body)
    if repeat and not memory.known:  # after a burst: real or repeat, the store says which
        _, after = await read_store(world)
        repeat = all(after[aid]["version"] == a["version"] for aid, a in appointments.items())
    if repeat:
        if memory.known:
            assert got == memory.result, (what, "a double submit answers the previous call's result", got,
                                          memory.result)
        for key in ("completed", "current"):  # those appointments as they are now
            if response.body[key] is not None:
                assert response.body[key]["status"] == appointments[response.body[key]["id"]]["status"], (
                    what, response.body)
        world.calls[doctor.id] = CallMemory(memory.at, got)
        return what + f": a double submit, answered {got} again"
    assert got == (running, head), (what, "called", got, "expected", (running, head))
    if running is not None:
        assert response.body["completed"]["status"] == "completed"
        step.changed(running, "completed")
    if head is not None:
        assert response.body["current"]["status"] == "in_consultation" and response.body["current"]["joinUrl"], (
            what, response.body)
        step.changed(head, "in_consultation")
    world.calls[doctor.id] = CallMemory(now, got)
    return what + f": completed {running}, called {head}"


async def apply(world: World, op: tuple, appointments: dict, doctors: dict, step: Step) -> str:
    """Runs one operation, checks its answer against what the store said before it, records in `step`
    what it changed, and returns a description."""
    api, kind, strict = world.api, op[0], step.strict
    harness = world.harness

    def staff_relation(appointment: dict) -> str:
        return "doctor" if str(appointment["doctor"]) == world.doctors[0].id else "admin"

    def staff_token(appointment: dict) -> str:
        return world.doctor_token if staff_relation(appointment) == "doctor" else world.admin

    def busy(doctor_oid, except_id) -> bool:
        return any(a["doctor"] == doctor_oid and a["status"] == "in_consultation" and a["_id"] != except_id
                   for a in appointments.values())

    if kind == "burst":
        done = await asyncio.gather(*(apply(world, sub, appointments, doctors, step) for sub in op[1]))
        for sub in op[1]:
            if sub[0] == "next" and sub[2] == "staff":  # which of them ran last is not known
                world.calls[world.doctors[sub[1]].id] = CallMemory(harness.clock(), known=False)
        return "at once: " + "; ".join(done)

    if kind == "book":
        _, p, d, slot, variant, up = op
        patient, doctor = world.patients[p], world.doctors[d]
        when = world.slot_base + timedelta(minutes=SLOT_MINUTES * slot)
        if variant == "tomorrow":
            when += timedelta(days=1)
        doctor_id, token = spell(doctor.id, up), patient.token
        if variant == "past":
            when = harness.clock() - timedelta(minutes=1)
        elif variant == "unknown_doctor":
            doctor_id = str(ObjectId())
        elif variant == "as_doctor":
            token = world.doctor_token
        body = {"patientName": f"Patient {p}", "patientEmail": f"p{p}@example.org", "patientPhone": "+1 555 0199",
                "doctor": doctor_id, "date": iso(when), "reason": f"visit {len(world.log)}"}
        response = await api.post("/api/appointments", body, token=token)
        what = f"patient {p} books doctor {d} at {iso(when)} ({variant})"
        already = any(str(a["patient"]) == patient.user_id and str(a["doctor"]) == doctor.id
                      and a["status"] in WAITING for a in appointments.values())
        if variant != "as_doctor" and when <= harness.clock():  # a slot the server's one clock has passed
            variant = "past"
        predicted = {"past": (400, None), "unknown_doctor": (404, None), "as_doctor": (403, None)}.get(
            variant, (409, "already_booked") if already else (201, None))
        if answered(response, *predicted, what, strict):
            assert response.body["status"] == "pending" and response.body["doctor"] == doctor.id, response.body
            step.changed(response.body["id"], "pending")
            await patient.tap.subscribe(appointment_id=response.body["id"], upper_case=up)
            step.rejoined.add(response.body["id"])
            what += f": {response.body['id']}"
        return what

    if kind == "cancel":
        _, p, index, variant, up = op
        patient = world.patients[p]
        candidates = [a for a in appointments.values()
                      if (str(a["patient"]) == patient.user_id) != (variant == "other")
                      and (variant != "waiting" or a["status"] in WAITING)]
        appointment = chosen(sorted(candidates, key=lambda a: a["_id"]), index)
        if appointment is None:
            return f"patient {p} cancels ({variant}): nothing to cancel"
        aid = str(appointment["_id"])
        what = f"patient {p} cancels {variant} {aid} ({appointment['status']})"
        response = await api.patch(f"/api/appointments/{spell(aid, up)}/status", {"status": "cancelled"},
                                   token=patient.token)
        if variant == "other":
            predicted = (403, None)
        elif appointment["status"] in WAITING:
            predicted = (200, None)
        else:
            predicted = (409, "invalid_transition")
        if answered(response, *predicted, what, strict):
            assert response.body["status"] == "cancelled" and response.body["id"] == aid, response.body
            step.changed(aid, "cancelled")
        return what

    if kind == "status":
        _, target, index, who, among, up = op
        everything = sorted((a for a in appointments.values() if among == "any" or a["status"] not in FINISHED),
                            key=lambda a: a["_id"])
        if who == "wrong_doctor":
            everything = [a for a in everything if str(a["doctor"]) != world.doctors[0].id]
        appointment = chosen(everything, index)
        if appointment is None:
            return f"{who} sets {target}: no appointment"
        aid, current = str(appointment["_id"]), appointment["status"]
        if who == "staff":
            token, relation = staff_token(appointment), staff_relation(appointment)
        elif who == "owner":
            token, relation = world.patient_of(str(appointment["patient"])).token, "owner"
        else:
            token, relation = world.doctor_token, None
        what = f"{who} sets {aid} {current} -> {target}"
        asked_at = harness.clock()
        response = await api.patch(f"/api/appointments/{spell(aid, up)}/status", {"status": target}, token=token)
        answered_at = harness.clock()
        may_ever = any(relation in roles for (_, to), roles in TRANSITIONS.items() if to == target)
        early = target == "no_show" and current in WAITING
        if relation is None or not may_ever:
            predicted = (403, None)
        elif relation not in TRANSITIONS.get((current, target), ()):
            predicted = (409, "invalid_transition")
        elif early and asked_at < appointment["date"] <= answered_at:  # its time came while the request was out
            strict = False
            predicted = (200, None)
        elif early and appointment["date"] > asked_at:
            predicted = (409, "too_early")
        elif target == "in_consultation" and busy(appointment["doctor"], appointment["_id"]):
            predicted = (409, "doctor_busy")
        else:
            predicted = (200, None)
        if answered(response, *predicted, what, strict):
            assert response.body["status"] == target and response.body["id"] == aid, response.body
            step.changed(aid, target)
        return what

    if kind == "next":
        _, d, who, mode, index, up = op
        doctor = world.doctors[d]
        if mode != "double":
            return await call_next(world, doctor, who, mode, index, up, step)
        first = await call_next(world, doctor, who, "plain", index, up, step)
        second = await call_next(world, doctor, who, "plain", index, not up, step)  # the same click, twice
        return f"{first}; then again: {second}"

    if kind == "doctor_status":
        _, d, b, who, up = op
        doctor = world.doctors[d]
        body = {key: value.resolve(harness.clock()) if isinstance(value, Away) else value
                for key, value in STATUS_BODIES[b].items()}
        token = doctor.staff_token if who == "staff" else doctor.outsider_token
        what = f"{who} patches doctor {d} status {body}"
        response = await api.patch(f"/api/doctors/{spell(doctor.id, up)}/status", body, token=token)
        if b >= MALFORMED_STATUS_BODIES:
            predicted = 400
        else:
            predicted = 403 if who != "staff" else 400 if b >= VALID_STATUS_BODIES else 200
        if answered(response, predicted, None, what, strict):
            step.effective = True
            if strict:
                wanted = {k: doctors[doctor.id][k] for k in ("isRunningLate", "lateByMinutes", "avgConsultMinutes")}
                wanted.update({k: v for k, v in body.items() if k != "awayUntil"})
                if body.get("isRunningLate") is False and "lateByMinutes" not in body:
                    wanted["lateByMinutes"] = 0
                assert response.body["id"] == doctor.id, response.body
                assert {k: response.body[k] for k in wanted} == wanted, (what, response.body)
                if "awayUntil" in body:  # the doctor's own answer reads a break that has passed as none
                    away = parsed({"awayUntil": body["awayUntil"]})["awayUntil"]
                    shown = away if away is not None and away > harness.clock() else None
                    assert parsed(response.body)["awayUntil"] == shown, (what, response.body)
        return what

    if kind == "tick":
        day = harness.clock().date()
        harness.clock.advance(minutes=op[1])
        await harness.services.queues.tick()
        crossed = " across midnight" if harness.clock().date() != day else ""
        return f"clock +{op[1]}m{crossed} (now {iso(harness.clock())}), tick"

    if kind == "pause":
        return "nothing happens"

    if kind == "reload":
        await harness.services.queues.reload_all()
        return "every queue reloads from the store"

    if kind == "watch":
        _, p, index, up = op
        patient = world.patients[p]
        aid = chosen(sorted(aid for aid, a in appointments.items() if str(a["patient"]) == patient.user_id), index)
        if aid is None:
            return f"patient {p} has no appointment to watch"
        if aid in patient.tap.appointments:
            await patient.tap.unsubscribe(appointment_id=aid, upper_case=up)
            return f"patient {p} leaves {aid}'s room"
        await patient.tap.subscribe(appointment_id=aid, upper_case=up)
        step.rejoined.add(aid)
        return f"patient {p} rejoins {aid}'s room ({appointments[aid]['status']})"

    if kind == "watch_doctor":
        _, w, d, up = op
        tap, _ = world.watchers[w]
        doctor_id = world.doctors[d].id
        await tap.unsubscribe(doctor_id=doctor_id, upper_case=up)
        await tap.subscribe(doctor_id=doctor_id, upper_case=not up)
        return f"{tap.name} rejoins doctor {d}'s room"

    if kind == "deaf":
        _, d, writes, index = op
        doctor = world.doctors[d]
        store = harness.services.store
        done = []
        for write in writes:
            doctors_now, now_appointments = await read_store(world)
            queue = expected_queue(doctors_now[doctor.id], now_appointments, harness.clock())
            if write in ("cancel", "confirm"):
                row = chosen([r for r in queue.rows if write == "cancel" or r.appointment["status"] == "pending"],
                             index)
                if row is not None:
                    if write == "cancel":
                        await deaf_write(world, row.appointment, step, ("waitingKey",), status="cancelled")
                    else:
                        await deaf_write(world, row.appointment, step, status="confirmed")
                    done.append(f"{write} {row.id}")
            elif write in ("call", "finish"):  # another node's call-next, or its completion alone
                if queue.current is not None:
                    await deaf_write(world, queue.current, step, ("consultingDoctor",), status="completed",
                                     completedAt=now_ms())
                    done.append(f"complete {queue.current['_id']}")
                head = queue.head() if write == "call" else None
                if head is not None:
                    world.deaf_writes += 1
                    await deaf_write(world, now_appointments[head], step, ("waitingKey",), status="in_consultation",
                                     startedAt=harness.clock(), consultingDoctor=queue.doctor["_id"],
                                     joinUrl=f"https://meet.example.org/deaf-{world.deaf_writes}")
                    done.append(f"call {head}")
            else:
                late = queue.doctor["isRunningLate"]
                await store.update_doctor(ObjectId(doctor.id), {"isRunningLate": not late,
                                                                "lateByMinutes": 0 if late else 15,
                                                                "updatedAt": now_ms()})
                done.append("running late" if not late else "on time")
        await harness.services.queues.reload_all()
        await harness.services.queues.reload_all()  # a second reload finds nothing new: nothing is sent twice
        return f"doctor {d}'s bus messages lost ({', '.join(done) or 'nothing to write'}), then two reloads"

    raise AssertionError(f"unknown operation {op}")


# -- the checks after every operation -------------------------------------------------------------------
async def settle(world: World) -> list[int]:
    """Reads every socket up to a barrier; returns, per tap, the index of its barrier's pong."""
    services = world.harness.services
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    # Every message an operation causes is told to an actor (a presence change is told, not asked) or
    # offered to the outboxes before its REST answer goes out; wait until each actor has handled its
    # mailbox and each outbox has handed everything to its socket...
    while (any(actor.mailbox_depth for actor in services.queues.actors.values())
           or any(s.outbox is not None and s.outbox.pending for s in services.sockets)):
        assert loop.time() < deadline, "mailboxes or outboxes never emptied"
        await asyncio.sleep(0)
    # ...then a ping's pong is written after every one of them.
    starts = [len(tap.frames) for tap in world.taps]
    for tap in world.taps:
        await tap.client.send({"type": "ping"})
    return [await tap.until(lambda f: f["event"] == "pong", start) for tap, start in zip(world.taps, starts)]


def room_of(frame: dict) -> str | None:
    data = frame.get("data") or {}
    return data.get("appointmentId") or data.get("doctorId")


async def check(world: World, marks: list[int], barriers: list[int], step: Step, before: dict,
                subscribed_before: list[set[str]]) -> None:
    api, harness = world.api, world.harness
    doctors, appointments = await read_store(world)
    now = harness.clock()
    trail = "\n  ".join(world.log[-12:])
    context = f"after:\n  {trail}"
    upper_reads = len(world.log) % 2 == 1  # reads alternate between lower- and upper-case ids

    # The operation did what it answered, and nothing else.
    for aid, appointment in appointments.items():
        previous = before.get(aid)
        if aid in step.changes:
            assert appointment["status"] in step.changes[aid], (context, aid, appointment["status"])
        else:
            assert previous is not None and previous["version"] == appointment["version"], (
                context, f"{aid} changed unasked", previous, appointment)

    # 4. Invariants of the store.
    waiting_pairs = [(a["patient"], a["doctor"]) for a in appointments.values() if a["status"] in WAITING]
    assert len(waiting_pairs) == len(set(waiting_pairs)), (context, "a patient waits twice for one doctor")

    # 1. Projection == source of truth: every doctor's queues as its doctor, an admin and a patient read them.
    queues = {doctor.id: expected_queue(doctors[doctor.id], appointments, now) for doctor in world.doctors}
    present = world.present()
    for tap_index, (tap, viewer) in enumerate(world.watchers):
        for frame in tap.frames[marks[PATIENTS + tap_index]:barriers[PATIENTS + tap_index]]:
            assert frame["event"] in ("queue:state", "doctor:status", "pong"), (context, tap.name, frame)
        for doctor_id in sorted(tap.doctors):
            queue = queues[doctor_id]
            response = await api.get(f"/api/queue/doctor/{spell(doctor_id, upper_reads)}", token=tap.token)
            expect(response, 200, what="queue read")
            actor = harness.services.queues.live(doctor_id)
            assert actor is not None and actor.snapshot is not None, (context, "no live queue after a read")
            assert actor.snapshot.computed_at == now, (
                context, "the queue was estimated at another time", actor.snapshot.computed_at, now)
            staff = viewer is None or (viewer == "doctor" and doctor_id == world.doctors[0].id)
            who = None if staff else viewer
            assert parsed(response.body) == expected_state(queue, who, present), (
                context, tap.name, doctor_id, response.body)
            # 2. Live == REST: the doctor room's last queue:state and doctor:status.
            state = tap.last("queue:state", "doctorId", doctor_id)
            assert state == response.body, (context, f"{tap.name}'s last queue:state for {doctor_id} is stale",
                                            state, response.body)
            status = tap.last("doctor:status", "doctorId", doctor_id)
            if status is None:
                initial = {"doctorId": doctor_id, "isRunningLate": False, "lateByMinutes": 0,
                           "avgConsultMinutes": 10 if doctor_id == world.doctors[0].id else 15, "awayUntil": None}
                assert queue.status == initial, (context, f"{tap.name} got no doctor:status", queue.status)
            else:
                assert parsed(status) == queue.status, (context, f"{tap.name}'s last doctor:status is stale",
                                                        status, queue.status)
            if tap_index == 0:
                continue
            # Other clinic days, each its own queue (for an admin and, redacted, a patient): yesterday's
            # is empty (what nobody resolved waits at the head of today's), later days' hold their bookings.
            one_day = timedelta(days=1)
            for day in sorted(set(queue.days()) | {queue.today - one_day, queue.today + one_day}):
                if day == queue.today:
                    continue
                later = await api.get(f"/api/queue/doctor/{doctor_id}?date={day.isoformat()}", token=tap.token)
                expect(later, 200, what="later day's queue read")
                assert parsed(later.body) == expected_state(queue, who, present, day), (
                    context, tap.name, doctor_id, day.isoformat(), later.body)

    # Went into consultation during the operation (and maybe out again, in a burst: the live queue saw
    # both; not while the actors were deaf: a consultation that began and ended unheard is no one's turn).
    turned = {aid for aid, a in appointments.items()
              if a.get("startedAt") is not None and (before.get(aid) or {}).get("startedAt") is None
              and (step.heard or a["status"] == "in_consultation")}
    soon = {aid: data for queue in queues.values() for aid, data in queue.soon().items()}
    for tap_index, patient in enumerate(world.patients):
        tap = patient.tap
        new_frames = tap.frames[marks[tap_index]:barriers[tap_index]]
        for frame in new_frames:
            assert frame["event"] in ("queue:update", "turn:now", "turn:soon", "pong"), (context, tap.name, frame)
            if frame["event"] != "pong":
                assert frame["data"]["appointmentId"] in tap.appointments, (context, tap.name, "not subscribed", frame)
        for aid in sorted(tap.appointments):
            appointment = appointments[aid]
            queue = queues[str(appointment["doctor"])]
            response = await api.get(f"/api/queue/appointment/{spell(aid, upper_reads)}/position",
                                     token=patient.token)
            expect(response, 200, what="position read")
            wanted = expected_position(queue, appointment)
            assert parsed(response.body) == wanted, (context, f"position of {aid}", response.body, wanted)
            update = tap.last("queue:update", "appointmentId", aid)
            assert update is not None and update["date"] == format_utc(appointment["date"]), (context, update)
            assert without_date(update) == as_update(response.body), (
                context, f"{tap.name}'s last queue:update for {aid} is stale", update, response.body)
            # turn:now: once when called (live or while the actors were deaf), and once more to a
            # patient who joins the room of a consultation already running.
            turns = [f["data"] for f in new_frames if f["event"] == "turn:now" and f["data"]["appointmentId"] == aid]
            rejoined_running = aid in step.rejoined and appointment["status"] == "in_consultation"
            if step.strict or aid not in step.rejoined:
                wanted_turns = 1 if aid in turned or rejoined_running else 0
                assert len(turns) == wanted_turns, (context, f"{aid}: {len(turns)} turn:now, not {wanted_turns}",
                                                    turns)
            else:
                assert len(turns) <= 1, (context, f"{aid}: {len(turns)} turn:now", turns)
            if turns:
                shown = await api.get(f"/api/appointments/{aid}", token=patient.token)
                expect(shown, 200, what="appointment read")
                assert shown.body["joinUrl"] and turns[0] == {"appointmentId": aid,
                                                              "joinUrl": shown.body["joinUrl"]}, (
                    context, turns, shown.body)
            # turn:soon: once when it first comes within reach today (next, or due within SOON_MINUTES),
            # to a room that was watched when that happened.
            soons = [f["data"] for f in new_frames if f["event"] == "turn:soon" and f["data"]["appointmentId"] == aid]
            if step.strict:
                due = aid in soon and aid not in world.soon and aid in subscribed_before[tap_index]
                assert len(soons) == int(due), (context, f"{aid}: {len(soons)} turn:soon, due: {due}", soons)
                if soons:
                    assert parsed(soons[0]) == soon[aid], (context, soons, soon[aid])
    world.soon = soon

    # 3. What the operation pushed: nothing for one that changed nothing; one change at most per room
    # for one published change.
    for tap, mark, barrier in zip(world.taps, marks, barriers):
        pushed = [f for f in tap.frames[mark:barrier] if f["event"] != "pong"]
        if step.quiet:
            assert not pushed, (context, f"{tap.name} was pushed to by an operation that changed nothing", pushed)
        if step.one_change:
            rooms = [(f["event"], room_of(f)) for f in pushed if f["event"] != "turn:soon"]
            repeated = {room for room in rooms if rooms.count(room) > 1}
            assert not repeated, (context, f"{tap.name} heard one change more than once", repeated, pushed)
    for tap in world.taps:
        assert not [f for f in tap.frames if f["event"] == "error"], (context, tap.name, "error frame")


async def run_operations(ops: list[tuple]) -> None:
    harness = await start_harness(clock=FrozenClock.late_in_the_day(), tick_seconds=3600, settings=MODEL_SETTINGS)
    world = None
    try:
        world = await build_world(harness)
        marks = await settle(world)
        for op in ops:
            doctors, before = await read_store(world)
            subscribed_before = [set(p.tap.appointments) for p in world.patients]
            step = Step(strict=op[0] != "burst")
            what = await apply(world, op, before, doctors, step)
            step.settle_expectations(op[0])
            world.log.append(what)
            barriers = await settle(world)
            await check(world, marks, barriers, step, before, subscribed_before)
            marks = barriers
        # Nothing arrives late: after a quiet spell every socket still agrees with the REST reads.
        await asyncio.sleep(0.2)
        world.log.append("a quiet spell")
        barriers = await settle(world)
        await check(world, marks, barriers, Step(quiet=True), (await read_store(world))[1],
                    [set(p.tap.appointments) for p in world.patients])
    finally:
        if world is not None:
            for tap in world.taps:
                await tap.close()
        await stop_harness(harness)
        harness.api.http.close()


@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(ops=st.lists(OPERATIONS, min_size=30, max_size=45))
def run_model(runner: LoopThread, ops: list[tuple]) -> None:
    runner.run(run_operations(ops))


@pytest.mark.slow  # 8 examples of 30-45 operations, each on a fresh server: about 30 s
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
    harness = await start_harness(clock=FrozenClock(), tick_seconds=3600, settings=MODEL_SETTINGS)
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
    assert without_date(updates[-1]) == as_update(position.body)
    assert (position.body["status"], position.body["isRunningLate"], position.body["lateByMinutes"]) == (
        "cancelled", False, 0)
    # A client that subscribes only now hears the same.
    late_comer = await frozen.ws(patient)
    await late_comer.send({"type": "queue:subscribe", "appointmentId": booked["id"]})
    assert (await late_comer.expect("queue:update"))["data"] == updates[-1]
    socket.close()
    late_comer.close()
