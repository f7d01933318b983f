"""Shapes of the answers and socket events that are built as plain dicts for speed (the actors'
queue payloads, the day's statistics, the socket's frames) and of the small answers of every endpoint.

They exist so that the published API descriptions come from code rather than prose: the OpenAPI and
AsyncAPI documents are generated from these classes, and tests check every payload a real server
sends against them, so a field added to a payload without being added here fails a test.
Fields marked `required` are the ones an answer always carries (marshmallow ignores `required` when
dumping; it only tells the generated spec what a client may rely on).
"""

from __future__ import annotations

from marshmallow import fields, validate

from core.statuses import STATUSES
from schemas.appointments import AppointmentSchema
from schemas.auth import AuditEntrySchema, InviteSchema, UserSchema
from schemas.base import StrictSchema
from schemas.notifications import DeliverySchema
from schemas.fields import ClinicDate, ObjectIdField, UtcDateTime

STATUS = validate.OneOf(STATUSES)


def _required(field_class, *args, **kwargs):
    return field_class(*args, required=True, **kwargs)


# The range every estimate carries (earliestStartAt <= expectedStartAt <= latestStartAt).
_EARLIEST = '"Be ready by": about 5 % of real starts come before it, at most 1 % more than 10 minutes before.'
_LATEST = "About 10 % of real starts come after it."
_GONE = " Null once the appointment left the queue; the real start once it is in consultation."


