"""A doctor's free slots, and the rule a booked time must keep: one home for both.

The free slots of a day come from the doctor's live queue (`actors.doctor`), which already holds the
doctor's hours and every slot held today or later: a read costs no store round trip once the queue
is loaded, and a day before today has no slot left to offer. The slot arithmetic (hours, DST) is
`core.hours`; which slot is taken is decided for good by the store's unique index on `slot`, never
by this read.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from core.errors import ValidationFailed
from core.hours import DEFAULT_SLOT_MINUTES, slot_key, slot_starts, why_not_a_slot
from core.policy import guarded
from core.values import format_utc
from domain.queues import snapshot_of

BOOKING_HORIZON = timedelta(days=366)  # also keeps date arithmetic in the ETA far from datetime.max
OUTSIDE_HOURS = "This time is not one of the doctor's slots."


@guarded("doctors.slots")
async def day_slots(services, doctor_id: str, day: date | None) -> dict:
    """`GET /api/doctors/{id}/slots`: every slot start of the clinic day inside the doctor's hours, in
    order, past ones (and the one starting now) left out, each marked free unless held."""
    snapshot = await snapshot_of(services, doctor_id)
    now = services.clock()
    calendar = services.calendar
    day = calendar.day_of(now) if day is None else day
    settings = snapshot.settings
    starts = slot_starts(day, settings.hours, settings.slot_minutes, calendar.zone) if settings.hours else []
    held = snapshot.held
    # Written out here rather than dumped through the schema: 288 nested dumps cost more than the rest
    # of the read (see bench/README.md); the shape is `schemas.doctors.DaySlotsSchema`.
    return {"doctorId": doctor_id, "date": day.isoformat(), "slotMinutes": settings.slot_minutes,
            "slots": [{"start": format_utc(start), "free": start not in held} for start in starts if start > now]}


def check_booked_time(services, doctor: dict, moment: datetime) -> str | None:
    """Refuses a time a booking or a reschedule may not take (`400`, `details.date` says why): not in
    the future, more than a year ahead, or, for a doctor with hours, not one of its slot starts.
    Returns the slot key the appointment will hold (None for a doctor without hours)."""
    check_future(services, moment)
    return slot_for(services, doctor, moment)


def check_future(services, moment: datetime) -> None:
    """The half of the rule that needs no doctor: in the future, within a year. (A booking checks it
    before looking the doctor up, so a bad time is a 400 whichever doctor it names.)"""
    now = services.clock()
    if moment <= now:
        raise ValidationFailed(details={"date": ["Must be in the future."]})
    if moment > now + BOOKING_HORIZON:
        raise ValidationFailed(details={"date": ["Must be within a year from now."]})


def slot_for(services, doctor: dict, moment: datetime) -> str | None:
    """The doctor's half: with hours, `moment` must be one of its slot starts (`400 outside_hours`);
    returns the slot key to hold, or None for a doctor without hours."""
    hours = doctor.get("hours") or []
    if not hours:
        return None
    calendar = services.calendar
    why = why_not_a_slot(moment, calendar.day_of(moment), hours, doctor.get("slotMinutes") or DEFAULT_SLOT_MINUTES, calendar.zone)
    if why is not None:
        raise ValidationFailed(OUTSIDE_HOURS, code="outside_hours", details={"date": [why]})
    return slot_key(str(doctor["_id"]), moment)
