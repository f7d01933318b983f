"""When each waiting patient will be seen, as a range: a pure function of (queue, the doctor's settings,
what was learned about the doctor, now) → estimates.

Kept free of I/O and of the actor so it can be tested against a table, replayed over recorded days
(`python -m server eta-replay`) and replaced on its own.

Every estimate carries three times, `earliest ≤ expected ≤ latest`: `expected` is the best single
guess (the median of what may happen: it makes the mean absolute error smallest), `earliest` is "be
ready by" (about 5 % of real starts come before it, at most 1 % more than 10 minutes before), and
`latest` has about 10 % of real starts after it.

The floor is the API contract's plain rule: each appointment starts at the later of "when the doctor is
free" and its booked time, the doctor is free `avg` after the running consultation began, plus
declared lateness, and not before `awayUntil`. It starts each appointment no earlier than its booking,
so a booking for tomorrow is never told it is next *now* (the original `position * avg + late` did
that). The plain rule is exactly the `expected` time answered while too little is known about a doctor
(see `actors.learning`), or with learning switched off; its range then comes from the default
assumptions below, the same for every doctor (`_plain`).

With enough history the start of every waiting patient is played forward `PATHS` times from what was
learned (`_learned`): the running consultation's remaining time given how long it has run; each later
one's length, or the doctor's wait for a patient who does not come; how long after a patient becomes
callable this doctor calls them. The quoted times are quantiles over those plays. The plays use fixed
random numbers (common random numbers): the same queue in the same state always gives the same
answer, and as time passes with nothing happening every play moves only later, so the estimates do
too instead of jittering from tick to tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Sequence

import numpy as np

from actors.learning import (CALL_BUSY, CALL_FIRST, CALL_IDLE, DEFAULT_NO_SHOW_RATE, NO_SHOW, SESSION_GAP, DoctorStats,
                             LearnedModel, call_kind, normal_quantile)

# -- the range's levels (the API contract) -----------------------------------------------------------
# The contract asks for about 5 % of real starts before earliestStartAt (at most 1 % more than 10
# minutes before it) and about 10 % after latestStartAt. The plays leave out what the server does not
# learn (cancellations, a day's own late start, how uncertain the learned values still are), so their
# tails are a little too thin: the learned range quotes slightly wider levels, chosen on the bench's
# tuned seeds so the observed shares land on the contract's (bench/eta/README.md). The earliest's
# 4.8 % (2.2 %, then 2.44 %, until idle calls made as soon as the doctor was free were learned as
# bounds: read as measures they taught calls later than the habit, and the plays came out late) leaves
# the twelve tuned seed-scenarios' share of starts before earliestStartAt at 3.8-7.1 %, as far inside
# 3-8 % at each end (of 4, 4.6 and 4.8 %: 3.0-6.3 %, 3.5-6.9 %). The latest's 93 % (was 94.5 %) came with drawing lengths from the doctor's own
# (`_log_lengths`), which keep the rare very long case the log-normal left out: of 92, 92.5 and 93 %,
# the lowest (the narrowest window) that keeps the tuned seeds' share after latestStartAt at least 1.5
# points inside the 6-14 % band (8.9-12.4 %). It narrows the window most where a doctor's starts are
# pinned to the booked times.
EXPECTED_LEVEL = 0.5     # the median: the smallest mean absolute error
EARLIEST_LEVEL = 0.05    # "be ready by": about 5 % of real starts come before it ...
FAR_EARLY_LEVEL = 0.01   # ... and at most 1 % ...
FAR_EARLY_MINUTES = 10.0  # ... more than this before it
LATEST_LEVEL = 0.90      # about 10 % of real starts come after it
PLAYED_LEVELS = {FAR_EARLY_LEVEL: 0.005, EARLIEST_LEVEL: 0.048, EXPECTED_LEVEL: 0.5, LATEST_LEVEL: 0.93}

# -- the default assumptions: the range before any history, the same for every doctor ---------------
# Each consultation's length varies around the typed average with this standard deviation (as a
# fraction of the average; published clinic data run at 0.4-0.7); a patient does not come with
# `learning.DEFAULT_NO_SHOW_RATE`; a doctor free before a booked time may call up to
# DEFAULT_EARLY_CALL_MINUTES early. Documented in the README ("The learned ETA").
DEFAULT_SPREAD = 0.5
DEFAULT_EARLY_CALL_MINUTES = 10.0
_Z = {level: float(normal_quantile(np.array([level]))[0])
      for level in {FAR_EARLY_LEVEL, EARLIEST_LEVEL, EXPECTED_LEVEL, LATEST_LEVEL} | set(PLAYED_LEVELS.values())}

# -- the learned range: plays of the rest of the day ---------------------------------------------------
PATHS = 256
LATENESS_HORIZON_MINUTES = SESSION_GAP.total_seconds() / 60  # declared lateness: for a head due within this
MC_DEPTH = 64  # positions played; further back, see `_tail`
# The plays' consultation lengths: the doctor's own lengths seen (their empirical distribution), blended
# with the fitted log-normal as if that were this many of them (`_log_lengths`).
LOG_NORMAL_WEIGHT = 10
_SEED = 20261201
_LEVELS = (FAR_EARLY_LEVEL, EARLIEST_LEVEL, EXPECTED_LEVEL, LATEST_LEVEL)


class Estimate:
    """One waiting appointment's estimate. A plain class with slots: a long queue builds thousands of
    these on every change and every tick."""

    __slots__ = ("position", "eta_minutes", "expected_start_at", "delay_minutes", "earliest_start_at",
                 "latest_start_at")

    def __init__(self, position: int, eta_minutes: int, expected_start_at: datetime, delay_minutes: int = 0,
                 earliest_start_at: datetime | None = None, latest_start_at: datetime | None = None):
        self.position = position
        self.eta_minutes = eta_minutes
        self.expected_start_at = expected_start_at
        self.delay_minutes = delay_minutes  # whole minutes, rounded to the nearest, after the booked time
        # None: the same as expected_start_at (a range of one point)
        self.earliest_start_at = expected_start_at if earliest_start_at is None else earliest_start_at
        self.latest_start_at = expected_start_at if latest_start_at is None else latest_start_at

    def _key(self) -> tuple:
        return (self.position, self.eta_minutes, self.expected_start_at, self.delay_minutes,
                self.earliest_start_at, self.latest_start_at)

    def __eq__(self, other) -> bool:
        return isinstance(other, Estimate) and self._key() == other._key()

    __hash__ = None

    def __repr__(self) -> str:
        return "Estimate(%r, %r, %r, %r, %r, %r)" % self._key()


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
    if learning and stats is not None and stats.usable and booked_times:
        return _learned(booked_times, now, avg_minutes, late_minutes, consultation_started_at, away_until,
                        stats)
    return _plain(booked_times, now, avg_minutes, late_minutes, consultation_started_at, away_until)


# -- no history: the plain rule, and the default range around it ---------------------------------------
def _plain(booked_times, now, avg_minutes, late_minutes, started_at, away_until) -> list[Estimate]:
    """The plain rule's start, and a range from the default assumptions: the time the doctor is free
    (the plain rule's) is spread by the consultations ahead (the running one and each waiting patient
    before this one, DEFAULT_SPREAD × avg each) and pulled earlier by the patients ahead who may not
    come; a doctor free before the booked time may call up to DEFAULT_EARLY_CALL_MINUTES early.
    Nobody starts before now or before the end of a break. Counted by position, not by whether the
    booked time holds the start, so that as time passes with nothing happening each time only moves
    later (the plain chain does).

    In whole microseconds, so the plain rule is exact: start_i = max(free_i, booked_i) and
    free_{i+1} = start_i + avg is the max-plus recursion start_i = i avg + max(free_0, max_{k<=i}
    (booked_k - k avg))."""
    if not booked_times:
        return []
    avg = avg_minutes * _MINUTE
    now_us = _us(now)
    booked = np.array([_us(b) for b in booked_times], dtype=np.int64)
    steps = np.arange(len(booked), dtype=np.int64) * avg
    first_free = _us(doctor_free_at(now, avg_minutes, late_minutes, started_at, away_until))
    starts = steps + np.maximum.accumulate(np.maximum(booked - steps, first_free))
    free = np.concatenate(([first_free], starts[:-1] + avg))  # when the doctor is free for each one
    floor = max(now_us, _us(away_until)) if away_until is not None and away_until > now else now_us
    p = DEFAULT_NO_SHOW_RATE
    running_variance = (DEFAULT_SPREAD * avg_minutes) ** 2 if started_at is not None else 0.0
    slot_variance = (1 - p) * (DEFAULT_SPREAD * avg_minutes) ** 2 + p * (1 - p) * avg_minutes ** 2
    positions = np.arange(len(booked))
    sd = np.sqrt(running_variance + positions * slot_variance)
    centre = free - p * avg_minutes * positions * _MINUTE
    low = np.maximum(-_Z[EARLIEST_LEVEL] * sd, -_Z[FAR_EARLY_LEVEL] * sd - FAR_EARLY_MINUTES) * _MINUTE
    earliest = np.minimum(starts, np.maximum(np.maximum(booked - int(DEFAULT_EARLY_CALL_MINUTES * _MINUTE), floor),
                                             _seconds(centre - low)))
    latest = np.maximum(starts, _seconds(centre + _Z[LATEST_LEVEL] * sd * _MINUTE))
    return _estimates(now_us, booked, starts, earliest, latest)


# -- with history: plays of the rest of the day -------------------------------------------------------
def _learned(booked_times, now, avg_minutes, late_minutes, started_at, away_until,
             stats: DoctorStats) -> list[Estimate]:
    """Each play (a row of the arrays below, in minutes from now) walks the queue: patient i is called
    at c_i = max(F_{i-1} + gap_i, due_i + offset_i), the later of "the doctor is free and moves on"
    and "the booked time, give or take this doctor's habit of calling early or late"; the doctor is
    then busy until F_i = c_i + X_i (a consultation, or the wait for a patient who does not come).
    That recursion is a max-plus one, so it runs over the queue at once: with b_i = F_{i-1} - c_{i-1}
    + gap_i and B_i their running sum, c_i = B_i + max(c_0, max_{k<=i}(a_k - B_k)).

    Played for the first `MC_DEPTH` positions; further back see `_tail`."""
    model = stats.model(avg_minutes)
    n = len(booked_times)
    depth = min(n, MC_DEPTH)
    draws = _draws(model, _bucket(depth))
    due = np.array([_minutes(booked - now) for booked in booked_times])
    blocked = _minutes(away_until - now) if away_until is not None and away_until > now else -math.inf
    call0, free0 = _head(model, stats, now, booked_times[0], due[0], late_minutes, started_at, blocked, draws)
    starts = np.empty((PATHS, depth))
    starts[:, 0] = call0
    free = free0
    if depth > 1:
        steps = draws.gap[:, 1:depth].copy()
        steps[:, 0] += free0 - call0
        steps[:, 1:] += draws.busy[:, 1:depth - 1]
        climb = np.cumsum(steps, axis=1)
        chain = due[1:depth] + draws.offset[:, 1:depth] - climb
        chain[:, 0] = np.maximum(chain[:, 0], call0)
        np.maximum.accumulate(chain, axis=1, out=chain)
        starts[:, 1:] = chain + climb
        free = starts[:, -1] + draws.busy[:, depth - 1]
    quantiles = _quantiles(starts)
    if n > depth:
        tail = _tail(model, draws, due[depth:], free)
        quantiles = {level: np.concatenate((quantiles[level], tail[level])) for level in _LEVELS}
    far_early, early, expected, late = (quantiles[level] for level in _LEVELS)
    now_us = _us(now)
    starts = _seconds(now_us + expected * _MINUTE)
    earliest = np.minimum(starts, _seconds(now_us + np.minimum(early, far_early + FAR_EARLY_MINUTES) * _MINUTE))
    latest = np.maximum(starts, _seconds(now_us + late * _MINUTE))
    booked = np.array([_us(b) for b in booked_times], dtype=np.int64)
    return _estimates(now_us, booked, starts, earliest, latest)


def _tail(model: LearnedModel, draws: "_Draws", due: np.ndarray, free: np.ndarray) -> dict[float, np.ndarray]:
    """Positions past `MC_DEPTH` (hours away in a long queue): the same recursion with each patient's
    typical values (mean time taken, median gap and offset), started from each level's quantile of
    when the doctor is free after the last played position. The recursion is non-decreasing in that
    start, so it carries quantiles through exactly; the spread of the patients in between is then
    added as a normal term, sigma sqrt(k) after k more (never narrowing as time passes)."""
    busy, gap, offset = float(draws.busy.mean()), float(np.median(draws.gap)), float(np.median(draws.offset))
    sigma = float(np.std(draws.busy + draws.gap))
    m = len(due)
    climb = np.cumsum(np.full(m, busy + gap)) - busy
    reach = np.maximum.accumulate(due + offset - climb)
    spread = sigma * np.sqrt(np.arange(1, m + 1))
    ordered = np.sort(free)
    out = {}
    for level in _LEVELS:
        played = PLAYED_LEVELS[level]
        start = float(np.interp(played * (PATHS - 1), np.arange(PATHS), ordered))
        centre = climb + np.maximum(reach, start)
        out[level] = centre + (_Z[played] * spread if level != EXPECTED_LEVEL else 0.0)
    return out


def _head(model: LearnedModel, stats: DoctorStats, now: datetime, booked: datetime, due: float, late_minutes: int,
          started_at: datetime | None, blocked: float, draws: "_Draws") -> tuple[np.ndarray, np.ndarray]:
    """When the head is called, and when the doctor is free after it, in each play.

    A consultation running: it ends when its length, given how long it has run, says; declared
    lateness adds nothing (any overrun shows on the clock). Nobody in consultation: the head becomes
    callable at its booked time (the doctor was free before it, or has not begun the session) or when
    the doctor became free (it was due by then); declared lateness moves that once (it is read as the
    start being late, not as "nobody before now + late" for as long as the flag stays on); and the
    call comes this doctor's usual offset after it, given it has not come yet. While the doctor is
    idle past that moment, the head is more and more likely a no-show (those behind expect to be
    called sooner): P(no-show | no call after w minutes) = p S_wait(w) / (p S_wait(w) + (1-p) S_call(w))."""
    busy = draws.busy[:, 0]
    if started_at is not None:
        elapsed = _minutes(now - started_at)
        ends = np.exp(model.log_mu + model.log_sigma * model.running_end_z(elapsed, draws.running_level))
        free = np.maximum(ends - elapsed, 0.0)
        call = np.maximum(np.maximum(free + draws.gap[:, 0], due + draws.offset[:, 0]), blocked)
        return call, call + busy
    free_since = stats.free_since if stats.free_since is not None and stats.free_since <= now else None
    kind = call_kind(free_since, booked)
    callable_in = _minutes(free_since - now) if kind == CALL_BUSY else due
    if due < LATENESS_HORIZON_MINUTES:  # today's lateness is no news for a queue hours away (tomorrow's)
        callable_in += late_minutes
    waited = -callable_in
    calls = model.offsets(kind)
    call = np.maximum(callable_in + calls.above(waited, draws.call_level), blocked)
    if kind == CALL_FIRST or waited <= 0:
        return call, call + busy
    waits = model.offsets(NO_SHOW)
    p = model.no_show_rate
    still_absent, still_uncalled = p * (1 - waits.cdf(waited)), (1 - p) * (1 - calls.cdf(waited))
    posterior = still_absent / (still_absent + still_uncalled) if still_absent + still_uncalled > 0 else 1.0
    marked = np.maximum(callable_in + waits.above(waited, draws.call_level), blocked)
    return call, np.where(draws.absent_level < posterior, marked, call + draws.length)


@dataclass(frozen=True)
class _Draws:
    """What each play draws for each position, from the fixed random numbers and one doctor's model."""

    busy: np.ndarray          # (play, position): how long the patient takes the doctor: a consultation,
                              # or the wait for one who does not come
    gap: np.ndarray           # a due patient is called this long after the doctor is free
    offset: np.ndarray        # a patient is called this long after the booked time, the doctor being free
    length: np.ndarray        # per play, for the head: its consultation's length ...
    absent_level: np.ndarray  # ... a uniform level that says it does not come when below the chance of that
    running_level: np.ndarray  # per play: the level of the running consultation's remaining time
    call_level: np.ndarray    # per play: the level of the head's call offset


