"""Queue reads over HTTP: a doctor's queue for a clinic day, and one appointment's place in it."""

from __future__ import annotations

from domain import queues
from handlers.base import APIHandler
from schemas.appointments import QueuePositionSchema, DayQuerySchema
from schemas.base import load_body

position_schema = QueuePositionSchema()
day_query_schema = DayQuerySchema()


class DoctorQueueHandler(APIHandler):
    async def get(self, doctor_id: str) -> None:
        principal = self.caller_of(queues.doctor_queue)
        doctor_id = self.path_id(doctor_id, "Doctor")
        day = load_body(day_query_schema, self.query_arguments())["date"]
        self.send_json(await queues.doctor_queue(self.services, principal, doctor_id, day))


class AppointmentPositionHandler(APIHandler):
    async def get(self, appointment_id: str) -> None:
        principal = self.caller_of(queues.locate_appointment)
        found = await queues.locate_appointment(self.services, principal,
                                                self.path_id(appointment_id, "Appointment"))
        self.send_json(position_schema.dump(found.position_answer()))
