"""An immutable picture of one doctor's queue at one instant, and the payloads drawn from it.

The actor builds a new snapshot after every message; handlers read positions from it with no store
round trip, and the WebSocket outboxes render the doctor room's `queue:state` from it per viewer.
Payload shapes here are the ones API.md fixes for `queue:update`, `queue:state` and the REST reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.eta import Estimate, estimate_queue
from actors.learning import DoctorStats
from server.values import format_utc

WAITING = ("pending", "confirmed")


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
    avg_consult_minutes: int
    is_running_late: bool
    late_by_minutes: int
    away_until: datetime | None = None

    @classmethod
    def from_document(cls, doc: dict) -> "DoctorSettings":
        return cls(int(doc.get("avgConsultMinutes", 12)), bool(doc.get("isRunningLate", False)),
                   int(doc.get("lateByMinutes", 0)), doc.get("awayUntil"))

    @property
    def effective_late_minutes(self) -> int:
        return self.late_by_minutes if self.is_running_late else 0

    def status_payload(self, doctor_id: str) -> dict:
        return {"doctorId": doctor_id, "isRunningLate": self.is_running_late,
                "lateByMinutes": self.late_by_minutes, "avgConsultMinutes": self.avg_consult_minutes}


def finished_update(appointment_id: str, status: str) -> dict:
    """The last `queue:update` of an appointment that left the queue (completed, cancelled, no-show).

    Nothing about it moves any more, so it carries none of the doctor's lateness: a later status
    change is not pushed to rooms of appointments that left, and a REST read must not disagree."""
    return {"appointmentId": appointment_id, "status": status, "position": -1, "etaMinutes": 0,
            "expectedStartAt": None, "isRunningLate": False, "lateByMinutes": 0}


@dataclass
class QueueSnapshot:
    doctor_id: str
    settings: DoctorSettings
    in_consultation: QueueEntry | None
    waiting: tuple[QueueEntry, ...]
    estimates: tuple[Estimate, ...]
    computed_at: datetime
    _positions: dict[str, int] = field(default_factory=dict)
    _staff_list: list | None = None
    _public_list: list | None = None
    _patients: frozenset | None = None

    @classmethod
    def compute(cls, doctor_id: str, settings: DoctorSettings, in_consultation: QueueEntry | None,
                waiting: tuple[QueueEntry, ...], now: datetime, *, stats: DoctorStats | None = None,
                learning: bool = True) -> "QueueSnapshot":
        estimates = estimate_queue(
            [entry.date for entry in waiting], now=now, avg_minutes=settings.avg_consult_minutes,
            late_minutes=settings.effective_late_minutes,
            consultation_started_at=in_consultation.started_at if in_consultation else None,
            away_until=settings.away_until, stats=stats, learning=learning)
        return cls(doctor_id, settings, in_consultation, waiting, tuple(estimates), now,
                   {entry.id: i for i, entry in enumerate(waiting)})

    def contains(self, appointment_id: str) -> bool:
        return appointment_id in self._positions or (
            self.in_consultation is not None and self.in_consultation.id == appointment_id)

    def entry(self, appointment_id: str) -> QueueEntry | None:
        if appointment_id in self._positions:
            return self.waiting[self._positions[appointment_id]]
        if self.in_consultation is not None and self.in_consultation.id == appointment_id:
            return self.in_consultation
        return None

    # -- one appointment -------------------------------------------------------------------------
    def update_for(self, appointment_id: str) -> dict | None:
        """`queue:update` data for an appointment in this queue; None if it is not in it."""
        settings = self.settings
        position = self._positions.get(appointment_id)
        if position is not None:
            entry, estimate = self.waiting[position], self.estimates[position]
            return {"appointmentId": appointment_id, "status": entry.status, "position": position,
                    "etaMinutes": estimate.eta_minutes,
                    "expectedStartAt": format_utc(estimate.expected_start_at),
                    "isRunningLate": settings.is_running_late, "lateByMinutes": settings.late_by_minutes}
        current = self.in_consultation
        if current is not None and current.id == appointment_id:
            return {"appointmentId": appointment_id, "status": current.status, "position": -1,
                    "etaMinutes": 0, "expectedStartAt": format_utc(current.started_at),
                    "isRunningLate": settings.is_running_late, "lateByMinutes": settings.late_by_minutes}
        return None

    def appointment_ids(self) -> list[str]:
        ids = [entry.id for entry in self.waiting]
        if self.in_consultation is not None:
            ids.append(self.in_consultation.id)
        return ids

    # -- the whole queue, per viewer ---------------------------------------------------------------
    def state_for(self, staff: bool, viewer_id: str | None) -> dict:
        """`queue:state` / `GET /api/queue/doctor/{id}`: names for the doctor and admins only."""
        return self.state_variant(staff, viewer_id)[1]

    def state_variant(self, staff: bool, viewer_id: str | None) -> tuple[str | None, dict]:
        """The state for a viewer, with a key shared by every viewer who sees exactly the same
        (None when it is personal: the viewer has an appointment in this queue)."""
        settings = self.settings
        if staff:
            variant = "staff"
            listing, current = self._staff_entries(), self._staff_current()
        else:
            listing, current = self._public_entries(viewer_id), self._public_current(viewer_id)
            personal = viewer_id in self._patients or (
                self.in_consultation is not None and self.in_consultation.patient == viewer_id)
            variant = None if personal else "public"
        return variant, {"doctorId": self.doctor_id, "isRunningLate": settings.is_running_late,
                "lateByMinutes": settings.late_by_minutes, "avgConsultMinutes": settings.avg_consult_minutes,
                "inConsultation": current, "list": listing}

    def _staff_entries(self) -> list:
        if self._staff_list is None:
            self._staff_list = [
                {"appointmentId": e.id, "patient": e.patient, "patientName": e.patient_name,
                 "date": format_utc(e.date), "status": e.status, "reason": e.reason, "position": est.position,
                 "etaMinutes": est.eta_minutes, "expectedStartAt": format_utc(est.expected_start_at)}
                for e, est in zip(self.waiting, self.estimates)]
        return self._staff_list

    def _public_entries(self, viewer_id: str | None) -> list:
        if self._public_list is None:
            self._public_list = [
                {"position": est.position, "date": format_utc(e.date), "status": e.status,
                 "etaMinutes": est.eta_minutes, "expectedStartAt": format_utc(est.expected_start_at),
                 "mine": False}
                for e, est in zip(self.waiting, self.estimates)]
            self._patients = frozenset(e.patient for e in self.waiting)
        if viewer_id is None or viewer_id not in self._patients:
            return self._public_list  # shared by every viewer with nothing of their own here
        listing = list(self._public_list)
        for i, entry in enumerate(self.waiting):
            if entry.patient == viewer_id:
                listing[i] = {**listing[i], "mine": True, "appointmentId": entry.id}
        return listing

    def _staff_current(self) -> dict | None:
        e = self.in_consultation
        if e is None:
            return None
        return {"appointmentId": e.id, "patient": e.patient, "patientName": e.patient_name,
                "date": format_utc(e.date), "status": e.status, "reason": e.reason,
                "startedAt": format_utc(e.started_at)}

    def _public_current(self, viewer_id: str | None) -> dict | None:
        e = self.in_consultation
        if e is None:
            return None
        current: dict[str, Any] = {"date": format_utc(e.date), "status": e.status,
                                   "startedAt": format_utc(e.started_at), "mine": e.patient == viewer_id}
        if current["mine"]:
            current["appointmentId"] = e.id
        return current
