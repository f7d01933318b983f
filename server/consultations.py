"""Status changes of appointments, as single-document conditional writes, announced to the queue.

Each write names the status and `version` it read; if someone changed the appointment in between,
the write matches nothing and we re-read and decide again, so two concurrent changes can never both
apply to the same starting state. The sparse unique indexes on `waitingKey` and `consultingDoctor`
(see `server.store`) keep "one waiting booking per patient and doctor" and "one consultation per
doctor" true under any interleaving, with no transactions.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bson import ObjectId

from actors.learning import DoctorStats, events_for, may_teach, store_update
from actors.messages import AppointmentChanged
from server.auth import new_room_token
from server.errors import Conflict, StoreUnavailable
from server.store import DuplicateKeyError, utcnow
from server.transitions import WAITING, check_transition, relation

log = logging.getLogger("medpharma.consultations")

ATTEMPTS = 5
DOCTOR_BUSY = "This doctor already has a patient in consultation; complete it first."


def status_update(current: dict, target: str, join_url_template: str, now: datetime | None = None) -> dict:
    """The `$set`/`$unset` that moves `current` to `target` and keeps the index fields honest.
    `now` is the replay's clock (`server.replay`); the live server uses the real one."""
    now = now or utcnow()
    update: dict = {"$set": {"status": target, "updatedAt": now}, "$unset": {}}
    if target not in WAITING:
        update["$unset"]["waitingKey"] = ""
    if target == "in_consultation":
        update["$set"]["startedAt"] = now
        update["$set"]["consultingDoctor"] = current["doctor"]
        update["$set"]["joinUrl"] = join_url_template.replace("{room}", new_room_token())
    else:
        update["$unset"]["consultingDoctor"] = ""
    if target == "completed":
        update["$set"]["completedAt"] = now
    if not update["$unset"]:
        del update["$unset"]
    return update


async def change_status(services, appointment: dict, target: str, principal) -> dict:
    """Checks the table for the caller, then writes; re-reads and re-checks if it lost a race."""
    store = services.store
    for _ in range(ATTEMPTS):
        check_transition(appointment["status"], target, relation(principal, appointment))
        try:
            updated = await store.update_appointment_if(
                appointment["_id"], appointment["status"], appointment.get("version", 0),
                status_update(appointment, target, services.settings.join_url_template))
        except DuplicateKeyError:
            raise Conflict(DOCTOR_BUSY, code="doctor_busy") from None
        if updated is not None:
            await announce(services, updated)
            return updated
        fresh = await store.find_appointment(appointment["_id"])
        if fresh is None:
            raise Conflict("The appointment no longer exists.", code="gone")
        appointment = fresh
    raise Conflict("The appointment keeps changing; try again.", code="concurrent_update")


async def call_next(services, doctor_id: ObjectId) -> tuple[dict | None, dict | None]:
    """Completes the running consultation (if any) and moves the head of the queue into consultation."""
    store = services.store
    completed = None
    running = await store.consultation_of_doctor(doctor_id)
    if running is not None:
        completed = await store.update_appointment_if(
            running["_id"], "in_consultation", running.get("version", 0),
            status_update(running, "completed", services.settings.join_url_template))
        if completed is None:
            raise Conflict("The consultation changed meanwhile; try again.", code="concurrent_update")
        await announce(services, completed)
    for _ in range(ATTEMPTS):
        heads = await store.queue_heads(doctor_id, ATTEMPTS)
        if not heads:
            return completed, None
        for head in heads:
            try:
                current = await store.update_appointment_if(
                    head["_id"], head["status"], head.get("version", 0),
                    status_update(head, "in_consultation", services.settings.join_url_template))
            except DuplicateKeyError:
                raise Conflict(DOCTOR_BUSY, code="doctor_busy") from None
            if current is not None:
                await announce(services, current)
                return completed, current
    raise Conflict("The queue keeps changing; try again.", code="concurrent_update")


async def announce(services, appointment: dict) -> None:
    """Learns from a committed write, then tells the doctor's queue and waits until it has taken it in.
    Learning first: a queue that loads from the store on this very message then finds it learned."""
    await learn_from(services.store, appointment)
    await services.bus.publish(AppointmentChanged(str(appointment["doctor"]), appointment))


async def learn_from(store, appointment: dict) -> None:
    """Records what a consultation that started or ended, or a patient who did not come, teaches about
    the doctor (`actors.learning`). Best effort: the appointment's own write has committed, and a
    lost lesson only makes the estimate a little less informed, so a store failure is logged, not raised."""
    if not may_teach(appointment):
        return
    doctor_id = appointment["doctor"]
    try:
        stats = DoctorStats.from_document(await store.find_doctor_stats(doctor_id))
        for event in events_for(stats, appointment):
            await store.record_learning(doctor_id, *store_update(event))
    except StoreUnavailable:
        log.warning("could not record what a consultation taught", extra={"doctor": str(doctor_id)})
