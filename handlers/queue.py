"""Queue reads: a doctor's whole queue and one appointment's place in it.

Both come from the doctor's actor: once its queue is loaded, a read costs no store round trip.
Only an appointment no live queue holds (finished, or its doctor's queue not loaded yet) is looked up.
"""

from __future__ import annotations

from actors.doctor import DoctorNotFound
from actors.snapshot import DoctorSettings, QueueSnapshot
from server.errors import Forbidden, NotFound
from server.transitions import relation
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


class AppointmentPositionHandler(APIHandler):
    async def get(self, appointment_id: str) -> None:
        principal = self.require_user()
        oid = self.path_id(appointment_id, "Appointment")
        services = self.services
        doctor_id = services.queues.doctor_of(appointment_id)
        if doctor_id is not None:
            snapshot = await doctor_snapshot(services, doctor_id)
            entry = snapshot.entry(appointment_id)
            if entry is not None:
                if not (principal.is_admin or principal.is_doctor_of(doctor_id) or principal.user_id == entry.patient):
                    raise Forbidden("This is not your appointment.")
                self.send_json(self._answer(snapshot.update_for(appointment_id), snapshot.settings))
                return
        appointment = await services.store.find_appointment(oid)
        if appointment is None:
            raise NotFound("Appointment not found.")
        if relation(principal, appointment) is None:
            raise Forbidden("This is not your appointment.")
        try:
            snapshot = await services.queues.snapshot(str(appointment["doctor"]))
        except DoctorNotFound:
            snapshot = None
        update = snapshot.update_for(appointment_id) if snapshot is not None else None
        settings = snapshot.settings if snapshot is not None else DoctorSettings(12, False, 0)
        if update is None:  # not (or no longer) in the queue
            update = {"appointmentId": appointment_id, "status": appointment["status"], "position": -1,
                      "etaMinutes": 0, "expectedStartAt": None}
        self.send_json(self._answer(update, settings))

    @staticmethod
    def _answer(update: dict, settings: DoctorSettings) -> dict:
        return position_schema.dump({**update, "avgConsultMinutes": settings.avg_consult_minutes,
                                     "isRunningLate": settings.is_running_late,
                                     "lateByMinutes": settings.late_by_minutes})
