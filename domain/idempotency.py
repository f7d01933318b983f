"""`Idempotency-Key`: a retried booking answers its first answer instead of booking twice.

The first request with a key claims it by inserting a record under a unique (user, key) index, so of
two identical requests racing, one does the work and the other waits for its answer. The record holds
a fingerprint of the body: the same key with another body is a client bug (`409
idempotency_mismatch`), not a retry. A request refused for what it sent, before anything was booked
(`400`, `401`, `403`, `404`, `413`, `415`), is not remembered: the form corrected and sent again with the
same key must book, not answer `409 idempotency_mismatch`. Other refusals (a `409` such as
`already_booked`) are kept like successes; a failure of ours (the store went away) releases the key, so
the retry does the work. Keys expire after a day through a TTL index.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from typing import Awaitable, Callable

from core.access import Principal
from core.errors import ApiError, Conflict

from infra.store import IDEMPOTENCY_SECONDS

ANSWER_WAIT_SECONDS = 10.0
NOT_REMEMBERED = frozenset({400, 401, 403, 404, 413, 415})  # refused for what was sent: nothing was booked


def fingerprint(body) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def once(services, principal: Principal, key: str, body,
               run: Callable[[], Awaitable[tuple[int, dict]]]) -> tuple[int, dict]:
    """Runs `run()` the first time (user, key) is seen and stores its answer; afterwards answers that."""
    store = services.store
    now = services.clock()
    record = {"userId": principal.user_id, "key": key, "fingerprint": fingerprint(body), "createdAt": now,
              "status": None, "body": None}
    existing = await store.claim_idempotency_key(record, now - timedelta(seconds=IDEMPOTENCY_SECONDS))
    if existing is not None:
        return await _earlier_answer(store, record, existing)
    try:
        status, answer = await run()
    except ApiError as exc:
        if exc.status >= 500 or exc.status in NOT_REMEMBERED:
            await store.release_idempotency_key(principal.user_id, key)
            raise
        answer = {"message": exc.message, "code": exc.code, **({"details": exc.details} if exc.details else {})}
        await store.answer_idempotency_key(principal.user_id, key, exc.status, answer)
        raise
    except BaseException:
        await store.release_idempotency_key(principal.user_id, key)
        raise
    await store.answer_idempotency_key(principal.user_id, key, status, answer)
    return status, answer


async def _earlier_answer(store, record: dict, existing: dict) -> tuple[int, dict]:
    if existing["fingerprint"] != record["fingerprint"]:
        raise Conflict("This Idempotency-Key was used with a different request.", code="idempotency_mismatch")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_WAIT_SECONDS
    while existing is not None and existing.get("status") is None:  # the first is still at work
        if loop.time() >= deadline:
            raise Conflict("The first request with this Idempotency-Key is still in progress.",
                           code="idempotency_in_progress")
        await asyncio.sleep(0.05)
        existing = await store.find_idempotency_key(record["userId"], record["key"])
    if existing is None:  # the first failed on our side and let go: this one may try afresh
        raise Conflict("The first request with this Idempotency-Key failed; send it again.",
                       code="idempotency_in_progress")
    status, body = existing["status"], existing["body"]
    if status >= 400:
        raise ApiError(body["message"], code=body["code"], status=status, details=body.get("details"))
    return status, body
