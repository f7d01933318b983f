"""What can be told to a doctor's actor. Each carries the doctor it is about, so a bus can route it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppointmentsChanged:
    """Appointments of one doctor were written; each document is as stored after its write.

    One workflow step that writes several appointments (a call-next completes one and calls the next)
    is one message, so the queue takes it in at once and watchers see one change, never a half-done
    state between the two writes."""

    doctor_id: str
    appointments: tuple[dict, ...]
    kind = "appointment_changed"


@dataclass(frozen=True)
class DoctorChanged:
    """The doctor's profile or status was written; `doctor` is the stored document after the write."""

    doctor_id: str
    doctor: dict
    kind = "doctor_changed"


@dataclass(frozen=True)
class DoctorDeleted:
    doctor_id: str
    kind = "doctor_deleted"


@dataclass(frozen=True)
class PresenceChanged:
    """A patient started or stopped watching one of this doctor's appointments: the staff view's
    `present` flags move, nothing else does."""

    doctor_id: str
    kind = "presence_changed"


@dataclass(frozen=True)
class Tick:
    """Time passed: re-estimate and push ETAs that moved."""

    kind = "tick"


@dataclass(frozen=True)
class EnsureLoaded:
    """Load from the store if not loaded yet; answers with the snapshot."""

    kind = "load"


@dataclass(frozen=True)
class Reload:
    """Re-read the queue from the store (e.g. after missing bus messages) and push what changed."""

    kind = "load"
