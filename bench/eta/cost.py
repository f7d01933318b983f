"""`python -m bench.eta --cost`: what one recompute of a queue's estimates costs, at 50 and 2,000 waiting.

The estimator runs on the event loop for every change of a queue and every 10 s tick of each watched
queue, so its cost per recompute is what limits how many busy queues one node carries. Measured for
the plain rule with its default range (no history, or ETA_LEARNING=off) and for the learned range
(plays of the rest of the day), with a consultation running and a queue booked every few minutes.
Each figure is the median of 7 timings of 20 recomputes (each at a later `now`, so nothing is reused
but the per-doctor draws, as in the server).
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import datetime, timedelta, timezone

from actors.eta import estimate_queue
from actors.learning import CALL_BUSY, CALL_IDLE, CONSULTATION, NO_SHOW, DoctorStats, LearningEvent, apply_all

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def learned_doctor() -> DoctorStats:
    rng = random.Random(7)
    events = [LearningEvent(f"c{i}:{CONSULTATION}", CONSULTATION, 12 * rng.lognormvariate(0, 0.45),
                            free_at=NOW - timedelta(minutes=300 - i)) for i in range(200)]
    events += [LearningEvent(f"b{i}:call", CALL_BUSY, rng.expovariate(1.0)) for i in range(100)]
    events += [LearningEvent(f"i{i}:call", CALL_IDLE, rng.choice([-5.0, 0.0])) for i in range(100)]
    events += [LearningEvent(f"n{i}:{NO_SHOW}", NO_SHOW, rng.uniform(1, 4)) for i in range(15)]
    return apply_all(DoctorStats(), events)


def timing(waiting: int, stats: DoctorStats | None) -> float:
    booked = [NOW + timedelta(minutes=3 * i) for i in range(waiting)]
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        for tick in range(20):
            estimate_queue(booked, now=NOW + timedelta(seconds=10 * tick), avg_minutes=12, late_minutes=0,
                           consultation_started_at=NOW - timedelta(minutes=4), stats=stats)
        runs.append((time.perf_counter() - start) / 20)
    return statistics.median(runs) * 1000


def main() -> None:
    stats = learned_doctor()
    print("| waiting | plain rule + default range (ms) | learned range (ms) |\n|---|---|---|")
    for waiting in (50, 2000):
        print(f"| {waiting} | {timing(waiting, None):.2f} | {timing(waiting, stats):.2f} |", flush=True)


if __name__ == "__main__":
    main()
