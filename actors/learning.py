"""What the server learns about one doctor, as a small document, and the values it learns from it.

Pure: no I/O. The same finished consultation is applied twice, by design: once to the stored
document by the write workflow (one atomic update, see `store_update`), once to the in-memory copy of
every node's actor (`apply`). Both are driven by one `LearningEvent`, so they cannot disagree, and
each event carries a key (appointment id and kind) so a repeated or replayed change teaches nothing
twice, in the store or in memory.

The document keeps bounded recent samples rather than running moments: a doctor changes habits, so
the last `SAMPLE_LIMIT` consultations say more than all of them; and samples let us fit the whole
distribution robustly (median and MAD of the log-lengths) instead of a mean one long case can drag.

Nothing learned is used until `MIN_CONSULTATIONS` valid consultations were seen; after that every
learned value is shrunk towards the configured one, as if the configuration were `PRIOR_WEIGHT`
earlier observations, so a short history moves the estimate only a little.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from statistics import NormalDist, median
from typing import Sequence

# Consultations outside this range (in minutes) are mistakes (a call left open overnight, a click on
# "complete" right after "call") and teach nothing.
MIN_CONSULT_MINUTES = 1.0
MAX_CONSULT_MINUTES = 240.0
MIN_CONSULTATIONS = 5
PRIOR_WEIGHT = 10
SAMPLE_LIMIT = 200
SEEN_LIMIT = 500
# A call more than this far from the booked time is a leftover from another day, not a habit.
MAX_CALL_OFFSET_MINUTES = 240.0
# The spread assumed for consultation lengths before any are seen (sigma of log-minutes): typical of
# clinic data, where a long case takes about twice the median.
PRIOR_LOG_SPREAD = 0.45
LOG_SPREAD_BOUNDS = (0.05, 1.5)
MAD_TO_SIGMA = 1.4826
# Which quantile of the running consultation's remaining time is quoted (0.5 = the median, what
# minimises absolute error). Then the guard against missed turns: being told too late costs a
# patient their turn, too early only a wait. A start is quoted no later than `MISSED_TURN_MINUTES`
# after a low quantile (`MISSED_TURN_SIGMAS` standard deviations of the queue's accumulated
# uncertainty below the expected start): near the head that changes nothing, far down the queue,
# where the spread is wide, it quotes early. Tuned on bench seeds 1-3 (bench/eta/README.md).
RUNNING_QUANTILE = 0.5
MISSED_TURN_MINUTES = 10.0
MISSED_TURN_SIGMAS = 1.5

CONSULTATION = "consultation"
CALL_FIRST = "call_first"
CALL_IDLE = "call_idle"
CALL_BUSY = "call_busy"
# Free for longer than this before a booked time, the doctor was away (overnight, a long break): the
# call that follows opens a session, whose lateness (a late start) is a habit of its own.
SESSION_GAP = timedelta(hours=3)
NO_SHOW = "no_show"

_SAMPLE_FIELD = {CONSULTATION: "consultMinutes", CALL_FIRST: "firstCallOffsets", CALL_IDLE: "idleCallOffsets",
                 CALL_BUSY: "busyCallGaps"}
_COUNT_FIELD = {CONSULTATION: "consultations", CALL_FIRST: "calls", CALL_IDLE: "calls", CALL_BUSY: "calls",
                NO_SHOW: "noShows"}
_STANDARD = NormalDist()


@dataclass(frozen=True)
class LearningEvent:
    """One thing a doctor did that teaches something: a consultation finished (its length), a patient
    called (how many minutes after they could have been: negative = early), a patient who did not come."""

    key: str
    kind: str
    minutes: float | None = None
    free_at: datetime | None = None  # set when the doctor became free (a consultation ended)


@dataclass(frozen=True)
class DoctorStats:
    consult_minutes: tuple[float, ...] = ()
    first_call_offsets: tuple[float, ...] = ()  # call minus booked time, first of a session (late starts)
    idle_call_offsets: tuple[float, ...] = ()  # call minus booked time; the doctor was free before it
    busy_call_gaps: tuple[float, ...] = ()  # call minus the end of the previous one; the patient was due
    consultations: int = 0
    calls: int = 0
    no_shows: int = 0
    free_since: datetime | None = None
    seen: tuple[str, ...] = field(default=(), repr=False)

    # -- the document ------------------------------------------------------------------------------
    @classmethod
    def from_document(cls, doc: dict | None) -> "DoctorStats":
        if not doc:
            return cls()
        return cls(consult_minutes=tuple(float(x) for x in doc.get("consultMinutes", ())),
                   first_call_offsets=tuple(float(x) for x in doc.get("firstCallOffsets", ())),
                   idle_call_offsets=tuple(float(x) for x in doc.get("idleCallOffsets", ())),
                   busy_call_gaps=tuple(float(x) for x in doc.get("busyCallGaps", ())),
                   consultations=int(doc.get("consultations", 0)), calls=int(doc.get("calls", 0)),
                   no_shows=int(doc.get("noShows", 0)), free_since=doc.get("freeSince"),
                   seen=tuple(doc.get("seen", ())))

    @property
    def usable(self) -> bool:
        return self.consultations >= MIN_CONSULTATIONS

    def model(self, configured_avg_minutes: float) -> "LearnedModel":
        return LearnedModel.fit(self, configured_avg_minutes)


# -- events from appointments ----------------------------------------------------------------------
TEACHING_STATUSES = ("in_consultation", "completed", "no_show")


def may_teach(appointment: dict) -> bool:
    """Cheap pre-check, so a booking or a cancellation costs no read of the statistics."""
    return appointment.get("status") in TEACHING_STATUSES


def apply_all(stats: DoctorStats, events: Sequence[LearningEvent]) -> DoctorStats:
    for event in events:
        stats = apply(stats, event)
    return stats


def events_for(stats: DoctorStats, appointment: dict) -> list[LearningEvent]:
    """What an appointment, as stored after a write, teaches. Read from the document alone (plus when
    the doctor last became free), so every node derives the same events from the same change."""
    appointment_id = str(appointment["_id"])
    status = appointment.get("status")
    started, booked = appointment.get("startedAt"), appointment.get("date")
    if status == "no_show":
        return [LearningEvent(f"{appointment_id}:{NO_SHOW}", NO_SHOW)]
    if status == "in_consultation" and started is not None and booked is not None:
        return [call_event(appointment_id, booked, started, stats.free_since)]
    if status == "completed" and started is not None and appointment.get("completedAt") is not None:
        completed = appointment["completedAt"]
        return [LearningEvent(f"{appointment_id}:{CONSULTATION}", CONSULTATION,
                              _minutes(completed - started), free_at=completed)]
    return []


def call_event(appointment_id: str, booked: datetime, started: datetime,
               free_since: datetime | None) -> LearningEvent:
    """A call, measured from when the patient could first have been called: the booked time if the
    doctor was free by then (an early call is negative), else when the doctor became free."""
    kind = call_kind(free_since, booked)
    return LearningEvent(f"{appointment_id}:call", kind,
                         _minutes(started - (free_since if kind == CALL_BUSY else booked)))


def call_kind(free_since: datetime | None, booked: datetime) -> str:
    """Which habit a call shows: the first of a session (the doctor was away), a call while idle
    (free before the booked time), or a call after finishing the previous patient (who was due)."""
    if free_since is None or booked - free_since > SESSION_GAP:
        return CALL_FIRST
    return CALL_IDLE if free_since <= booked else CALL_BUSY


def teaches(event: LearningEvent) -> bool:
    """Whether the event's number is believable enough to learn from (counts and `free_at` aside)."""
    if event.kind == CONSULTATION:
        return MIN_CONSULT_MINUTES <= event.minutes <= MAX_CONSULT_MINUTES
    if event.kind in (CALL_FIRST, CALL_IDLE, CALL_BUSY):
        return abs(event.minutes) <= MAX_CALL_OFFSET_MINUTES
    return True


