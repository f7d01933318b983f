"""The delivery worker: claims due deliveries and attempts them, at most `concurrency` at a time.

It is woken when this node writes a delivery or an attempt ends; otherwise it sleeps until the
earliest pending delivery is due, or `poll_seconds` at most (to pick up what other nodes wrote and
leases a dead node left behind). With nothing pending it makes no store call between two polls.

An attempt: push → the subscription's endpoint, encrypted for its keys (in the executor); webhook →
the webhook's URL, signed with its secret. The answer decides: `2xx` delivered; a push `404`/`410`
removes the subscription (`gone`); anything else is retried on the back-off schedule until 24 h
after the delivery was created, then `failed`. A push whose moment has passed (its TTL would be 0
after a retry) is not worth sending: `failed` with "expired".
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Awaitable, Callable

from core import metrics
from core.tasks import cancel_and_wait
from infra.notify.push import PushKeys
from infra.notify.records import DELIVERED, FAILED, NotifyRecords, next_attempt_after
from infra.notify.sender import Answer, Sender
from infra.notify.webhooks import signed_headers

log = logging.getLogger("medpharma.notify")

POLL_SECONDS = 30.0
CONCURRENCY = 64
GONE_CODES = (404, 410)


class DeliveryWorker:
    def __init__(self, records: NotifyRecords, sender: Sender, keys: PushKeys | None,
                 clock: Callable[[], datetime], node: str, *, concurrency: int = CONCURRENCY,
                 poll_seconds: float = POLL_SECONDS, settled: Callable[[], Awaitable[None]] | None = None):
        self.records = records
        self.settled = settled or nothing_to_wait_for  # see `Notifier.settled`: never claim or encrypt mid-fan-out
        self.sender = sender
        self.keys = keys
        self.clock = clock
        self.node = node
        self.poll_seconds = poll_seconds
        self.slots = asyncio.Semaphore(concurrency)
        self._woken = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._attempts: set[asyncio.Task] = set()
        self.attempted = 0  # attempts finished by this node (tests and the bench read it)

    def start(self) -> None:
        if self._task is None:
            self._woken.set()  # a fresh process first looks for what an earlier one left pending
            self._task = asyncio.get_running_loop().create_task(self._run(), name="notification-worker")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for task in list(self._attempts):
            await cancel_and_wait(task)  # its lease runs out and another node (or the next start) retries

    def wake(self) -> None:
        self._woken.set()

    async def _run(self) -> None:
        wait = self.poll_seconds
        while True:
            try:
                await asyncio.wait_for(self._woken.wait(), wait)
            except asyncio.TimeoutError:
                pass
            self._woken.clear()
            try:
                await self.settled()
                await self._claim_all()
                due = await self.records.next_due(self.clock())
            except Exception:
                log.warning("notification worker: store unavailable; trying again later", exc_info=True)
                wait = self.poll_seconds
                continue
            if due is None:
                wait = self.poll_seconds
            else:
                wait = min(self.poll_seconds, max(0.05, (due - self.clock()).total_seconds()))

    async def _claim_all(self) -> None:
        while True:
            await self.slots.acquire()
            try:
                delivery = await self.records.claim_due(self.clock(), self.node)
            except BaseException:
                self.slots.release()
                raise
            if delivery is None:
                self.slots.release()
                return
            task = asyncio.get_running_loop().create_task(self._attempt(delivery))
            self._attempts.add(task)
            metrics.notification_backlog.set(len(self._attempts))
            task.add_done_callback(self._attempt_done)

    def _attempt_done(self, task: asyncio.Task) -> None:
        self._attempts.discard(task)
        self.slots.release()
        metrics.notification_backlog.set(len(self._attempts))
        self.attempted += 1
        if not task.cancelled() and task.exception() is not None:
            log.error("notification attempt failed unexpectedly", exc_info=task.exception())
        self.wake()  # a retry may now be due sooner than the worker planned

    async def _attempt(self, delivery: dict) -> None:
        await self.settled()
        channel = delivery["channel"]
        answer, gone = await (self._push(delivery) if channel == "push" else self._webhook(delivery))
        now = self.clock()
        changes: dict = {"lastStatusCode": answer.status_code if answer else None,
                         "lastError": None, "lastAttemptAt": now}
        if answer is not None and answer.ok:
            outcome = "delivered"
            changes.update(status=DELIVERED, deliveredAt=now, nextAttemptAt=None)
            metrics.notification_delay_seconds.observe(max(0.0, (now - delivery["changedAt"]).total_seconds()))
        elif gone is not None:
            outcome = "gone" if answer is not None else "failed"
            changes.update(status=FAILED, nextAttemptAt=None, lastError=gone)
        else:
            changes["lastError"] = describe(answer)
            retry_at = next_attempt_after(delivery["attempts"] + 1, delivery["createdAt"], now)
            if delivery["channel"] == "push" and delivery.get("expiresAt") and retry_at is not None \
                    and retry_at >= delivery["expiresAt"]:
                retry_at = None
            if retry_at is None:
                outcome = "failed"
                changes.update(status=FAILED, nextAttemptAt=None)
            else:
                outcome = "retry"
                changes["nextAttemptAt"] = retry_at
        metrics.notifications_total.labels(channel, outcome).inc()
        await self.records.finish_attempt(delivery, self.node, changes)

    async def _push(self, delivery: dict) -> tuple[Answer | None, str | None]:
        subscription = await self.records.find_subscription(delivery["target"])
        if subscription is None:
            return None, "subscription removed"
        if self.keys is None:
            return None, "Web Push is not configured (VAPID_PRIVATE_KEY)"
        now = self.clock()
        expires = delivery.get("expiresAt")
        ttl = int((expires - now).total_seconds()) if expires else 0
        if expires is not None and ttl <= 0 and delivery["attempts"] > 0:
            return None, "expired: the moment it announced has passed"
        request = await asyncio.get_running_loop().run_in_executor(
            None, self.keys.request, subscription, delivery["payload"], max(ttl, 0), delivery["urgency"])
        answer = await self.sender.post(request.url, request.headers, request.body)
        if answer.status_code in GONE_CODES:
            await self.records.delete_subscription(subscription["_id"])
            return answer, f"HTTP {answer.status_code}: the push service says the subscription is gone"
        return answer, None

    async def _webhook(self, delivery: dict) -> tuple[Answer | None, str | None]:
        webhook = await self.records.find_webhook(delivery["target"])
        if webhook is None:
            return None, "webhook deleted"
        body = delivery["body"].encode()
        headers = signed_headers(webhook["secret"], str(delivery["_id"]), body)
        return await self.sender.post(webhook["url"], headers, body), None


async def nothing_to_wait_for() -> None:
    """The `settled` of a worker with no sockets to wait for (tools, tests)."""


def describe(answer: Answer) -> str:
    """What an admin reads in `lastError`: the status and the start of the answer (1 KiB at most)."""
    if answer.status_code is None:
        return (answer.text or "no answer")[:1024]
    return (f"HTTP {answer.status_code}: {answer.text}" if answer.text else f"HTTP {answer.status_code}")[:1024]