def _bucket(n: int) -> int:
    return min(MC_DEPTH, 1 << max(n - 1, 7).bit_length())


@lru_cache(maxsize=8)
def _uniforms(columns: int) -> np.ndarray:
    """Fixed random numbers, (5, PATHS, columns): per column, stratified (one in each 1/PATHS of [0, 1],
    in random order), so every position's plays cover its distribution evenly. Column j is the same
    whatever the width, so a longer queue does not change the plays of its first positions."""
    out = np.empty((5, PATHS, columns))
    strata = np.arange(PATHS)
    for column in range(columns):
        rng = np.random.default_rng([_SEED, column])
        for kind in range(5):
            out[kind, :, column] = (rng.permutation(strata) + rng.random(PATHS)) / PATHS
    return out


@lru_cache(maxsize=64)
def _draws(model: LearnedModel, columns: int) -> _Draws:
    """Cached per model (it changes only when a consultation teaches something): the common random
    numbers, read through this doctor's distributions."""
    levels = _uniforms(columns)
    length = np.exp(_log_lengths(model, levels[0]))
    wait = model.offsets(NO_SHOW).quantile(levels[2])
    gap = np.maximum(model.offsets(CALL_BUSY).quantile(levels[3]), 0.0)
    # A no-show's wait is measured from when the patient could be called; the call's gap is in c_i already.
    busy = np.where(levels[1] < model.no_show_rate, np.maximum(wait - gap, 0.0), length)
    return _Draws(busy=busy, gap=gap,
                  offset=model.offsets(CALL_IDLE).quantile(levels[4]), length=length[:, 0].copy(),
                  absent_level=levels[1][:, 0].copy(), running_level=levels[3][:, 0].copy(),
                  call_level=levels[4][:, 0].copy())