def apply(stats: DoctorStats, event: LearningEvent) -> DoctorStats:
    """The in-memory twin of `store_update`."""
    if event.key in stats.seen:
        return stats
    changes: dict = {"seen": (stats.seen + (event.key,))[-SEEN_LIMIT:]}
    if event.free_at is not None and (stats.free_since is None or event.free_at > stats.free_since):
        changes["free_since"] = event.free_at
    if teaches(event):
        if event.kind in _SAMPLE_FIELD:
            name = _attribute(_SAMPLE_FIELD[event.kind])
            changes[name] = (getattr(stats, name) + (event.minutes,))[-SAMPLE_LIMIT:]
        count = _attribute(_COUNT_FIELD[event.kind])
        changes[count] = getattr(stats, count) + 1
    return replace(stats, **changes)


def store_update(event: LearningEvent) -> tuple[dict, dict]:
    """(extra filter, update) that records the event on the stored document in one atomic write.
    The filter refuses an event already recorded; with upsert, that refusal surfaces as a duplicate
    key error on `_id`, which the caller reads as "already learned"."""
    update: dict = {"$push": {"seen": {"$each": [event.key], "$slice": -SEEN_LIMIT}}}
    if event.free_at is not None:
        update["$max"] = {"freeSince": event.free_at}
    if teaches(event):
        if event.kind in _SAMPLE_FIELD:
            update["$push"][_SAMPLE_FIELD[event.kind]] = {"$each": [event.minutes], "$slice": -SAMPLE_LIMIT}
        update["$inc"] = {_COUNT_FIELD[event.kind]: 1}
    return {"seen": {"$ne": event.key}}, update


