"""`python -m bench.nodes`: several nodes on the real Redis (issue 15, item 5).

N nodes (3 by default) share one store and one Redis bus (REDIS_URL, 127.0.0.1:6379 by default),
each on its own port; they all run on one background thread and event loop of this process (so the
figures are pessimistic: real nodes have a core each). Watchers (3,000 by default) are spread evenly
over the nodes, each node's held by its own child process (`bench/fanout_clients.py`).
- **reach**: a change made over HTTP on node 0 (a booking, then its cancellation) until the last
  watcher on every node has the new `queue:state`;
- **bus rate**: node 0 publishes a burst of changes as fast as it can; the rate is the burst over the
  time until node 1 has received all of it (`RedisBus.received`), i.e. what the bus carries end to
  end before it falls behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import threading
import time
import uuid

from bson import ObjectId

from core.bus_messages import DoctorChanged
from bench.harness import ClientProcess, percentile
from bench.harness import Client, a_while_from_now, bench_settings
from bench.memory import book_many, patient_token
from server.app import Server
from infra.store import Store


class NodesThread:
    def __init__(self, count: int, redis_url: str):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self._serve, daemon=True).start()
        self.count, self.redis_url = count, redis_url

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def run(self, coroutine):
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    async def start(self) -> list[Server]:
        database = f"bench_nodes_{uuid.uuid4().hex[:8]}"

        async def start_all():
            store = Store.connect(None, database)
            nodes = []
            for _ in range(self.count):
                settings = bench_settings(redis_url=self.redis_url, mongo_db=database, ws_max_per_user=10_000)
                nodes.append(await Server(settings, store=store).start())
            return nodes

        self.nodes = await self.run(start_all())
        return self.nodes

    async def stop(self) -> None:
        async def stop_all():
            for node in self.nodes:
                await node.stop()

        await self.run(stop_all())
        self.loop.call_soon_threadsafe(self.loop.stop)


class NodeFacade:
    """What `bench.memory.book_many` / `patient_token` need of a server: its services and port."""

    def __init__(self, server: Server):
        self.services, self.port = server.services, server.port


async def run(args) -> list[tuple]:
    rows = []
    thread = NodesThread(args.nodes, args.redis)
    nodes = [NodeFacade(n) for n in await thread.start()]
    client = Client(nodes[0].port)
    try:
        admin = await client.admin_token()
        doctor_id = (await client.create_doctor(admin))["id"]
        await book_many(client, nodes[0], doctor_id, args.waiting)
        per_node = args.sockets // len(nodes)
        groups = [ClientProcess("bench.fanout_clients", {"url": f"ws://127.0.0.1:{node.port}/ws", "kind": "medpharma",
                           "sockets": [patient_token(node)[0] for _ in range(per_node)],
                           "subscribe": {"doctorId": doctor_id}}) for node in nodes]
        try:
            await asyncio.gather(*(g.command("open") for g in groups))
            booker, _ = patient_token(nodes[0])
            booked, times = [], []
            for run in range(args.runs):
                started = time.monotonic()
                if not booked:
                    booked.append((await client.book(booker, doctor_id, a_while_from_now(60)))["id"])
                else:
                    await client.ok("PATCH", f"/api/appointments/{booked.pop()}/status", {"status": "cancelled"}, booker)
                answers = await asyncio.gather(*(g.command("next") for g in groups))
                if any(int(a[1]) != per_node for a in answers):
                    raise RuntimeError(f"not every watcher had the change: {answers}")
                times.append(max(float(a[2]) for a in answers) - started)
                await asyncio.sleep(0.05)
            rows.append((f"{len(nodes)} nodes, {per_node * len(nodes)} watchers ({per_node} per node): a change on "
                         f"node 0 until the last watcher on every node has it",
                         f"{statistics.median(times) * 1000:.1f} ms",
                         f"p99 {percentile(times, 0.99) * 1000:.1f} ms", f"{args.runs} changes"))
        finally:
            for g in groups:
                g.close()

        sender, receiver = nodes[0].services.bus, nodes[1].services.bus
        doctor = {"_id": ObjectId(), "name": "Dr. Elsewhere", "avgConsultMinutes": 10}

        async def burst():
            before = receiver.received
            started = time.perf_counter()
            for _ in range(args.burst):
                await sender.publish(DoctorChanged(str(doctor["_id"]), doctor))
            sent = time.perf_counter() - started
            deadline = started + 120
            while receiver.received - before < args.burst and time.perf_counter() < deadline:
                await asyncio.sleep(0.005)
            return receiver.received - before, sent, time.perf_counter() - started

        got, sent, total = await thread.run(burst())
        rows.append((f"bus: a burst of {args.burst} changes from node 0 until node 1 has them all",
                     f"{got / total:.0f} messages/s", f"{total:.2f} s for {got}",
                     f"queued by the publisher in {sent:.2f} s; sent one at a time on one Redis connection"))
    finally:
        client.close()
        await thread.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--sockets", type=int, default=3000)
    parser.add_argument("--waiting", type=int, default=20)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    logging.disable(logging.WARNING)
    print(f"python -m bench.nodes {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print("| measure | median | spread | note |\n|---|---|---|---|")
    for row in asyncio.run(run(args)):
        print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
