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
from functools import lru_cache
from statistics import median
from typing import Sequence

import numpy as np

# Consultations outside this range (in minutes) are mistakes (a call left open overnight, a click on
# "complete" right after "call") and teach nothing.
MIN_CONSULT_MINUTES = 1.0
MAX_CONSULT_MINUTES = 240.0
MIN_CONSULTATIONS = 5
PRIOR_WEIGHT = 3
SAMPLE_LIMIT = 200
SEEN_LIMIT = 500
# A call more than this far from the booked time is a leftover from another day, not a habit.
MAX_CALL_OFFSET_MINUTES = 240.0
# The spread assumed for consultation lengths before any are seen (sigma of log-minutes): typical of
# clinic data, where a long case takes about twice the median.
PRIOR_LOG_SPREAD = 0.45
LOG_SPREAD_BOUNDS = (0.05, 1.5)
MAD_TO_SIGMA = 1.4826
# The default assumptions (before any history, and the prior every learned value is shrunk towards):
# a patient does not come with this chance, and the doctor, waiting for one who does not come, marks
# it this many minutes after they could have been called. Documented in the README ("The learned ETA").
DEFAULT_NO_SHOW_RATE = 0.08
DEFAULT_NO_SHOW_WAIT_MINUTES = 3.0
# An idle doctor's call within this long of becoming free was made as soon as they could: had they
# been free sooner they might have called earlier still, so its offset from the booked time is only an
# upper bound on their habit (`CALL_IDLE_BOUND`), not a measure of it.
AS_SOON_AS_FREE_MINUTES = 1.0
# Empirical distributions (call offsets, no-show waits) are read as piecewise linear between the
# samples, widened by this much beyond the smallest and largest so the prior's ties make no step.
EDGE_MINUTES = 1.0

CONSULTATION = "consultation"
CALL_FIRST = "call_first"
CALL_IDLE = "call_idle"
CALL_BUSY = "call_busy"
CALL_IDLE_BOUND = "call_idle_bound"  # an idle call made as soon as the doctor was free: the habit is at most this
# Free for longer than this before a booked time, the doctor was away (overnight, a long break): the
# call that follows opens a session, whose lateness (a late start) is a habit of its own.
SESSION_GAP = timedelta(hours=3)
NO_SHOW = "no_show"

_SAMPLE_FIELD = {CONSULTATION: "consultMinutes", CALL_FIRST: "firstCallOffsets", CALL_IDLE: "idleCallOffsets",
                 CALL_IDLE_BOUND: "idleCallBounds", CALL_BUSY: "busyCallGaps", NO_SHOW: "noShowWaits"}
_COUNT_FIELD = {CONSULTATION: "consultations", CALL_FIRST: "calls", CALL_IDLE: "calls", CALL_IDLE_BOUND: "calls",
                CALL_BUSY: "calls", NO_SHOW: "noShows"}


@dataclass(frozen=True)
class LearningEvent:
    """One thing a doctor did that teaches something: a consultation finished (its length), a patient
    called (how many minutes after they could have been: negative = early), a patient who did not come
    (and, when they were waited for, how long after they could have been called the doctor gave up)."""

    key: str
    kind: str
    minutes: float | None = None
    free_at: datetime | None = None  # set when the doctor became free (a consultation ended)


