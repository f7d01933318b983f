"""The ETA rule of the API contract, checked against a table of hand-computed cases (actors/eta.py),
and the default range around it (the documented assumptions, written out again here)."""

import math
from datetime import datetime, timedelta, timezone
from statistics import NormalDist

import pytest

from actors import eta
from actors.eta import Estimate, delay_minutes, doctor_free_at, estimate_queue, minutes_until
from actors.learning import DEFAULT_NO_SHOW_RATE
from actors.snapshot import DoctorSettings, QueueEntry, QueueSnapshot
from core.days import UTC_CALENDAR
from core.values import format_utc

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
    """No history: expectedStartAt is exactly the plain rule; delayMinutes is its distance from the
    booked time rounded to the nearest minute (it was rounded up before the range came)."""
    estimates = estimate_queue(booked, now=NOW, avg_minutes=avg, late_minutes=late,
                               consultation_started_at=started)
    assert [(e.position, e.eta_minutes, e.expected_start_at, e.delay_minutes) for e in estimates] == [
        (position, eta, start, delay_minutes(booked_at, start))
        for position, ((eta, start), booked_at) in enumerate(zip(expected, booked))]


def default_range(booked, avg, late, started, away=None, now=NOW):
    """The README's default assumptions, written out again: the plain rule's free time, spread by
    DEFAULT_SPREAD × avg per consultation ahead (the running one, each waiting one), pulled earlier by
    those ahead who may not come; 5 % / 1 %-and-10-minutes / 90 % normal quantiles of that; never
    before now, a break, or DEFAULT_EARLY_CALL_MINUTES before the booked time; around the plain start."""
    z = NormalDist().inv_cdf
    p, spread = DEFAULT_NO_SHOW_RATE, eta.DEFAULT_SPREAD * avg
    free = doctor_free_at(now, avg, late, started, away)
    floor = max(now, away) if away is not None and away > now else now
    ranges = []
    for i, b in enumerate(booked):
        start = max(free, b)
        sd = math.sqrt((spread ** 2 if started else 0) + i * ((1 - p) * spread ** 2 + p * (1 - p) * avg ** 2))
        centre = free - timedelta(minutes=p * avg * i)
        low = centre + timedelta(minutes=min(z(0.05) * sd, z(0.01) * sd + 10))
        earliest = min(start, max(floor, b - timedelta(minutes=eta.DEFAULT_EARLY_CALL_MINUTES), whole_seconds(low)))
        latest = max(start, whole_seconds(centre + timedelta(minutes=z(0.90) * sd)))
        ranges.append((earliest, latest))
        free = start + timedelta(minutes=avg)
    return ranges


def whole_seconds(moment):
    """The spread's quantiles are given to the second, rounded down (the plain start, now and the
    booked time stay exact)."""
    return moment.replace(microsecond=0)


@pytest.mark.parametrize("name,booked,avg,late,started,expected", CASES, ids=[c[0] for c in CASES])
def test_no_history_range_is_the_documented_default(name, booked, avg, late, started, expected):
    estimates = estimate_queue(booked, now=NOW, avg_minutes=avg, late_minutes=late, consultation_started_at=started)
    for estimate, (earliest, latest) in zip(estimates, default_range(booked, avg, late, started)):
        assert estimate.earliest_start_at <= estimate.expected_start_at <= estimate.latest_start_at
        assert (estimate.earliest_start_at, estimate.latest_start_at) == (earliest, latest)


def test_default_range_by_hand():
    """Three due now with a consultation started 5 minutes ago, avg 12: the plain starts are 10:07,
    10:19, 10:31. The head's range only has the running consultation's spread (sd 6): be ready from
    now, latest 10:07 + 1.2816 × 6 = 10:14:41; the third has 2 more behind it: sd² = 36 + 2 × (0.92 × 36
    + 0.08 × 0.92 × 144), centred 2 × 0.08 × 12 minutes earlier."""
    estimates = estimate_queue([at(), at(), at()], now=NOW, avg_minutes=12, late_minutes=0,
                               consultation_started_at=at(-5))
    assert [e.expected_start_at for e in estimates] == [at(7), at(19), at(31)]
    assert estimates[0].earliest_start_at == NOW
    assert abs(estimates[0].latest_start_at - at(7 + 1.2815516 * 6)) < timedelta(seconds=1)
    sd = math.sqrt(36 + 2 * (0.92 * 36 + 0.08 * 0.92 * 144))
    assert abs(estimates[2].latest_start_at - at(31 - 2 * 0.96 + 1.2815516 * sd)) < timedelta(seconds=1)
    assert abs(estimates[2].earliest_start_at - at(31 - 2 * 0.96 - 1.6448536 * sd)) < timedelta(seconds=1)


