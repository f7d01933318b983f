"""`python -m bench.fanout`: one change reaching N watching sockets, beside the bare Tornado floor and
python-socketio, measured the one way the project trusts (issues 15, 27 and 29).

**The servers**, each in a process of its own (as in production: no server competes with another's
threads for the GIL, and each process's CPU time is its own server's):
- **medpharma** (`bench/fanout_ours.py`): this server, embedded store, a doctor with 20 waiting and N
  patients (none in the queue) watching the doctor's room over `/ws`; the change is a real REST
  request by another patient: a booking (`POST /api/appointments`), then its cancellation (`PATCH
  …/status`), alternately; it reaches every socket as a `queue:state`;
- **medpharma socket.io**: the same server, N Socket.IO clients over WebSocket on `/socket.io/` watching
  a second doctor with as many waiting (issue 27); the same change on that doctor;
- **medpharma polling**: the same over Engine.IO's long-polling transport, a third doctor (up to
  `--polling-max` clients: a poll is an HTTP request per client per change);
- **bare tornado**, the floor (`bench/fanout_peers.py`): a WebSocket handler keeping its connections in a
  set; a bare HTTP POST writes one pre-encoded frame of our frame's size to each with `write_message`;
- **python-socketio** (`bench/fanout_peers.py`): its own AsyncServer on Tornado, every socket in one room;
  a bare POST emits the same data to the room (`sio.emit`).
The sockets are held by one child process per server (`bench/fanout_clients.py`), all open at once;
they read with bare asyncio protocols, a few µs per frame, so that what is measured is the server.

**The method** (issue 29): for each N, `--runs` runs (3 by default), one after the other on the same
open sockets; in each run the servers **take turns**, change by change (medpharma, floor,
python-socketio, medpharma socket.io, …), so a busier or quieter moment of the shared machine falls on
all alike. For each change:
- **end to end**: from just before the HTTP request that causes the change is sent until the last of
  the N sockets has the frame (CLOCK_MONOTONIC, shared by all the processes);
- **from the change**: from when the server has the change to send (ours: the doctor's queue hands its
  new `queue:state` to the room; theirs: the POST handler starts its broadcast) to the same end;
- **server CPU per change**: the server process's CPU time (user + system) from just before the request
  until the frame has reached everyone and a further 20 ms have passed (write completions).
Each run gives a median per server and measure; the table reports the **median of the runs' medians
with their spread** (lowest and highest run median), and the ratios of those medians. Each run
records the load average at its start; the header the date, commit, CPU model, Python and libraries.

Keep-alive pings are off in all the servers while measuring (ours every 20 s, socketio every 25 s, the
bare server none): a round of thousands of pings is no measured change. So is our queues' clock tick
(every 10 s by default, here once an hour): as the clock moves ETAs it sends the room a new
`queue:state`, a fan-out no request caused. Every change meets the same store: the bench removes each
cancelled booking's document again, between changes (the embedded store scans its collection, so
each change would otherwise cost more than the one before; MongoDB finds by index).

The number of changes per run (`changes_for`) keeps each N's runs to about the same time: 101 at 100
sockets, 21 at 1,000, 15 at 5,000. The whole default command takes about 10 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from bench.harness import ClientProcess, a_while_from_now, iso, load, machine_line, percentile

SETTLE_SECONDS = 0.02  # after the last socket has the frame: the servers' write completions, before CPU is read
PAUSE_SECONDS = 0.02  # between changes
POLLING_MAX = 1000
SERVERS = ("medpharma", "bare tornado", "python-socketio", "medpharma socket.io", "medpharma polling")
FLOOR, RIVAL = "bare tornado", "python-socketio"


def changes_for(sockets: int) -> int:
    """Changes per server in one run at N sockets (see the module docstring)."""
    return max(15, min(101, 20_000 // sockets + 1))


@dataclass
class Server:
    name: str
    clients: dict  # the client process's setup, less the sockets
    trigger: Callable[[], Awaitable[None]]
    stamp: Callable[[], Awaitable[tuple[float, float]]]  # (when the change was had, process CPU seconds)
    tidy: Callable[[], Awaitable[None]] | None = None
    tokens: bool = False  # its clients sign in (ours)


@dataclass
class Series:
    end_to_end: list = field(default_factory=list)
    from_change: list = field(default_factory=list)
    cpu: list = field(default_factory=list)
    size: int = 0


async def run(args) -> list[dict]:
    http = AsyncHTTPClient(force_instance=True, max_clients=8)
    processes: list[ClientProcess] = []
    results: list[dict] = []
    try:
        ours = ClientProcess("bench.fanout_ours", {"waiting": args.waiting, "doctors": 3, "uvloop": args.uvloop})
        processes.append(ours)
        setup = json.loads(await ours.answer())
        profiler = None
        port, doctors, booker = setup["port"], setup["doctors"], setup["booker"]
        peers = {}
        for kind, name in (("bare", FLOOR), ("socketio", RIVAL)):
            peer = ClientProcess("bench.fanout_peers", {"kind": kind, "frame": setup["frame"], "data": setup["data"],
                                                          "tune_gc": not args.default_gc_for_others,
                                                          "uvloop": args.uvloop})
            processes.append(peer)
            peers[name] = (peer, int((await peer.answer()).split()[1]))

        async def fetch(url: str, method: str, body: dict | None = None, token: str | None = None) -> dict:
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            response = await http.fetch(HTTPRequest(url, method=method, headers=headers, request_timeout=60,
                                                    body=json.dumps(body).encode() if body is not None else b""))
            return json.loads(response.body)

        def ours_of(name: str, doctor: str, path: str, kind: str) -> Server:
            booked: list[str] = []
            cancelled: list[str] = []

            async def trigger() -> None:
                if not booked:
                    answer = await fetch(f"http://127.0.0.1:{port}/api/appointments", "POST", {
                        "patientName": "Pat Bench", "patientEmail": "pat@bench.test", "patientPhone": "+1 555 0199",
                        "doctor": doctor, "date": iso(a_while_from_now(60))}, booker)
                    booked.append(answer["id"])
                else:
                    cancelled.append(booked.pop())
                    await fetch(f"http://127.0.0.1:{port}/api/appointments/{cancelled[-1]}/status", "PATCH",
                                {"status": "cancelled"}, booker)

            async def stamp() -> tuple[float, float]:
                _, at, cpu = await ours.command(f"stamp {doctor}")
                return float(at), float(cpu)

            async def tidy() -> None:
                if cancelled:
                    await ours.command("tidy " + " ".join(cancelled))
                    cancelled.clear()

            return Server(name, {"url": f"ws://127.0.0.1:{port}{path}", "kind": kind,
                                 "subscribe": {"doctorId": doctor}}, trigger, stamp, tidy, tokens=True)

        def peer_of(name: str, path: str, kind: str) -> Server:
            process, peer_port = peers[name]

            async def trigger() -> None:
                await http.fetch(f"http://127.0.0.1:{peer_port}/broadcast", method="POST", body=b"")

            async def stamp() -> tuple[float, float]:
                _, at, cpu = await process.command("stamp")
                return float(at), float(cpu)

            return Server(name, {"url": f"ws://127.0.0.1:{peer_port}{path}", "kind": kind}, trigger, stamp)

        servers = {
            "medpharma": ours_of("medpharma", doctors[0], "/ws", "medpharma"),
            FLOOR: peer_of(FLOOR, "/ws", "bare"),
            RIVAL: peer_of(RIVAL, "/socket.io/?EIO=4&transport=websocket", "socketio"),
            "medpharma socket.io": ours_of("medpharma socket.io", doctors[1],
                                           "/socket.io/?EIO=4&transport=websocket", "medpharma-socketio"),
            "medpharma polling": ours_of("medpharma polling", doctors[2], "/socket.io/", "medpharma-polling"),
        }
        for count in args.sockets:
            names = [n for n in SERVERS if n in args.servers and (n != "medpharma polling" or count <= args.polling_max)]
            changes = args.changes or changes_for(count)
            holders: dict[str, ClientProcess] = {}
            try:
                for name in names:
                    server = servers[name]
                    tokens = json.loads(await ours.ask(f"tokens {count}")) if server.tokens else [None] * count
                    holders[name] = ClientProcess("bench.fanout_clients", {**server.clients, "sockets": tokens},
                                                  quit_seconds=60)
                    await holders[name].command("open")
                if args.profile and profiler is None:  # the first N's runs only, not the sockets' opening
                    profiler = start_profiler(ours.process.pid, args.profile)
                    await asyncio.sleep(1)  # py-spy attaches
                for number in range(1, args.runs + 1):
                    started_at, load_at = time.strftime("%H:%M:%S", time.gmtime()), load()
                    series = await turns(holders, servers, names, count, changes)
                    results.append({"n": count, "run": number, "at": started_at, "load": load_at,
                                    "changes": changes, "series": series})
                    print_run(results[-1], names)
                if profiler is not None and profiler.poll() is None:
                    profiler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
                    profiler.wait(60)
            finally:
                for process in holders.values():
                    process.close()
    finally:
        http.close()
        for process in processes:
            process.close()
    if profiler is not None:
        print_profile(args.profile)
    return results


def start_profiler(pid: int, path: str) -> subprocess.Popen:
    """py-spy, a sampling profiler outside the process (its cost is not in the server's timing), on
    our server's process while the first N's runs last."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", "1000", "--format", "raw",
                             "--output", path, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_profile(path: str, top: int = 25) -> None:
    """The profile's top costs, from py-spy's collapsed stacks: per function, the share of the
    server's samples spent in it (self) and under it (inclusive)."""
    own, under, total = Counter(), Counter(), 0
    with open(path) as collapsed:
        for line in collapsed:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = [frame.rsplit(":", 1)[0] for frame in stack.split(";")]
            if not any("bench/harness.py" in frame and "_serve" in frame for frame in frames):
                continue  # not the server's thread (the command reader)
            if frames[-1].startswith(("EpollSelector.select", "select (")):
                continue  # waiting for the next event: idle
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                under[frame] += int(count)
    print(f"\nProfile of our server's thread while measuring (py-spy, {total} busy samples at 1 kHz), top {top}:\n")
    print("| self | function |\n|---|---|")
    for frame, count in own.most_common(top):
        print(f"| {count / total:.1%} | `{frame}` |")
    print("\n| inclusive | function |\n|---|---|")
    for frame, count in under.most_common(top * 2)[:top * 2]:
        print(f"| {count / total:.1%} | `{frame}` |")


async def turns(holders: dict, servers: dict, names: list, count: int, changes: int) -> dict[str, Series]:
    series = {name: Series() for name in names}
    for _ in range(changes):
        for name in names:
            server = servers[name]
            _, cpu_before = await server.stamp()
            started = time.monotonic()
            await server.trigger()
            _, reached, last, size = await holders[name].command("next")
            if int(reached) != count:
                raise RuntimeError(f"{name}: only {reached} of {count} sockets had the frame")
            await asyncio.sleep(SETTLE_SECONDS)
            had_it, cpu_after = await server.stamp()
            if had_it < started:
                raise RuntimeError(f"{name}: no server-side stamp for the change")
            one = series[name]
            one.end_to_end.append(float(last) - started)
            one.from_change.append(float(last) - had_it)
            one.cpu.append(cpu_after - cpu_before)
            one.size = int(size)
            if server.tidy is not None:
                await server.tidy()
            await asyncio.sleep(PAUSE_SECONDS)
    return series


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def print_run(result: dict, names: list) -> None:
    for name in names:
        one = result["series"][name]
        print(f"| {result['run']} ({result['at']}, load {result['load']}) | {result['n']:,} | {name} | "
              f"{ms(statistics.median(one.end_to_end))} / {ms(percentile(one.end_to_end, 0.99))} | "
              f"{ms(statistics.median(one.from_change))} | {ms(statistics.median(one.cpu))} | "
              f"{result['changes']} changes, frame {one.size} bytes |", flush=True)


def summary(results: list[dict]) -> list[str]:
    """The current table: per N and server, the median of the runs' medians and their spread."""
    lines = ["| N | server | end to end p50, ms: median of runs (spread) | / floor | / python-socketio | "
             "from the change p50, ms (spread) | server CPU per change, ms (spread) | CPU / python-socketio's |",
             "|---|---|---|---|---|---|---|---|"]
    for count in sorted({r["n"] for r in results}):
        runs = [r for r in results if r["n"] == count]
        names = [n for n in SERVERS if n in runs[0]["series"]]

        def medians(name: str, measure: str) -> list[float]:
            return [statistics.median(getattr(r["series"][name], measure)) for r in runs]

        def cell(values: list[float]) -> str:
            return f"{ms(statistics.median(values))} ({ms(min(values))}-{ms(max(values))})"

        def ratio(name: str, other: str, measure: str) -> str:
            if other not in names:
                return ""
            return f"{statistics.median(medians(name, measure)) / statistics.median(medians(other, measure)):.2f}x"

        for name in names:
            lines.append(f"| {count:,} | {name} | {cell(medians(name, 'end_to_end'))} | "
                         f"{ratio(name, FLOOR, 'end_to_end')} | {ratio(name, RIVAL, 'end_to_end')} | "
                         f"{cell(medians(name, 'from_change'))} | {cell(medians(name, 'cpu'))} | "
                         f"{ratio(name, RIVAL, 'cpu')} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per N (medians of their medians)")
    parser.add_argument("--changes", type=int, default=None,
                        help="changes per server in each run (default: 101 at 100 sockets, 21 at 1,000, 15 at 5,000)")
    parser.add_argument("--waiting", type=int, default=20)
    parser.add_argument("--polling-max", type=int, default=POLLING_MAX,
                        help="long-polling clients are measured up to this N")
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS, metavar="SERVER")
    parser.add_argument("--default-gc-for-others", action="store_true",
                        help="the floor and python-socketio keep CPython's collector threshold (ours raises it)")
    parser.add_argument("--profile", metavar="FILE", help="profile our server with py-spy into FILE (collapsed "
                        "stacks) and print its top costs")
    parser.add_argument("--uvloop", action="store_true", help="every server's event loop is uvloop's")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"python -m bench.fanout {' '.join(sys.argv[1:])}")
    print(machine_line(), flush=True)
    print("\n| run (start UTC, load) | N | server | end to end p50 / p99 ms | from the change p50 ms | "
          "server CPU per change p50 ms | note |\n|---|---|---|---|---|---|---|", flush=True)
    results = asyncio.run(run(args))
    print(f"\nInterleaved medians ({args.runs} runs; ended {time.strftime('%H:%M UTC', time.gmtime())}, "
          f"load average {load()}):\n")
    print("\n".join(summary(results)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