def _minutes(delta) -> float:
    return round(delta.total_seconds() / 60.0, 3)


def _attribute(document_field: str) -> str:
    return {"consultMinutes": "consult_minutes", "firstCallOffsets": "first_call_offsets",
            "idleCallOffsets": "idle_call_offsets",
            "busyCallGaps": "busy_call_gaps", "consultations": "consultations", "calls": "calls",
            "noShows": "no_shows"}[document_field]


# -- the learned values ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LearnedModel:
    """Consultation lengths as a log-normal (skewed, long-tailed, as they are), the no-show rate, and
    the empirical distributions of call offsets; each shrunk towards the configuration."""

    log_mu: float
    log_sigma: float
    no_show_rate: float
    first_offsets: tuple[float, ...]  # sorted
    idle_offsets: tuple[float, ...]  # sorted
    busy_gaps: tuple[float, ...]  # sorted

    @classmethod
    def fit(cls, stats: DoctorStats, configured_avg_minutes: float) -> "LearnedModel":
        prior_sigma = PRIOR_LOG_SPREAD
        prior_mu = math.log(configured_avg_minutes) - prior_sigma ** 2 / 2  # its mean is the configured avg
        logs = [math.log(x) for x in stats.consult_minutes]
        n = len(logs)
        if n:
            centre = median(logs)
            spread = MAD_TO_SIGMA * median(abs(x - centre) for x in logs)
            spread = min(max(spread, LOG_SPREAD_BOUNDS[0]), LOG_SPREAD_BOUNDS[1])
        else:
            centre, spread = prior_mu, prior_sigma
        weight = n / (n + PRIOR_WEIGHT)
        attended = stats.calls + stats.no_shows
        no_show_rate = stats.no_shows / (attended + PRIOR_WEIGHT)  # the configuration assumes everyone comes
        prior_offsets = (0.0,) * PRIOR_WEIGHT  # the configuration calls exactly when the patient is due
        return cls(log_mu=weight * centre + (1 - weight) * prior_mu,
                   log_sigma=weight * spread + (1 - weight) * prior_sigma,
                   no_show_rate=no_show_rate,
                   first_offsets=tuple(sorted(stats.first_call_offsets + prior_offsets)),
                   idle_offsets=tuple(sorted(stats.idle_call_offsets + prior_offsets)),
                   busy_gaps=tuple(sorted(stats.busy_call_gaps + prior_offsets)))

    def remaining_consultation_minutes(self, elapsed_minutes: float) -> float:
        """A quantile (`RUNNING_QUANTILE`) of how long the running consultation still takes, given it
        has run `elapsed_minutes`: P(T <= e + r | T > e). It grows as the consultation overruns, the
        way a long tail says it should, instead of "avg minus elapsed" hitting zero."""
        if elapsed_minutes <= 0:
            return self._length_quantile(RUNNING_QUANTILE)
        # Worked on the upper tail, P(T > t) = (1 - q) P(T > e), with erfc: far into an overrun the
        # tail is tiny and 1 - cdf would round to 0 and make the end jump back to "now".
        z_elapsed = (math.log(elapsed_minutes) - self.log_mu) / self.log_sigma
        tail = (1 - RUNNING_QUANTILE) * 0.5 * math.erfc(z_elapsed / math.sqrt(2))
        if tail > 1e-300:
            z_end = -_STANDARD.inv_cdf(tail)
        else:  # beyond any double: the normal tail's own asymptote, S(z + d) / S(z) ~ exp(-z d)
            z_end = z_elapsed + math.log(1 / (1 - RUNNING_QUANTILE)) / z_elapsed
        return max(0.0, math.exp(self.log_mu + self.log_sigma * z_end) - elapsed_minutes)

    def slot_minutes(self) -> tuple[float, float]:
        """Mean and variance of the time a waiting patient ahead takes from the doctor: a consultation,
        unless they do not come. Means add up along the queue, and so do variances, which is how
        the estimate knows that the tenth patient's start is less certain than the first's."""
        mean = math.exp(self.log_mu + self.log_sigma ** 2 / 2)
        variance = (math.exp(self.log_sigma ** 2) - 1) * mean ** 2
        p = self.no_show_rate
        return (1 - p) * mean, (1 - p) * variance + p * (1 - p) * mean ** 2

    def _length_quantile(self, level: float) -> float:
        return math.exp(self.log_mu + self.log_sigma * _STANDARD.inv_cdf(level))

    def call_offset_minutes(self, kind: str, waited_minutes: float) -> float:
        """How long after the patient could be called they are called, given nobody was called during
        the `waited_minutes` already gone by (negative: not yet callable). The median of the offsets
        above that: "the head is due and nobody is called" reads lateness from the clock, and the
        estimate moves only one way as the wait goes on."""
        samples = {CALL_FIRST: self.first_offsets, CALL_IDLE: self.idle_offsets, CALL_BUSY: self.busy_gaps}[kind]
        return conditional_quantile(samples, waited_minutes, 0.5)


def conditional_quantile(ordered: Sequence[float], floor: float, level: float) -> float:
    """The `level` quantile of the samples given the value exceeds `floor`, on a piecewise-linear
    empirical CDF so the answer moves smoothly (not in jumps from sample to sample) as `floor` moves.
    Never below `floor`; `floor` itself once every sample lies below it."""
    n = len(ordered)
    if n == 0 or floor >= ordered[-1]:
        return floor
    # One point per distinct value, at the middle of its tied ranks, so ties make no step either.
    values, probabilities = [], []
    for i, x in enumerate(ordered):
        if values and values[-1] == x:
            continue
        last = bisect.bisect_right(ordered, x)
        values.append(x)
        probabilities.append((i + last) / 2 / n)
    if len(values) == 1:
        return max(floor, values[0])
    below = _interpolate(floor, values, probabilities) if floor > values[0] else probabilities[0]
    target = below + level * (1 - below)
    return max(floor, _interpolate(target, probabilities, values))


def _interpolate(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    if x1 == x0:
        return y1
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
