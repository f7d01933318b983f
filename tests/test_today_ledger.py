"""Today's ledger (`actors.today`): what a report reads for the open day, loaded once and then kept by
the bus's changes; versions decide between a load and a message, a dropped ledger is loaded again."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from bson import ObjectId

from actors.today import DAY_FIELDS, DayLedger
from core.days import ClinicCalendar

CALENDAR = ClinicCalendar.named("Europe/Paris")
DAY = date(2026, 3, 10)
DOCTOR, OTHER = ObjectId(), ObjectId()


def appointment(hour: int, version: int, status: str = "waiting", doctor=DOCTOR, _id=None, day: date = DAY) -> dict:
    booked = datetime(day.year, day.month, day.day, hour, tzinfo=CALENDAR.zone).astimezone(timezone.utc)
    return {"_id": _id or ObjectId(), "doctor": doctor, "date": booked, "status": status, "version": version,
            "patientName": "Pat", "reason": "private"}


def test_a_load_then_messages_newest_version_wins():
    ledger = DayLedger(CALENDAR)
    assert not ledger.holds(DAY)
    first = appointment(9, 1)
    ticket = ledger.begin(DAY)
    assert ledger.fill(ticket, [first]) and ledger.holds(DAY) and not ledger.holds(DAY + timedelta(days=1))
    ledger.take([{**first, "status": "in_consultation", "version": 2}])
    ledger.take([{**first, "status": "waiting", "version": 1}])  # late: older than what is known
    (kept,) = ledger.documents()
    assert (kept["status"], kept["version"]) == ("in_consultation", 2)
    assert set(kept) <= set(DAY_FIELDS) | {"_id"}  # no names or reasons kept: only what a row reads


def test_a_message_during_the_load_is_not_undone_by_it():
    """The load may have read a write half done (the embedded store reads in another thread): the
    message of that write, with the same version, is what stays."""
    ledger = DayLedger(CALENDAR)
    one = appointment(10, 3, "completed")
    ticket = ledger.begin(DAY)
    ledger.take([one])
    ledger.fill(ticket, [{**one, "status": "in_consultation"}, ])  # same version, read mid-write
    assert [d["status"] for d in ledger.documents()] == ["completed"]
    ledger.take([{**one, "etaRange": "late"}])  # a message of the same version replaces it
    assert ledger.documents()[0]["etaRange"] == "late"


def test_other_days_are_left_out_and_a_moved_appointment_leaves():
    ledger = DayLedger(CALENDAR)
    ledger.fill(ledger.begin(DAY), [appointment(8, 1), appointment(23, 1, doctor=OTHER)])
    moving = appointment(11, 1)
    ledger.take([moving, appointment(9, 1, day=DAY + timedelta(days=1)), None])
    assert len(ledger.documents()) == 3
    ledger.take([{**moving, "date": moving["date"] + timedelta(days=1), "version": 2}])
    assert len(ledger.documents()) == 2
    assert [d["doctor"] for d in ledger.documents(str(OTHER))] == [OTHER]
    assert len(ledger.documents(str(DOCTOR))) == 1


def test_the_clinic_day_ends_at_its_local_midnight():
    ledger = DayLedger(CALENDAR)
    ledger.fill(ledger.begin(DAY), [])
    last_minute = CALENDAR.end_of(DAY) - timedelta(minutes=1)
    ledger.take([{**appointment(0, 1), "date": last_minute},
                 {**appointment(0, 1), "date": CALENDAR.end_of(DAY)}])  # 00:00 the next day: not this one
    assert [d["date"] for d in ledger.documents()] == [last_minute]


def test_a_ledger_dropped_while_it_loads_is_not_trusted():
    ledger = DayLedger(CALENDAR)
    ticket = ledger.begin(DAY)
    ledger.forget()  # the bus reconnected: changes may have been missed while the load read
    assert not ledger.fill(ticket, [appointment(9, 1)])
    assert not ledger.holds(DAY) and ledger.documents() == []
    ledger.take([appointment(9, 1)])  # nothing is kept for no day
    assert ledger.documents() == []
    assert ledger.fill(ledger.begin(DAY), [appointment(9, 1)]) and ledger.holds(DAY)
