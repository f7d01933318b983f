"""The publish step every workflow ends with: committed documents → the doctor's queue, via the bus."""

from __future__ import annotations

import logging

from core.bus_messages import AppointmentsChanged, DoctorChanged, DoctorDeleted
from domain import notifications
from domain.learning import learn_from

log = logging.getLogger("medpharma.notify")


async def appointments_changed(services, doctor_id: str, *appointments: dict | None) -> None:
    """One message for all the appointments one step wrote, so watchers see one change; returns once
    this node's queue has taken it in (a read right after sees it)."""
    documents = tuple(a for a in appointments if a is not None)
    for document in documents:  # first, so a queue that loads on this very message finds it learned
        await learn_from(services.store, document)
    if documents:  # written before the queues hear of it: a restart between the two loses no notification
        try:
            await notifications.appointments_changed(services, doctor_id, documents)
        except Exception:  # the change is committed: the queues must hear of it whatever happened here
            log.exception("notifications of a change could not be written", extra={"doctor": doctor_id})
        await services.bus.publish(AppointmentsChanged(doctor_id, documents))


async def doctor_changed(services, doctor: dict) -> None:
    await services.bus.publish(DoctorChanged(str(doctor["_id"]), doctor))


async def doctor_deleted(services, doctor_id: str) -> None:
    await services.bus.publish(DoctorDeleted(doctor_id))
