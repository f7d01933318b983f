"""This server for `bench/fanout.py`, in a process of its own, as the floor and python-socketio are
(`bench/fanout_peers.py`).

`python -m bench.fanout_ours` reads one JSON line `{"waiting": W, "doctors": D, "uvloop": bool}`, starts
the server (embedded store, keep-alive pings and the queues' clock tick off, see `bench/fanout.py`),
creates D doctors with W waiting each and prints one JSON line `{"port", "doctors": [...], "booker":
token, "frame": the /ws frame of a doctor's queue:state, "data": its data}`. Then one command a line:
- `tokens <n>`: prints a JSON list of n signed-in patients' tokens (minted as the server would);
- `stamp <doctor id>`: prints `stamp <CLOCK_MONOTONIC when that doctor's queue last handed a new
  queue:state to its room, or 0> <this process's CPU seconds so far>`;
- `tidy <appointment id>...`: removes those (cancelled) appointments' documents, prints `ok`;
- `gc freeze` / `gc unfreeze`: freezes the heap after the sockets are open (see `bench/fanout.py`);
- `quit` (or end of input): stops.

The server runs on its own thread (`bench.harness.ServerThread`); the commands are read on the main
thread, which waits on its pipe between them, so the process's CPU time is the server's.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys
import time

from bson import ObjectId

from bench.harness import Client, ServerThread, bench_settings
from bench.memory import book_many, patient_token
from bench.watchers import raise_fd_limit
from live.socketio import endpoint_of

PERIODIC_OFF_SECONDS = 3600


def stamp_state_publishes(hub, stamped: dict) -> None:
    """Stamps the moment a doctor's queue hands a new `queue:state` to its room (bench only: wraps
    this server's hub instance)."""
    publish = hub.publish

    def stamped_publish(room, message, key=None):
        if key is not None and key.startswith("queue:state:"):
            stamped[room] = time.monotonic()
        return publish(room, message, key)

    hub.publish = stamped_publish


async def main_async(setup: dict) -> None:
    ours = await ServerThread(bench_settings(ws_max_per_user=100_000), tick_seconds=PERIODIC_OFF_SECONDS).start()
    ours.server.http.request_callback.settings["websocket_ping_interval"] = 0
    engine = endpoint_of(ours.server.http.request_callback).sio.eio
    engine.ping_interval = engine.ping_timeout = PERIODIC_OFF_SECONDS
    client = Client(ours.port)
    stamped: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    readline = lambda: loop.run_in_executor(None, sys.stdin.readline)  # noqa: E731
    try:
        admin = await client.admin_token()
        doctors = []
        for _ in range(setup["doctors"]):
            doctors.append((await client.create_doctor(admin))["id"])
            await book_many(client, ours, doctors[-1], setup["waiting"])
        stranger, _ = patient_token(ours)
        data = await client.ok("GET", f"/api/queue/doctor/{doctors[0]}", token=stranger)
        frame = json.dumps({"event": "queue:state", "data": data}, separators=(",", ":"))
        stamp_state_publishes(ours.services.hub, stamped)
        print(json.dumps({"port": ours.port, "doctors": doctors, "booker": patient_token(ours)[0],
                          "frame": frame, "data": data}), flush=True)
        while True:
            command = (await readline()).split()
            if not command or command[0] == "quit":
                return
            if command[0] == "tokens":
                print(json.dumps([patient_token(ours)[0] for _ in range(int(command[1]))]), flush=True)
            elif command[0] == "stamp":
                at = await ours.run(_read(stamped, f"doctor:{command[1]}"))
                print(f"stamp {at:.6f} {time.process_time():.6f}", flush=True)
            elif command[0] == "tidy":
                ids = [ObjectId(i) for i in command[1:]]

                async def remove():
                    await ours.services.store.appointments.delete_many({"_id": {"$in": ids}})
                await ours.run(remove())
                print("ok", flush=True)
            elif command[0] == "gc":
                gc.collect()
                gc.freeze() if command[1] == "freeze" else gc.unfreeze()
                print("ok", flush=True)
    finally:
        client.close()
        await ours.stop()


async def _read(stamped: dict, room: str) -> float:
    return stamped.get(room, 0.0)  # on the server's loop: a publish still running is not half-seen


def main() -> int:
    raise_fd_limit()
    logging.disable(logging.CRITICAL)
    setup = json.loads(sys.stdin.readline())
    if setup.get("uvloop"):
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main_async(setup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