def _log_lengths(model: LearnedModel, levels: np.ndarray) -> np.ndarray:
    """Consultation lengths (log-minutes) at the given levels: with n lengths seen, n/(n +
    LOG_NORMAL_WEIGHT) of the empirical quantile and the rest of the fitted log-normal's. A log-normal
    fitted robustly (median, MAD) leaves out the rare very long case; the lengths seen keep it, in the
    proportion it came. The empirical quantile is linear between the sorted logs (the i-th at level
    (i + 1/2)/n), continues past the smallest and largest with the log-normal's slope, and is moved
    by the log-normal's shrinkage (its median onto the fitted `log_mu`), so a short history still
    leans on the configuration. Non-decreasing in the level, so the plays keep their order."""
    z = normal_quantile(levels)
    fitted = model.log_mu + model.log_sigma * z
    n = len(model.log_lengths)
    if n < 2:
        return fitted
    logs = np.array(model.log_lengths)
    places = (np.arange(n) + 0.5) / n
    ends = normal_quantile(places[[0, -1]])
    seen = np.interp(levels, places, logs)
    seen = np.where(levels < places[0], logs[0] + model.log_sigma * (z - ends[0]), seen)
    seen = np.where(levels > places[-1], logs[-1] + model.log_sigma * (z - ends[1]), seen)
    seen += model.log_mu - float(np.median(logs))
    weight = n / (n + LOG_NORMAL_WEIGHT)
    return weight * seen + (1 - weight) * fitted