@dataclass(frozen=True)
class DoctorStats:
    consult_minutes: tuple[float, ...] = ()
    first_call_offsets: tuple[float, ...] = ()  # call minus booked time, first of a session (late starts)
    idle_call_offsets: tuple[float, ...] = ()  # call minus booked time; the doctor was free before it
    idle_call_bounds: tuple[float, ...] = ()  # the same, for calls made as soon as the doctor was free
    busy_call_gaps: tuple[float, ...] = ()  # call minus the end of the previous one; the patient was due
    no_show_waits: tuple[float, ...] = ()  # no-show marked minus when the patient could have been called
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
                   idle_call_bounds=tuple(float(x) for x in doc.get("idleCallBounds", ())),
                   busy_call_gaps=tuple(float(x) for x in doc.get("busyCallGaps", ())),
                   no_show_waits=tuple(float(x) for x in doc.get("noShowWaits", ())),
                   consultations=int(doc.get("consultations", 0)), calls=int(doc.get("calls", 0)),
                   no_shows=int(doc.get("noShows", 0)), free_since=doc.get("freeSince"),
                   seen=tuple(doc.get("seen", ())))

    @property
    def usable(self) -> bool:
        return self.consultations >= MIN_CONSULTATIONS

    def model(self, configured_avg_minutes: float) -> "LearnedModel":
        return _fitted(self, configured_avg_minutes)


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
        marked = appointment.get("updatedAt")
        if started is not None or marked is None or booked is None:  # called, never joined: no wait to learn
            return [LearningEvent(f"{appointment_id}:{NO_SHOW}", NO_SHOW, free_at=marked)]
        # Waited for, then marked: measured like a call, from when the patient could have been called.
        # A no-show that opens a session says nothing of the wait (the doctor was not there yet).
        kind = call_kind(stats.free_since, booked)
        waited = None if kind == CALL_FIRST else _minutes(marked - (stats.free_since if kind == CALL_BUSY else booked))
        if waited is not None and not 0 <= waited <= MAX_CALL_OFFSET_MINUTES:
            waited = None
        return [LearningEvent(f"{appointment_id}:{NO_SHOW}", NO_SHOW, waited, free_at=marked)]
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
    doctor was free by then (an early call is negative), else when the doctor became free. An idle
    call made as soon as the doctor was free is a bound, not a measure (`AS_SOON_AS_FREE_MINUTES`)."""
    kind = call_kind(free_since, booked)
    if kind == CALL_IDLE and _minutes(started - free_since) < AS_SOON_AS_FREE_MINUTES:
        kind = CALL_IDLE_BOUND
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
    if event.kind in (CALL_FIRST, CALL_IDLE, CALL_IDLE_BOUND, CALL_BUSY):
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
        if event.kind in _SAMPLE_FIELD and event.minutes is not None:
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
        if event.kind in _SAMPLE_FIELD and event.minutes is not None:
            update["$push"][_SAMPLE_FIELD[event.kind]] = {"$each": [event.minutes], "$slice": -SAMPLE_LIMIT}
        update["$inc"] = {_COUNT_FIELD[event.kind]: 1}
    return {"seen": {"$ne": event.key}}, update


def _minutes(delta) -> float:
    return round(delta.total_seconds() / 60.0, 3)


def _attribute(document_field: str) -> str:
    return {"consultMinutes": "consult_minutes", "firstCallOffsets": "first_call_offsets",
            "idleCallOffsets": "idle_call_offsets", "idleCallBounds": "idle_call_bounds",
            "busyCallGaps": "busy_call_gaps", "noShowWaits": "no_show_waits", "consultations": "consultations", "calls": "calls",
            "noShows": "no_shows"}[document_field]


# -- the learned values ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LearnedModel:
    """Consultation lengths as a log-normal (skewed, long-tailed, as they are), the no-show rate, and
    the empirical distributions of call offsets and no-show waits; each shrunk towards the default
    assumptions (`PRIOR_WEIGHT` pseudo-observations of them). The lengths seen are kept too (sorted
    logs): the plays draw from them, blended with the log-normal (`actors.eta._log_lengths`)."""

    log_mu: float
    log_sigma: float
    no_show_rate: float
    first_offsets: tuple[float, ...]  # sorted
    idle_offsets: tuple[float, ...]  # sorted
    busy_gaps: tuple[float, ...]  # sorted
    no_show_waits: tuple[float, ...] = (DEFAULT_NO_SHOW_WAIT_MINUTES,)  # sorted
    log_lengths: tuple[float, ...] = ()  # sorted: the valid consultation lengths seen, in log-minutes
    idle_weights: tuple[float, ...] = ()  # idle_offsets' weights once the bounds are spread (empty: equal)

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
        no_show_rate = (stats.no_shows + DEFAULT_NO_SHOW_RATE * PRIOR_WEIGHT) / (attended + PRIOR_WEIGHT)
        prior_offsets = (0.0,) * PRIOR_WEIGHT  # the configuration calls exactly when the patient is due
        idle_offsets, idle_weights = spread_bounds(stats.idle_call_offsets + prior_offsets, stats.idle_call_bounds)
        return cls(log_mu=weight * centre + (1 - weight) * prior_mu,
                   log_sigma=weight * spread + (1 - weight) * prior_sigma,
                   no_show_rate=no_show_rate,
                   first_offsets=tuple(sorted(stats.first_call_offsets + prior_offsets)),
                   idle_offsets=idle_offsets,
                   busy_gaps=tuple(sorted(stats.busy_call_gaps + prior_offsets)),
                   no_show_waits=tuple(sorted(stats.no_show_waits
                                              + (DEFAULT_NO_SHOW_WAIT_MINUTES,) * PRIOR_WEIGHT)),
                   log_lengths=tuple(sorted(logs)), idle_weights=idle_weights)

    def remaining_consultation_minutes(self, elapsed_minutes: float, level: float = 0.5) -> float:
        """The `level` quantile of how long the running consultation still takes, given it has run
        `elapsed_minutes`. It grows as the consultation overruns, the way a long tail says it should,
        instead of "avg minus elapsed" hitting zero."""
        z_end = float(self.running_end_z(elapsed_minutes, np.array([level]))[0])
        return max(0.0, math.exp(self.log_mu + self.log_sigma * z_end) - max(elapsed_minutes, 0.0))

    def running_end_z(self, elapsed_minutes: float, levels: np.ndarray) -> np.ndarray:
        """Standardised log-lengths T of a consultation known to exceed `elapsed_minutes`, at the given
        levels of P(T <= t | T > e). Worked on the upper tail, P(T > t) = (1 - level) P(T > e), with
        erfc: far into an overrun the tail is tiny and 1 - cdf would round to 0 and make the end jump
        back to "now"."""
        if elapsed_minutes <= 0:
            return normal_quantile(levels)
        z_elapsed = (math.log(elapsed_minutes) - self.log_mu) / self.log_sigma
        survival = 0.5 * math.erfc(z_elapsed / math.sqrt(2))
        if survival > 1e-290:
            return np.maximum(-normal_quantile((1 - levels) * survival), z_elapsed)
        # beyond any double: the normal tail's own asymptote, S(z + d) / S(z) ~ exp(-z d)
        return z_elapsed + np.log(1 / np.maximum(1 - levels, 1e-12)) / z_elapsed

    def offsets(self, kind: str) -> "Empirical":
        """The distribution of call offsets of a kind (CALL_FIRST, CALL_IDLE, CALL_BUSY) or, for
        NO_SHOW, of how long the doctor waits for a patient who does not come."""
        if kind == CALL_IDLE:
            return _empirical(self.idle_offsets, self.idle_weights)
        return _empirical({CALL_FIRST: self.first_offsets, CALL_BUSY: self.busy_gaps, NO_SHOW: self.no_show_waits}[kind])


def spread_bounds(measured: Sequence[float], bounds: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A distribution from values measured and values known only as upper bounds ("at most this"):
    each bound's weight is shared equally among every value below it, from the highest bound down
    (Efron's redistribution: the Kaplan-Meier estimate, for bounds from above). A bound with nothing
    below it stays where it is. Returns the values with weight, sorted, and their weights; with no
    bounds, the measured values and no weights (equal).

    Without this, a doctor who calls 10 minutes early whenever they can, but is often free only 3
    minutes before the booked time, would be learned as calling 3 minutes early."""
    if not bounds:
        return tuple(sorted(measured)), ()
    items = sorted([(x, False) for x in measured] + [(x, True) for x in bounds], reverse=True)
    weights = [1.0] * len(items)
    carry, i = 0.0, 0
    while i < len(items):
        j = i
        while j < len(items) and items[j][0] == items[i][0]:
            j += 1
        below = len(items) - j  # strictly below this value
        shared = 0.0
        for k in range(i, j):
            weights[k] += carry
            if items[k][1] and below:
                shared += weights[k] / below
                weights[k] = 0.0
        carry += shared
        i = j
    kept = sorted((x, w) for (x, _), w in zip(items, weights) if w > 0)
    return tuple(x for x, _ in kept), tuple(w for _, w in kept)


