"""Doctor profiles (public reads, admin writes), the doctor's status, and calling the next patient."""

from __future__ import annotations

import logging

from actors.messages import DoctorChanged, DoctorDeleted
from handlers.base import APIHandler
from schemas.base import load_body
from schemas.doctors import (DEFAULT_AVG_CONSULT_MINUTES, DoctorCreateSchema, DoctorStatusSchema,
                             doctor_schema, status_changes)
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.store import DuplicateKeyError, utcnow
from server import consultations
from schemas.appointments import present

log = logging.getLogger("medpharma.doctors")

doctor_create_schema = DoctorCreateSchema()
doctor_status_schema = DoctorStatusSchema()

EMAIL_TAKEN = "A doctor with this email already exists."
HAS_PATIENTS = "This doctor still has waiting or in-consultation appointments."


class DoctorHandlerMixin:
    async def load_doctor(self: APIHandler, doctor_id: str) -> dict:
        doctor = await self.services.store.find_doctor(self.path_id(doctor_id, "Doctor"))
        if doctor is None:
            raise NotFound("Doctor not found.")
        return doctor

    def require_staff_of(self: APIHandler, doctor_id: str):
        """Admin, or the doctor whose profile this is; anyone else gets 403."""
        principal = self.require_user()
        if principal.is_admin or principal.is_doctor_of(doctor_id):
            return principal
        raise Forbidden("Only this doctor or an admin may do this.")


class DoctorsHandler(APIHandler):
    async def get(self) -> None:
        doctors = await self.services.store.list_doctors()
        self.send_json(doctor_schema.dump(doctors, many=True))

    async def post(self) -> None:
        self.require_user("admin")
        body = load_body(doctor_create_schema, self.json_body())
        now = utcnow()
        document = {"name": body["name"], "specialization": body["specialization"], "email": body["email"],
                    "phone": body["phone"], "availability": body.get("availability", []),
                    "avgConsultMinutes": body.get("avgConsultMinutes", DEFAULT_AVG_CONSULT_MINUTES),
                    "isRunningLate": False, "lateByMinutes": 0, "createdAt": now, "updatedAt": now, "version": 0}
        try:
            doctor = await self.services.store.insert_doctor(document)
        except DuplicateKeyError:
            raise Conflict(EMAIL_TAKEN, code="email_taken") from None
        self.send_json(doctor_schema.dump(doctor), 201)


class DoctorHandler(DoctorHandlerMixin, APIHandler):
    async def get(self, doctor_id: str) -> None:
        self.send_json(doctor_schema.dump(await self.load_doctor(doctor_id)))

    async def put(self, doctor_id: str) -> None:
        self.require_user("admin")
        oid = self.path_id(doctor_id, "Doctor")
        changes = load_body(doctor_create_schema, self.json_body(), partial=True)
        changes["updatedAt"] = utcnow()
        try:
            doctor = await self.services.store.update_doctor(oid, changes)
        except DuplicateKeyError:
            raise Conflict(EMAIL_TAKEN, code="email_taken") from None
        if doctor is None:
            raise NotFound("Doctor not found.")
        await self.services.bus.publish(DoctorChanged(doctor_id, doctor))
        self.send_json(doctor_schema.dump(doctor))

    async def delete(self, doctor_id: str) -> None:
        self.require_user("admin")
        oid = self.path_id(doctor_id, "Doctor")
        store = self.services.store
        doctor = await store.find_doctor(oid)
        if doctor is None:
            raise NotFound("Doctor not found.")
        if await store.doctor_has_active_appointments(oid):
            raise Conflict(HAS_PATIENTS, code="doctor_has_appointments")
        if not await store.delete_doctor(oid):
            raise NotFound("Doctor not found.")
        if await store.doctor_has_active_appointments(oid):
            # A booking landed between the check and the delete (there are no transactions to
            # stop it): put the profile back, same id, rather than leave a patient with no doctor.
            await store.insert_doctor(doctor)
            raise Conflict(HAS_PATIENTS, code="doctor_has_appointments")
        await self.services.bus.publish(DoctorDeleted(doctor_id))
        self.send_json({"message": "Doctor deleted.", "id": doctor_id})


class DoctorStatusHandler(DoctorHandlerMixin, APIHandler):
    async def patch(self, doctor_id: str) -> None:
        self.require_staff_of(doctor_id)
        oid = self.path_id(doctor_id, "Doctor")
        body = status_changes(load_body(doctor_status_schema, self.json_body()))
        body["updatedAt"] = utcnow()
        doctor = await self.services.store.update_doctor(oid, body)
        if doctor is None:
            raise NotFound("Doctor not found.")
        await self.services.bus.publish(DoctorChanged(doctor_id, doctor))
        self.send_json(doctor_schema.dump(doctor))


class QueueNextHandler(DoctorHandlerMixin, APIHandler):
    async def post(self, doctor_id: str) -> None:
        self.require_staff_of(doctor_id)
        oid = self.path_id(doctor_id, "Doctor")
        if b"".join(self._body_parts).strip() and self.json_body() != {}:
            raise ValidationFailed("This endpoint takes no body (or {}).", code="invalid_body")
        await self.load_doctor(doctor_id)
        completed, current = await consultations.call_next(self.services, oid)
        viewer = self.principal
        self.send_json({"completed": present(completed, viewer),
                        "current": present(current, viewer)})
