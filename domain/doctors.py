"""Doctor profiles (public reads, admin writes) and the doctor's status.

Deleting a doctor while a booking lands (there are no transactions) is closed by re-checking after
each write: the delete puts the profile back and answers 409, or the booking withdraws itself.
"""

from __future__ import annotations

from datetime import timedelta

from core.access import Principal
from core.doctors import DEFAULT_AVG_CONSULT_MINUTES, MAX_AWAY_HOURS
from core.hours import DEFAULT_SLOT_MINUTES
from core.errors import Conflict, NotFound, ValidationFailed
from core.policy import guarded
from core.values import to_object_id
from domain import audit, publish, sessions
from infra.store import DuplicateKeyError

EMAIL_TAKEN = "A doctor with this email already exists."
AWAY_PAST_SLACK = timedelta(minutes=1)
HAS_PATIENTS = "This doctor still has waiting or in-consultation appointments."


@guarded("doctors.list")
async def list_doctors(services) -> list[dict]:
    return await services.store.list_doctors()


@guarded("doctors.get")
async def get_doctor(services, doctor_id: str) -> dict:
    doctor = await services.store.find_doctor(to_object_id(doctor_id))
    if doctor is None:
        raise NotFound("Doctor not found.")
    return doctor


@guarded("doctors.create")
async def create_doctor(services, admin: Principal, body: dict, *, doctor_id: str | None = None) -> dict:
    """`doctor_id` keeps a recorded id (`eta-replay`); the API lets the store choose one."""
    now = services.clock()
    chosen_id = {"_id": to_object_id(doctor_id)} if doctor_id else {}
    document = {**chosen_id, "name": body["name"], "specialization": body["specialization"], "email": body["email"],
                "phone": body["phone"], "availability": body.get("availability", []),
                "avgConsultMinutes": body.get("avgConsultMinutes", DEFAULT_AVG_CONSULT_MINUTES),
                "hours": body.get("hours", []), "slotMinutes": body.get("slotMinutes", DEFAULT_SLOT_MINUTES),
                "isRunningLate": False, "lateByMinutes": 0, "awayUntil": None,
                "createdAt": now, "updatedAt": now, "version": 0}
    try:
        doctor = await services.store.insert_doctor(document)
    except DuplicateKeyError:
        raise Conflict(EMAIL_TAKEN, code="email_taken") from None
    await audit.record(services, admin, "doctor.created", str(doctor["_id"]), name=doctor["name"])
    return doctor


@guarded("doctors.update")
async def update_doctor(services, admin: Principal, doctor_id: str, changes: dict) -> dict:
    doctor = await _write_doctor(services, doctor_id, changes)
    await audit.record(services, admin, "doctor.updated", doctor_id, fields=sorted(changes))
    return doctor


async def _write_doctor(services, doctor_id: str, changes: dict) -> dict:
    changes["updatedAt"] = services.clock()
    try:
        doctor = await services.store.update_doctor(to_object_id(doctor_id), changes)
    except DuplicateKeyError:
        raise Conflict(EMAIL_TAKEN, code="email_taken") from None
    if doctor is None:
        raise NotFound("Doctor not found.")
    await publish.doctor_changed(services, doctor)
    return doctor


@guarded("doctors.delete")
async def delete_doctor(services, admin: Principal, doctor_id: str) -> None:
    """Deleting a profile also disables the doctor accounts linked to it: nobody acts for it any more."""
    store = services.store
    oid = to_object_id(doctor_id)
    doctor = await store.find_doctor(oid)
    if doctor is None:
        raise NotFound("Doctor not found.")
    if await store.doctor_has_active_appointments(oid):
        raise Conflict(HAS_PATIENTS, code="doctor_has_appointments")
    if not await store.delete_doctor(oid):
        raise NotFound("Doctor not found.")
    if await store.doctor_has_active_appointments(oid):
        # A booking landed between the check and the delete: put the profile back, same id, rather
        # than leave a patient with no doctor.
        await store.insert_doctor(doctor)
        raise Conflict(HAS_PATIENTS, code="doctor_has_appointments")
    await publish.doctor_deleted(services, doctor_id)
    for account in await store.disable_doctor_accounts(oid, services.clock()):
        await sessions.user_disabled(services, str(account["_id"]), True)
    await audit.record(services, admin, "doctor.deleted", doctor_id, name=doctor["name"])


def status_changes(body: dict) -> dict:
    """The fields a status change writes: `isRunningLate: false` without `lateByMinutes` also resets
    the lateness to 0, so a doctor back on time is not left with a stale number. (`eta-replay` applies
    its `doctor` events through this too.)"""
    changes = dict(body)
    if changes.get("isRunningLate") is False and "lateByMinutes" not in changes:
        changes["lateByMinutes"] = 0
    return changes


@guarded("doctors.set_status")
async def set_status(services, principal: Principal, doctor_id: str, body: dict) -> dict:
    """Lateness, the consultation length, a break. `isRunningLate: false` without `lateByMinutes`
    resets the lateness to 0; a break may be announced at most MAX_AWAY_HOURS ahead, and not for a
    time more than AWAY_PAST_SLACK ago (a slow clock or network is forgiven that much); a refused
    body changes nothing."""
    set_status.rule.relate(principal, doctor_id)
    now = services.clock()
    body = status_changes(body)
    away_until = body.get("awayUntil")
    if away_until is not None and away_until > now + timedelta(hours=MAX_AWAY_HOURS):
        raise ValidationFailed(details={"awayUntil": [f"Must be at most {MAX_AWAY_HOURS} hours ahead."]})
    if away_until is not None and away_until < now - AWAY_PAST_SLACK:
        raise ValidationFailed(details={"awayUntil": ["Must not be in the past; send null to end a break."]})
    doctor = await _write_doctor(services, doctor_id, body)
    await audit.record(services, principal, "doctor.status_changed", doctor_id,
                       fields=sorted(k for k in body if k != "updatedAt"))
    return doctor


async def end_break(services, doctor_id: str) -> None:
    """A break ends at once when the doctor starts a consultation (call-next, or `in_consultation`): they
    are plainly back, and nobody waiting should still be told the doctor is away. Watchers hear it as a
    `doctor:status` with `awayUntil: null`. Not a workflow of its own: the consultation's caller was
    admitted by the workflow that started it."""
    doctor = await services.store.end_break(to_object_id(doctor_id), services.clock())
    if doctor is not None:
        await publish.doctor_changed(services, doctor)
