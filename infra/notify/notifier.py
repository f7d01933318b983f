"""The notification machinery one node runs, assembled once (`server.app.build_services`).

It holds the store records, the URL guard's allow-list, the VAPID keys, the sender and the worker,
and the queue of moments the doctors' actors hand over (`listener`): the actor side is synchronous
and only appends here; `domain.notifications.keep_planning` turns them into deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import datetime
from typing import Awaitable, Callable

from core import metrics
from infra.notify.push import PushKeys
from infra.notify.records import NotifyRecords
from infra.notify.sender import Sender
from infra.notify.url_guard import AllowList
from infra.notify.worker import DeliveryWorker, nothing_to_wait_for

log = logging.getLogger("medpharma.notify")

MAX_QUEUED_EVENTS = 100_000  # beyond this an actor's moment is dropped (and logged), never blocks it


class Notifier:
    def __init__(self, store, settings, clock: Callable[[], datetime],
                 render_appointment: Callable[[dict], dict], node: str | None = None,
                 settled: Callable[[], Awaitable[None]] | None = None):
        self.records = NotifyRecords(store)
        # Waited on before planning or attempting anything: returns once the sockets' fan-out in
        # progress has been written (`live.outbox.fanout_settled`), so a change's notifications never
        # delay its socket frames; a push or a webhook a few milliseconds later is as good.
        self.settled = settled or nothing_to_wait_for
        self.allow = AllowList.of(settings.notify_allow_hosts)
        self.clock = clock
        self.render_appointment = render_appointment  # the API's appointment shape, for webhook bodies
        self.node = node or secrets.token_hex(6)
        if settings.vapid_private_key is None and not settings.embedded_store:
            self.keys = None  # a key made per process would orphan every subscription at each restart
        else:
            self.keys = PushKeys.from_setting(settings.vapid_private_key, settings.vapid_subject)
        self.sender = Sender(self.allow)
        self.worker = DeliveryWorker(self.records, self.sender, self.keys, clock, self.node, settled=self.settled)
        self.events: asyncio.Queue = asyncio.Queue(MAX_QUEUED_EVENTS)

    def listener(self, doctor_id: str, kind: str, appointment_id: str, data: dict) -> None:
        """Called by a followed doctor's actor, synchronously: queue the moment, never wait."""
        try:
            self.events.put_nowait((doctor_id, kind, appointment_id, data, self.clock()))
        except asyncio.QueueFull:
            log.error("notification events overflow; one dropped", extra={"appointmentId": appointment_id})
        metrics.notification_backlog.set(self.events.qsize())

    async def start(self) -> None:
        await self.records.ensure_indexes()
        if self.keys is None:
            log.warning("VAPID_PRIVATE_KEY is not set: Web Push is off (webhooks still work)")
        elif self.keys.generated:
            log.warning("VAPID_PRIVATE_KEY is not set: using a key made for this process; browsers' push "
                        "subscriptions end with it")
        self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop()
        self.sender.close()
