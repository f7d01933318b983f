"""Misbehaving clients, in their own process so their own work never sits on the server's event loop.

`python -m bench.attackers spray --port P [--seconds S] [--concurrency C]` sends failed logins for
made-up emails from 127.0.0.1 as fast as C keep-alive connections allow, prints `ready` once all
connections are open, and at the end one JSON line `{"statuses": {code: count}}`.

`python -m bench.attackers half-open --port P --count N` opens N connections that each send half a
request header and then nothing, prints `ready <open>`, and holds them until its input closes;
it then prints `{"closedByServer": K}`, how many the server closed meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections import Counter


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length, closing = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            closing = True
    await reader.readexactly(length)
    return status, closing


async def spray(port: int, seconds: float, concurrency: int) -> Counter:
    statuses: Counter = Counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    opened = 0

    async def one_connection() -> None:
        nonlocal opened
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened += 1
        if opened == concurrency:
            print("ready", flush=True)
        try:
            while loop.time() < deadline:
                body = json.dumps({"email": f"spray-{uuid.uuid4().hex[:10]}@example.org",
                                   "password": "not-the-password"}).encode()
                writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                status, closing = await _read_answer(reader)
                statuses[status] += 1
                if closing:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return statuses


async def half_open(port: int, count: int) -> None:
    connections = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /api/doctors HTTP/1.1\r\nHost: bench\r\nX-Half: ")  # and never the rest
        connections.append((reader, writer))
    await asyncio.gather(*(w.drain() for _, w in connections))
    print(f"ready {len(connections)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    closed = sum(1 for reader, _ in connections if reader.at_eof() or reader.exception() is not None)
    for _, writer in connections:
        writer.close()
    print(json.dumps({"closedByServer": closed}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attackers")
    sub = parser.add_subparsers(dest="command", required=True)
    spraying = sub.add_parser("spray")
    spraying.add_argument("--port", type=int, required=True)
    spraying.add_argument("--seconds", type=float, default=3.0)
    spraying.add_argument("--concurrency", type=int, default=16)
    holding = sub.add_parser("half-open")
    holding.add_argument("--port", type=int, required=True)
    holding.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    if args.command == "spray":
        statuses = asyncio.run(spray(args.port, args.seconds, args.concurrency))
        print(json.dumps({"statuses": {str(k): v for k, v in sorted(statuses.items())}}), flush=True)
    else:
        asyncio.run(half_open(args.port, args.count))


if __name__ == "__main__":
    main()
