"""The ETA rule of API.md, as a pure function: (queue, doctor settings, now) → estimates.

Kept free of I/O and of the actor so it can be tested against a table and replaced on its own.
The rule starts each appointment at the later of "when the doctor is free" and its booked time, so a
booking for tomorrow is never told it is next *now* (the original `position * avg + late` did that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence


@dataclass(frozen=True)
class Estimate:
    position: int
    eta_minutes: int
    expected_start_at: datetime
    delay_minutes: int = 0


def doctor_free_at(now: datetime, avg_minutes: int, late_minutes: int,
                   consultation_started_at: datetime | None) -> datetime:
    """When the doctor can start the next patient: after the running consultation, plus lateness."""
    avg = timedelta(minutes=avg_minutes)
    free_at = now
    if consultation_started_at is not None:
        free_at = max(now, consultation_started_at + avg)
    return free_at + timedelta(minutes=late_minutes)


def estimate_queue(booked_times: Sequence[datetime], *, now: datetime, avg_minutes: int,
                   late_minutes: int, consultation_started_at: datetime | None,
                   away_until: datetime | None = None) -> list[Estimate]:
    """Estimates for waiting appointments given in queue order (their booked `date`s). A break
    (`away_until`, when in the future) means nobody starts before it."""
    avg = timedelta(minutes=avg_minutes)
    free_at = doctor_free_at(now, avg_minutes, late_minutes, consultation_started_at)
    if away_until is not None and away_until > free_at:
        free_at = away_until
    estimates = []
    for position, booked in enumerate(booked_times):
        start = max(free_at, booked)
        estimates.append(Estimate(position, minutes_until(now, start), start, delay_minutes(booked, start)))
        free_at = start + avg
    return estimates


def delay_minutes(booked: datetime, start: datetime) -> int:
    """`delayMinutes`: whole minutes, rounded up, by which the start is after the booked time."""
    return minutes_until(booked, start)


def minutes_until(now: datetime, moment: datetime) -> int:
    """Whole minutes, rounded up, from now until moment (0 if it has passed)."""
    seconds = (moment - now).total_seconds()
    return max(0, math.ceil(seconds / 60))
