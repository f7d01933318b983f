"""Holds idle, subscribed WebSockets from a separate process, so the server's process measures only
its own memory per socket.

Reads one JSON line `{"port": P, "clients": [[token, appointmentId], ...]}` on stdin, then commands:
`open N` opens the next N sockets, subscribes each to its appointment, waits for its first
`queue:update` and prints `ready <total open>`; `quit` (or end of input) closes everything.
"""

from __future__ import annotations

import asyncio
import json
import sys

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

OPEN_TIMEOUT_SECONDS = 30


async def open_subscribed(port: int, token: str, appointment_id: str):
    connection = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{port}/ws",
                                                     headers={"Authorization": f"Bearer {token}"}))
    await connection.write_message(json.dumps({"type": "queue:subscribe", "appointmentId": appointment_id}))
    while True:
        message = await connection.read_message()
        if message is None:
            raise RuntimeError("socket closed before its first queue:update")
        if json.loads(message).get("event") == "queue:update":
            return connection


async def main() -> int:
    loop = asyncio.get_running_loop()
    readline = lambda: loop.run_in_executor(None, sys.stdin.readline)  # noqa: E731
    setup = json.loads(await readline())
    port, clients = setup["port"], setup["clients"]
    opened = []
    try:
        while True:
            command = (await readline()).strip()
            if not command or command == "quit":
                return 0
            count = int(command.split()[1])
            batch = clients[len(opened):len(opened) + count]
            opened += await asyncio.wait_for(
                asyncio.gather(*(open_subscribed(port, token, appointment) for token, appointment in batch)),
                OPEN_TIMEOUT_SECONDS)
            print(f"ready {len(opened)}", flush=True)
    finally:
        for connection in opened:
            connection.close()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
