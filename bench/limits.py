"""`python -m bench.limits`: an honest client's latency while others misbehave, against its idle median.

The server runs in-process on its own thread (`bench.harness.ServerThread`) at bcrypt cost 12; the
misbehaving clients run in other processes (`bench.attackers`), so their own work never sits on the
server's loop or the honest client's. The honest client is a patient reading its queue position
(`GET /api/queue/appointment/{id}/position`, a new connection per request, as Tornado's client does)
and, separately, an admin signing in from another loopback address (127.0.0.2), measured:

1. idle;
2. during a login spray: failed logins for made-up emails from 127.0.0.1, 48 connections as fast as
   the server answers (it soon answers them `429`/`503` without hashing);
3. while 1,000 connections sit half-open (half a request header, then nothing).

Prints a markdown table of medians and their ratio to the idle median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from bench.harness import ADMIN_EMAIL, ADMIN_PASSWORD, Client, ServerThread, a_while_from_now, bench_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OTHER_ADDRESS = "127.0.0.2"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


class Honest:
    def __init__(self, client: Client, token: str, appointment_id: str):
        self.client = client
        self.token = token
        self.appointment_id = appointment_id
        self.http = AsyncHTTPClient(force_instance=True)

    async def read(self) -> float:
        started = time.perf_counter()
        status, _ = await self.client.call("GET", f"/api/queue/appointment/{self.appointment_id}/position",
                                           token=self.token)
        if status != 200:
            raise RuntimeError(f"an honest read answered {status}")
        return time.perf_counter() - started

    async def sign_in(self) -> float:
        started = time.perf_counter()
        response = await self.http.fetch(HTTPRequest(
            f"{self.client.base}/api/auth/login", method="POST", network_interface=OTHER_ADDRESS,
            body=json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
            headers={"Content-Type": "application/json"}, request_timeout=60), raise_error=False)
        if response.code != 200:
            raise RuntimeError(f"an honest sign-in answered {response.code}")
        return time.perf_counter() - started

    async def sample(self, reads: int, sign_ins: int) -> tuple[list[float], list[float]]:
        read_times = [await self.read() for _ in range(reads)]
        sign_in_times = [await self.sign_in() for _ in range(sign_ins)]
        return read_times, sign_in_times


async def attacker(*args: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.attackers", *args, cwd=PROJECT_ROOT,
                                                   stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    ready = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
    if not ready.startswith("ready"):
        raise RuntimeError(f"attacker did not start: {ready!r}")
    return process


async def run(reads: int, sign_ins: int) -> list[tuple[str, list[float], list[float], str]]:
    server = await ServerThread(bench_settings(bcrypt_rounds=12)).start()
    client = Client(server.port)
    try:
        admin = await client.admin_token()
        doctor = await client.create_doctor(admin)
        token = await client.register(0)
        appointment = await client.book(token, doctor["id"], a_while_from_now(30))
        honest = Honest(client, token, appointment["id"])
        await honest.sample(20, 1)  # warm-up: the queue is loaded, the connections are made

        rows = []
        read_times, sign_in_times = await honest.sample(reads, sign_ins)
        rows.append(("idle", read_times, sign_in_times, ""))

        spray = await attacker("spray", "--port", str(server.port), "--seconds", "600", "--concurrency", "48")
        try:
            await asyncio.sleep(0.5)
            read_times, sign_in_times = await honest.sample(reads, sign_ins)
        finally:
            spray.kill()
            await spray.wait()
        rows.append(("during a login spray (48 connections, 127.0.0.1)", read_times, sign_in_times, ""))
        await asyncio.sleep(1)

        holder = await attacker("half-open", "--port", str(server.port), "--count", "1000")
        try:
            read_times, sign_in_times = await honest.sample(reads, sign_ins)
            holder.stdin.close()
            report = json.loads((await asyncio.wait_for(holder.stdout.readline(), 30)).decode())
        finally:
            if holder.returncode is None:
                holder.kill()
            await holder.wait()
        rows.append(("while 1,000 connections sit half-open", read_times, sign_in_times,
                     f"{report['closedByServer']} of them closed by the header timeout meanwhile"))
        return rows
    finally:
        client.close()
        await server.stop()


def markdown(rows) -> str:
    idle_read, idle_sign_in = statistics.median(rows[0][1]), statistics.median(rows[0][2])
    lines = ["| condition | position read, median | vs idle | sign-in (cost 12), median | vs idle | note |",
             "|---|---|---|---|---|---|"]
    for name, read_times, sign_in_times, note in rows:
        read, sign_in = statistics.median(read_times), statistics.median(sign_in_times)
        lines.append(f"| {name} | {ms(read)} | {read / idle_read:.2f}x | {ms(sign_in)} | {sign_in / idle_sign_in:.2f}x "
                     f"| {len(read_times)} reads, {len(sign_in_times)} sign-ins. {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300, help="position reads per condition (default 300)")
    parser.add_argument("--sign-ins", type=int, default=15, help="sign-ins per condition (default 15)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    started = time.perf_counter()
    rows = asyncio.run(run(args.reads, args.sign_ins))
    print(markdown(rows))
    print(f"\n(took {time.perf_counter() - started:.0f} s; Python {sys.version.split()[0]}, loopback)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