def test_default_range_of_a_booking_ahead_of_the_queue():
    """Nobody ahead, booked in an hour: the doctor may call up to 10 minutes early, and nothing ahead
    can make it late, so the range is [booked - 10, booked]."""
    [estimate] = estimate_queue([at(60)], now=NOW, avg_minutes=12, late_minutes=0, consultation_started_at=None)
    assert (estimate.earliest_start_at, estimate.expected_start_at, estimate.latest_start_at) == (at(50), at(60), at(60))


def test_the_readme_states_the_default_assumptions_the_code_uses():
    """The default range is not fitted to data (its assumptions are stated, not learned), so the
    README's statement of them is its specification: it must name the values the code uses."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = text.index("**The default range**")
    section = " ".join(text[start:text.index("\n\n", start)].split())
    assert f"(`DEFAULT_SPREAD` {eta.DEFAULT_SPREAD:g};" in section
    assert f"does not come with chance {DEFAULT_NO_SHOW_RATE * 100:g} % (`DEFAULT_NO_SHOW_RATE`)" in section
    assert f"up to {eta.DEFAULT_EARLY_CALL_MINUTES:g} minutes early (`DEFAULT_EARLY_CALL_MINUTES`)" in section
    z = NormalDist().inv_cdf
    for level, written in ((eta.EARLIEST_LEVEL, f"{-z(eta.EARLIEST_LEVEL):.3f} sd"),
                           (eta.FAR_EARLY_LEVEL, f"{-z(eta.FAR_EARLY_LEVEL):.3f} sd − {eta.FAR_EARLY_MINUTES:g}"),
                           (eta.LATEST_LEVEL, f"{z(eta.LATEST_LEVEL):.4f} sd")):
        assert written in section, (level, written)


@pytest.mark.parametrize("start,delay", [(at(0, 29), 0), (at(0, 30), 1), (at(10, 29.999), 10), (at(10, 30), 11),
                                         (at(-5), 0)])
def test_delay_minutes_rounds_to_the_nearest_minute(start, delay):
    assert delay_minutes(NOW, start) == delay


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
    estimate = snapshot.estimates[2]
    assert update == {"appointmentId": waiting[2].id, "status": "pending", "date": format_utc(at(-1)), "position": 2,
                      "etaMinutes": etas[2],
                      "expectedStartAt": (NOW + timedelta(minutes=etas[2])).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "earliestStartAt": format_utc(estimate.earliest_start_at),
                      "latestStartAt": format_utc(estimate.latest_start_at),
                      "delayMinutes": etas[2] + 1,  # booked a minute ago
                      "isRunningLate": running_late, "lateByMinutes": late_by}
    assert estimate.earliest_start_at < estimate.expected_start_at < estimate.latest_start_at


def test_snapshot_with_consultation_in_progress():
    current = QueueEntry(id="c" * 24, patient="e" * 24, patient_name="Now", date=at(-30), created_at=at(-90),
                         status="in_consultation", reason="", started_at=at(-4), version=1)
    waiting = (_entry(1, at(-1)), _entry(2, at(100)))
    snapshot = QueueSnapshot.compute("d" * 24, DoctorSettings(10, False, 0), current, waiting, NOW, UTC_CALENDAR)
    assert [(e.eta_minutes, e.expected_start_at) for e in snapshot.estimates] == [(6, at(6)), (100, at(100))]
    assert snapshot.update_for(current.id) == {
        "appointmentId": current.id, "status": "in_consultation", "date": format_utc(at(-30)), "position": -1,
        "etaMinutes": 0,
        "expectedStartAt": "2026-11-23T09:56:00Z", "earliestStartAt": "2026-11-23T09:56:00Z",
        "latestStartAt": "2026-11-23T09:56:00Z", "delayMinutes": 26, "isRunningLate": False,
        "lateByMinutes": 0}
    assert snapshot.update_for("f" * 24) is None
