"""What can be told to a doctor's actor. Each carries the doctor it is about, so a bus can route it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppointmentChanged:
    """An appointment was written; `appointment` is the stored document after the write."""

    doctor_id: str
    appointment: dict
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
class Tick:
    """Time passed: re-estimate and push ETAs that moved."""

    kind = "tick"


@dataclass(frozen=True)
class EnsureLoaded:
    """Load from the store if not loaded yet; answers with the snapshot."""

    kind = "load"


@dataclass(frozen=True)
class Reload:
    """Forget everything and reload from the store (e.g. after missing bus messages)."""

    kind = "load"
