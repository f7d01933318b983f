"""The publish step every workflow ends with: committed documents → the doctor's queue, via the bus."""

from __future__ import annotations

from core.bus_messages import AppointmentsChanged, DoctorChanged, DoctorDeleted
from domain.learning import learn_from


async def appointments_changed(services, doctor_id: str, *appointments: dict | None) -> None:
    """One message for all the appointments one step wrote, so watchers see one change; returns once
    this node's queue has taken it in (a read right after sees it)."""
    documents = tuple(a for a in appointments if a is not None)
    for document in documents:  # first, so a queue that loads on this very message finds it learned
        await learn_from(services.store, document)
    if documents:
        await services.bus.publish(AppointmentsChanged(doctor_id, documents))


async def doctor_changed(services, doctor: dict) -> None:
    await services.bus.publish(DoctorChanged(str(doctor["_id"]), doctor))


async def doctor_deleted(services, doctor_id: str) -> None:
    await services.bus.publish(DoctorDeleted(doctor_id))
