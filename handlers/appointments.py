"""Booking, reading and changing appointments. Every change is announced to the doctor's queue
before the answer goes out, so a read right after it sees it."""

from __future__ import annotations

from datetime import timedelta

from server import consultations
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.store import DuplicateKeyError, utcnow
from server.transitions import relation
from handlers.base import APIHandler
from schemas.appointments import (AppointmentCreateSchema, AppointmentListQuerySchema,
                                  AppointmentStatusSchema, present)
from schemas.base import load_body

create_schema = AppointmentCreateSchema()
BOOKING_HORIZON = timedelta(days=366)  # also keeps date arithmetic in the ETA far from datetime.max
status_schema = AppointmentStatusSchema()
list_query_schema = AppointmentListQuerySchema()


class AppointmentLoader:
    async def load_visible(self: APIHandler, appointment_id: str) -> dict:
        """The appointment if the caller is its patient, its doctor or an admin; else 404 / 403."""
        principal = self.require_user()
        appointment = await self.services.store.find_appointment(self.path_id(appointment_id, "Appointment"))
        if appointment is None:
            raise NotFound("Appointment not found.")
        if relation(principal, appointment) is None:
            raise Forbidden("This is not your appointment.")
        return appointment


class AppointmentsHandler(APIHandler):
    async def post(self) -> None:
        principal = self.require_user("patient")
        body = load_body(create_schema, self.json_body())
        now = utcnow()
        if body["date"] <= now:
            raise ValidationFailed(details={"date": ["Must be in the future."]})
        if body["date"] > now + BOOKING_HORIZON:
            raise ValidationFailed(details={"date": ["Must be within a year from now."]})
        store = self.services.store
        doctor = await store.find_doctor(body["doctor"])
        if doctor is None:
            raise NotFound("Doctor not found.", code="doctor_not_found")
        now = utcnow()
        patient = self.path_id(principal.user_id)
        document = {**body, "patient": patient, "status": "pending", "createdAt": now, "updatedAt": now,
                    "version": 0, "waitingKey": f"{patient}:{doctor['_id']}"}
        try:
            appointment = await store.insert_appointment(document)
        except DuplicateKeyError:
            raise Conflict("You already have a waiting appointment with this doctor.",
                           code="already_booked") from None
        if await store.find_doctor(doctor["_id"]) is None:
            # The doctor was deleted while we booked: withdraw the booking instead of orphaning it.
            await store.update_appointment_if(appointment["_id"], "pending", 0, consultations.status_update(
                appointment, "cancelled", self.services.settings.join_url_template))
            raise NotFound("Doctor not found.", code="doctor_not_found")
        await consultations.announce(self.services, appointment)
        self.send_json(present(appointment, principal), 201)

    async def get(self) -> None:
        self.require_user("admin")
        query = {}
        for name, values in self.request.query_arguments.items():
            if len(values) != 1:
                raise ValidationFailed(details={name: ["Give this parameter once."]})
            text = values[0].decode("utf-8", "replace")
            numeric = text.isascii() and text.isdigit() and len(text) <= 20  # not "²", not 5000 digits
            query[name] = int(text) if name in ("limit", "offset") and numeric else text
        params = load_body(list_query_schema, query)
        store_query = {}
        if params["status"] is not None:
            store_query["status"] = params["status"]
        if params["doctor"] is not None:
            store_query["doctor"] = params["doctor"]
        items, total = await self.services.store.page_appointments(store_query, params["limit"], params["offset"])
        self.send_json({"items": [present(a, self.principal) for a in items], "total": total,
                        "limit": params["limit"], "offset": params["offset"]})


class MyAppointmentsHandler(APIHandler):
    async def get(self) -> None:
        principal = self.require_user("patient")
        appointments = await self.services.store.appointments_of_patient(self.path_id(principal.user_id))
        self.send_json([present(a, principal) for a in appointments])


class AppointmentHandler(AppointmentLoader, APIHandler):
    async def get(self, appointment_id: str) -> None:
        appointment = await self.load_visible(appointment_id)
        self.send_json(present(appointment, self.principal))


class AppointmentStatusHandler(AppointmentLoader, APIHandler):
    async def patch(self, appointment_id: str) -> None:
        principal = self.require_user()
        body = load_body(status_schema, self.json_body())
        appointment = await self.load_visible(appointment_id)
        updated = await consultations.change_status(self.services, appointment, body["status"], principal)
        self.send_json(present(updated, principal))


class DoctorAppointmentsHandler(APIHandler):
    async def get(self, doctor_id: str) -> None:
        principal = self.require_user()
        oid = self.path_id(doctor_id, "Doctor")
        if not (principal.is_admin or principal.is_doctor_of(doctor_id)):
            raise Forbidden("Only this doctor or an admin may list its appointments.")
        store = self.services.store
        if await store.find_doctor(oid) is None:
            raise NotFound("Doctor not found.")
        waiting = await store.waiting_of_doctor(oid)
        self.send_json([present(a, principal) for a in waiting])
