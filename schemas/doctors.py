"""Doctor bodies (create, partial update, status) and the public shape of a doctor."""

from __future__ import annotations

from marshmallow import fields, validate

from schemas.base import StrictSchema
from schemas.fields import CleanString, NormalisedEmail, ObjectIdField, StrictBoolean, StrictInteger, UtcDateTime

DEFAULT_AVG_CONSULT_MINUTES = 12


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


def status_changes(body: dict) -> dict:
    """The fields a status change writes: `isRunningLate: false` without `lateByMinutes` also resets
    the lateness to 0 (API.md), so a doctor back on time is not left with a stale number."""
    changes = dict(body)
    if changes.get("isRunningLate") is False and "lateByMinutes" not in changes:
        changes["lateByMinutes"] = 0
    return changes


class DoctorSchema(StrictSchema):
    id = ObjectIdField(attribute="_id")
    name = fields.String()
    specialization = fields.String()
    email = fields.String()
    phone = fields.String()
    availability = fields.List(fields.String())
    avgConsultMinutes = fields.Integer()
    isRunningLate = fields.Boolean()
    lateByMinutes = fields.Integer()
    createdAt = UtcDateTime()
    updatedAt = UtcDateTime()


doctor_schema = DoctorSchema()
