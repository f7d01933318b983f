"""Every bus message survives the wire exactly, and anything from the wire that is not one of ours,
whole, is refused before any part of the server sees it."""

from __future__ import annotations

import typing
from datetime import datetime, timezone

import pytest
from bson import ObjectId, json_util

from core import bus_messages
from core.bus_messages import (KINDS, AccountDisabled, AppointmentsChanged, DoctorChanged, DoctorDeleted,
                               PresenceReport, Resync, SessionsRevoked, decode, encode)

AT = datetime(2026, 11, 24, 9, 30, 0, 123000, tzinfo=timezone.utc)
DOCUMENT = {"_id": ObjectId(), "doctor": ObjectId(), "status": "pending", "date": AT, "version": 3}
EXAMPLES = [
    AppointmentsChanged("d1", (DOCUMENT, {**DOCUMENT, "_id": ObjectId()})),
    DoctorChanged("d1", {"_id": ObjectId(), "awayUntil": AT, "lateByMinutes": 5}),
    DoctorDeleted("d1"),
    SessionsRevoked(("s1", "s2")),
    AccountDisabled("u1", True),
    PresenceReport(("a1",), 15.0),
    Resync(frozenset({"d1", "d2"})),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.kind)
def test_every_kind_survives_the_wire_exactly(message):
    assert decode(encode(message, "node-1")) == ("node-1", message)


def test_the_table_knows_every_message_type_by_its_own_kind():
    assert set(KINDS.values()) == set(typing.get_args(bus_messages.BusMessage))
    assert {type(m) for m in EXAMPLES} == set(KINDS.values())
    assert all(KINDS[cls.kind] is cls for cls in KINDS.values())


def wire(**fields) -> str:
    return json_util.dumps({"node": "n", **fields})


@pytest.mark.parametrize("raw", [
    "not json", "[]", wire(kind="nope"), json_util.dumps({"kind": "doctor_deleted", "doctorId": "d"}),
    wire(kind="doctor_deleted"), wire(kind="doctor_deleted", doctorId=7),
    wire(kind="appointment_changed", doctorId="d", documents={"a": 1}),
    wire(kind="appointment_changed", doctorId="d", documents=[1]),
    wire(kind="doctor_changed", doctorId="d", document=[]),
    wire(kind="sessions_revoked", sessionIds="s1"), wire(kind="sessions_revoked", sessionIds=[1]),
    wire(kind="account_disabled", userId="u", disabled="yes"),
    wire(kind="presence", appointmentIds=["a"], lifetime=True),
    wire(kind="presence", appointmentIds=["a"], lifetime=0),
    wire(kind="presence", appointmentIds=["a"], lifetime=bus_messages.MAX_PRESENCE_LIFETIME_SECONDS + 1),
    wire(kind="resync", doctorIds=[None]),
])
def test_anything_malformed_is_refused(raw):
    with pytest.raises(ValueError):
        decode(raw)
