"""What a doctor's actor is told besides the changes the bus carries (`core.bus_messages`): time
passing, a load or reload, and presence."""

from __future__ import annotations

from dataclasses import dataclass


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
