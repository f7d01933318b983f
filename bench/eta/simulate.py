"""Simulated clinic days, written in `eta-replay`'s input format, with the truth the replay must guess.

Each doctor has habits the configuration does not tell: real consultation lengths differ from the typed
average and vary (log-normal: skewed, with a long tail, plus a few outliers and mistaken clicks);
patients do not show; some mornings start late and nobody says so (a few days it is declared);
a doctor who is free calls the next patient early if they are already there; a short changeover
between patients. Patients book slots the typed average apart, so a doctor slower than typed falls
behind during the day. Several days per doctor, so what is learned on one day is used on the next.

Everything is drawn from one `random.Random(seed)`: one seed, one history.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from core.values import format_utc, truncate_ms

FIRST_DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)
OPENING_HOUR = 9
OBSERVE_EVERY = timedelta(minutes=5)
PRIORITY = {"doctor": 0, "booked": 1, "status": 2, "observe": 3}
# What every doctor's day shares (bench/eta/bound.py simulates the same rules forward).
CANCEL_CHANCE = 0.03  # a booking cancelled beforehand ...
CANCEL_AHEAD_MINUTES = (30.0, 110.0)  # ... this long before its time
LATE_START_MIN_MINUTES = 3.0  # a late start, when there is one, is at least this late
EARLY_CALL_CHANCE = 0.7  # a free doctor calls early when the patient is already there
NO_SHOW_WAIT_MINUTES = (1.0, 4.0)  # how long a doctor waits for a patient who does not come
MISTAKE_CHANCE, MISTAKE_MINUTES = 0.01, (0.05, 0.5)  # "complete" clicked right after "call"
LONG_CASE_CHANCE, LONG_CASE_FACTOR = 0.02, (1.5, 2.5)  # the rare case that takes far longer
MAX_LENGTH_MINUTES = 180.0
# The spread of consultation lengths (sigma of log-minutes), per scenario: "narrow" is the first
# simulator's (coefficient of variation 0.25-0.46 with the long cases); "wide" is what published clinic
# data show (0.4-0.7). Everything else is drawn alike, from the same random numbers.
LOG_SPREADS = {"narrow": (0.2, 0.4), "wide": (0.35, 0.6)}
SCENARIOS = tuple(LOG_SPREADS)


@dataclass(frozen=True)
class Habits:
    typed_avg: int
    median_minutes: float
    log_sigma: float
    no_show_rate: float
    late_start_chance: float
    late_start_max: float
    declares_late_chance: float
    early_call_minutes: float
    changeover_mean: float

    @classmethod
    def draw(cls, rng: random.Random, scenario: str = "narrow") -> "Habits":
        typed = rng.choice([10, 12, 15, 20])
        return cls(typed_avg=typed, median_minutes=typed * rng.uniform(0.7, 1.4),
                   log_sigma=rng.uniform(*LOG_SPREADS[scenario]), no_show_rate=rng.uniform(0.03, 0.2),
                   late_start_chance=rng.uniform(0.2, 0.6), late_start_max=rng.uniform(10, 25),
                   declares_late_chance=0.2, early_call_minutes=rng.choice([0, 5, 10]),
                   changeover_mean=rng.uniform(0.3, 2.0))


def object_id(rng: random.Random) -> str:
    return "%024x" % rng.getrandbits(96)


def iso(moment: datetime) -> str:
    return format_utc(truncate_ms(moment))


def simulate(seed: int, doctors: int = 6, days: int = 10, scenario: str = "narrow") -> list[dict]:
    """Events in time order (dicts with a datetime `at`), for `doctors` doctors over `days` days."""
    return simulate_clinic(seed, doctors, days, scenario)[0]


def simulate_clinic(seed: int, doctors: int = 6, days: int = 10,
                    scenario: str = "narrow") -> tuple[list[dict], dict[str, Habits]]:
    """The events, and each doctor's habits by id: the truth an estimator has to learn (the
    clairvoyant bound in bench/eta/bound.py is told it)."""
    rng = random.Random(seed)
    habits_of: dict[str, Habits] = {}
    events: list[tuple] = []
    sequence = 0

    def emit(at: datetime, kind: str, **fields) -> None:
        nonlocal sequence
        sequence += 1
        events.append((at, PRIORITY[kind], sequence, {"at": at, "event": kind, **fields}))

    for _ in range(doctors):
        doctor_id = object_id(rng)
        habits = habits_of[doctor_id] = Habits.draw(rng, scenario)
        emit(FIRST_DAY - timedelta(hours=2), "doctor", doctorId=doctor_id, avgConsultMinutes=habits.typed_avg,
             isRunningLate=False, lateByMinutes=0)
        for day in range(days):
            _one_day(rng, emit, doctor_id, habits, FIRST_DAY + timedelta(days=day, hours=OPENING_HOUR))
    events.sort(key=lambda e: e[:3])
    return [e[3] for e in events], habits_of


def _one_day(rng, emit, doctor_id: str, habits: Habits, opening: datetime) -> None:
    slot = timedelta(minutes=habits.typed_avg)
    slots = int(timedelta(hours=3.5) / slot)
    booked = [(object_id(rng), opening + i * slot) for i in range(slots) if rng.random() < 0.85]
    for i, (appointment_id, date) in enumerate(booked):
        emit(opening - timedelta(hours=2) + timedelta(seconds=i), "booked", doctorId=doctor_id,
             appointmentId=appointment_id, date=iso(date))
    late = (rng.uniform(LATE_START_MIN_MINUTES, habits.late_start_max)
            if rng.random() < habits.late_start_chance else 0.0)
    free = opening + timedelta(minutes=late)
    if late and rng.random() < habits.declares_late_chance:
        emit(opening - timedelta(minutes=5), "doctor", doctorId=doctor_id, isRunningLate=True,
             lateByMinutes=round(late))
        emit(free, "doctor", doctorId=doctor_id, isRunningLate=False)
    end = opening
    for appointment_id, date in booked:
        if rng.random() < CANCEL_CHANCE:
            emit(date - timedelta(minutes=rng.uniform(*CANCEL_AHEAD_MINUTES)), "status", appointmentId=appointment_id,
                 status="cancelled")
            continue
        if free >= date:
            call = free + timedelta(minutes=rng.expovariate(1 / habits.changeover_mean))
        else:  # free before the booked time: early if the patient is already there
            early = habits.early_call_minutes if rng.random() < EARLY_CALL_CHANCE else 0.0
            call = max(free, date - timedelta(minutes=early))
        if rng.random() < habits.no_show_rate:
            free = call + timedelta(minutes=rng.uniform(*NO_SHOW_WAIT_MINUTES))  # waits, then marks it
            if free < date:  # a waiting patient is no no-show before the booked time: called, never joined
                emit(call, "status", appointmentId=appointment_id, status="in_consultation")
            emit(free, "status", appointmentId=appointment_id, status="no_show")
            continue
        emit(call, "status", appointmentId=appointment_id, status="in_consultation")
        free = call + timedelta(minutes=_length(rng, habits))
        emit(free, "status", appointmentId=appointment_id, status="completed")
        end = free
    observe = opening - timedelta(hours=1)
    while observe <= end:
        emit(observe, "observe", doctorId=doctor_id)
        observe += OBSERVE_EVERY


def _length(rng: random.Random, habits: Habits) -> float:
    roll = rng.random()
    if roll < MISTAKE_CHANCE:
        return rng.uniform(*MISTAKE_MINUTES)  # teaches nothing
    length = math.exp(math.log(habits.median_minutes) + habits.log_sigma * rng.gauss(0, 1))
    if roll > 1 - LONG_CASE_CHANCE:
        length *= rng.uniform(*LONG_CASE_FACTOR)
    return min(length, MAX_LENGTH_MINUTES)


def write_jsonl(events: list[dict], path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps({**event, "at": iso(event["at"])}) + "\n")
