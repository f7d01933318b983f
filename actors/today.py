"""Today's appointments of every doctor, in memory: what a report reads for the day that is still open.

Closed days are read from their summaries (`domain.reports`); today cannot be summarised, because
every booking, call and no-show changes it. Reading it from the store costs one query per report, and
on the embedded store (no real indexes) one query is a scan of every appointment ever booked — 0.7 s
at 100,000 on an idle machine, several seconds on a busy one. So each node keeps today the way it keeps
its queues: loaded from the store once (one query, `DayLedger.fill`), then told of every committed
change over the bus (`take`, from `QueueRegistry.deliver`), each document as stored after its write.
Like a queue, it trusts the appointment's `version` (a late or repeated message changes nothing), and
is dropped when the node may have missed messages (`forget`, from `QueueRegistry.reload_all`) or
when the clinic day rolls over (`holds` is then False): the next report loads it again.

Pure: no store, no clock of its own. `filling` lets one caller load it while the others wait for
that load instead of scanning the store again.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime

from core.days import ClinicCalendar
from core.values import as_utc

# The fields a day's row reads (`domain.reports.day_row`); the store fetches only these for a report.
DAY_FIELDS = ("doctor", "date", "status", "startedAt", "completedAt", "etaErrorMinutes", "etaRange", "version")


class DayLedger:
    def __init__(self, calendar: ClinicCalendar):
        self.calendar = calendar
        self.filling = asyncio.Lock()
        self._generation = 0
        self.forget()

    def forget(self) -> None:
        """Nothing is known any more: the next reader loads the day again (and a load under way when
        this is called is not trusted: it may have read before the changes that were missed)."""
        self._generation += 1
        self.day: date | None = None
        self.loaded = False
        self._start: datetime | None = None
        self._end: datetime | None = None
        self._documents: dict[str, dict] = {}

    def holds(self, day: date) -> bool:
        """True when this ledger is loaded and is the ledger of `day`."""
        return self.loaded and self.day == day

    def begin(self, day: date) -> int:
        """From now on, changes to `day` are kept (the load that follows may miss the ones made while
        it reads; `fill` keeps whichever copy of each appointment is newer). Returns the load's ticket."""
        self.forget()
        self.day = day
        self._start, self._end = self.calendar.start_of(day), self.calendar.end_of(day)
        return self._generation

    def fill(self, ticket: int, documents) -> bool:
        """The day as the store answered the load `ticket`; loaded from now on, unless the ledger was
        dropped while the load read (then False, and nothing is kept)."""
        if ticket != self._generation:
            return False
        self._keep(documents, replace_same_version=False)
        self.loaded = True
        return True

    def take(self, documents) -> None:
        """Committed changes (from any doctor, any day): those of the ledger's day are kept, an
        appointment that moved to another day leaves it."""
        if self.day is not None:
            self._keep(documents, replace_same_version=True)

    def documents(self, doctor: str | None = None) -> list[dict]:
        """Copies of the day's appointments (of one doctor, given as a string id), in no set order."""
        return [dict(d) for d in self._documents.values() if doctor is None or str(d["doctor"]) == doctor]

    def _keep(self, documents, *, replace_same_version: bool) -> None:
        """A message after its write replaces the copy of the same version (the embedded store's load,
        read from another thread, may have caught that write half done); a load never replaces what a
        message brought."""
        for document in documents:
            if document is None:
                continue
            key = str(document["_id"])
            kept = self._documents.get(key)
            if kept is not None:
                known, offered = kept.get("version", 0), document.get("version", 0)
                if known > offered or (known == offered and not replace_same_version):
                    continue  # older than what is known: a late or repeated message
            moment = as_utc(document["date"])
            if self._start <= moment < self._end:
                row = {field: document[field] for field in DAY_FIELDS if field in document}
                for field in ("date", "startedAt", "completedAt"):
                    if row.get(field) is not None:
                        row[field] = as_utc(row[field])
                self._documents[key] = {**row, "_id": document["_id"]}
            else:
                self._documents.pop(key, None)
