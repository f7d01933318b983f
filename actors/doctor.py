"""One doctor's live queue: the only place positions and ETAs are computed and pushed.

The actor loads the doctor's waiting and in-consultation appointments once, then applies every change
it is told of. After each message it builds a new `QueueSnapshot`, compares every appointment's
`queue:update` with what was last published for it, and publishes only what moved — to **every**
appointment the change moved, not just the edited one (the original design's stale-queue bug).

What was last published (per appointment, the doctor's status, the doctor room's state, which
consultations were announced with `turn:now`) is remembered apart from the queue itself and survives
a reload or a crash-restart: the queue is rebuilt from the store and the difference against that
memory is pushed — whatever changed while the actor was deaf reaches its watchers, and nothing they
already have is sent again.

Stale or repeated messages (a bus may deliver late or twice) are recognised by the appointment's
`version`, which the store bumps on every write.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Callable, NamedTuple

from actors.base import Actor
from actors.rooms import Outgoing, Rooms, appointment_room, doctor_room
from actors.learning import DoctorStats, apply_all, events_for
from actors.messages import Reload
from core.bus_messages import AppointmentsChanged, DoctorChanged, DoctorDeleted
from actors.presence import Presence
from actors.snapshot import DoctorSettings, QueueEntry, QueueSnapshot, finished_update
from actors.state_frames import state_message
from core import metrics
from core.days import ClinicCalendar
from core.doctors import DEFAULT_SOON_MINUTES, DELAY_NOTICE_MINUTES
from core.errors import StoreUnavailable
from core.statuses import IN_CONSULTATION, WAITING
from core.values import to_object_id

log = logging.getLogger("medpharma.actors")

# Positions and ETAs read through REST are re-estimated when the snapshot is older than this.
READ_FRESHNESS = timedelta(seconds=1)
# A time of the range (expected, earliest, latest) that drifts by less than this (with nothing else
# moving) is not worth a push.
START_DRIFT = timedelta(minutes=1)
# Versions of appointments that left the queue, kept to ignore late duplicates about them.
GONE_MEMORY = 2048
# The ETA keeps score of what it told this long before a consultation started (the API contract).
SCORE_HORIZON = timedelta(minutes=30)


class DoctorNotFound(LookupError):
    pass


class Told(NamedTuple):
    """What an appointment's watchers were told of its start: the best guess and the range."""

    expected: datetime
    earliest: datetime
    latest: datetime

    def outcome(self, started_at: datetime) -> str:
        """Where a real start fell against the range: `early`, `inside` or `late` (the metric's labels)."""
        if started_at < self.earliest:
            return "early"
        return "late" if started_at > self.latest else "inside"