def _quantiles(starts: np.ndarray) -> dict[float, np.ndarray]:
    """Per position (column), the levels' quantiles over the plays, linear between order statistics."""
    places = {level: PLAYED_LEVELS[level] * (PATHS - 1) for level in _LEVELS}
    kth = sorted({int(x) for x in places.values()} | {min(int(x) + 1, PATHS - 1) for x in places.values()})
    ordered = np.partition(starts, kth, axis=0)
    out = {}
    for level, place in places.items():
        low = int(place)
        high = min(low + 1, PATHS - 1)
        out[level] = ordered[low] + (place - low) * (ordered[high] - ordered[low])
    return out


# -- shared -------------------------------------------------------------------------------------------
_MINUTE = 60_000_000  # microseconds
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_US


def _seconds(microseconds: np.ndarray) -> np.ndarray:
    """Whole seconds, rounded down, as integer microseconds: nobody plans to the millisecond, and two
    computations of the same time (the range is floating point) then agree but for a one in a
    hundred million chance of falling on either side of a second."""
    return (np.floor(np.asarray(microseconds, dtype=float) / 1e6) * 1e6).astype(np.int64)


def _datetimes(microseconds: np.ndarray) -> list[datetime]:
    # Exact: at these magnitudes a double's error is under 0.25 µs, and fromtimestamp rounds to the µs.
    return [datetime.fromtimestamp(x / 1e6, timezone.utc) for x in microseconds.tolist()]


