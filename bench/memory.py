"""`python -m bench.memory`: the server's resident memory with many watching sockets (issue 15, item 2).

(a) spread: 10,000 sockets watching 100 doctors' rooms (100 each; 10 waiting per doctor): RSS with
    the sockets idle, and the cost of one idle socket (RSS growth / sockets);
(b) hotline: 10,000 sockets watching one doctor with 2,000 waiting, 2,000 of them the patients who
    are waiting (each with a personal `queue:state`), 8,000 other patients: peak RSS while a change
    (one more booking at the tail) reaches every socket, a few times over, and how long after the
    booking was sent the last socket had it (the clock is shared with the child process).

The server runs in this process, on its own thread; the sockets are held and read by a child process
(`bench/watchers.py`), so only the server's memory is in the figures. RSS is sampled every 10 ms from
/proc during each change. `--legacy-write` measures the write path before issue 15 for comparison:
each socket's frame joined into its own text and written with Tornado's `write_message`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import threading
import time
from pathlib import Path

from bson import ObjectId

from bench.harness import Client, ClientProcess, ServerThread, a_while_from_now, bench_settings, bounded_gather

MIB = 1024 * 1024


def rss_bytes(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakSampler:
    """Highest RSS seen while running (a thread; sampling /proc does not need the GIL for long)."""

    def __init__(self, every: float = 0.01):
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def __enter__(self) -> "PeakSampler":
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def Watchers(port: int, sockets: list) -> ClientProcess:
    """The child process holding the sockets."""
    return ClientProcess("bench.watchers", {"port": port, "sockets": sockets}, quit_seconds=30)


def patient_token(server: ServerThread, user_id: str | None = None) -> tuple[str, str]:
    """A signed-in patient without a password hash: the bench mints the token the server would."""
    user_id = user_id or str(ObjectId())
    return server.services.tokens.issue({"_id": user_id, "role": "patient"}, str(ObjectId())), user_id


async def book_many(client: Client, server: ServerThread, doctor_id: str, count: int) -> list[tuple[str, str]]:
    """`count` patients each booked into the doctor's queue (one shared slot: queue order is booking
    order); returns their (token, user id)."""
    when = a_while_from_now(60)
    patients = [patient_token(server) for _ in range(count)]
    await bounded_gather([client.book(token, doctor_id, when) for token, _ in patients], limit=16)
    return patients


def use_legacy_write() -> None:
    """The write path before issue 15: a str per socket, written with `write_message`."""
    import live.ws as ws

    ws.write_text_pieces = lambda handler, pieces: handler.write_message(b"".join(pieces).decode())


async def measure(report: list, label: str, server: ServerThread, client: Client, sockets: list,
                  doctor_for_changes: str | None, changes: int) -> None:
    gc.collect()
    before = rss_bytes()
    watchers = Watchers(server.port, sockets)
    try:
        with PeakSampler() as opening:
            _, count, seconds = await watchers.command("open")
        await asyncio.sleep(1)
        await server.run(_collect())
        idle = rss_bytes()
        per_socket = (idle - before) / int(count)
        report.append((f"{label}: RSS with {count} idle subscribed sockets", f"{idle / MIB:.0f} MiB",
                       f"{per_socket / 1024:.1f} KiB per socket (RSS growth {((idle - before) / MIB):.0f} MiB "
                       f"/ {count}); opening took {float(seconds):.1f} s, peak {opening.peak / MIB:.0f} MiB"))
        if doctor_for_changes is None:
            return
        peaks, times = [], []
        for _ in range(changes):
            token, _ = patient_token(server)
            with PeakSampler() as change:
                started = time.monotonic()
                await client.book(token, doctor_for_changes, a_while_from_now(60))
                _, reached, _, _, last = await watchers.command("await 1 queue:state")
            if int(reached) != int(count):
                from core import metrics
                dropped = {sample.labels["reason"]: sample.value
                           for sample in metrics.ws_sockets_dropped_total.collect()[0].samples
                           if sample.name.endswith("_total") and sample.value}
                raise RuntimeError(f"only {reached} of {count} sockets had the change; sockets the server "
                                   f"dropped so far, by reason: {dropped}")
            peaks.append(change.peak)
            times.append(float(last) - started)
        peaks.sort()
        times.sort()
        report.append((f"{label}: peak RSS while one change reaches all {count} sockets",
                       f"{peaks[len(peaks) // 2] / MIB:.0f} MiB",
                       f"max {peaks[-1] / MIB:.0f} MiB over {changes} changes; the last socket had it "
                       f"{times[len(times) // 2]:.2f} s after the booking was sent (median)"))
    finally:
        watchers.close()


async def _collect() -> None:
    gc.collect()


async def run(args) -> list:
    report: list = []
    server = await ServerThread(bench_settings(ws_max_per_user=10_000)).start()
    # Keep-alive pings off, as in bench.fanout: the one reading process falls seconds behind 10,000
    # sockets of 300 KB frames (3 GB a change), answers pings late, and Tornado then closes sockets
    # on its ping timeout: on 7 Dec, under load 4-9, runs lost 6 to 1,917 of 10,000 sockets that way
    # (3,061 closed after a ping timeout in one run), which measures the client, not the server.
    server.server.http.request_callback.settings["websocket_ping_interval"] = 0
    client = Client(server.port)
    try:
        admin = await client.admin_token()
        if args.case in ("spread", "both"):
            doctors = [(await client.create_doctor(admin))["id"] for _ in range(args.doctors)]
            for doctor_id in doctors:
                await book_many(client, server, doctor_id, args.spread_waiting)
            sockets = [[patient_token(server)[0], {"doctorId": doctors[i % len(doctors)]}]
                       for i in range(args.sockets)]
            await measure(report, f"spread over {args.doctors} doctors", server, client, sockets, None, 0)
        if args.case in ("hotline", "both"):
            doctor_id = (await client.create_doctor(admin))["id"]
            waiting = await book_many(client, server, doctor_id, args.waiting)
            sockets = [[token, {"doctorId": doctor_id}] for token, _ in waiting[:args.sockets]]
            sockets += [[patient_token(server)[0], {"doctorId": doctor_id}]
                        for _ in range(args.sockets - len(sockets))]
            label = f"hotline, one doctor with {args.waiting} waiting"
            if args.legacy_write:
                label += " (`--legacy-write`: the write path before issue 15)"
            await measure(report, label, server, client, sockets,
                          doctor_id, args.changes)
    finally:
        client.close()
        await server.stop()
    report.append(("server process peak RSS over the whole run (VmHWM)", f"{rss_bytes('VmHWM') / MIB:.0f} MiB", ""))
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("spread", "hotline", "both"), default="both")
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--doctors", type=int, default=100)
    parser.add_argument("--spread-waiting", type=int, default=10)
    parser.add_argument("--waiting", type=int, default=2_000)
    parser.add_argument("--changes", type=int, default=3)
    parser.add_argument("--legacy-write", action="store_true", help="measure the write path before issue 15")
    args = parser.parse_args()
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    if args.legacy_write:
        use_legacy_write()
    import logging
    logging.disable(logging.WARNING)
    print(f"python -m bench.memory {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print("| measure | value | note |\n|---|---|---|")
    for row in asyncio.run(run(args)):
        print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