class DoctorActor(Actor):
    # An unknown doctor or an unreachable store fails the load; the actor stays unloaded and tries
    # again on its next message.
    expected_errors = (DoctorNotFound, StoreUnavailable)

    def __init__(self, doctor_id: str, *, store, hub: Rooms, clock: Callable[[], datetime],
                 calendar: ClinicCalendar, index: dict[str, str], presence: Presence | None = None,
                 soon_minutes: int = DEFAULT_SOON_MINUTES, learning: bool = True,
                 notify: Callable[[str, str, dict], None] | None = None):
        super().__init__(f"doctor:{doctor_id}")
        self.doctor_id = doctor_id
        self.store = store
        self.hub = hub
        self.clock = clock
        self.calendar = calendar
        self.index = index  # appointment id → doctor id, shared by all actors via the registry
        self.presence = presence or Presence()
        self.soon_minutes = soon_minutes
        self.learning = learning  # False (ETA_LEARNING=off): estimates follow the plain rule
        # Told of what a closed page should still hear (`turn:soon`, its end, a grown delay): synchronous
        # and cheap (it queues an event); the notifications decide, once across nodes, what is news.
        self.notify = notify
        self._delay_told: dict[str, int] = {}  # appointment → delayMinutes when `notify` was last told
        # What watchers were last told; kept across reloads (see the module docstring).
        self._sent: dict[str, tuple] = {}
        self._soon: set[str] = set()       # appointments told turn:soon and still soon
        self._expectations: dict[str, list[tuple[datetime, Told]]] = {}  # id → (told at, the range told)
        self._sent_state: tuple | None = None
        self._sent_status: dict | None = None
        self._announced: set[str] = set()  # consultations whose turn:now went out
        self._published = False            # False until the first publish: that one is the baseline
        self._reset_queue()

    def _reset_queue(self) -> None:
        for appointment_id in getattr(self, "_entries", {}):
            self.index.pop(appointment_id, None)
        self.loaded = False
        self.settings = DoctorSettings.defaults()
        self.stats = DoctorStats()
        self._entries: dict[str, QueueEntry] = {}
        self._waiting: list[QueueEntry] = []
        self._current: QueueEntry | None = None
        self._gone: OrderedDict[str, int] = OrderedDict()
        self._held: dict[str, datetime] = {}  # appointment id → the slot start it holds (see `held_slots`)
        self._doctor_version = -1
        self.snapshot: QueueSnapshot | None = None

    # -- reads (synchronous; safe because nothing else runs between two awaits) --------------------
    def view(self) -> QueueSnapshot:
        """The current snapshot, re-estimated if time has moved since it was built."""
        now = self.clock()
        if self.snapshot is None or now - self.snapshot.computed_at >= READ_FRESHNESS:
            self.snapshot = self._compute(now)
        return self.snapshot

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    @property
    def has_entries(self) -> bool:
        return bool(self._entries)

    def watched(self) -> bool:
        if self.hub.watched(doctor_room(self.doctor_id)):
            return True
        return any(self.hub.watched(appointment_room(a)) for a in self._entries)

    # -- the mailbox ---------------------------------------------------------------------------
    async def receive(self, message, queued_at: float):
        if isinstance(message, DoctorDeleted):
            self._forget_all()
            return None
        if isinstance(message, Reload):
            self._reset_queue()
        if not self.loaded:
            await self._load()
        if isinstance(message, AppointmentsChanged):
            for document in message.appointments:
                self._apply_appointment(document)
        elif isinstance(message, DoctorChanged):
            self._apply_doctor(message.doctor)
        self._publish(queued_at)
        return self.snapshot

    async def on_restart(self) -> None:
        self._reset_queue()
        await self._load()
        self._publish(time.perf_counter())

    async def _load(self) -> None:
        """Reads the doctor and its active appointments; then settles appointments that were
        published as in the queue but left it while this actor was not listening."""
        doctor_oid = to_object_id(self.doctor_id)
        doctor = await self.store.find_doctor(doctor_oid) if doctor_oid is not None else None
        if doctor is None:
            raise DoctorNotFound(self.doctor_id)
        documents = await self.store.active_appointments_of_doctor(doctor_oid)
        self.stats = DoctorStats.from_document(await self.store.find_doctor_stats(doctor_oid))
        self._apply_doctor(doctor)
        since = self.calendar.start_of(self.calendar.day_of(self.clock()))
        self._held = {str(d["_id"]): d["date"] for d in await self.store.held_slots_of_doctor(doctor_oid, since)}
        for document in documents:
            self._apply_appointment(document)
        missed = [appointment_id for appointment_id in self._sent if appointment_id not in self._entries]
        if missed:
            for document in await self.store.find_appointments([to_object_id(i) for i in missed]):
                self._apply_appointment(document)
            for appointment_id in missed:  # gone from the store altogether: nothing left to tell
                self._sent.pop(appointment_id, None)
        self.loaded = True

    def _apply_doctor(self, doctor: dict) -> None:
        """New settings, unless this is an older write arriving late (a bus gives no order): the store
        bumps the doctor's `version` on every write, as it does an appointment's."""
        version = int(doctor.get("version", 0))
        if version < self._doctor_version:
            return
        self._doctor_version = version
        self.settings = DoctorSettings.from_document(doctor)

    # -- applying changes ------------------------------------------------------------------------
    def _apply_appointment(self, document: dict) -> None:
        """Moves one appointment in or out of the queue; one that left gets its final update."""
        entry = QueueEntry.from_document(document)
        if str(document.get("doctor")) != self.doctor_id:
            log.warning("appointment routed to the wrong doctor", extra={"appointmentId": entry.id})
            return
        known = self._entries.get(entry.id)
        if known is not None and entry.version <= known.version:
            return
        if known is None and entry.version <= self._gone.get(entry.id, -1):
            return
        if known is not None:
            self._remove(known)
            if known.date != entry.date:  # rescheduled: what was told of the old time scores nothing
                self._expectations.pop(entry.id, None)
        if "slot" in document:
            self._held[entry.id] = entry.date
        else:
            self._held.pop(entry.id, None)
        # The write workflow stored the same lessons (domain.learning); each is keyed, so one
        # already loaded with the statistics is not learned twice.
        self.stats = apply_all(self.stats, events_for(self.stats, document))
        if entry.status in WAITING:
            bisect.insort(self._waiting, entry, key=lambda e: e.order)
            self._track(entry)
        elif entry.status == IN_CONSULTATION:
            if self._current is not None and self._current.id != entry.id:
                log.warning("two consultations reported; keeping the newest", extra={"doctor": self.doctor_id})
                self._remove(self._current)
            self._current = entry
            self._track(entry)
        else:
            self._remember_gone(entry)
            self._announced.discard(entry.id)
            self._expectations.pop(entry.id, None)
            self._delay_told.pop(entry.id, None)
            if entry.id in self._sent:
                self._sent.pop(entry.id)
                self.hub.publish(appointment_room(entry.id),
                                 Outgoing("queue:update", finished_update(entry.id, entry.status, entry.date)),
                                 key=f"queue:update:{entry.id}")

    def _track(self, entry: QueueEntry) -> None:
        self._entries[entry.id] = entry
        self.index[entry.id] = self.doctor_id

    def _remove(self, entry: QueueEntry) -> None:
        self._entries.pop(entry.id, None)
        self.index.pop(entry.id, None)
        if self._current is not None and self._current.id == entry.id:
            self._current = None
            return
        i = bisect.bisect_left(self._waiting, entry.order, key=lambda e: e.order)
        if i < len(self._waiting) and self._waiting[i].id == entry.id:
            del self._waiting[i]

    def _remember_gone(self, entry: QueueEntry) -> None:
        self._gone[entry.id] = entry.version
        self._gone.move_to_end(entry.id)
        while len(self._gone) > GONE_MEMORY:
            self._gone.popitem(last=False)

    def _forget_all(self) -> None:
        for entry in list(self._entries.values()):
            self.index.pop(entry.id, None)
        self._entries.clear()
        self._waiting.clear()
        self._current = None

    # -- publishing --------------------------------------------------------------------------------
    def _compute(self, now: datetime) -> QueueSnapshot:
        present = frozenset(i for i in self._entries if self.presence.is_present(i))
        return QueueSnapshot.compute(self.doctor_id, self.settings, self._current, tuple(self._waiting), now,
                                     self.calendar, present, stats=self.stats, learning=self.learning,
                                     held=self.held_slots(now))

    def held_slots(self, now: datetime) -> frozenset[datetime]:
        """The slot starts of today and later days that an appointment holds (waiting, in consultation
        or completed): the free slots of any day a patient can still book are answered from this, with
        no store round trip. Loaded with the queue; kept by every change the actor is told of (a
        document with `slot` holds it, one without frees it); earlier days are dropped as they pass."""
        since = self.calendar.start_of(self.calendar.day_of(now))
        if any(start < since for start in self._held.values()):
            self._held = {i: start for i, start in self._held.items() if start >= since}
        return frozenset(self._held.values())

    def _publish(self, queued_at: float) -> None:
        """Pushes what differs from what watchers were last told. The very first publish of a fresh
        actor is a baseline: it records, and announces no `turn:now` or `doctor:status` (nobody
        watched a queue that was not loaded; a subscriber is sent the current state when it joins)."""
        now = self.clock()
        snapshot = self.snapshot = self._compute(now)
        hub = self.hub
        baseline = not self._published
        self._published = True
        for appointment_id in snapshot.appointment_ids():
            update = snapshot.update_for(appointment_id)
            signature = (update["status"], update["date"], update["position"], update["etaMinutes"],
                         update["delayMinutes"], update["isRunningLate"], update["lateByMinutes"])
            times = (update["expectedStartAt"], update["earliestStartAt"], update["latestStartAt"])
            if self._moved(appointment_id, signature, times):
                self._sent[appointment_id] = (signature, times)
                hub.publish(appointment_room(appointment_id), Outgoing("queue:update", update),
                            key=f"queue:update:{appointment_id}")
                if update["status"] in WAITING:
                    self._remember_expectation(appointment_id, now, times)
                    if (self.notify is not None and update["delayMinutes"]
                            >= self._delay_told.get(appointment_id, 0) + DELAY_NOTICE_MINUTES):
                        self._delay_told[appointment_id] = update["delayMinutes"]
                        self.notify("delay", appointment_id, update)

        soon = snapshot.soon(self.soon_minutes)
        for appointment_id in soon.keys() - self._soon:
            if not baseline:
                hub.publish(appointment_room(appointment_id), Outgoing("turn:soon", soon[appointment_id]))
            if self.notify is not None:  # the baseline too: a push missed while no actor ran is still news
                self.notify("turn:soon", appointment_id, soon[appointment_id])
        if self.notify is not None:
            for appointment_id in self._soon - soon.keys():
                self.notify("soon:over", appointment_id, {})
        self._soon = set(soon)  # one that moved back beyond both forgets it was told: it may be told again

        current = self._current
        if current is not None and current.id not in self._announced:
            self._announced.add(current.id)
            if not baseline:
                hub.publish(appointment_room(current.id), Outgoing(
                    "turn:now", {"appointmentId": current.id, "joinUrl": current.join_url}))

        status = self.settings.status_payload(self.doctor_id, now)
        if status != self._sent_status:
            if not baseline:
                hub.publish(doctor_room(self.doctor_id), Outgoing("doctor:status", status))
            self._sent_status = status

        # The doctor room hears of every move its (today's) appointments' rooms hear of.
        state_signature = (snapshot.today, tuple(sorted(status.items())), current.id if current else None,
                           tuple((i, self._sent[i], i in snapshot.present) for i in snapshot.today_ids()))
        if state_signature != self._sent_state:
            self._sent_state = state_signature
            hub.publish(doctor_room(self.doctor_id), state_message(snapshot),
                        key=f"queue:state:{self.doctor_id}")
        metrics.push_lag_seconds.observe(time.perf_counter() - queued_at)

    # -- keeping score -------------------------------------------------------------------------------
    def _remember_expectation(self, appointment_id: str, now: datetime, times: tuple) -> None:
        """Keeps what was told and when, as far back as SCORE_HORIZON needs: of the told values older
        than the horizon only the newest can still be "the last one told 30 minutes before a start"."""
        told = self._expectations.setdefault(appointment_id, [])
        told.append((now, Told(*(_parse(t) for t in times))))
        while len(told) > 1 and told[1][0] <= now - SCORE_HORIZON:
            told.pop(0)

    def expectation_for(self, appointment_id: str, started_at: datetime) -> Told | None:
        """The range (expected, earliest, latest) last pushed for this appointment at least
        SCORE_HORIZON before `started_at`, or None if nothing was told that early (the API contract's
        self-scoring rule)."""
        chosen = None
        for told_at, told in self._expectations.get(appointment_id, ()):
            if told_at <= started_at - SCORE_HORIZON:
                chosen = told
        return chosen

    def _moved(self, appointment_id: str, signature: tuple, times: tuple) -> bool:
        """Anything but the three times changed, or one of them drifted by a minute or more."""
        sent = self._sent.get(appointment_id)
        if sent is None or sent[0] != signature:
            return True
        if sent[1] == times:
            return False
        return any(_drift(before, after) >= START_DRIFT for before, after in zip(sent[1], times) if before != after)


def _drift(previous: str | None, current: str | None) -> timedelta:
    if previous is None or current is None:
        return START_DRIFT
    return abs(_parse(current) - _parse(previous))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