def _estimates(now_us: int, booked: np.ndarray, starts: np.ndarray, earliest: np.ndarray,
               latest: np.ndarray) -> list[Estimate]:
    """Estimates from times in microseconds since the epoch, with `etaMinutes` (whole minutes rounded
    up, as the API contract's rule) and `delayMinutes` (to the nearest minute) of the expected start."""
    eta = np.maximum(0, -((now_us - starts) // _MINUTE))
    delay = np.maximum(0, (starts - booked + _MINUTE // 2) // _MINUTE)
    return [Estimate(position, e, s, d, lo, hi) for position, (e, s, d, lo, hi) in enumerate(zip(
        eta.tolist(), _datetimes(starts), delay.tolist(), _datetimes(earliest), _datetimes(latest)))]


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0


def delay_minutes(booked: datetime, start: datetime) -> int:
    """`delayMinutes`: whole minutes, rounded to the nearest (half a minute up), by which the start is
    after the booked time; 0 if it is not after."""
    return max(0, (_us(start) - _us(booked) + _MINUTE // 2) // _MINUTE)


def minutes_until(now: datetime, moment: datetime) -> int:
    """Whole minutes, rounded up, from now until moment (0 if it has passed)."""
    return max(0, -((_us(now) - _us(moment)) // _MINUTE))
