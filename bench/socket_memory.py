"""`python -m bench.socket_memory`: where an idle subscribed socket's memory goes, allocation by allocation.

`bench.memory` gives the whole cost (RSS growth per socket); this says what it is made of, to find
what can be cut. The server runs in this process on its own thread with `tracemalloc` on; a child
process (`bench/watchers.py`) opens a first batch of sockets (so one-time caches are warm), then N
more, each subscribed to one of 10 doctors' rooms. The difference between two snapshots, taken
after `gc.collect()` before and after the N sockets opened, is divided by N and printed by the
source line that allocated it (`--by lineno`, the default) or by its whole stack (`--by traceback`).

`--socketio`: the same for Socket.IO clients of our `/socket.io/` (over WebSocket, held by
`bench/fanout_clients.py`, each subscribed to the first doctor's room) instead of `/ws` sockets.

tracemalloc counts Python's allocations only (no allocator fragmentation) and its own bookkeeping
is not counted, so its total is a little under `bench.memory`'s RSS figure; it inflates RSS a lot
while on, so never read RSS from this command.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import resource
import sys
import time
import tracemalloc

from bench.harness import Client, ClientProcess, ServerThread, bench_settings
from bench.memory import Watchers, book_many, patient_token

WARM_SOCKETS = 50
DOCTORS = 10


async def _collect() -> None:
    gc.collect()


async def run(args) -> None:
    server = await ServerThread(bench_settings(ws_max_per_user=100_000)).start()
    client = Client(server.port)
    warm = watchers = None
    try:
        admin = await client.admin_token()
        doctors = [(await client.create_doctor(admin))["id"] for _ in range(DOCTORS)]
        for doctor_id in doctors:
            await book_many(client, server, doctor_id, 10)
        sockets = [[patient_token(server)[0], {"doctorId": doctors[i % DOCTORS]}]
                   for i in range(WARM_SOCKETS + args.sockets)]
        def holders(batch):
            if not args.socketio:
                return Watchers(server.port, batch)
            return ClientProcess("bench.fanout_clients", {
                "url": f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                "kind": "medpharma-socketio", "sockets": [token for token, _ in batch],
                "subscribe": {"doctorId": doctors[0]}}, quit_seconds=60)

        warm = holders(sockets[:WARM_SOCKETS])
        await warm.command("open")
        tracemalloc.start(args.depth)
        await server.run(_collect())
        before = tracemalloc.take_snapshot()
        watchers = holders(sockets[WARM_SOCKETS:])
        await watchers.command("open")
        await asyncio.sleep(1)
        await server.run(_collect())
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    finally:
        for process in (watchers, warm):
            if process is not None:
                process.close()
        client.close()
        await server.stop()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), args.by)
    n = args.sockets
    total = sum(stat.size_diff for stat in stats)
    print(f"{total / n:.0f} bytes ({total / n / 1024:.1f} KiB) allocated per idle subscribed "
          f"{'Socket.IO connection' if args.socketio else 'socket'}, "
          f"{sum(stat.count_diff for stat in stats) / n:.0f} blocks ({n} sockets)\n")
    print("| bytes per socket | blocks per socket | allocated at |\n|---|---|---|")
    for stat in stats[:args.top]:
        if args.by == "lineno":
            where = str(stat.traceback[0])
        else:
            where = " <- ".join(f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}"
                                for frame in reversed(stat.traceback))
        print(f"| {stat.size_diff / n:.0f} | {stat.count_diff / n:.2f} | {where} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--by", choices=("lineno", "traceback"), default="lineno")
    parser.add_argument("--depth", type=int, default=12, help="frames kept per allocation (--by traceback)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--socketio", action="store_true", help="Socket.IO clients of /socket.io/ instead of /ws")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    logging.disable(logging.WARNING)
    print(f"python -m bench.socket_memory {' '.join(sys.argv[1:])}  "
          f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
