"""Queue reads: a doctor's whole queue and one appointment's place in it.

Both come from the doctor's actor: once its queue is loaded, a read costs no store round trip.
Only an appointment no live queue holds (finished, or its doctor's queue not loaded yet) is looked up.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.doctor import DoctorNotFound
from actors.snapshot import DoctorSettings, QueueEntry, QueueSnapshot, finished_update
from server.errors import Forbidden, NotFound
from server.transitions import relation
from server.values import to_object_id
from handlers.base import APIHandler
from schemas.appointments import QueuePositionSchema

position_schema = QueuePositionSchema()


async def doctor_snapshot(services, doctor_id: str) -> QueueSnapshot:
    try:
        return await services.queues.snapshot(doctor_id)
    except DoctorNotFound:
        raise NotFound("Doctor not found.") from None


class DoctorQueueHandler(APIHandler):
    async def get(self, doctor_id: str) -> None:
        principal = self.require_user()
        self.path_id(doctor_id, "Doctor")
        snapshot = await doctor_snapshot(self.services, doctor_id)
        staff = principal.is_admin or principal.is_doctor_of(doctor_id)
        self.send_json(snapshot.state_for(staff, principal.user_id))


@dataclass(frozen=True)
class AppointmentInQueue:
    """Where an appointment stands: its `queue:update` data, the doctor's settings, and its queue
    entry when it is in a live queue (None once it has left)."""

    update: dict
    settings: DoctorSettings
    entry: QueueEntry | None


async def locate_appointment(services, viewer, appointment_id: str) -> AppointmentInQueue:
    """The appointment's place for a viewer allowed to see it (its patient, its doctor, an admin).

    A live queue answers with no store round trip; only an appointment no live queue holds is read
    from the store (and its doctor's queue loaded, so the next read is free). `NotFound`/`Forbidden`
    otherwise.
    """
    doctor_id = services.queues.doctor_of(appointment_id)
    if doctor_id is not None:
        snapshot = await doctor_snapshot(services, doctor_id)
        entry = snapshot.entry(appointment_id)
        if entry is not None:
            if not (viewer.is_admin or viewer.is_doctor_of(doctor_id) or viewer.user_id == entry.patient):
                raise Forbidden("This is not your appointment.")
            return AppointmentInQueue(snapshot.update_for(appointment_id), snapshot.settings, entry)
    oid = to_object_id(appointment_id)
    appointment = await services.store.find_appointment(oid) if oid is not None else None
    if appointment is None:
        raise NotFound("Appointment not found.")
    if relation(viewer, appointment) is None:
        raise Forbidden("This is not your appointment.")
    try:
        snapshot = await services.queues.snapshot(str(appointment["doctor"]))
    except DoctorNotFound:
        snapshot = None
    settings = snapshot.settings if snapshot is not None else DoctorSettings(12, False, 0)
    entry = snapshot.entry(appointment_id) if snapshot is not None else None
    if entry is not None:
        return AppointmentInQueue(snapshot.update_for(appointment_id), settings, entry)
    return AppointmentInQueue(finished_update(appointment_id, appointment["status"]), settings, None)


class AppointmentPositionHandler(APIHandler):
    async def get(self, appointment_id: str) -> None:
        principal = self.require_user()
        self.path_id(appointment_id, "Appointment")
        found = await locate_appointment(self.services, principal, appointment_id)
        self.send_json(position_schema.dump({**found.update, "avgConsultMinutes": found.settings.avg_consult_minutes}))