class ErrorSchema(StrictSchema):
    """Every error answer, HTTP or refused upgrade: a sentence for people, a code for programs, and
    sometimes facts about the refusal (`invalid_transition` names `from` and `to`)."""

    message = _required(fields.String)
    code = _required(fields.String, validate=validate.Regexp(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"))
    details = fields.Dict(keys=fields.String())


class ValidationErrorSchema(ErrorSchema):
    """A `400`: `details`, when present, maps each bad field to its messages (a form can show them)."""

    details = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class MessageSchema(StrictSchema):
    message = _required(fields.String)


class HealthSchema(StrictSchema):
    status = _required(fields.String, validate=validate.OneOf(("ok",)))


class ReadySchema(StrictSchema):
    status = _required(fields.String, validate=validate.OneOf(("ready",)))


class SignedInSchema(StrictSchema):
    token = _required(fields.String)
    refreshToken = fields.String(metadata={"description": "Absent when the sign-in sent `X-Session-Cookie: 1`: "
                                                          "it is then the `medpharma_refresh` cookie."})
    user = _required(fields.Nested, UserSchema)


class TokensSchema(StrictSchema):
    token = _required(fields.String)
    refreshToken = fields.String(metadata={"description": "Absent when the session cookie was used: the cookie "
                                                          "holds the next one."})


class MeSchema(StrictSchema):
    user = _required(fields.Nested, UserSchema)


class DoctorDeletedSchema(StrictSchema):
    message = _required(fields.String)
    id = _required(ObjectIdField)


class CallNextResultSchema(StrictSchema):
    completed = _required(fields.Nested, AppointmentSchema, allow_none=True)
    current = _required(fields.Nested, AppointmentSchema, allow_none=True)


def _page_of(item_schema: type, name: str) -> type:
    """`{items, total, limit, offset}`: the one shape of every paged listing."""
    return type(name, (StrictSchema,), {
        "items": _required(fields.List, fields.Nested(item_schema)),
        "total": _required(fields.Integer, validate=validate.Range(min=0)),
        "limit": _required(fields.Integer, validate=validate.Range(min=1, max=200)),
        "offset": _required(fields.Integer, validate=validate.Range(min=0)),
        "__doc__": f"A page of {item_schema.__name__[:-len('Schema')]} items, newest first.",
    })


UserPageSchema = _page_of(UserSchema, "UserPageSchema")
InvitePageSchema = _page_of(InviteSchema, "InvitePageSchema")
AuditPageSchema = _page_of(AuditEntrySchema, "AuditPageSchema")
AppointmentPageSchema = _page_of(AppointmentSchema, "AppointmentPageSchema")
DeliveryPageSchema = _page_of(DeliverySchema, "DeliveryPageSchema")


class DayStatsSchema(StrictSchema):
    """`GET /api/doctors/{id}/stats`; means are null when there is nothing to average."""

    date = _required(ClinicDate)
    booked = _required(fields.Integer, validate=validate.Range(min=0))
    completed = _required(fields.Integer, validate=validate.Range(min=0))
    noShows = _required(fields.Integer, validate=validate.Range(min=0))
    cancelled = _required(fields.Integer, validate=validate.Range(min=0))
    waiting = _required(fields.Integer, validate=validate.Range(min=0))
    meanWaitMinutes = _required(fields.Float, allow_none=True)
    meanConsultMinutes = _required(fields.Float, allow_none=True)
    etaMaeMinutes = _required(fields.Float, allow_none=True)
    etaScored = _required(fields.Integer, validate=validate.Range(min=0))
    etaRange = _required(fields.Nested, lambda: EtaRangeCountsSchema())


class EtaRangeCountsSchema(StrictSchema):
    """Of the day's scored consultations, how many started before, inside and after the range
    [earliestStartAt, latestStartAt] published for them at least 30 minutes before."""

    early = _required(fields.Integer, validate=validate.Range(min=0))
    inside = _required(fields.Integer, validate=validate.Range(min=0))
    late = _required(fields.Integer, validate=validate.Range(min=0))


# -- the queue: REST reads and socket events share these ---------------------------------------------
class QueueUpdateSchema(StrictSchema):
    """`queue:update`: one appointment's place; `position` -1 and `etaMinutes` 0 once not waiting."""

    appointmentId = _required(ObjectIdField)
    status = _required(fields.String, validate=STATUS)
    date = _required(UtcDateTime, metadata={"description": "The booked time: a reschedule changes it (and "
                                                           "moves the appointment into its new day's queue)."})
    position = _required(fields.Integer, validate=validate.Range(min=-1))
    etaMinutes = _required(fields.Integer, validate=validate.Range(min=0))
    expectedStartAt = _required(UtcDateTime, allow_none=True)
    earliestStartAt = _required(UtcDateTime, allow_none=True, metadata={"description": _EARLIEST + _GONE})
    latestStartAt = _required(UtcDateTime, allow_none=True, metadata={"description": _LATEST + _GONE})
    delayMinutes = _required(fields.Integer, validate=validate.Range(min=0))
    isRunningLate = _required(fields.Boolean)
    lateByMinutes = _required(fields.Integer, validate=validate.Range(min=0))


class _WaitingEntrySchema(StrictSchema):
    """What every viewer sees of a waiting appointment: its place, its booked time and its estimate."""

    position = _required(fields.Integer, validate=validate.Range(min=0))
    date = _required(UtcDateTime)
    status = _required(fields.String, validate=STATUS)
    etaMinutes = _required(fields.Integer, validate=validate.Range(min=0))
    expectedStartAt = _required(UtcDateTime)
    earliestStartAt = _required(UtcDateTime, metadata={"description": _EARLIEST})
    latestStartAt = _required(UtcDateTime, metadata={"description": _LATEST})
    delayMinutes = _required(fields.Integer, validate=validate.Range(min=0))


class StaffQueueEntrySchema(_WaitingEntrySchema):
    """A waiting appointment as its doctor and admins see it: who, and whether they are watching."""

    appointmentId = _required(ObjectIdField)
    patient = _required(ObjectIdField)
    patientName = _required(fields.String)
    reason = _required(fields.String)
    present = _required(fields.Boolean)


class PublicQueueEntrySchema(_WaitingEntrySchema):
    """A waiting appointment as anyone else sees it: no identity; `appointmentId` only where `mine`."""

    mine = _required(fields.Boolean)
    appointmentId = ObjectIdField()


class StaffConsultationSchema(StrictSchema):
    appointmentId = _required(ObjectIdField)
    patient = _required(ObjectIdField)
    patientName = _required(fields.String)
    date = _required(UtcDateTime)
    status = _required(fields.String, validate=STATUS)
    reason = _required(fields.String)
    startedAt = _required(UtcDateTime, allow_none=True)


class PublicConsultationSchema(StrictSchema):
    date = _required(UtcDateTime)
    status = _required(fields.String, validate=STATUS)
    startedAt = _required(UtcDateTime, allow_none=True)
    mine = _required(fields.Boolean)
    appointmentId = ObjectIdField()


class _QueueStateFields(StrictSchema):
    doctorId = _required(ObjectIdField)
    date = _required(ClinicDate)
    isRunningLate = _required(fields.Boolean)
    lateByMinutes = _required(fields.Integer, validate=validate.Range(min=0))
    avgConsultMinutes = _required(fields.Integer, validate=validate.Range(min=1))
    awayUntil = _required(UtcDateTime, allow_none=True)


class StaffQueueStateSchema(_QueueStateFields):
    """`queue:state` / `GET /api/queue/doctor/{id}` for that doctor and admins."""

    inConsultation = _required(fields.Nested, StaffConsultationSchema, allow_none=True)
    list = _required(fields.List, fields.Nested(StaffQueueEntrySchema))


class PublicQueueStateSchema(_QueueStateFields):
    """`queue:state` / `GET /api/queue/doctor/{id}` for everyone else."""

    inConsultation = _required(fields.Nested, PublicConsultationSchema, allow_none=True)
    list = _required(fields.List, fields.Nested(PublicQueueEntrySchema))


class TurnNowSchema(StrictSchema):
    appointmentId = _required(ObjectIdField)
    joinUrl = _required(fields.String)


class TurnSoonSchema(StrictSchema):
    appointmentId = _required(ObjectIdField)
    position = _required(fields.Integer, validate=validate.Range(min=0))
    etaMinutes = _required(fields.Integer, validate=validate.Range(min=0))
    expectedStartAt = _required(UtcDateTime)
    earliestStartAt = _required(UtcDateTime, metadata={"description": _EARLIEST})


class DoctorStatusEventSchema(StrictSchema):
    doctorId = _required(ObjectIdField)
    isRunningLate = _required(fields.Boolean)
    lateByMinutes = _required(fields.Integer, validate=validate.Range(min=0))
    avgConsultMinutes = _required(fields.Integer, validate=validate.Range(min=1))
    awayUntil = _required(UtcDateTime, allow_none=True)


class FrameErrorSchema(StrictSchema):
    """`error`: a bad frame or a forbidden subscription; the socket stays open."""

    code = _required(fields.String)
    message = _required(fields.String)


class AuthOkSchema(StrictSchema):
    expiresAt = _required(UtcDateTime)


# -- client frames ---------------------------------------------------------------------------------
def _frame_type(name: str):
    return _required(fields.String, validate=validate.OneOf((name,)))


class SubscribeFrameSchema(StrictSchema):
    """Give `doctorId`, `appointmentId` or both."""

    type = _frame_type("queue:subscribe")
    doctorId = ObjectIdField()
    appointmentId = ObjectIdField()


class UnsubscribeFrameSchema(StrictSchema):
    type = _frame_type("queue:unsubscribe")
    doctorId = ObjectIdField()
    appointmentId = ObjectIdField()


class PingFrameSchema(StrictSchema):
    type = _frame_type("ping")


class AuthFrameSchema(StrictSchema):
    """A fresh access token of the same user, sent before the old one expires."""

    type = _frame_type("auth")
    token = _required(fields.String)
