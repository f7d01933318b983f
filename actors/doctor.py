"""One doctor's live queue: the only place positions and ETAs are computed and pushed.

The actor loads the doctor's waiting and in-consultation appointments once, then applies every change
it is told of. After each message it builds a new `QueueSnapshot`, compares every appointment's
`queue:update` with what was last published for it, and publishes only what moved — to **every**
appointment the change moved, not just the edited one (the original design's stale-queue bug).

Stale or repeated messages (a bus may deliver late or twice) are recognised by the appointment's
`version`, which the store bumps on every write.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Callable

from actors.base import Actor
from actors.hub import Hub, Outgoing, appointment_room, doctor_room
from actors.eta_score import PublishedStarts
from actors.learning import DoctorStats, apply_all, events_for
from actors.messages import AppointmentChanged, DoctorChanged, DoctorDeleted, Reload
from actors.snapshot import WAITING, DoctorSettings, QueueEntry, QueueSnapshot, finished_update
from server import metrics
from server.errors import StoreUnavailable
from server.values import to_object_id

log = logging.getLogger("medpharma.actors")

# Positions and ETAs read through REST are re-estimated when the snapshot is older than this.
READ_FRESHNESS = timedelta(seconds=1)
# An expectedStartAt that drifts by less than this (with nothing else moving) is not worth a push.
START_DRIFT = timedelta(minutes=1)
# Versions of appointments that left the queue, kept to ignore late duplicates about them.
GONE_MEMORY = 2048


class DoctorNotFound(LookupError):
    pass


class DoctorActor(Actor):
    # An unknown doctor or an unreachable store fails the load; the actor stays unloaded and tries
    # again on its next message.
    expected_errors = (DoctorNotFound, StoreUnavailable)

    def __init__(self, doctor_id: str, *, store, hub: Hub, clock: Callable[[], datetime],
                 index: dict[str, str], learning: bool = True):
        super().__init__(f"doctor:{doctor_id}")
        self.doctor_id = doctor_id
        self.store = store
        self.hub = hub
        self.clock = clock
        self.index = index  # appointment id → doctor id, shared by all actors via the registry
        self.learning = learning  # False (ETA_LEARNING=off): estimates follow the plain rule
        self._reset()

    def _reset(self) -> None:
        for appointment_id in getattr(self, "_entries", {}):
            self.index.pop(appointment_id, None)
        self.loaded = False
        self.deleted = False
        self.settings = DoctorSettings(12, False, 0)
        self.stats = DoctorStats()
        self._published_starts = PublishedStarts()
        self._entries: dict[str, QueueEntry] = {}
        self._waiting: list[QueueEntry] = []
        self._current: QueueEntry | None = None
        self._gone: OrderedDict[str, int] = OrderedDict()
        self._sent: dict[str, tuple] = {}
        self._sent_state: tuple | None = None
        self._sent_settings: DoctorSettings | None = None
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

    def watched(self) -> bool:
        if self.hub.watched(doctor_room(self.doctor_id)):
            return True
        return any(self.hub.watched(appointment_room(a)) for a in self._entries)

    # -- the mailbox ---------------------------------------------------------------------------
    async def receive(self, message, queued_at: float):
        if isinstance(message, DoctorDeleted):
            self._forget_all()
            self.deleted = True
            return None
        if isinstance(message, Reload):
            self._reset()
        if not self.loaded:
            await self._load()
        if isinstance(message, AppointmentChanged):
            self._apply_appointment(message.appointment)
        elif isinstance(message, DoctorChanged):
            self._apply_doctor(message.doctor)
        self._publish(queued_at)
        return self.snapshot

    async def on_restart(self) -> None:
        self._reset()
        await self._load()
        self._publish(time.perf_counter())

    async def _load(self) -> None:
        doctor_oid = to_object_id(self.doctor_id)
        doctor = await self.store.find_doctor(doctor_oid) if doctor_oid is not None else None
        if doctor is None:
            raise DoctorNotFound(self.doctor_id)
        documents = await self.store.active_appointments_of_doctor(doctor_oid)
        self.stats = DoctorStats.from_document(await self.store.find_doctor_stats(doctor_oid))
        self._apply_doctor(doctor)
        self._sent_settings = self.settings  # a fresh load is not a status change
        for document in documents:
            self._apply_appointment(document, loading=True)
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
    def _apply_appointment(self, document: dict, loading: bool = False) -> None:
        """Moves one appointment in or out of the queue. While loading, nothing is announced: a
        consultation that started before this actor existed is not a new `turn:now`."""
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
        if not loading:
            # The write workflow stored the same lessons (server.consultations.learn_from).
            self.stats = apply_all(self.stats, events_for(self.stats, document))
        if entry.status in WAITING:
            bisect.insort(self._waiting, entry, key=lambda e: e.order)
            self._track(entry)
        elif entry.status == "in_consultation":
            if self._current is not None and self._current.id != entry.id:
                log.warning("two consultations reported; keeping the newest", extra={"doctor": self.doctor_id})
                self._remove(self._current)
            self._current = entry
            self._track(entry)
            if not loading and known is not None and known.status in WAITING:
                self._score_eta(entry)
            if not loading and (known is None or known.status != "in_consultation"):
                self.hub.publish(appointment_room(entry.id), Outgoing(
                    "turn:now", {"appointmentId": entry.id, "joinUrl": document.get("joinUrl")}))
        else:
            self._published_starts.forget(entry.id)
            self._remember_gone(entry)
            if known is not None or entry.id in self._sent:
                self.hub.publish(appointment_room(entry.id),
                                 Outgoing("queue:update", finished_update(entry.id, entry.status)),
                                 key=f"queue:update:{entry.id}")
            self._sent.pop(entry.id, None)

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
        return QueueSnapshot.compute(self.doctor_id, self.settings, self._current, tuple(self._waiting), now,
                                     stats=self.stats, learning=self.learning)

    def _publish(self, queued_at: float) -> None:
        snapshot = self.snapshot = self._compute(self.clock())
        hub = self.hub
        signatures = []
        for appointment_id in snapshot.appointment_ids():
            update = snapshot.update_for(appointment_id)
            signature = (update["status"], update["position"], update["etaMinutes"],
                         update["isRunningLate"], update["lateByMinutes"])
            if self._moved(appointment_id, signature, update["expectedStartAt"]):
                self._sent[appointment_id] = (signature, update["expectedStartAt"])
                if update["position"] >= 0:
                    self._published_starts.record(appointment_id, snapshot.computed_at,
                                                  snapshot.estimates[update["position"]].expected_start_at)
                hub.publish(appointment_room(appointment_id), Outgoing("queue:update", update),
                            key=f"queue:update:{appointment_id}")
            # What the appointment's room was last told, expectedStartAt included: the doctor's room
            # hears of every move its appointments' rooms hear of.
            signatures.append((appointment_id, self._sent[appointment_id]))

        if self._sent_settings != self.settings:
            self._sent_settings = self.settings
            hub.publish(doctor_room(self.doctor_id),
                        Outgoing("doctor:status", self.settings.status_payload(self.doctor_id)))

        state_signature = (self.settings, self._current.id if self._current else None, tuple(signatures))
        if state_signature != self._sent_state:
            self._sent_state = state_signature
            hub.publish(doctor_room(self.doctor_id), Outgoing("queue:state", render=_state_renderer(snapshot)),
                        key=f"queue:state:{self.doctor_id}")
        metrics.push_lag_seconds.observe(time.perf_counter() - queued_at)

    def _score_eta(self, entry: QueueEntry) -> None:
        """A consultation started: how far off was what its patient was told 30 minutes before?"""
        if entry.started_at is None:
            return
        error = self._published_starts.error_minutes(entry.id, entry.started_at)
        if error is not None:
            metrics.eta_error_minutes.observe(error)

    def _moved(self, appointment_id: str, signature: tuple, expected_start_at: str | None) -> bool:
        """Anything but expectedStartAt changed, or expectedStartAt drifted by a minute or more."""
        sent = self._sent.get(appointment_id)
        if sent is None or sent[0] != signature:
            return True
        if sent[1] == expected_start_at:
            return False
        return _drift(sent[1], expected_start_at) >= START_DRIFT


def _drift(previous: str | None, current: str | None) -> timedelta:
    if previous is None or current is None:
        return START_DRIFT
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return abs(parse(current) - parse(previous))


def _state_renderer(snapshot: QueueSnapshot):
    """`queue:state` for one viewer: the doctor and admins see names, everyone else does not."""

    def render(viewer) -> tuple[str | None, dict]:
        staff = viewer.is_admin or viewer.is_doctor_of(snapshot.doctor_id)
        return snapshot.state_variant(staff, viewer.user_id)

    return render
