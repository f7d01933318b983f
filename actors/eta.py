"""When each waiting patient will be seen: a pure function of (queue, the doctor's settings, what was
learned about the doctor, now) → estimates.

Kept free of I/O and of the actor so it can be tested against a table, replayed over recorded days
(`python -m server eta-replay`) and replaced on its own.

The floor is the API contract's plain rule: each appointment starts at the later of "when the doctor is free"
and its booked time, the doctor is free `avg` after the running consultation began, plus declared
lateness, and not before `awayUntil`. It starts each appointment no earlier than its booking, so a
booking for tomorrow is never told it is next *now* (the original `position * avg + late` did that).
The plain rule is exactly what is answered while too little is known about a doctor (see
`actors.learning`), or with learning switched off.

With enough history the rule's fixed numbers give way to learned ones: the running consultation's
remaining time given how long it has run; each later one's typical length, discounted by the chance
the patient does not come; and how long after a patient becomes callable this doctor calls them,
given nobody has been called yet (so "the head is due and nobody is called" reads as lateness from
the clock, declared or not; and a doctor who calls early when free is expected to).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Sequence

from actors import learning
from actors.learning import CALL_BUSY, CALL_IDLE, DoctorStats, LearnedModel, call_kind

_STANDARD = NormalDist()


@dataclass(frozen=True)
class Estimate:
    position: int
    eta_minutes: int
    expected_start_at: datetime
    delay_minutes: int = 0  # whole minutes, rounded up, by which the start is after the booked time


def doctor_free_at(now: datetime, avg_minutes: int, late_minutes: int,
                   consultation_started_at: datetime | None,
                   away_until: datetime | None = None) -> datetime:
    """The plain rule's "when the doctor can start the next patient": after the running consultation,
    plus lateness, and not before the end of a break."""
    avg = timedelta(minutes=avg_minutes)
    free_at = now
    if consultation_started_at is not None:
        free_at = max(now, consultation_started_at + avg)
    free_at += timedelta(minutes=late_minutes)
    if away_until is not None and away_until > now:
        free_at = max(free_at, away_until)
    return free_at


def estimate_queue(booked_times: Sequence[datetime], *, now: datetime, avg_minutes: int,
                   late_minutes: int, consultation_started_at: datetime | None,
                   away_until: datetime | None = None, stats: DoctorStats | None = None,
                   learning: bool = True) -> list[Estimate]:
    """Estimates for waiting appointments given in queue order (their booked `date`s)."""
    if learning and stats is not None and stats.usable:
        return _learned(booked_times, now, avg_minutes, late_minutes, consultation_started_at, away_until,
                        stats)
    return _plain(booked_times, now, avg_minutes, late_minutes, consultation_started_at, away_until)


def _plain(booked_times, now, avg_minutes, late_minutes, started_at, away_until) -> list[Estimate]:
    avg = timedelta(minutes=avg_minutes)
    free_at = doctor_free_at(now, avg_minutes, late_minutes, started_at, away_until)
    estimates = []
    for position, booked in enumerate(booked_times):
        start = max(free_at, booked)
        estimates.append(_estimate(position, now, booked, start))
        free_at = start + avg
    return estimates


def _learned(booked_times, now, avg_minutes, late_minutes, started_at, away_until,
             stats: DoctorStats) -> list[Estimate]:
    """Walks the queue carrying when the doctor will be free as a distribution (mean and variance, in
    minutes from now): each consultation adds its mean and variance, and a booked time the doctor
    must wait for lifts the mean by the part of the spread below it (E[max(free, booked)]). The
    quoted start is the expected one, or earlier where the spread is wide (see `MISSED_TURN_SIGMAS`)."""
    model: LearnedModel = stats.model(avg_minutes)
    blocked = -math.inf  # minutes from now before which nobody is called (declared lateness, a break)
    if late_minutes:
        blocked = float(late_minutes)
    if away_until is not None and away_until > now:
        blocked = max(blocked, _minutes(away_until - now))
    slot_mean, slot_variance = model.slot_minutes()
    busy_gap = model.call_offset_minutes(CALL_BUSY, -math.inf)
    estimates = []
    if started_at is not None:
        mean = model.remaining_consultation_minutes(_minutes(now - started_at)) + busy_gap
        variance = slot_variance
    else:
        mean, variance = None, 0.0
    for position, booked in enumerate(booked_times):
        due = _minutes(booked - now)
        if mean is None:
            # Nobody in consultation and nobody called yet: lateness read from the clock. The doctor
            # has been free since the last consultation ended; how long after the patient became
            # callable is this doctor likely to call, given nobody was called so far?
            free_since = stats.free_since if stats.free_since is None or stats.free_since <= now else None
            kind = call_kind(free_since, booked)
            callable_in = max(_minutes(free_since - now) if kind == CALL_BUSY else due, blocked)
            start = max(0.0, callable_in + model.call_offset_minutes(kind, -callable_in))
            quoted = start
            mean, variance = start, 0.0
        else:
            target = max(due + model.call_offset_minutes(CALL_IDLE, -due), blocked, 0.0)
            # Read through the module, so the benchmark's --frontier can vary it.
            guard = mean - learning.MISSED_TURN_SIGMAS * math.sqrt(variance) + learning.MISSED_TURN_MINUTES
            quoted = max(target, min(mean, guard), 0.0)
            mean = _mean_of_max(mean, variance, target)
        estimates.append(_estimate(position, now, booked, now + timedelta(minutes=quoted)))
        mean += slot_mean + busy_gap
        variance += slot_variance
    return estimates


def _mean_of_max(mean: float, variance: float, floor: float) -> float:
    """E[max(X, floor)] for X normal(mean, variance) (Clark 1961). The variance carried on is not
    the truncated one: that one changes as a booked time draws near, and with it the estimates of
    everyone behind, which would then swing back and forth while nothing happens."""
    if variance <= 1e-9:
        return max(mean, floor)
    sd = math.sqrt(variance)
    alpha = (floor - mean) / sd
    return floor * _STANDARD.cdf(alpha) + mean * (1 - _STANDARD.cdf(alpha)) + sd * _STANDARD.pdf(alpha)


def _estimate(position: int, now: datetime, booked: datetime, start: datetime) -> Estimate:
    return Estimate(position, minutes_until(now, start), start, delay_minutes(booked, start))


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0
def delay_minutes(booked: datetime, start: datetime) -> int:
    """`delayMinutes`: whole minutes, rounded up, by which the start is after the booked time."""
    return minutes_until(booked, start)


def minutes_until(now: datetime, moment: datetime) -> int:
    """Whole minutes, rounded up, from now until moment (0 if it has passed)."""
    seconds = (moment - now).total_seconds()
    return max(0, math.ceil(seconds / 60))
