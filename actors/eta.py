"""When each waiting patient will be seen: a pure function of (queue, the doctor's settings, what was
learned about the doctor, now) → estimates.

Kept free of I/O and of the actor so it can be tested against a table, replayed over recorded days
(`python -m server eta-replay`) and replaced on its own.

The floor is API.md's plain rule: each appointment starts at the later of "when the doctor is free"
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
from typing import Sequence

from actors.learning import DoctorStats, LearnedModel


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
    model: LearnedModel = stats.model(avg_minutes)
    if started_at is not None:
        elapsed = _minutes(now - started_at)
        free_at = now + timedelta(minutes=model.remaining_consultation_minutes(elapsed))
    else:
        # Idle: the doctor has been free since the last consultation ended (if that was before now).
        free_since = stats.free_since
        free_at = free_since if free_since is not None and free_since <= now else None
    blocked_until = None  # declared lateness or a break: nobody is called before it
    if late_minutes:
        blocked_until = now + timedelta(minutes=late_minutes)
    if away_until is not None and away_until > now:
        blocked_until = away_until if blocked_until is None else max(blocked_until, away_until)
    slot = timedelta(minutes=model.slot_minutes())
    estimates = []
    for position, booked in enumerate(booked_times):
        idle = free_at is None or free_at <= booked
        callable_at = booked if idle else free_at
        if blocked_until is not None:
            callable_at = max(callable_at, blocked_until)
        offset = model.call_offset_minutes(idle, _minutes(now - callable_at))
        start = callable_at + timedelta(minutes=offset)
        if free_at is not None:
            start = max(start, free_at)
        start = max(start, now)
        estimates.append(_estimate(position, now, booked, start))
        free_at = start + slot
    return estimates


def _estimate(position: int, now: datetime, booked: datetime, start: datetime) -> Estimate:
    return Estimate(position, minutes_until(now, start), start, minutes_until(booked, start))


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0


def minutes_until(now: datetime, moment: datetime) -> int:
    """Whole minutes, rounded up, from now until moment (0 if it has passed)."""
    seconds = (moment - now).total_seconds()
    return max(0, math.ceil(seconds / 60))
