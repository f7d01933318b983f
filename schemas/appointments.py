"""Appointment bodies, the admin list's query, and the public shape of an appointment."""

from __future__ import annotations

from datetime import date as calendar_day

from marshmallow import ValidationError, fields, validate, validates_schema

from core.access import relation
from core.statuses import STATUSES
from schemas.base import PageQuerySchema, StrictSchema
from schemas.fields import CleanString, ClinicDate, NormalisedEmail, ObjectIdField, UtcDateTime


class AppointmentCreateSchema(StrictSchema):
    patientName = CleanString(required=True, validate=validate.Length(min=1, max=100))
    patientEmail = NormalisedEmail(required=True, validate=validate.Length(max=254))
    patientPhone = CleanString(required=True, validate=validate.Length(min=3, max=40))
    doctor = ObjectIdField(required=True)
    date = UtcDateTime(required=True)
    reason = fields.String(load_default="", validate=validate.Length(max=1000))


class AppointmentRescheduleSchema(StrictSchema):
    """`PATCH /api/appointments/{id}`: a new time, and/or (its patient only) a new reason."""

    date = UtcDateTime()
    reason = fields.String(validate=validate.Length(max=1000))

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Send `date` and/or `reason`.", field_name="_body")


class AppointmentStatusSchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class AppointmentListQuerySchema(PageQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    doctor = ObjectIdField(load_default=None)


class AppointmentSchema(StrictSchema):
    id = ObjectIdField(required=True, attribute="_id")
    patient = ObjectIdField(required=True)
    patientName = fields.String(required=True)
    patientEmail = fields.String(required=True)
    patientPhone = fields.String(required=True)
    doctor = ObjectIdField(required=True)
    date = UtcDateTime(required=True)
    reason = fields.String(required=True)
    status = fields.String(required=True)
    createdAt = UtcDateTime(required=True)
    updatedAt = UtcDateTime(required=True)
    startedAt = UtcDateTime()
    completedAt = UtcDateTime()
    joinUrl = fields.String()


class QueuePositionSchema(StrictSchema):
    """`GET /api/queue/appointment/{id}/position`."""

    appointmentId = fields.String(required=True)
    status = fields.String(required=True)
    position = fields.Integer(required=True)
    etaMinutes = fields.Integer(required=True)
    expectedStartAt = fields.String(required=True, allow_none=True)
    earliestStartAt = fields.String(required=True, allow_none=True)
    latestStartAt = fields.String(required=True, allow_none=True)
    delayMinutes = fields.Integer(required=True)
    avgConsultMinutes = fields.Integer(required=True)
    isRunningLate = fields.Boolean(required=True)
    lateByMinutes = fields.Integer(required=True)
    awayUntil = UtcDateTime(required=True, allow_none=True)


class DayQuerySchema(StrictSchema):
    """`?date=YYYY-MM-DD` on a doctor's queue or stats: another clinic day (default today)."""

    date = ClinicDate(load_default=None)


class SlotsDayQuerySchema(StrictSchema):
    """`?date=YYYY-MM-DD` on a doctor's slots: a clinic day (default today)."""

    date = ClinicDate(load_default=None, earliest=calendar_day(2000, 1, 1), latest=calendar_day(2099, 12, 31))


class StatsDayQuerySchema(StrictSchema):
    """`?date=YYYY-MM-DD` on a doctor's day in numbers: a day of this century (default today)."""

    date = ClinicDate(load_default=None, earliest=calendar_day(2000, 1, 1), latest=calendar_day(2099, 12, 31))


appointment_schema = AppointmentSchema()
OPTIONAL = ("startedAt", "completedAt", "joinUrl")


def may_see_join_url(appointment: dict, viewer) -> bool:
    return relation(viewer, str(appointment["doctor"]), str(appointment["patient"])) is not None


def present(appointment: dict | None, viewer) -> dict | None:
    """The API shape; `startedAt`/`completedAt` only once set, `joinUrl` only for who may join."""
    if appointment is None:
        return None
    data = appointment_schema.dump(appointment)
    for key in OPTIONAL:
        if data.get(key) is None:
            data.pop(key, None)
    if "joinUrl" in data and not may_see_join_url(appointment, viewer):
        del data["joinUrl"]
    return data
