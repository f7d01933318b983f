"""Doctor bodies (create, partial update, status) and the public shape of a doctor."""

from __future__ import annotations

from marshmallow import fields, validate

from core.access import is_staff_of
from schemas.base import StrictSchema
from schemas.fields import CleanString, NormalisedEmail, ObjectIdField, StrictBoolean, StrictInteger, UtcDateTime

STAFF_CONTACTS = ("email", "phone")  # a public directory does not hand out staff contacts


class DoctorCreateSchema(StrictSchema):
    name = CleanString(required=True, validate=validate.Length(min=1, max=100))
    specialization = CleanString(required=True, validate=validate.Length(min=1, max=100))
    email = NormalisedEmail(required=True, validate=validate.Length(max=254))
    phone = CleanString(required=True, validate=validate.Length(min=3, max=40))
    availability = fields.List(CleanString(validate=validate.Length(min=1, max=100)),
                               validate=validate.Length(max=50))
    avgConsultMinutes = StrictInteger(validate=validate.Range(min=1, max=240))


class DoctorStatusSchema(StrictSchema):
    isRunningLate = StrictBoolean()
    lateByMinutes = StrictInteger(validate=validate.Range(min=0, max=600))
    avgConsultMinutes = StrictInteger(validate=validate.Range(min=1, max=240))
    awayUntil = UtcDateTime(allow_none=True)


class CallNextSchema(StrictSchema):
    """`expectCurrent`: the appointment the caller sees in consultation (null: nobody)."""

    expectCurrent = ObjectIdField(allow_none=True)


class DoctorSchema(StrictSchema):
    id = ObjectIdField(required=True, attribute="_id")
    name = fields.String(required=True)
    specialization = fields.String(required=True)
    email = fields.String()
    phone = fields.String()
    availability = fields.List(fields.String(), required=True)
    avgConsultMinutes = fields.Integer(required=True)
    isRunningLate = fields.Boolean(required=True)
    lateByMinutes = fields.Integer(required=True)
    awayUntil = UtcDateTime(required=True, allow_none=True)
    createdAt = UtcDateTime(required=True)
    updatedAt = UtcDateTime(required=True)


doctor_schema = DoctorSchema()


def present_doctor(doctor: dict, viewer, now) -> dict:
    """The API shape for this viewer: `email` and `phone` only for admins and that doctor; a break
    that has passed shows as none."""
    data = doctor_schema.dump(doctor)
    if not is_staff_of(viewer, data["id"]):
        for key in STAFF_CONTACTS:
            data.pop(key, None)
    away = doctor.get("awayUntil")
    if away is None or away <= now:
        data["awayUntil"] = None
    return data
