"""Queue reads: a doctor's queue for one clinic day, and one appointment's place in it.

Both come from the doctor's actor: once its queue is loaded, a read costs no store round trip.
Only an appointment no live queue holds (finished, or its doctor's queue not loaded yet) is looked up.
The WebSocket's subscribe answers come from here too, so REST and socket always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from actors.doctor import DoctorNotFound
from actors.snapshot import DoctorSettings, QueueEntry, QueueSnapshot, finished_update
from core.access import Principal, is_staff_of
from core.errors import NotFound
from core.policy import guarded
from core.values import to_object_id


async def snapshot_of(services, doctor_id: str) -> QueueSnapshot:
    try:
        return await services.queues.snapshot(doctor_id)
    except DoctorNotFound:
        raise NotFound("Doctor not found.") from None


@guarded("live.watch_doctor")
async def watch_doctor(services, viewer: Principal, doctor_id: str) -> QueueSnapshot:
    """The doctor's queue for a socket that joins its room (anyone signed in; names for staff only,
    which the rendering decides per viewer)."""
    return await snapshot_of(services, doctor_id)


@guarded("queue.of_doctor")
async def doctor_queue(services, viewer: Principal, doctor_id: str, day: date | None = None) -> dict:
    """`queue:state` of a clinic day (today by default): names for that doctor and admins only."""
    snapshot = await snapshot_of(services, doctor_id)
    return snapshot.state_for(is_staff_of(viewer, doctor_id), viewer.user_id, day)


@dataclass(frozen=True)
class AppointmentInQueue:
    """Where an appointment stands: its `queue:update` data, the doctor's settings, the queue's
    snapshot, and its queue entry while it is in a live queue (None once it has left)."""

    update: dict
    settings: DoctorSettings
    snapshot: QueueSnapshot | None
    entry: QueueEntry | None
    patient_id: str

    def position_answer(self) -> dict:
        """`GET /api/queue/appointment/{id}/position`."""
        away = self.snapshot.away_until if self.snapshot is not None else None
        answer = {key: value for key, value in self.update.items() if key != "date"}  # not in this answer's shape
        return {**answer, "avgConsultMinutes": self.settings.avg_consult_minutes, "awayUntil": away}


@guarded("queue.position")
async def locate_appointment(services, viewer: Principal, appointment_id: str) -> AppointmentInQueue:
    """The appointment's place for a viewer allowed to see it (its patient, its doctor, an admin).

    A live queue answers with no store round trip; only an appointment no live queue holds is read
    from the store (and its doctor's queue loaded, so the next read is free). `NotFound`/`Forbidden`
    otherwise.
    """
    doctor_id = services.queues.doctor_of(appointment_id)
    if doctor_id is not None:
        snapshot = await snapshot_of(services, doctor_id)
        entry = snapshot.entry(appointment_id)
        if entry is not None:
            locate_appointment.rule.relate(viewer, doctor_id, entry.patient)
            return AppointmentInQueue(snapshot.update_for(appointment_id), snapshot.settings, snapshot, entry,
                                      entry.patient)
    appointment = await services.store.find_appointment(to_object_id(appointment_id))
    if appointment is None:
        raise NotFound("Appointment not found.")
    locate_appointment.rule.relate(viewer, str(appointment["doctor"]), str(appointment["patient"]))
    try:
        snapshot = await services.queues.snapshot(str(appointment["doctor"]))
    except DoctorNotFound:
        snapshot = None
    settings = snapshot.settings if snapshot is not None else DoctorSettings.defaults()
    entry = snapshot.entry(appointment_id) if snapshot is not None else None
    patient_id = str(appointment["patient"])
    if entry is not None:
        return AppointmentInQueue(snapshot.update_for(appointment_id), settings, snapshot, entry, patient_id)
    return AppointmentInQueue(finished_update(appointment_id, appointment["status"], appointment["date"]), settings, snapshot, None,
                              patient_id)
