"""Appointments over HTTP: parse, call `domain.appointments`, render."""

from __future__ import annotations

from domain import appointments
from handlers.base import APIHandler
from schemas.appointments import (AppointmentCreateSchema, AppointmentListQuerySchema,
                                  AppointmentStatusSchema, present)
from schemas.base import load_body

create_schema = AppointmentCreateSchema()
status_schema = AppointmentStatusSchema()
list_query_schema = AppointmentListQuerySchema()


class AppointmentsHandler(APIHandler):
    async def post(self) -> None:
        principal = self.require_user("patient")
        body = load_body(create_schema, self.json_body())
        appointment = await appointments.book(self.services, principal, body)
        self.send_json(present(appointment, principal), 201)

    async def get(self) -> None:
        principal = self.require_user("admin")
        params = load_body(list_query_schema, self.query_arguments())
        items, total = await appointments.page(self.services, params)
        self.send_json({"items": [present(a, principal) for a in items], "total": total,
                        "limit": params["limit"], "offset": params["offset"]})


class MyAppointmentsHandler(APIHandler):
    async def get(self) -> None:
        principal = self.require_user("patient")
        mine = await appointments.appointments_of_patient(self.services, principal)
        self.send_json([present(a, principal) for a in mine])


class AppointmentHandler(APIHandler):
    async def get(self, appointment_id: str) -> None:
        principal = self.require_user()
        appointment = await appointments.visible_appointment(
            self.services, principal, self.path_id(appointment_id, "Appointment"))
        self.send_json(present(appointment, principal))


class AppointmentStatusHandler(APIHandler):
    async def patch(self, appointment_id: str) -> None:
        principal = self.require_user()
        body = load_body(status_schema, self.json_body())
        updated = await appointments.change_status(
            self.services, principal, self.path_id(appointment_id, "Appointment"), body["status"])
        self.send_json(present(updated, principal))


class DoctorAppointmentsHandler(APIHandler):
    async def get(self, doctor_id: str) -> None:
        principal = self.require_user()
        waiting = await appointments.waiting_of_doctor(self.services, principal, self.path_id(doctor_id, "Doctor"))
        self.send_json([present(a, principal) for a in waiting])
