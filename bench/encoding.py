"""`python -m bench.encoding`: the cost of building `queue:state` frames on a hotline (issue 15, items 2, 6).

One snapshot of a doctor with 2,000 waiting (the hotline), in-process, no sockets:
- one change's frames for 2,000 patients who are in the list and 8,000 who are not, rendered as
  before issue 15 (each personal viewer's payload rendered and serialized alone; one shared frame for
  the rest) and as now (the public list encoded once, personal frames spliced from views of it);
- the one shared encoding with the standard library's `json` and with `orjson` (kept only if it
  wins and gives the same bytes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

from actors.snapshot import DoctorSettings, QueueEntry, QueueSnapshot
from actors.state_frames import state_pieces
from core.days import UTC_CALENDAR

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


def hotline(waiting: int) -> QueueSnapshot:
    entries = tuple(QueueEntry(id=f"{i:024x}", patient=f"{i + 10**6:024x}", patient_name=f"Patient {i}",
                               date=NOW + timedelta(hours=1), created_at=NOW + timedelta(milliseconds=i),
                               status="pending", reason="", started_at=None, version=0) for i in range(waiting))
    return QueueSnapshot.compute("d" * 24, DoctorSettings(10, False, 0), None, entries, NOW, UTC_CALENDAR)


def legacy_frames(snapshot: QueueSnapshot, viewers: list[str]) -> int:
    shared, size = None, 0
    for viewer in viewers:
        variant, data = snapshot.state_variant(False, viewer)
        if variant is not None and shared is not None:
            frame = shared
        else:
            frame = json.dumps({"event": "queue:state", "data": data}, separators=(",", ":")).encode()
            if variant is not None:
                shared = frame
        size += len(frame)
    return size


def spliced_frames(snapshot: QueueSnapshot, viewers: list[str]) -> int:
    return sum(sum(len(p) for p in state_pieces(snapshot, False, viewer)) for viewer in viewers)


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=2000)
    parser.add_argument("--others", type=int, default=8000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    import orjson

    viewers = [f"{i + 10**6:024x}" for i in range(args.waiting)] + [f"{i:024x}" for i in range(10**7, 10**7 + args.others)]
    legacy, spliced, std, fast = [], [], [], []
    for _ in range(args.runs):
        seconds, legacy_size = timed(legacy_frames, hotline(args.waiting), viewers)
        legacy.append(seconds)
        seconds, spliced_size = timed(spliced_frames, hotline(args.waiting), viewers)
        spliced.append(seconds)
        assert spliced_size == legacy_size
        payload = {"event": "queue:state", "data": hotline(args.waiting).state_for(False, None)}
        seconds, standard = timed(lambda: json.dumps(payload, separators=(",", ":")).encode())
        std.append(seconds)
        seconds, quick = timed(orjson.dumps, payload)
        fast.append(seconds)
        assert quick == standard  # ASCII only: the same bytes
    ms = lambda values: f"{statistics.median(values) * 1000:.1f} ms"  # noqa: E731
    print(f"python -m bench.encoding {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print("| measure | median | note |\n|---|---|---|")
    print(f"| frames of one change for {args.waiting} patients in the list + {args.others} others, "
          f"rendered per viewer (before) | {ms(legacy)} | {legacy_size / 2**20:.0f} MiB of frames built, "
          f"{args.runs} runs |")
    print(f"| the same frames spliced from one encoding (now) | {ms(spliced)} | "
          f"{statistics.median(legacy) / statistics.median(spliced):.0f}x faster; the same bytes "
          f"({spliced_size / 2**20:.0f} MiB on the wire) |")
    print(f"| one public frame of {args.waiting} entries, json.dumps | {ms(std)} | {len(standard)} bytes |")
    print(f"| the same with orjson.dumps | {ms(fast)} | {statistics.median(std) / statistics.median(fast):.1f}x "
          f"faster, identical bytes; paid once per change now, so not adopted |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
