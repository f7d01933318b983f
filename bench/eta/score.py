"""Scores `eta-replay` output against what really happened in the replayed history.

- error: `expectedStartAt` minus the real start, over predictions made at least `HORIZON` before the
  real start (a prediction at the door is easy; what a patient plans with is told earlier);
- MAE and median of |error|, in minutes;
- missed turns: the share of those predictions where the real start came more than `MISSED_TURN`
  before the predicted one (the patient, trusting it, would have been away when called);
- direction changes: per patient, how many times their ETA, as observed, turned from moving later
  to moving earlier or back (moves under a minute, which are never pushed, are ignored);
- the same MAE from each doctor's second day on: the first day is answered by the contract's plain
  rule until enough history is seen, a cost no learning can remove, so this says what is left;
- the range, over the same predictions: the share of real starts before `earliestStartAt`, more than
  `MISSED_TURN` before it (a patient ready by then would still have missed the call), and after
  `latestStartAt`; the window's mean width (`latestStartAt - earliestStartAt`), in minutes.

The seed's original estimate, `position × avg + late`, is scored from the same observations: the
positions come from the replay, the average and lateness from the `doctor` events in force.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

HORIZON = timedelta(minutes=10)
MISSED_TURN = timedelta(minutes=10)
ONE_MINUTE = timedelta(minutes=1)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Score:
    mae: float
    median: float
    missed_turn_share: float
    direction_changes_per_patient: float
    predictions: int
    before_earliest: float | None = None
    far_before_earliest: float | None = None
    after_latest: float | None = None
    width: float | None = None
    mae_from_second_day: float | None = None  # over predictions made after the doctor's first day


@dataclass
class Truth:
    starts: dict[str, datetime]
    doctor_of: dict[str, str]
    settings: dict[str, list[tuple[datetime, int, int]]]  # doctor → [(from, avg, late)]
    first_day: dict[str, date] = field(default_factory=dict)  # doctor → the day of their first consultation

    @classmethod
    def read(cls, events: list[dict]) -> "Truth":
        truth = cls({}, {}, {})
        current: dict[str, dict] = {}
        for event in events:
            at = event["at"] if isinstance(event["at"], datetime) else parse_time(event["at"])
            if event["event"] == "status" and event["status"] == "in_consultation":
                truth.starts[event["appointmentId"]] = at
                truth.first_day.setdefault(truth.doctor_of[event["appointmentId"]], at.date())
            elif event["event"] == "booked":
                truth.doctor_of[event["appointmentId"]] = event["doctorId"]
            elif event["event"] == "doctor":
                state = current.setdefault(event["doctorId"], {"avg": 12, "running": False, "late": 0})
                state["avg"] = event.get("avgConsultMinutes", state["avg"])
                state["running"] = event.get("isRunningLate", state["running"])
                if "lateByMinutes" in event:
                    state["late"] = event["lateByMinutes"]
                elif event.get("isRunningLate") is False:
                    state["late"] = 0
                truth.settings.setdefault(event["doctorId"], []).append(
                    (at, state["avg"], state["late"] if state["running"] else 0))
        return truth

    def seed_estimate(self, prediction: dict) -> datetime:
        """The original design's `position × avg + late` from the observation time."""
        at = parse_time(prediction["at"])
        avg, late = 12, 0
        for since, a, lt in self.settings[self.doctor_of[prediction["appointmentId"]]]:
            if since > at:
                break
            avg, late = a, lt
        return at + timedelta(minutes=prediction["position"] * avg + late)


def score(truth: Truth, predictions: list[dict], estimate=None) -> Score:
    """`estimate(prediction) → datetime`; by default the replay's own `expectedStartAt`. The range
    is scored when the predictions carry one (and `estimate` is not given)."""
    ranged = estimate is None and bool(predictions) and predictions[0].get("earliestStartAt") is not None
    estimate = estimate or (lambda p: parse_time(p["expectedStartAt"]))
    errors: list[float] = []
    later_errors: list[float] = []  # from the doctor's second day
    missed = before = far_before = after = 0
    widths: list[float] = []
    history: dict[str, list[datetime]] = {}
    for prediction in predictions:
        appointment_id = prediction["appointmentId"]
        expected = estimate(prediction)
        history.setdefault(appointment_id, []).append(expected)
        real = truth.starts.get(appointment_id)
        told_at = parse_time(prediction["at"])
        if real is None or real - told_at < HORIZON:
            continue
        error = expected - real
        errors.append(abs(error.total_seconds()) / 60)
        if told_at.date() > truth.first_day[truth.doctor_of[appointment_id]]:
            later_errors.append(errors[-1])
        missed += error > MISSED_TURN
        if ranged:
            earliest, latest = parse_time(prediction["earliestStartAt"]), parse_time(prediction["latestStartAt"])
            before += real < earliest
            far_before += real < earliest - MISSED_TURN
            after += real > latest
            widths.append((latest - earliest).total_seconds() / 60)
    changes = [direction_changes(series) for series in history.values()]
    count = len(errors)
    return Score(mae=statistics.fmean(errors), median=statistics.median(errors),
                 missed_turn_share=missed / count,
                 direction_changes_per_patient=statistics.fmean(changes), predictions=count,
                 before_earliest=before / count if ranged else None,
                 far_before_earliest=far_before / count if ranged else None,
                 after_latest=after / count if ranged else None,
                 width=statistics.fmean(widths) if ranged else None,
                 mae_from_second_day=statistics.fmean(later_errors) if later_errors else None)


def direction_changes(series: list[datetime]) -> int:
    turns, last_sign = 0, 0
    for before, after in zip(series, series[1:]):
        if abs(after - before) < ONE_MINUTE:
            continue
        sign = 1 if after > before else -1
        turns += last_sign != 0 and sign != last_sign
        last_sign = sign
    return turns


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as source:
        return [json.loads(line) for line in source if line.strip()]
