"""A doctor's working hours and the slots they make: pure arithmetic, no store, no clock of its own.

`hours` is a list of `{day: "mon".."sun", start: "HH:MM", end: "HH:MM"}` in the clinic's zone
(`CLINIC_TIMEZONE`); a doctor whose list is empty takes bookings at any future time. A *slot* is one
`slotMinutes` stretch that starts at an interval's start or a whole number of slots after it and
ends by the interval's end; a booking's `date` must be a slot's start.

Slots are wall-clock times in the clinic's zone, so a doctor who works 09:00-12:00 does so on the
day a clock changes too. On such a day two rules decide the edge cases:
- a wall-clock time that does not exist (the hour skipped when clocks go forward) is **skipped**:
  no slot starts in the gap;
- a wall-clock time that happens twice (the hour repeated when clocks go back) is **taken once**, at
  its first occurrence (`fold=0`, the earlier UTC instant).
So the slots of a day are always distinct, in increasing UTC order.

Which slots are *held* (by a waiting, in-consultation or completed appointment) is not known here:
the caller passes them in. `slot_key` is the one spelling of a held slot that the store's unique
index compares, so two bookings of one slot cannot both be written.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable
from zoneinfo import ZoneInfo

from core.values import format_utc

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
DEFAULT_SLOT_MINUTES = 15
MIN_SLOT_MINUTES, MAX_SLOT_MINUTES = 5, 240
MAX_INTERVALS = 70  # ten a day is already more than any clinic; keeps a body and a day's arithmetic small
END_OF_DAY = 24 * 60
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")


@dataclass(frozen=True, order=True)
class Interval:
    """One working stretch of a weekday, in minutes after the local midnight (end may be 24:00)."""

    weekday: int
    start: int
    end: int

    def as_dict(self) -> dict:
        return {"day": DAYS[self.weekday], "start": _clock(self.start), "end": _clock(self.end)}


class HoursError(ValueError):
    """Why a list of hours is refused: one message per bad entry, keyed by its index (or `_all`)."""

    def __init__(self, messages: dict[str, list[str]]):
        super().__init__("; ".join(m for ms in messages.values() for m in ms))
        self.messages = messages


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text, *, allow_midnight_end: bool) -> int | None:
    if not isinstance(text, str) or not _CLOCK.fullmatch(text):
        return None
    if text == "24:00":
        return END_OF_DAY if allow_midnight_end else None
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def parse_hours(entries: Iterable[dict]) -> list[Interval]:
    """Checks a list of `{day, start, end}` and returns it as intervals sorted by day and start.

    Refused (`HoursError`): an unknown day, a time that is not `HH:MM` (00:00-23:59; `24:00` only as
    an end), a start not before its end, and two intervals of one day that overlap (touching, one
    ending at 12:00 and the next starting at 12:00, is allowed)."""
    entries = list(entries)
    messages: dict[str, list[str]] = {}
    if len(entries) > MAX_INTERVALS:
        raise HoursError({"_all": [f"At most {MAX_INTERVALS} intervals."]})
    intervals: list[tuple[Interval, int]] = []
    for i, entry in enumerate(entries):
        problems = []
        day = entry.get("day") if isinstance(entry, dict) else None
        if day not in DAYS:
            problems.append("day must be one of " + ", ".join(DAYS) + ".")
        start = _minutes(entry.get("start") if isinstance(entry, dict) else None, allow_midnight_end=False)
        end = _minutes(entry.get("end") if isinstance(entry, dict) else None, allow_midnight_end=True)
        if start is None:
            problems.append("start must be a time HH:MM (00:00 to 23:59).")
        if end is None:
            problems.append("end must be a time HH:MM (00:01 to 24:00).")
        if start is not None and end is not None and start >= end:
            problems.append("start must be before end.")
        if problems:
            messages[str(i)] = problems
        else:
            intervals.append((Interval(DAYS.index(day), start, end), i))
    intervals.sort()
    for (before, _), (after, i) in zip(intervals, intervals[1:]):
        if before.weekday == after.weekday and after.start < before.end:
            messages.setdefault(str(i), []).append(
                f"overlaps {DAYS[before.weekday]} {_clock(before.start)}-{_clock(before.end)}.")
    if messages:
        raise HoursError(messages)
    return [interval for interval, _ in intervals]


def normalised(entries: Iterable[dict]) -> list[dict]:
    """The stored and shown form of valid hours: sorted by day and start, times as `HH:MM`."""
    return [interval.as_dict() for interval in parse_hours(entries)]


def slot_starts(day: date, hours: Iterable[dict], slot_minutes: int, zone: ZoneInfo) -> list[datetime]:
    """Every slot start (UTC) of one clinic day, in order; [] without hours that day.

    Nonexistent local times are skipped and repeated ones taken once, at their first occurrence
    (see the module docstring). Remembered per (day, hours, length, zone): a day's slots are read
    far more often than a doctor's hours change, and working them out costs a zone conversion each."""
    frozen = tuple((entry["day"], entry["start"], entry["end"]) for entry in hours)
    return list(_slot_starts(day, frozen, slot_minutes, zone))


@functools.lru_cache(maxsize=1024)
def _slot_starts(day: date, hours: tuple, slot_minutes: int, zone: ZoneInfo) -> tuple[datetime, ...]:
    entries = [{"day": day_name, "start": start, "end": end} for day_name, start, end in hours]
    starts: list[datetime] = []
    for interval in parse_hours(entries):
        if interval.weekday != day.weekday():
            continue
        minute = interval.start
        while minute + slot_minutes <= interval.end:
            moment = _local_to_utc(day, minute, zone)
            if moment is not None:
                starts.append(moment)
            minute += slot_minutes
    return tuple(sorted(set(starts)))


def _local_to_utc(day: date, minute: int, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time on `day`, None if that time does not exist there."""
    local = datetime.combine(day, time(minute // 60, minute % 60), zone)  # fold=0: the first occurrence
    moment = local.astimezone(timezone.utc)
    if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None  # in the gap clocks jump over
    return moment


def why_not_a_slot(moment: datetime, day: date, hours: Iterable[dict], slot_minutes: int,
                   zone: ZoneInfo) -> str | None:
    """None if `moment` is a slot start of `day` (the clinic day it falls on), else why not, in words
    a patient can act on."""
    starts = slot_starts(day, hours, slot_minutes, zone)
    if moment in starts:
        return None
    if not starts:
        return "The doctor does not work that day."
    local = moment.astimezone(zone)
    inside = any(start <= moment < start + timedelta(minutes=slot_minutes) for start in starts)
    if inside:
        return f"Not the start of a slot: slots are {slot_minutes} minutes long; choose one of the listed starts."
    return f"Outside the doctor's working hours on {DAYS[local.weekday()]} {local.date().isoformat()}."


def slot_key(doctor_id: str, start: datetime) -> str:
    """What the store's unique index holds for a booked slot: the doctor and the UTC start."""
    return f"{doctor_id}|{format_utc(start)}"
