"""Appointments over HTTP: parse, call `domain.appointments`, render."""

from __future__ import annotations

import re

from core.errors import ValidationFailed
from domain import appointments, idempotency
from handlers.base import APIHandler
from schemas.appointments import (AppointmentCreateSchema, AppointmentListQuerySchema,
                                  AppointmentRescheduleSchema, AppointmentStatusSchema, present)
from schemas.base import load_body

create_schema = AppointmentCreateSchema()
status_schema = AppointmentStatusSchema()
reschedule_schema = AppointmentRescheduleSchema()
list_query_schema = AppointmentListQuerySchema()


IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,64}")  # 1-64 printable characters


class IdempotentHandler(APIHandler):
    def idempotency_key(self) -> str | None:
        key = self.request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            raise ValidationFailed(details={"Idempotency-Key": ["Give 1 to 64 printable characters."]})
        return key


class AppointmentsHandler(IdempotentHandler):
    async def post(self) -> None:
        principal = self.caller_of(appointments.book)
        key = self.idempotency_key()
        raw = self.json_body()

        async def book() -> tuple[int, dict]:
            appointment = await appointments.book(self.services, principal, load_body(create_schema, raw))
            return 201, present(appointment, principal)

        if key is None:
            status, answer = await book()
        else:
            status, answer = await idempotency.once(self.services, principal, key, raw, book)
        self.send_json(answer, status)

    async def get(self) -> None:
        principal = self.caller_of(appointments.page)
        params = load_body(list_query_schema, self.query_arguments())
        items, total = await appointments.page(self.services, principal, params)
        self.send_page([present(a, principal) for a in items], total, params)


class MyAppointmentsHandler(APIHandler):
    async def get(self) -> None:
        principal = self.caller_of(appointments.appointments_of_patient)
        mine = await appointments.appointments_of_patient(self.services, principal)
        self.send_json([present(a, principal) for a in mine])


class AppointmentHandler(IdempotentHandler):
    async def get(self, appointment_id: str) -> None:
        principal = self.caller_of(appointments.visible_appointment)
        appointment = await appointments.visible_appointment(
            self.services, principal, self.path_id(appointment_id, "Appointment"))
        self.send_json(present(appointment, principal))

    async def patch(self, appointment_id: str) -> None:
        principal = self.caller_of(appointments.reschedule)
        appointment_id = self.path_id(appointment_id, "Appointment")
        key = self.idempotency_key()
        raw = self.json_body()

        async def move() -> tuple[int, dict]:
            updated = await appointments.reschedule(self.services, principal, appointment_id,
                                                    load_body(reschedule_schema, raw))
            return 200, present(updated, principal)

        if key is None:
            status, answer = await move()
        else:  # the key's fingerprint names the appointment: one key, one request, whichever route
            status, answer = await idempotency.once(self.services, principal, key,
                                                    {"reschedule": appointment_id, "body": raw}, move)
        self.send_json(answer, status)


class AppointmentStatusHandler(APIHandler):
    async def patch(self, appointment_id: str) -> None:
        principal = self.caller_of(appointments.change_status)
        body = load_body(status_schema, self.json_body())
        updated = await appointments.change_status(
            self.services, principal, self.path_id(appointment_id, "Appointment"), body["status"])
        self.send_json(present(updated, principal))


class DoctorAppointmentsHandler(APIHandler):
    async def get(self, doctor_id: str) -> None:
        principal = self.caller_of(appointments.waiting_of_doctor)
        waiting = await appointments.waiting_of_doctor(self.services, principal, self.path_id(doctor_id, "Doctor"))
        self.send_json([present(a, principal) for a in waiting])
