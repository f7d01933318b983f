"""Every message that travels on the bus, each with its own wire form, and one table from kind to type.

In one process a message is handed over as it is; between nodes (`infra.bus.RedisBus`) it travels as
Extended JSON (`bson.json_util`, which keeps ObjectIds and datetimes exact) inside a signed envelope.
`decode` refuses anything malformed with `ValueError`: a message from the wire is checked field by
field before any part of the server sees it. `route` says who takes a message in, so neither the
bus nor its tests ask "which type is this?" a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bson import json_util

# who takes a message in: a doctor's queue, this node's revocation list, its presence, or a reload
QUEUE, REVOCATION, PRESENCE, RESYNC = "queue", "revocation", "presence", "resync"
MAX_PRESENCE_LIFETIME_SECONDS = 3600


def _strings(value, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of strings")
    return tuple(value)


def _string(value, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _objects(value, name: str) -> tuple[dict, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{name} must be a list of objects")
    return tuple(value)


@dataclass(frozen=True)
class AppointmentsChanged:
    """Appointments of one doctor were written; each document is as stored after its write.

    One workflow step that writes several appointments (a call-next completes one and calls the next)
    is one message, so the queue takes it in at once and watchers see one change, never a half-done
    state between the two writes."""

    doctor_id: str
    appointments: tuple[dict, ...]
    kind: ClassVar[str] = "appointment_changed"
    route: ClassVar[str] = QUEUE

    def to_wire(self) -> dict:
        return {"doctorId": self.doctor_id, "documents": list(self.appointments)}

    @classmethod
    def from_wire(cls, fields: dict) -> "AppointmentsChanged":
        return cls(_string(fields.get("doctorId"), "doctorId"), _objects(fields.get("documents"), "documents"))


@dataclass(frozen=True)
class DoctorChanged:
    """The doctor's profile or status was written; `doctor` is the stored document after the write."""

    doctor_id: str
    doctor: dict
    kind: ClassVar[str] = "doctor_changed"
    route: ClassVar[str] = QUEUE

    def to_wire(self) -> dict:
        return {"doctorId": self.doctor_id, "document": self.doctor}

    @classmethod
    def from_wire(cls, fields: dict) -> "DoctorChanged":
        if not isinstance(fields.get("document"), dict):
            raise ValueError("document must be an object")
        return cls(_string(fields.get("doctorId"), "doctorId"), fields["document"])


@dataclass(frozen=True)
class DoctorDeleted:
    doctor_id: str
    kind: ClassVar[str] = "doctor_deleted"
    route: ClassVar[str] = QUEUE

    def to_wire(self) -> dict:
        return {"doctorId": self.doctor_id}

    @classmethod
    def from_wire(cls, fields: dict) -> "DoctorDeleted":
        return cls(_string(fields.get("doctorId"), "doctorId"))


@dataclass(frozen=True)
class SessionsRevoked:
    """These sessions ended (logout, password change, a stolen refresh token, a disabled account)."""

    session_ids: tuple[str, ...]
    kind: ClassVar[str] = "sessions_revoked"
    route: ClassVar[str] = REVOCATION

    def to_wire(self) -> dict:
        return {"sessionIds": list(self.session_ids)}

    @classmethod
    def from_wire(cls, fields: dict) -> "SessionsRevoked":
        return cls(_strings(fields.get("sessionIds"), "sessionIds"))


@dataclass(frozen=True)
class AccountDisabled:
    user_id: str
    disabled: bool
    kind: ClassVar[str] = "account_disabled"
    route: ClassVar[str] = REVOCATION

    def to_wire(self) -> dict:
        return {"userId": self.user_id, "disabled": self.disabled}

    @classmethod
    def from_wire(cls, fields: dict) -> "AccountDisabled":
        if not isinstance(fields.get("disabled"), bool):
            raise ValueError("disabled must be a boolean")
        return cls(_string(fields.get("userId"), "userId"), fields["disabled"])


@dataclass(frozen=True)
class PresenceReport:
    """One node's appointments whose patient is here (subscribed to their own appointment), which
    holds for `lifetime` seconds unless the node reports again."""

    appointment_ids: tuple[str, ...]
    lifetime: float
    kind: ClassVar[str] = "presence"
    route: ClassVar[str] = PRESENCE

    def to_wire(self) -> dict:
        return {"appointmentIds": list(self.appointment_ids), "lifetime": self.lifetime}

    @classmethod
    def from_wire(cls, fields: dict) -> "PresenceReport":
        lifetime = fields.get("lifetime")
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or \
                not 0 < lifetime <= MAX_PRESENCE_LIFETIME_SECONDS:
            raise ValueError("lifetime must be a number of seconds")
        return cls(_strings(fields.get("appointmentIds"), "appointmentIds"), float(lifetime))


@dataclass(frozen=True)
class Resync:
    """A node missed publishing changes of these doctors: every node reloads their queues."""

    doctor_ids: frozenset[str]
    kind: ClassVar[str] = "resync"
    route: ClassVar[str] = RESYNC

    def to_wire(self) -> dict:
        return {"doctorIds": sorted(self.doctor_ids)}

    @classmethod
    def from_wire(cls, fields: dict) -> "Resync":
        return cls(frozenset(_strings(fields.get("doctorIds"), "doctorIds")))


BusMessage = (AppointmentsChanged | DoctorChanged | DoctorDeleted | SessionsRevoked | AccountDisabled | PresenceReport
              | Resync)
KINDS: dict[str, type] = {cls.kind: cls for cls in (AppointmentsChanged, DoctorChanged, DoctorDeleted, SessionsRevoked,
                                                    AccountDisabled, PresenceReport, Resync)}


def encode(message: BusMessage, node_id: str) -> str:
    return json_util.dumps({"node": node_id, "kind": message.kind, **message.to_wire()})


def decode(raw: str | bytes) -> tuple[str, BusMessage]:
    """(the sending node, the message); `ValueError` for anything that is not one of ours, whole."""
    try:
        fields = json_util.loads(raw, json_options=json_util.JSONOptions(tz_aware=True))
    except Exception as exc:  # json_util raises several types for bad input
        raise ValueError(f"not a bus message ({type(exc).__name__})") from None
    if not isinstance(fields, dict):
        raise ValueError("not a bus message")
    node = _string(fields.get("node"), "node")
    message_type = KINDS.get(fields.get("kind"))
    if message_type is None:
        raise ValueError(f"unknown kind {fields.get('kind')!r}")
    return node, message_type.from_wire(fields)
