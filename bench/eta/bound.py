"""The clairvoyant bound: how close any estimator could come on the simulated days.

It is told what the simulator drew for each doctor (`Habits`: the real distribution of consultation
lengths, the no-show rate, the late starts, the early calls, the changeover) and nothing of what will
happen. At each `observe` it reads what the server could see (who waits, who is in consultation
since when, when the doctor last became free, whether anyone was called today, declared lateness),
then plays the rest of the day `PATHS` times by the simulator's own rules (`bench/eta/simulate.py`,
vectorised here), cancellations included. That gives every waiting patient's start as a
distribution, which no estimator that only learns from history can know better.

It quotes, per prediction, the median of those plays as `expectedStartAt` (the best MAE any
estimator could reach here) and their 5 % and 90 % quantiles as `earliestStartAt` and
`latestStartAt`: the narrowest honest window. Targets are set against it: an estimator's MAE within
1.10x the bound's, its window no wider than 1.2x the bound's.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from bench.eta import simulate as sim
from bench.eta.score import parse_time
from bench.eta.simulate import Habits, iso

PATHS = 800
WINDOW = (0.05, 0.90)


def clairvoyant(events: list[dict], habits: dict[str, Habits], seed: int = 0) -> list[dict]:
    """Predictions in the replay's output format (the median, and the 5 %-90 % window). Every
    observation plays its futures from the same random numbers, so a quote moves only when what is
    seen moves (the direction-change column then counts the bound's turns, not sampling noise)."""
    doctors: dict[str, dict] = {}
    doctor_of: dict[str, str] = {}
    out: list[dict] = []
    for event in events:
        at, kind = event["at"], event["event"]
        if kind == "doctor":
            doctor = doctors.setdefault(event["doctorId"], {"waiting": [], "started": None, "free": None,
                                                             "called": None, "running": False, "late": 0})
            doctor["running"] = event.get("isRunningLate", doctor["running"])
            if "lateByMinutes" in event:
                doctor["late"] = event["lateByMinutes"]
        elif kind == "booked":
            doctor_of[event["appointmentId"]] = event["doctorId"]
            waiting = doctors[event["doctorId"]]["waiting"]
            waiting.append((parse_time(event["date"]), event["appointmentId"]))
            waiting.sort()
        elif kind == "status":
            doctor = doctors[doctor_of[event["appointmentId"]]]
            doctor["waiting"] = [w for w in doctor["waiting"] if w[1] != event["appointmentId"]]
            if event["status"] == "in_consultation":
                doctor["started"] = doctor["called"] = at
            elif event["status"] == "completed":
                doctor["started"], doctor["free"] = None, at
            elif event["status"] == "no_show":
                doctor["free"] = doctor["called"] = at
        elif kind == "observe":
            doctor = doctors[event["doctorId"]]
            if doctor["waiting"]:
                starts = _play_rest_of_day(np.random.default_rng(seed), habits[event["doctorId"]], at, doctor)
                for position, ((_, appointment_id), sample) in enumerate(zip(doctor["waiting"], starts)):
                    low, median, high = (at + timedelta(minutes=max(float(m), 0.0))
                                         for m in np.quantile(sample, (WINDOW[0], 0.5, WINDOW[1])))
                    out.append({"at": iso(at), "appointmentId": appointment_id, "position": position,
                                "expectedStartAt": iso(median), "earliestStartAt": iso(low),
                                "latestStartAt": iso(high)})
    return out


def _play_rest_of_day(rng, habits: Habits, now: datetime, doctor: dict) -> list[np.ndarray]:
    """Each waiting patient's start, in minutes from now, over `PATHS` plays of the rest of the day."""
    if doctor["started"] is not None:
        elapsed = _minutes(now - doctor["started"])
        free = _lengths_over(rng, habits, elapsed) - elapsed
    elif doctor["called"] is not None and doctor["called"].date() == now.date():
        free = np.full(PATHS, _minutes(doctor["free"] - now))
    else:  # the day has not started: a late start, declared or drawn (given it has not begun yet)
        opening = now.replace(hour=sim.OPENING_HOUR, minute=0, second=0, microsecond=0)
        to_opening = _minutes(opening - now)
        if doctor["running"] and doctor["late"]:
            late = np.full(PATHS, float(doctor["late"]))
        else:
            late = _late_starts(rng, habits, PATHS)
            for _ in range(50):
                early = to_opening + late <= 0
                if not early.any():
                    break
                late[early] = _late_starts(rng, habits, int(early.sum()))
            late = np.maximum(late, -to_opening)
        free = to_opening + late
    starts = []
    for position, (booked, _) in enumerate(doctor["waiting"]):
        due = _minutes(booked - now)
        early = np.where(rng.random(PATHS) < sim.EARLY_CALL_CHANCE, habits.early_call_minutes, 0.0)
        call = np.where(free >= due, free + rng.exponential(habits.changeover_mean, PATHS),
                        np.maximum(free, due - early))
        if position == 0:
            call = np.maximum(call, 0.0)  # nobody has been called yet
        starts.append(call)
        no_show = rng.random(PATHS) < habits.no_show_rate
        after = np.where(no_show, call + rng.uniform(*sim.NO_SHOW_WAIT_MINUTES, PATHS),
                         call + _lengths(rng, habits, PATHS))
        free = np.where(rng.random(PATHS) < _cancel_chance_from_now(due), free, after)
    return starts


def _cancel_chance_from_now(due_minutes: float) -> float:
    """P(cancelled later | not cancelled so far): cancellations come 30-110 minutes before the time."""
    low, high = sim.CANCEL_AHEAD_MINUTES
    still_possible = min(max((due_minutes - low) / (high - low), 0.0), 1.0)
    return sim.CANCEL_CHANCE * still_possible / (1 - sim.CANCEL_CHANCE * (1 - still_possible))


def _late_starts(rng, habits: Habits, n: int) -> np.ndarray:
    late = rng.uniform(sim.LATE_START_MIN_MINUTES, habits.late_start_max, n)
    return np.where(rng.random(n) < habits.late_start_chance, late, 0.0)


def _lengths(rng, habits: Habits, n: int) -> np.ndarray:
    roll = rng.random(n)
    length = np.exp(math.log(habits.median_minutes) + habits.log_sigma * rng.standard_normal(n))
    length = np.where(roll > 1 - sim.LONG_CASE_CHANCE, length * rng.uniform(*sim.LONG_CASE_FACTOR, n), length)
    length = np.where(roll < sim.MISTAKE_CHANCE, rng.uniform(*sim.MISTAKE_MINUTES, n), length)
    return np.minimum(length, sim.MAX_LENGTH_MINUTES)


def _lengths_over(rng, habits: Habits, elapsed: float) -> np.ndarray:
    """Lengths of a consultation that has already run `elapsed` minutes (by rejection)."""
    lengths = _lengths(rng, habits, PATHS)
    for _ in range(50):
        short = lengths <= elapsed
        if not short.any():
            break
        lengths[short] = _lengths(rng, habits, int(short.sum()))
    return np.maximum(lengths, elapsed + 0.01)


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0
