"""Booking, reading and changing appointments; calling the next patient.

Each write names the status and `version` it read; if someone changed the appointment in between,
the write matches nothing and we re-read and decide again, so two concurrent changes can never both
apply to the same starting state. The unique indexes on `waitingKey`, `consultingDoctor` and `slot`
(see `infra.store`) keep "one waiting booking per patient and doctor", "one consultation per
doctor" and "one booking per slot" true under any interleaving, with no transactions: of patients
racing for one slot, the store lets exactly one write it (never a read-then-write check).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core import metrics
from core.access import OWNER, STAFF, Principal, relation
from core.errors import Conflict, Forbidden, NotFound
from core.policy import guarded
from core.statuses import (CANCELLED, COMPLETED, HOLDS_SLOT, IN_CONSULTATION, PENDING, WAITING, check_timing,
                           check_transition)
from core.values import format_utc, to_object_id
from domain import audit, doctors, notifications, publish
from domain.slots import check_booked_time, check_future, slot_for
from infra.auth import new_room_token
from infra.store import DuplicateKeyError, duplicated_field

ATTEMPTS = 5
SLOT_TAKEN = "This slot was just taken; choose another time."
DOUBLE_SUBMIT_WINDOW = timedelta(seconds=5)
DOUBLE_SUBMIT_WAIT_SECONDS = 5.0
CLAIM_TIMEOUT = timedelta(seconds=30)  # a call-next in flight longer than this died with its node
CALL_IN_PROGRESS = "Another call-next for this doctor is in progress; try again."
DOCTOR_BUSY = "This doctor already has a patient in consultation; complete it first."
QUEUE_CHANGED = "The queue changed since you looked at it; check who is in consultation and try again."


# -- reads ------------------------------------------------------------------------------------------
@guarded("appointments.get")
async def visible_appointment(services, principal: Principal, appointment_id: str) -> dict:
    """The appointment if the caller is its patient, its doctor or an admin; else 404 / 403."""
    appointment = await services.store.find_appointment(to_object_id(appointment_id))
    if appointment is None:
        raise NotFound("Appointment not found.")
    visible_appointment.rule.relate(principal, str(appointment["doctor"]), str(appointment["patient"]))
    return appointment


def relation_to(principal: Principal | None, appointment: dict) -> str | None:
    return relation(principal, str(appointment["doctor"]), str(appointment["patient"]))


@guarded("appointments.mine")
async def appointments_of_patient(services, principal: Principal) -> list[dict]:
    return await services.store.appointments_of_patient(to_object_id(principal.user_id))


@guarded("appointments.of_doctor")
async def waiting_of_doctor(services, principal: Principal, doctor_id: str) -> list[dict]:
    waiting_of_doctor.rule.relate(principal, doctor_id)
    oid = to_object_id(doctor_id)
    if await services.store.find_doctor(oid) is None:
        raise NotFound("Doctor not found.")
    return await services.store.waiting_of_doctor(oid)


@guarded("appointments.list")
async def page(services, admin: Principal, params: dict) -> tuple[list[dict], int]:
    query = {key: params[key] for key in ("status", "doctor") if params.get(key) is not None}
    return await services.store.page_appointments(query, params["limit"], params["offset"])


# -- booking -----------------------------------------------------------------------------------------
@guarded("appointments.book")
async def book(services, principal: Principal, body: dict, *, appointment_id: str | None = None) -> dict:
    """A patient's booking: in the future, with an existing doctor, one waiting per doctor; for a
    doctor with working hours, at one of its slot starts, and only if nobody holds that slot.
    `appointment_id` keeps a recorded id (`eta-replay`); the API lets the store choose one."""
    now = services.clock()
    check_future(services, body["date"])
    store = services.store
    doctor = await store.find_doctor(body["doctor"])
    if doctor is None:
        raise NotFound("Doctor not found.", code="doctor_not_found")
    slot = slot_for(services, doctor, body["date"])
    patient = to_object_id(principal.user_id)
    chosen_id = {"_id": to_object_id(appointment_id)} if appointment_id else {}
    document = {**chosen_id, **body, "patient": patient, "status": PENDING, "createdAt": now, "updatedAt": now,
                "version": 0, "waitingKey": f"{patient}:{doctor['_id']}", **({"slot": slot} if slot else {})}
    try:
        appointment = await store.insert_appointment(document)
    except DuplicateKeyError as exc:
        if duplicated_field(exc) == "slot":
            raise Conflict(SLOT_TAKEN, code="slot_taken") from None
        raise Conflict("You already have a waiting appointment with this doctor.", code="already_booked") from None
    if await store.find_doctor(doctor["_id"]) is None:
        # The doctor was deleted while we booked: withdraw the booking instead of orphaning it.
        await store.update_appointment_if(appointment["_id"], PENDING, 0,
                                          status_update(appointment, CANCELLED, services.settings, services.clock()))
        raise NotFound("Doctor not found.", code="doctor_not_found")
    await publish.appointments_changed(services, str(doctor["_id"]), appointment)
    return appointment


# -- status changes ------------------------------------------------------------------------------------
def status_update(current: dict, target: str, settings, now: datetime) -> dict:
    """The `$set`/`$unset` that moves `current` to `target` at `now`, keeping the index fields honest."""
    update: dict = {"$set": {"status": target, "updatedAt": now}, "$unset": {}}
    if target not in WAITING:
        update["$unset"]["waitingKey"] = ""
    if target not in HOLDS_SLOT:  # a cancellation or a no-show frees the slot at once
        update["$unset"]["slot"] = ""
    if target == IN_CONSULTATION:
        update["$set"]["startedAt"] = now
        update["$set"]["consultingDoctor"] = current["doctor"]
        update["$set"]["joinUrl"] = settings.join_url_template.replace("{room}", new_room_token())
    else:
        update["$unset"]["consultingDoctor"] = ""
    if target == COMPLETED:
        update["$set"]["completedAt"] = now
    if not update["$unset"]:
        del update["$unset"]
    return update


def update_to(services, appointment: dict, target: str) -> dict:
    """`status_update`, and when a consultation starts, the ETA's score: how far the start is from
    what the live queue told this appointment at least 30 minutes before, and whether it fell before,
    inside or after the range told then (the API contract's self-scoring)."""
    update = status_update(appointment, target, services.settings, services.clock())
    if target == IN_CONSULTATION:
        started = update["$set"]["startedAt"]
        told = services.queues.expectation_for(str(appointment["doctor"]), str(appointment["_id"]), started)
        if told is not None:
            update["$set"]["etaErrorMinutes"] = round(abs((started - told.expected).total_seconds()) / 60, 2)
            update["$set"]["etaRange"] = told.outcome(started)
    return update


def scored(started: dict | None) -> None:
    """Feeds a consultation that just started into the ETA's error histogram and range counter, if it
    was scored."""
    if started is not None and started.get("etaErrorMinutes") is not None:
        metrics.eta_error_minutes.observe(started["etaErrorMinutes"])
    if started is not None and started.get("etaRange") in metrics.ETA_RANGE_OUTCOMES:
        metrics.eta_range_total.labels(started["etaRange"]).inc()


@guarded("appointments.set_status")
async def change_status(services, principal: Principal, appointment_id: str, target: str) -> dict:
    """Checks the table for the caller, then writes; re-reads and re-checks if it lost a race."""
    store = services.store
    appointment = await services.store.find_appointment(to_object_id(appointment_id))
    if appointment is None:
        raise NotFound("Appointment not found.")
    change_status.rule.relate(principal, str(appointment["doctor"]), str(appointment["patient"]))
    for _ in range(ATTEMPTS):
        check_transition(appointment["status"], target, relation_to(principal, appointment))
        check_timing(appointment["status"], target, appointment["date"], services.clock())
        try:
            updated = await store.update_appointment_if(
                appointment["_id"], appointment["status"], appointment.get("version", 0),
                update_to(services, appointment, target))
        except DuplicateKeyError:
            raise Conflict(DOCTOR_BUSY, code="doctor_busy") from None
        if updated is not None:
            if target == IN_CONSULTATION:
                scored(updated)
            await publish.appointments_changed(services, str(updated["doctor"]), updated)
            if target == IN_CONSULTATION:
                await doctors.end_break(services, str(updated["doctor"]))
            if relation_to(principal, updated) in STAFF:
                await audit.record(services, principal, "appointment.status_changed", appointment_id,
                                   **{"from": appointment["status"], "to": target})
            return updated
        appointment = await reloaded(store, appointment)
    raise Conflict("The appointment keeps changing; try again.", code="concurrent_update")


async def reloaded(store, appointment: dict) -> dict:
    """The appointment as stored now, after a conditional write lost to a concurrent change (the
    status/version check failed): the caller re-checks its rules against it and tries again."""
    fresh = await store.find_appointment(appointment["_id"])
    if fresh is None:
        raise Conflict("The appointment no longer exists.", code="gone")
    return fresh


# -- rescheduling ------------------------------------------------------------------------------------
NOT_WAITING = "Only a waiting appointment can be moved or edited."


@guarded("appointments.reschedule")
async def reschedule(services, principal: Principal, appointment_id: str, body: dict) -> dict:
    """`PATCH /api/appointments/{id}`: a waiting appointment moves to another time (the same rules as
    a booking) and/or its patient edits `reason`. The old slot is let go and the new one taken in the
    same single-document write, so the slot index decides a race and the old slot is free at once;
    the queue hears it as one change, which moves it between day queues in one step. The same time
    (and reason) again answers the appointment as it is, changing nothing."""
    store = services.store
    appointment = await store.find_appointment(to_object_id(appointment_id))
    if appointment is None:
        raise NotFound("Appointment not found.")
    standing = reschedule.rule.relate(principal, str(appointment["doctor"]), str(appointment["patient"]))
    if "reason" in body and standing != OWNER:
        raise Forbidden("Only the patient may change the reason of an appointment.", code="reason_owner_only")
    doctor = None
    for _ in range(ATTEMPTS):
        if appointment["status"] not in WAITING:
            raise Conflict(NOT_WAITING, code="not_waiting")
        update: dict = {"$set": {}}
        moved = "date" in body and body["date"] != appointment["date"]
        if moved:
            doctor = doctor or await store.find_doctor(appointment["doctor"])
            if doctor is None:
                raise NotFound("Doctor not found.", code="doctor_not_found")
            slot = check_booked_time(services, doctor, body["date"])
            update["$set"]["date"] = body["date"]
            if slot is not None:
                update["$set"]["slot"] = slot
            else:
                update["$unset"] = {"slot": ""}
        if "reason" in body and body["reason"] != appointment.get("reason", ""):
            update["$set"]["reason"] = body["reason"]
        if not update["$set"] and "$unset" not in update:
            return appointment
        update["$set"]["updatedAt"] = services.clock()
        try:
            updated = await store.update_appointment_if(appointment["_id"], appointment["status"],
                                                        appointment.get("version", 0), update)
        except DuplicateKeyError:
            raise Conflict(SLOT_TAKEN, code="slot_taken") from None
        if updated is not None:
            if moved:
                await store.forget_day_summary(appointment["date"])
            await publish.appointments_changed(services, str(updated["doctor"]), updated)
            if moved and standing in STAFF:
                await audit.record(services, principal, "appointment.rescheduled", appointment_id,
                                   **{"from": format_utc(appointment["date"]), "to": format_utc(updated["date"])})
            if moved:
                await appointment_rescheduled(services, appointment, updated)
            return updated
        appointment = await reloaded(store, appointment)
    raise Conflict("The appointment keeps changing; try again.", code="concurrent_update")


async def appointment_rescheduled(services, before: dict, after: dict) -> None:
    """Called once after every committed reschedule, with the appointment as it was and as it is now:
    the webhooks hear `appointment.rescheduled` (the live sockets have already been told by the queue),
    and a delay is counted from the new time."""
    await notifications.appointment_moved(services, after)


# -- call next -----------------------------------------------------------------------------------------
NOT_GIVEN = object()


@dataclass(frozen=True)
class CallNextResult:
    completed: dict | None
    current: dict | None


@guarded("doctors.call_next")
async def call_next(services, principal: Principal, doctor_id: str, expect_current=NOT_GIVEN) -> CallNextResult:
    """Completes the consultation in progress (if any) and calls the head of today's queue, as one
    change. `expect_current` (an id, or None for "nobody") is what the caller saw in consultation: if
    it is not so any more, nothing changes (`409 queue_changed`). Without it, a second call-next
    within DOUBLE_SUBMIT_WINDOW of the previous one is a double submit and answers that one's result."""
    call_next.rule.relate(principal, doctor_id)
    store = services.store
    oid = to_object_id(doctor_id)
    now = services.clock()  # the queues' clock: "today" and the double-submit window agree with it
    token = secrets.token_hex(8)
    double_submit = expect_current is NOT_GIVEN
    for _ in range(ATTEMPTS):
        if await store.claim_call_next(oid, token, now, now - CLAIM_TIMEOUT,
                                       now - DOUBLE_SUBMIT_WINDOW if double_submit else None):
            break
        previous = await _answer_of_previous_call(services, oid, now, double_submit)
        if previous is not None:
            return previous
    else:
        raise Conflict(CALL_IN_PROGRESS, code="concurrent_update")
    try:
        result = await _complete_and_call(services, oid, expect_current)
    except BaseException:
        await store.abandon_call_next(oid, token)
        raise
    await store.finish_call_next(oid, token, now, result.completed and result.completed["_id"],
                                 result.current and result.current["_id"])
    if result.current is not None:
        await doctors.end_break(services, doctor_id)
    await audit.record(services, principal, "queue.call_next", doctor_id,
                       completed=str(result.completed["_id"]) if result.completed else None,
                       called=str(result.current["_id"]) if result.current else None)
    return result


async def _complete_and_call(services, oid, expect_current) -> CallNextResult:
    store = services.store
    settings = services.settings
    running = await store.consultation_of_doctor(oid)
    if expect_current is not NOT_GIVEN and (running["_id"] if running else None) != expect_current:
        raise Conflict(QUEUE_CHANGED, code="queue_changed")
    completed = None
    if running is not None:
        completed = await store.update_appointment_if(running["_id"], IN_CONSULTATION, running.get("version", 0),
                                                      status_update(running, COMPLETED, settings, services.clock()))
        if completed is None:
            raise Conflict(QUEUE_CHANGED, code="queue_changed")
    try:
        current = await _call_head(services, oid)
    except Exception:  # the completion is committed whatever happened to the call: announce it
        await publish.appointments_changed(services, str(oid), completed)
        raise
    await publish.appointments_changed(services, str(oid), completed, current)
    return CallNextResult(completed, current)


async def _call_head(services, oid) -> dict | None:
    """Moves the head of today's queue into consultation; None when today's queue is empty."""
    store = services.store
    end_of_today = services.calendar.end_of(services.calendar.day_of(services.clock()))
    for _ in range(ATTEMPTS):
        head = await store.queue_head(oid, end_of_today)
        if head is None:
            return None
        try:
            current = await store.update_appointment_if(head["_id"], head["status"], head.get("version", 0),
                                                        update_to(services, head, IN_CONSULTATION))
        except DuplicateKeyError:
            raise Conflict(DOCTOR_BUSY, code="doctor_busy") from None
        if current is not None:
            scored(current)
            return current
        # A confirm or a cancel got there first: read the head again, never skip it.
    raise Conflict("The queue keeps changing; try again.", code="concurrent_update")


async def _answer_of_previous_call(services, oid, now, double_submit: bool) -> CallNextResult | None:
    """Why a claim failed. While another call-next is in flight: a double submit waits for it (and is
    then answered like one within the window), a call with `expectCurrent` is refused. After one
    within the window: a double submit gets its answer. Otherwise None: claim again."""
    store = services.store
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DOUBLE_SUBMIT_WAIT_SECONDS
    while True:
        doctor = await store.find_doctor(oid)
        if doctor is None:
            raise NotFound("Doctor not found.")
        claim, last = doctor.get("callNextClaim"), doctor.get("lastCallNext")
        if claim is not None and claim["at"] > now - CLAIM_TIMEOUT:
            if not double_submit or loop.time() >= deadline:
                raise Conflict(CALL_IN_PROGRESS, code="concurrent_update")
            await asyncio.sleep(0.05)
            continue
        if double_submit and last is not None and last["at"] > now - DOUBLE_SUBMIT_WINDOW:
            ids = [i for i in (last.get("completed"), last.get("current")) if i is not None]
            found = {a["_id"]: a for a in await store.find_appointments(ids)} if ids else {}
            return CallNextResult(found.get(last.get("completed")), found.get(last.get("current")))
        return None
