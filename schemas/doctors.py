"""Doctor bodies (create, partial update, status) and the public shape of a doctor."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from core.access import is_staff_of
from core.hours import (DAYS, DEFAULT_SLOT_MINUTES, MAX_INTERVALS, MAX_SLOT_MINUTES, MIN_SLOT_MINUTES, HoursError,
                        normalised)
from schemas.base import StrictSchema
from schemas.fields import CleanString, NormalisedEmail, ObjectIdField, StrictBoolean, StrictInteger, UtcDateTime

STAFF_CONTACTS = ("email", "phone")  # a public directory does not hand out staff contacts


CLOCK_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"


class HoursEntrySchema(StrictSchema):
    """One working stretch, in the clinic's zone (`CLINIC_TIMEZONE`)."""

    day = fields.String(required=True, validate=validate.OneOf(DAYS))
    start = fields.String(required=True, validate=validate.Regexp(CLOCK_PATTERN, error="Give a time as HH:MM."))
    end = fields.String(required=True, validate=validate.Regexp(CLOCK_PATTERN, error="Give a time as HH:MM."))


class WorkingHours(fields.List):
    """The doctor's hours: each entry well formed, each `start` before its `end`, no two intervals of a
    day overlapping (`core.hours`); loaded sorted by day and start."""

    def __init__(self, **kwargs):
        super().__init__(fields.Nested(HoursEntrySchema), validate=validate.Length(max=MAX_INTERVALS), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        entries = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalised(entries)
        except HoursError as exc:
            raise ValidationError(exc.messages) from None


SLOT_MINUTES = dict(validate=validate.Range(min=MIN_SLOT_MINUTES, max=MAX_SLOT_MINUTES))


class DoctorCreateSchema(StrictSchema):
    name = CleanString(required=True, validate=validate.Length(min=1, max=100))
    specialization = CleanString(required=True, validate=validate.Length(min=1, max=100))
    email = NormalisedEmail(required=True, validate=validate.Length(max=254))
    phone = CleanString(required=True, validate=validate.Length(min=3, max=40))
    availability = fields.List(CleanString(validate=validate.Length(min=1, max=100)),
                               validate=validate.Length(max=50))
    avgConsultMinutes = StrictInteger(validate=validate.Range(min=1, max=240))
    hours = WorkingHours()
    slotMinutes = StrictInteger(**SLOT_MINUTES)


class DoctorStatusSchema(StrictSchema):
    isRunningLate = StrictBoolean()
    lateByMinutes = StrictInteger(validate=validate.Range(min=0, max=600))
    avgConsultMinutes = StrictInteger(validate=validate.Range(min=1, max=240))
    awayUntil = UtcDateTime(allow_none=True)
    hours = WorkingHours()
    slotMinutes = StrictInteger(**SLOT_MINUTES)


class SlotSchema(StrictSchema):
    start = UtcDateTime(required=True)
    free = fields.Boolean(required=True)


class DaySlotsSchema(StrictSchema):
    """`GET /api/doctors/{id}/slots`: the slot starts of one clinic day, past ones left out."""

    doctorId = fields.String(required=True)
    date = fields.String(required=True)
    slotMinutes = fields.Integer(required=True)
    slots = fields.List(fields.Nested(SlotSchema), required=True)


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
    hours = fields.List(fields.Nested(HoursEntrySchema), required=True, dump_default=list)
    slotMinutes = fields.Integer(required=True, dump_default=DEFAULT_SLOT_MINUTES)
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