class Empirical:
    """A distribution read from samples: piecewise linear between them (one point per distinct value,
    at the middle of its tied ranks, so ties make no step), reaching 0 and 1 `EDGE_MINUTES` beyond the
    smallest and largest. Smooth, so a quantile given "more than w" moves smoothly as w moves."""

    __slots__ = ("values", "levels")

    def __init__(self, ordered: Sequence[float], weights: Sequence[float] = ()):
        """`weights`, one per sample (empty: equal) weigh the samples' share of the distribution."""
        values, levels = [ordered[0] - EDGE_MINUTES], [0.0]
        cumulative = np.concatenate(([0.0], np.cumsum(weights if len(weights) else np.ones(len(ordered)))))
        total = cumulative[-1]
        for i, x in enumerate(ordered):
            if values[-1] == x and i:
                continue
            last = bisect.bisect_right(ordered, x)
            values.append(x)
            levels.append(float(cumulative[i] + cumulative[last]) / 2 / total)
        values.append(ordered[-1] + EDGE_MINUTES)
        levels.append(1.0)
        self.values, self.levels = np.array(values), np.array(levels)

    def cdf(self, x: float) -> float:
        return float(np.interp(x, self.values, self.levels))

    def quantile(self, levels: np.ndarray) -> np.ndarray:
        return np.interp(levels, self.levels, self.values)

    def above(self, floor: float, levels: np.ndarray) -> np.ndarray:
        """Quantiles given the value exceeds `floor`; `floor` itself once every sample lies below it.
        With fixed levels, each quantile only grows as `floor` grows."""
        below = self.cdf(floor)
        return np.maximum(self.quantile(below + levels * (1 - below)), floor)


@lru_cache(maxsize=512)
def _empirical(ordered: tuple[float, ...], weights: tuple[float, ...] = ()) -> Empirical:
    return Empirical(ordered, weights)


@lru_cache(maxsize=256)
def _fitted(stats: DoctorStats, configured_avg_minutes: float) -> LearnedModel:
    return LearnedModel.fit(stats, configured_avg_minutes)


# Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9), vectorised:
# numpy has no inverse error function, and this runs for every path of every estimate.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
      -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
      -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
      4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)


def normal_quantile(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-300, 1 - 1e-16)
    z = np.empty_like(p)
    low, high = p < 0.02425, p > 1 - 0.02425
    mid = ~(low | high)
    q = p[mid] - 0.5
    r = q * q
    z[mid] = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
              / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1))
    for mask, sign, tail in ((low, 1.0, p[low]), (high, -1.0, 1 - p[high])):
        q = np.sqrt(-2 * np.log(tail))
        z[mask] = sign * (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) \
            / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1)
    return z
