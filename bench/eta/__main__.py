"""`python -m bench.eta`: simulated clinic days through `python -m server eta-replay`, scored.

For each seed: simulate (bench/eta/simulate.py), replay with `ETA_LEARNING=off` (the plain rule) and
on (learned), score both and the seed's `position × avg + late` (bench/eta/score.py). Prints a
markdown table. Seeds 1-3 were used to tune the estimator's constants; 11-13 were not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.eta.score import Truth, read_jsonl, score
from bench.eta.simulate import simulate, write_jsonl

TUNED_SEEDS = (1, 2, 3)
REPORTED_SEEDS = (11, 12, 13)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def replay(events_path: Path, learning: bool, out_path: Path) -> None:
    env = {**os.environ, "ETA_LEARNING": "on" if learning else "off", "LOG_LEVEL": "ERROR"}
    with open(out_path, "w", encoding="utf-8") as out:
        subprocess.run([sys.executable, "-m", "server", "eta-replay", str(events_path)], stdout=out,
                       check=True, env=env, cwd=PROJECT_ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.eta")
    parser.add_argument("--seeds", default=",".join(map(str, TUNED_SEEDS + REPORTED_SEEDS)))
    parser.add_argument("--doctors", type=int, default=6)
    parser.add_argument("--days", type=int, default=10)
    args = parser.parse_args()
    print("| seed | set | estimator | MAE (min) | median (min) | missed turns | direction changes / patient "
          "| MAE vs plain | predictions |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            events = simulate(seed, args.doctors, args.days)
            events_path = Path(tmp) / f"seed{seed}.jsonl"
            write_jsonl(events, events_path)
            truth = Truth.read(events)
            results = {}
            for learning in (False, True):
                out_path = Path(tmp) / f"seed{seed}-{learning}.out"
                replay(events_path, learning, out_path)
                predictions = read_jsonl(out_path)
                results["learned" if learning else "plain rule"] = score(truth, predictions)
                if not learning:
                    results["position × avg + late"] = score(truth, predictions, truth.seed_estimate)
            plain = results["plain rule"].mae
            label = "tuned" if seed in TUNED_SEEDS else "reported"
            for name in ("position × avg + late", "plain rule", "learned"):
                r = results[name]
                print(f"| {seed} | {label} | {name} | {r.mae:.2f} | {r.median:.2f} | {r.missed_turn_share:.1%} "
                      f"| {r.direction_changes_per_patient:.2f} | {r.mae / plain:.2f} | {r.predictions} |", flush=True)


if __name__ == "__main__":
    main()
