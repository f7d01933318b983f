"""The clinic day: which calendar day a moment belongs to, in `CLINIC_TIMEZONE`.

A doctor's queue is one clinic day (the API contract): a booking waits in its own day's queue, and "today" rolls
over at the clinic's midnight, not UTC's. Kept pure (a zone in, dates and UTC bounds out) so the
actors, the workflows and the day's statistics agree on where a day starts and ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class ClinicCalendar:
    zone: ZoneInfo

    @classmethod
    def named(cls, name: str) -> "ClinicCalendar":
        return cls(ZoneInfo(name))

    def day_of(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def start_of(self, day: date) -> datetime:
        """The UTC instant the clinic day begins (its local midnight, whatever the DST rules)."""
        return datetime.combine(day, time(0), self.zone).astimezone(timezone.utc)

    def end_of(self, day: date) -> datetime:
        """The UTC instant the next clinic day begins: a day's appointments are dated before it."""
        return self.start_of(day + timedelta(days=1))


UTC_CALENDAR = ClinicCalendar(ZoneInfo("UTC"))
