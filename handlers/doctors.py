"""Doctor profiles, the doctor's status and calling the next patient over HTTP: parse, call, render."""

from __future__ import annotations

from domain import appointments, doctors, slots, stats
from domain.appointments import NOT_GIVEN
from handlers.base import APIHandler
from schemas.appointments import SlotsDayQuerySchema, StatsDayQuerySchema, present
from schemas.base import load_body
from schemas.doctors import CallNextSchema, DoctorCreateSchema, DoctorStatusSchema, present_doctor


doctor_create_schema = DoctorCreateSchema()
doctor_status_schema = DoctorStatusSchema()
call_next_schema = CallNextSchema()
day_query_schema = StatsDayQuerySchema()
slots_query_schema = SlotsDayQuerySchema()


class DoctorRenderer:
    def render_doctor(self: APIHandler, doctor: dict, status: int = 200) -> None:
        self.send_json(present_doctor(doctor, self.principal, self.services.clock()), status)


class DoctorsHandler(DoctorRenderer, APIHandler):
    async def get(self) -> None:
        now, viewer = self.services.clock(), self.principal
        self.send_json([present_doctor(d, viewer, now) for d in await doctors.list_doctors(self.services)])

    async def post(self) -> None:
        admin = self.caller_of(doctors.create_doctor)
        body = load_body(doctor_create_schema, self.json_body())
        self.render_doctor(await doctors.create_doctor(self.services, admin, body), 201)


class DoctorHandler(DoctorRenderer, APIHandler):
    async def get(self, doctor_id: str) -> None:
        self.render_doctor(await doctors.get_doctor(self.services, self.path_id(doctor_id, "Doctor")))

    async def put(self, doctor_id: str) -> None:
        admin = self.caller_of(doctors.update_doctor)
        doctor_id = self.path_id(doctor_id, "Doctor")
        changes = load_body(doctor_create_schema, self.json_body(), partial=True)
        self.render_doctor(await doctors.update_doctor(self.services, admin, doctor_id, changes))

    async def delete(self, doctor_id: str) -> None:
        admin = self.caller_of(doctors.delete_doctor)
        doctor_id = self.path_id(doctor_id, "Doctor")
        await doctors.delete_doctor(self.services, admin, doctor_id)
        self.send_json({"message": "Doctor deleted.", "id": doctor_id})


class DoctorStatusHandler(DoctorRenderer, APIHandler):
    async def patch(self, doctor_id: str) -> None:
        principal = self.caller_of(doctors.set_status)
        doctor_id = self.path_id(doctor_id, "Doctor")
        body = load_body(doctor_status_schema, self.json_body())
        self.render_doctor(await doctors.set_status(self.services, principal, doctor_id, body))


class DoctorStatsHandler(APIHandler):
    async def get(self, doctor_id: str) -> None:
        principal = self.caller_of(stats.day_stats)
        doctor_id = self.path_id(doctor_id, "Doctor")
        day = load_body(day_query_schema, self.query_arguments())["date"]
        self.send_json(await stats.day_stats(self.services, principal, doctor_id, day))


class DoctorSlotsHandler(APIHandler):
    async def get(self, doctor_id: str) -> None:
        doctor_id = self.path_id(doctor_id, "Doctor")
        day = load_body(slots_query_schema, self.query_arguments())["date"]
        self.send_json(await slots.day_slots(self.services, doctor_id, day))  # already in DaySlotsSchema's shape


class QueueNextHandler(APIHandler):
    async def post(self, doctor_id: str) -> None:
        principal = self.caller_of(appointments.call_next)
        doctor_id = self.path_id(doctor_id, "Doctor")
        body = load_body(call_next_schema, self.json_body()) if self.has_body() else {}
        result = await appointments.call_next(self.services, principal, doctor_id,
                                              body.get("expectCurrent", NOT_GIVEN))
        self.send_json({"completed": present(result.completed, principal),
                        "current": present(result.current, principal)})
