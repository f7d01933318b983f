"""What session checks add to every authenticated request: decoding the access token (as before
sessions) against decoding it and asking this node's in-memory revocations (as now), with 10,000
ended sessions and 1,000 disabled accounts held. Alternating rounds, so a busy machine slows both alike.

    .venv/bin/python -m bench.token_check
"""

from __future__ import annotations

import statistics
import time
import uuid

from bson import ObjectId

from infra.auth import TokenIssuer
from infra.revocations import Revocations

ROUNDS, CHECKS = 15, 20_000


def main() -> None:
    issuer = TokenIssuer("bench-secret-that-is-at-least-32-characters", 900)
    token = issuer.issue({"_id": ObjectId(), "role": "patient"}, str(ObjectId()))
    revocations = Revocations(900)
    revocations.load([(str(ObjectId()), time.time()) for _ in range(10_000)], [uuid.uuid4().hex for _ in range(1_000)])

    def decode_only() -> None:
        issuer.decode(token)

    def decode_and_check() -> None:
        principal = issuer.decode(token)
        assert revocations.is_refused(principal.user_id, principal.session_id) is None

    timings: dict[str, list[float]] = {"decode only": [], "decode + revocation check": []}
    for _ in range(ROUNDS):
        for name, check in (("decode only", decode_only), ("decode + revocation check", decode_and_check)):
            started = time.perf_counter()
            for _ in range(CHECKS):
                check()
            timings[name].append((time.perf_counter() - started) / CHECKS * 1e6)
    base = statistics.median(timings["decode only"])
    print("| what | median µs per request | ratio |\n|---|---|---|")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.2f} | {statistics.median(values) / base:.3f}x |")


if __name__ == "__main__":
    main()
