"""The ETA rule of the API contract, checked against a table of hand-computed cases (actors/eta.py)."""

from datetime import datetime, timedelta, timezone

import pytest

from actors.eta import Estimate, doctor_free_at, estimate_queue, minutes_until
from actors.snapshot import DoctorSettings, QueueEntry, QueueSnapshot
from core.days import UTC_CALENDAR

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=timezone.utc)


def at(minutes: float = 0, seconds: float = 0, days: int = 0) -> datetime:
    return NOW + timedelta(days=days, minutes=minutes, seconds=seconds)


# (name, booked dates in queue order, avg, late, consultation startedAt,
#  expected [(etaMinutes, expectedStartAt)])
CASES = [
    ("empty queue", [], 12, 0, None, []),
    ("all due now", [at(), at(), at(), at()], 12, 0, None,
     [(0, at()), (12, at(12)), (24, at(24)), (36, at(36))]),
    ("all booked in the past count as due now", [at(-30), at(-20), at(-10)], 10, 0, None,
     [(0, at()), (10, at(10)), (20, at(20))]),
    ("tomorrow's booking waits for tomorrow", [at(days=1, minutes=-60)], 12, 0, None,
     [(23 * 60, at(days=1, minutes=-60))]),
    ("a booking for tomorrow behind one due now", [at(), at(days=1)], 15, 0, None,
     [(0, at()), (24 * 60, at(days=1))]),
    ("gap in the day: later booking starts at its own time", [at(), at(5), at(60)], 12, 0, None,
     [(0, at()), (12, at(12)), (60, at(60))]),
    ("lateness adds to the first start", [at(), at()], 10, 25, None,
     [(25, at(25)), (35, at(35))]),
    ("lateness is absorbed by a far booking", [at(40)], 10, 25, None, [(40, at(40))]),
    ("lateness pushes a near booking", [at(20)], 10, 25, None, [(25, at(25))]),
    ("overrunning consultation: free now", [at(), at()], 12, 0, at(-20),
     [(0, at()), (12, at(12))]),
    ("consultation exactly at its average: free now", [at()], 12, 0, at(-12), [(0, at())]),
    ("consultation in progress: free at startedAt + avg", [at(), at()], 12, 0, at(-5),
     [(7, at(7)), (19, at(19))]),
    ("consultation in progress plus lateness", [at()], 12, 10, at(-5), [(17, at(17))]),
    ("overrunning consultation plus lateness", [at()], 12, 10, at(-30), [(10, at(10))]),
    ("ties on date: the second starts one average later", [at(30), at(30), at(30)], 10, 0, None,
     [(30, at(30)), (40, at(40)), (50, at(50))]),
    ("partial minutes round up", [at(5, 1)], 12, 0, None, [(6, at(5, 1))]),
    ("a millisecond ahead is one minute", [at(seconds=0.001)], 12, 0, None, [(1, at(seconds=0.001))]),
    ("whole minutes stay whole", [at(5)], 12, 0, None, [(5, at(5))]),
    ("partial minutes after an in-progress consultation", [at()], 12, 0, at(-5, -30),
     [(7, at(6, 30))]),
    ("partial-minute bookings chain", [at(0, 30), at(0, 40)], 1, 0, None,
     [(1, at(0, 30)), (2, at(1, 30))]),
]


@pytest.mark.parametrize("name,booked,avg,late,started,expected", CASES, ids=[c[0] for c in CASES])
def test_estimate_queue_table(name, booked, avg, late, started, expected):
    estimates = estimate_queue(booked, now=NOW, avg_minutes=avg, late_minutes=late,
                               consultation_started_at=started)
    assert estimates == [Estimate(position, eta, start, minutes_until(booked_at, start))
                         for position, ((eta, start), booked_at) in enumerate(zip(expected, booked))]


@pytest.mark.parametrize("started,late,expected", [
    (None, 0, NOW),
    (None, 15, at(15)),
    (at(-3), 0, at(9)),
    (at(-3), 15, at(24)),
    (at(-60), 0, NOW),
    (at(-60), 5, at(5)),
])
def test_doctor_free_at(started, late, expected):
    assert doctor_free_at(NOW, 12, late, started) == expected


@pytest.mark.parametrize("moment,expected", [
    (NOW, 0), (at(-10), 0), (at(seconds=1), 1), (at(1), 1), (at(1, 1), 2), (at(59, 59), 60), (at(days=1), 1440),
])
def test_minutes_until(moment, expected):
    assert minutes_until(NOW, moment) == expected


@pytest.mark.parametrize("running_late,late_by,effective", [(True, 20, 20), (False, 20, 0), (True, 0, 0),
                                                             (False, 0, 0)])
def test_effective_late_minutes(running_late, late_by, effective):
    assert DoctorSettings(12, running_late, late_by).effective_late_minutes == effective


def _entry(i: int, date: datetime) -> QueueEntry:
    return QueueEntry(id=f"{i:024x}", patient=f"{100 + i:024x}", patient_name=f"P{i}", date=date,
                      created_at=at(-60), status="pending", reason="", started_at=None, version=0)


@pytest.mark.parametrize("running_late,late_by,etas", [
    (True, 20, [20, 32, 44]),   # the flag on: lateness counts
    (False, 20, [0, 12, 24]),   # the flag off: a stale lateByMinutes is ignored
    (True, 0, [0, 12, 24]),
])
def test_snapshot_uses_lateness_only_when_flagged(running_late, late_by, etas):
    waiting = tuple(_entry(i, at(-1)) for i in range(3))
    snapshot = QueueSnapshot.compute("d" * 24, DoctorSettings(12, running_late, late_by), None, waiting, NOW, UTC_CALENDAR)
    assert [e.eta_minutes for e in snapshot.estimates] == etas
    update = snapshot.update_for(waiting[2].id)
    assert update == {"appointmentId": waiting[2].id, "status": "pending", "position": 2,
                      "etaMinutes": etas[2],
                      "expectedStartAt": (NOW + timedelta(minutes=etas[2])).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "delayMinutes": etas[2] + 1,  # booked a minute ago
                      "isRunningLate": running_late, "lateByMinutes": late_by}


def test_snapshot_with_consultation_in_progress():
    current = QueueEntry(id="c" * 24, patient="e" * 24, patient_name="Now", date=at(-30), created_at=at(-90),
                         status="in_consultation", reason="", started_at=at(-4), version=1)
    waiting = (_entry(1, at(-1)), _entry(2, at(100)))
    snapshot = QueueSnapshot.compute("d" * 24, DoctorSettings(10, False, 0), current, waiting, NOW, UTC_CALENDAR)
    assert [(e.eta_minutes, e.expected_start_at) for e in snapshot.estimates] == [(6, at(6)), (100, at(100))]
    assert snapshot.update_for(current.id) == {
        "appointmentId": current.id, "status": "in_consultation", "position": -1, "etaMinutes": 0,
        "expectedStartAt": "2026-11-23T09:56:00Z", "delayMinutes": 26, "isRunningLate": False,
        "lateByMinutes": 0}
    assert snapshot.update_for("f" * 24) is None
