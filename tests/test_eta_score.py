"""The ETA bench's scorer: the MAE from each doctor's second day leaves out exactly the predictions made
on the day of that doctor's first consultation (the day the contract's plain rule answers first), and
the range shares count real starts against the range told."""

from datetime import datetime, timedelta, timezone

from bench.eta.score import Truth, score

DOCTOR_A, DOCTOR_B = "a" * 24, "b" * 24
DAY_ONE = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
DAY_TWO = DAY_ONE + timedelta(days=1)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _history() -> list[dict]:
    """Doctor A works both days; doctor B only from day two, so day two is B's first."""
    events = [{"at": DAY_ONE - timedelta(hours=1), "event": "doctor", "doctorId": doctor, "avgConsultMinutes": 10}
              for doctor in (DOCTOR_A, DOCTOR_B)]
    for appointment, doctor, start in (("1", DOCTOR_A, DAY_ONE), ("2", DOCTOR_A, DAY_TWO), ("3", DOCTOR_B, DAY_TWO)):
        events.append({"at": start - timedelta(hours=2), "event": "booked", "appointmentId": appointment,
                       "doctorId": doctor})
        events.append({"at": start, "event": "status", "appointmentId": appointment, "status": "in_consultation"})
    return events


def _prediction(appointment: str, at: datetime, expected: datetime, earliest: datetime, latest: datetime) -> dict:
    return {"appointmentId": appointment, "at": _iso(at), "position": 0, "expectedStartAt": _iso(expected),
            "earliestStartAt": _iso(earliest), "latestStartAt": _iso(latest)}


def test_the_mae_from_the_second_day_leaves_out_each_doctors_first_day_only():
    truth = Truth.read(_history())
    minutes = timedelta(minutes=1)
    predictions = [
        # A's first day: 6 minutes off; A's second day: 2 minutes off; B's first day (day two): 10 off
        _prediction("1", DAY_ONE - 30 * minutes, DAY_ONE + 6 * minutes, DAY_ONE - 5 * minutes, DAY_ONE + 9 * minutes),
        _prediction("2", DAY_TWO - 30 * minutes, DAY_TWO - 2 * minutes, DAY_TWO + 1 * minutes, DAY_TWO + 9 * minutes),
        _prediction("3", DAY_TWO - 30 * minutes, DAY_TWO + 10 * minutes, DAY_TWO - 20 * minutes, DAY_TWO - 1 * minutes),
        # made 5 minutes ahead: under the horizon, not scored
        _prediction("2", DAY_TWO - 5 * minutes, DAY_TWO + 30 * minutes, DAY_TWO, DAY_TWO + 40 * minutes),
    ]
    result = score(truth, predictions)
    assert result.predictions == 3
    assert result.mae == 6.0  # (6 + 2 + 10) / 3
    assert result.mae_from_second_day == 2.0  # A's second day only
    assert (result.before_earliest, result.after_latest) == (1 / 3, 1 / 3)  # "2" before its earliest, "3" after
    assert result.far_before_earliest == 0.0
