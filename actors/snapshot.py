"""An immutable picture of one doctor's queues at one instant, and the payloads drawn from it.

The actor builds a new snapshot after every message; handlers read positions from it with no store
round trip, and the WebSocket outboxes render the doctor room's `queue:state` from it per viewer.
Payload shapes here are the ones the API contract fixes for `queue:update`, `queue:state` and the REST reads.

The waiting appointments are kept in one list in queue order (date, createdAt, id). Since that order
sorts by date, each clinic day is a contiguous run of it: today's queue is the run up to the end of
today (so earlier days' unresolved appointments sit at its head), and each later day is its own run,
with positions counted from 0 and ETAs estimated by the same rule, without today's consultation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from actors.eta import Estimate, delay_minutes, estimate_queue, minutes_until
from actors.learning import DoctorStats
from core.days import ClinicCalendar
from core.doctors import DEFAULT_AVG_CONSULT_MINUTES
from core.hours import DEFAULT_SLOT_MINUTES
from core.statuses import WAITING
from core.values import format_utc

__all__ = ["WAITING", "QueueEntry", "DoctorSettings", "QueueSnapshot", "finished_update"]


@dataclass(slots=True)
class QueueEntry:
    """The part of an appointment a queue needs."""

    id: str
    patient: str
    patient_name: str
    date: datetime
    created_at: datetime
    status: str
    reason: str
    started_at: datetime | None
    version: int
    join_url: str | None = None

    @classmethod
    def from_document(cls, doc: dict) -> "QueueEntry":
        return cls(id=str(doc["_id"]), patient=str(doc["patient"]), patient_name=doc.get("patientName", ""),
                   date=doc["date"], created_at=doc["createdAt"], status=doc["status"],
                   reason=doc.get("reason", ""), started_at=doc.get("startedAt"),
                   version=int(doc.get("version", 0)), join_url=doc.get("joinUrl"))

    @property
    def order(self) -> tuple:
        return (self.date, self.created_at, self.id)


@dataclass(frozen=True)
class DoctorSettings:
    """The doctor's fields the ETA rule reads. `away_until` is the break as stored; `away_at(now)`
    says whether it still holds (a break that has passed is no break, and is shown as none)."""

    avg_consult_minutes: int
    is_running_late: bool
    late_by_minutes: int
    away_until: datetime | None = None
    hours: tuple[dict, ...] = ()          # working hours (`core.hours`); () → bookings at any time
    slot_minutes: int = DEFAULT_SLOT_MINUTES

    @classmethod
    def from_document(cls, doc: dict) -> "DoctorSettings":
        return cls(int(doc.get("avgConsultMinutes", DEFAULT_AVG_CONSULT_MINUTES)),
                   bool(doc.get("isRunningLate", False)), int(doc.get("lateByMinutes", 0)),
                   doc.get("awayUntil"), tuple(doc.get("hours") or ()),
                   int(doc.get("slotMinutes", DEFAULT_SLOT_MINUTES)))

    @classmethod
    def defaults(cls) -> "DoctorSettings":
        return cls(DEFAULT_AVG_CONSULT_MINUTES, False, 0, None)

    @property
    def effective_late_minutes(self) -> int:
        return self.late_by_minutes if self.is_running_late else 0

    def away_at(self, now: datetime) -> datetime | None:
        return self.away_until if self.away_until is not None and self.away_until > now else None

    def status_payload(self, doctor_id: str, now: datetime) -> dict:
        return {"doctorId": doctor_id, "isRunningLate": self.is_running_late,
                "lateByMinutes": self.late_by_minutes, "avgConsultMinutes": self.avg_consult_minutes,
                "awayUntil": format_utc(self.away_at(now))}


def finished_update(appointment_id: str, status: str, booked: datetime | None) -> dict:
    """The last `queue:update` of an appointment that left the queue (completed, cancelled, no-show).

    Nothing about it moves any more, so it carries none of the doctor's lateness: a later status
    change is not pushed to rooms of appointments that left, and a REST read must not disagree."""
    return {"appointmentId": appointment_id, "status": status, "date": format_utc(booked), "position": -1,
            "etaMinutes": 0,
            "expectedStartAt": None, "earliestStartAt": None, "latestStartAt": None, "delayMinutes": 0,
            "isRunningLate": False, "lateByMinutes": 0}


@dataclass
class QueueSnapshot:
    doctor_id: str
    settings: DoctorSettings
    in_consultation: QueueEntry | None
    waiting: tuple[QueueEntry, ...]           # every waiting appointment, all days, in queue order
    estimates: tuple[Estimate, ...]           # aligned with `waiting`; positions count within a day
    computed_at: datetime
    today: date
    days: dict[date, range]                   # clinic day → its slice of `waiting`
    present: frozenset[str] = frozenset()     # appointments whose patient is watching right now
    held: frozenset[datetime] = frozenset()   # slot starts held by an appointment, today and later
    _index: dict[str, int] = field(default_factory=dict)
    _staff_lists: dict = field(default_factory=dict)
    _public_lists: dict = field(default_factory=dict)
    _patients: frozenset | None = None
    _own: dict = field(default_factory=dict)        # (day, patient) → offsets of their entries in the day
    _encoded: dict = field(default_factory=dict)    # frames encoded from this snapshot (state_frames)

    @classmethod
    def compute(cls, doctor_id: str, settings: DoctorSettings, in_consultation: QueueEntry | None,
                waiting: tuple[QueueEntry, ...], now: datetime, calendar: ClinicCalendar,
                present: frozenset[str] = frozenset(), *, stats: DoctorStats | None = None,
                learning: bool = True, held: frozenset[datetime] = frozenset()) -> "QueueSnapshot":
        today = calendar.day_of(now)
        days: dict[date, range] = {}
        start = 0
        while start < len(waiting):  # runs of equal clinic day; earlier days join today's run
            day = max(today, calendar.day_of(waiting[start].date))
            end_of_day = calendar.end_of(day)
            stop = start
            while stop < len(waiting) and waiting[stop].date < end_of_day:
                stop += 1
            days[day] = range(start, stop)
            start = stop
        estimates: list[Estimate] = []
        for day, span in days.items():
            estimates.extend(estimate_queue(
                [waiting[i].date for i in span], now=now, avg_minutes=settings.avg_consult_minutes,
                late_minutes=settings.effective_late_minutes, away_until=settings.away_at(now),
                consultation_started_at=in_consultation.started_at if in_consultation and day == today
                else None, stats=stats, learning=learning))
        return cls(doctor_id, settings, in_consultation, waiting, tuple(estimates), now, today, days, present,
                   held, {entry.id: i for i, entry in enumerate(waiting)})

    def contains(self, appointment_id: str) -> bool:
        return appointment_id in self._index or (
            self.in_consultation is not None and self.in_consultation.id == appointment_id)

    def entry(self, appointment_id: str) -> QueueEntry | None:
        if appointment_id in self._index:
            return self.waiting[self._index[appointment_id]]
        if self.in_consultation is not None and self.in_consultation.id == appointment_id:
            return self.in_consultation
        return None

    @property
    def away_until(self) -> datetime | None:
        return self.settings.away_at(self.computed_at)

    # -- one appointment -------------------------------------------------------------------------
    def update_for(self, appointment_id: str) -> dict | None:
        """`queue:update` data for an appointment in this queue; None if it is not in it."""
        settings = self.settings
        index = self._index.get(appointment_id)
        if index is not None:
            entry, estimate = self.waiting[index], self.estimates[index]
            return {"appointmentId": appointment_id, "status": entry.status, "date": format_utc(entry.date),
                    "position": estimate.position,
                    "etaMinutes": estimate.eta_minutes,
                    "expectedStartAt": format_utc(estimate.expected_start_at),
                    "earliestStartAt": format_utc(estimate.earliest_start_at),
                    "latestStartAt": format_utc(estimate.latest_start_at),
                    "delayMinutes": estimate.delay_minutes,
                    "isRunningLate": settings.is_running_late, "lateByMinutes": settings.late_by_minutes}
        current = self.in_consultation
        if current is not None and current.id == appointment_id:
            started = format_utc(current.started_at)  # the range has closed on the real start
            return {"appointmentId": appointment_id, "status": current.status, "date": format_utc(current.date),
                    "position": -1,
                    "etaMinutes": 0, "expectedStartAt": started, "earliestStartAt": started, "latestStartAt": started,
                    "delayMinutes": estimate_delay(current.date, current.started_at),
                    "isRunningLate": settings.is_running_late, "lateByMinutes": settings.late_by_minutes}
        return None

    def appointment_ids(self) -> list[str]:
        ids = [entry.id for entry in self.waiting]
        if self.in_consultation is not None:
            ids.append(self.in_consultation.id)
        return ids

    def today_ids(self) -> list[str]:
        span = self.days.get(self.today, range(0))
        return [self.waiting[i].id for i in span]

    # -- the whole queue of one day, per viewer ----------------------------------------------------
    def state_for(self, staff: bool, viewer_id: str | None, day: date | None = None) -> dict:
        """`queue:state` / `GET /api/queue/doctor/{id}`: names for the doctor and admins only."""
        return self.state_variant(staff, viewer_id, day)[1]

    def state_variant(self, staff: bool, viewer_id: str | None, day: date | None = None) -> tuple[str | None, dict]:
        """The state for a viewer, with a key shared by every viewer who sees exactly the same
        (None when it is personal: the viewer has an appointment in this queue)."""
        day = self.today if day is None else day
        settings = self.settings
        in_consultation = self.in_consultation if day == self.today else None
        if staff:
            variant = "staff"
            listing, current = self._staff_entries(day), _staff_current(in_consultation)
        else:
            listing = self._public_entries(day, viewer_id)
            current = _public_current(in_consultation, viewer_id)
            variant = None if self.is_personal(viewer_id, day) else "public"
        return variant, {"doctorId": self.doctor_id, "date": day.isoformat(),
                         "isRunningLate": settings.is_running_late, "lateByMinutes": settings.late_by_minutes,
                         "avgConsultMinutes": settings.avg_consult_minutes,
                         "awayUntil": format_utc(self.away_until),
                         "inConsultation": current, "list": listing}

    def is_personal(self, viewer_id: str | None, day: date) -> bool:
        """Whether a (non-staff) viewer's state of that day differs from the public one: they have an
        appointment waiting (any day: the list marks it `mine`) or in consultation. Cheap, so a room
        of thousands can be told apart from the shared frame without building each one's state."""
        if self._patients is None:
            self._patients = frozenset(e.patient for e in self.waiting)
        in_consultation = self.in_consultation if day == self.today else None
        return viewer_id in self._patients or (in_consultation is not None and in_consultation.patient == viewer_id)

    def _span(self, day: date) -> range:
        return self.days.get(day, range(0))

    def _staff_entries(self, day: date) -> list:
        if day not in self._staff_lists:
            self._staff_lists[day] = [
                {"appointmentId": e.id, "patient": e.patient, "patientName": e.patient_name,
                 "date": format_utc(e.date), "status": e.status, "reason": e.reason, "position": est.position,
                 "etaMinutes": est.eta_minutes, "expectedStartAt": format_utc(est.expected_start_at),
                 "earliestStartAt": format_utc(est.earliest_start_at),
                 "latestStartAt": format_utc(est.latest_start_at),
                 "delayMinutes": est.delay_minutes, "present": e.id in self.present}
                for e, est in ((self.waiting[i], self.estimates[i]) for i in self._span(day))]
        return self._staff_lists[day]

    def soon(self, soon_minutes: int) -> dict[str, dict]:
        """`turn:soon` data of today's appointments that are next, or whose `earliestStartAt` ("be
        ready by") is within `soon_minutes`."""
        found = {}
        for i in self._span(self.today):
            estimate = self.estimates[i]
            if estimate.position != 0 and minutes_until(self.computed_at, estimate.earliest_start_at) > soon_minutes:
                continue
            entry_id = self.waiting[i].id
            found[entry_id] = {"appointmentId": entry_id, "position": estimate.position,
                               "etaMinutes": estimate.eta_minutes,
                               "expectedStartAt": format_utc(estimate.expected_start_at),
                               "earliestStartAt": format_utc(estimate.earliest_start_at)}
        return found

    def _public_entries(self, day: date, viewer_id: str | None) -> list:
        if day not in self._public_lists:
            self._public_lists[day] = [
                {"position": est.position, "date": format_utc(e.date), "status": e.status,
                 "etaMinutes": est.eta_minutes, "expectedStartAt": format_utc(est.expected_start_at),
                 "earliestStartAt": format_utc(est.earliest_start_at),
                 "latestStartAt": format_utc(est.latest_start_at),
                 "delayMinutes": est.delay_minutes, "mine": False}
                for e, est in ((self.waiting[i], self.estimates[i]) for i in self._span(day))]
        shared = self._public_lists[day]
        own = self.own_offsets(day, viewer_id)
        if not own:
            return shared  # shared by every viewer with nothing of their own here
        listing = list(shared)
        for offset in own:
            entry = self.waiting[self._span(day)[offset]]
            listing[offset] = {**listing[offset], "mine": True, "appointmentId": entry.id}
        return listing

    def own_offsets(self, day: date, viewer_id: str | None) -> tuple[int, ...]:
        """Where the viewer's own appointments sit in the day's list: indexed once per snapshot and
        day, so a room of thousands of patients does not scan the list once per patient."""
        if self._patients is None:
            self._patients = frozenset(e.patient for e in self.waiting)
        if viewer_id is None or viewer_id not in self._patients:
            return ()
        if (day, None) not in self._own:
            self._own[(day, None)] = True
            for offset, i in enumerate(self._span(day)):
                key = (day, self.waiting[i].patient)
                self._own[key] = self._own.get(key, ()) + (offset,)
        return self._own.get((day, viewer_id), ())


def estimate_delay(booked: datetime, start: datetime | None) -> int:
    return delay_minutes(booked, start) if start is not None else 0


def _staff_current(e: QueueEntry | None) -> dict | None:
    if e is None:
        return None
    return {"appointmentId": e.id, "patient": e.patient, "patientName": e.patient_name,
            "date": format_utc(e.date), "status": e.status, "reason": e.reason,
            "startedAt": format_utc(e.started_at)}


def _public_current(e: QueueEntry | None, viewer_id: str | None) -> dict | None:
    if e is None:
        return None
    current: dict[str, Any] = {"date": format_utc(e.date), "status": e.status,
                               "startedAt": format_utc(e.started_at), "mine": e.patient == viewer_id}
    if current["mine"]:
        current["appointmentId"] = e.id
    return current
