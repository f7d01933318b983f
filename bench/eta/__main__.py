"""`python -m bench.eta`: simulated clinic days replayed through the server's own queue and ETA, scored.

For each seed: simulate (bench/eta/simulate.py), replay with learning off (the plain rule) and on
(server/replay.py: the code behind `python -m server eta-replay`, run in this process so a constant
can be varied for `--frontier`), and score both plus the original `position × avg + late`
(bench/eta/score.py). With `--bound`, also the clairvoyant bound (bench/eta/bound.py): an estimator
told each doctor's true habits, at several prices of a missed turn. Prints markdown tables. Seeds 1-3
were used to tune; 11-13 were not.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging

from actors import learning
from bench.eta.score import Score, Truth, score
from bench.eta.simulate import iso, simulate_clinic
from config.settings import load_settings
from server.replay import replay_lines

TUNED_SEEDS = (1, 2, 3)
REPORTED_SEEDS = (11, 12, 13)
FRONTIER_SIGMAS = (0.0, 0.75, 1.5, 2.5)


def replay(events: list[dict], learning_on: bool) -> list[dict]:
    lines = [json.dumps({**event, "at": iso(event["at"])}) for event in events]
    out = io.StringIO()
    settings = load_settings({"ETA_LEARNING": "on" if learning_on else "off"}, env_file=None)
    asyncio.run(replay_lines(settings, lines, out))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def row(seed: int, name: str, result: Score, plain: Score) -> str:
    label = "tuned" if seed in TUNED_SEEDS else "reported"
    return (f"| {seed} | {label} | {name} | {result.mae:.2f} | {result.median:.2f} | {result.missed_turn_share:.1%} "
            f"| {result.direction_changes_per_patient:.2f} | {result.mae / plain.mae:.2f} | {result.predictions} |")


HEADER = ("| seed | set | estimator | MAE (min) | median (min) | missed turns | direction changes / patient "
          "| MAE vs plain | predictions |\n|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.eta")
    parser.add_argument("--seeds", default=",".join(map(str, TUNED_SEEDS + REPORTED_SEEDS)))
    parser.add_argument("--doctors", type=int, default=6)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--frontier", action="store_true",
                        help=f"on the tuned seeds, vary MISSED_TURN_SIGMAS over {FRONTIER_SIGMAS}")
    parser.add_argument("--bound", action="store_true",
                        help="add the clairvoyant bound's rows (needs numpy: the bench extra)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(HEADER)
    seeds = TUNED_SEEDS if args.frontier else tuple(int(s) for s in args.seeds.split(","))
    for seed in seeds:
        events, habits = simulate_clinic(seed, args.doctors, args.days)
        truth = Truth.read(events)
        plain_predictions = replay(events, False)
        plain = score(truth, plain_predictions)
        if not args.frontier:
            print(row(seed, "position × avg + late", score(truth, plain_predictions, truth.seed_estimate), plain))
        print(row(seed, "plain rule", plain, plain), flush=True)
        variants = FRONTIER_SIGMAS if args.frontier else (learning.MISSED_TURN_SIGMAS,)
        default = learning.MISSED_TURN_SIGMAS
        for sigmas in variants:
            learning.MISSED_TURN_SIGMAS = sigmas
            name = "learned" if sigmas == default else f"learned, MISSED_TURN_SIGMAS={sigmas}"
            print(row(seed, name, score(truth, replay(events, True)), plain), flush=True)
        learning.MISSED_TURN_SIGMAS = default
        if args.bound:
            from bench.eta.bound import clairvoyant  # numpy: only for this
            for name, predictions in clairvoyant(events, habits).items():
                print(row(seed, f"clairvoyant, {name}", score(truth, predictions), plain), flush=True)


if __name__ == "__main__":
    main()
