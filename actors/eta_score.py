"""The server keeping score of its own ETA (API.md, "The server keeps score of itself").

When a consultation starts, the `expectedStartAt` last *published* for it at least `SCORE_HORIZON`
before the real start is what the patient planned with; the difference is the error. Published,
not computed: a value the patient was never pushed (it moved by less than a minute) is not what they
were told. Pure bookkeeping, so the actor only records and asks.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta

SCORE_HORIZON = timedelta(minutes=30)


class PublishedStarts:
    """Per waiting appointment, the expected starts published and when. Kept bounded: once a value
    was published at least `SCORE_HORIZON` ago, nothing published before it can be the one scored
    (a start is never earlier than now), so those are dropped."""

    def __init__(self) -> None:
        self._history: dict[str, list[tuple[datetime, datetime]]] = {}

    def record(self, appointment_id: str, published_at: datetime, expected_start: datetime) -> None:
        history = self._history.setdefault(appointment_id, [])
        history.append((published_at, expected_start))
        keep_from = bisect.bisect_right(history, published_at - SCORE_HORIZON, key=lambda h: h[0]) - 1
        if keep_from > 0:
            del history[:keep_from]

    def error_minutes(self, appointment_id: str, started_at: datetime) -> float | None:
        """|started_at - the start last published at least SCORE_HORIZON before it|; None when nothing
        was published that early (booked or changed too late to be scored). Forgets the appointment."""
        history = self._history.pop(appointment_id, [])
        index = bisect.bisect_right(history, started_at - SCORE_HORIZON, key=lambda h: h[0]) - 1
        if index < 0:
            return None
        return abs((started_at - history[index][1]).total_seconds()) / 60.0

    def forget(self, appointment_id: str) -> None:
        self._history.pop(appointment_id, None)

    def __len__(self) -> int:
        return sum(len(h) for h in self._history.values())
