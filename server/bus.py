"""The event bus between handlers and actors.

`publish(change)` returns once this process's actor for the doctor has taken the change in, so a
read right after a write sees it (read-your-writes). In one process that is all there is.

With `REDIS_URL` set, the change is also published on a Redis channel, and every other node's
registry hands it to its own actor for that doctor, so a patient watching through node A sees a
cancellation made through node B. Redis pub/sub is at-most-once and unordered across publishers;
that is fine here because each change carries the appointment's `version` (stale or repeated
deliveries are ignored by the actor), and a node that loses its Redis connection reloads all its
actors from MongoDB when it reconnects, since it may have missed anything in between.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from bson import json_util

from actors.messages import AppointmentsChanged, DoctorChanged, DoctorDeleted
from core.tasks import cancel_and_wait
from server.revocations import AccountDisabled, SessionsRevoked

log = logging.getLogger("medpharma.bus")

CHANNEL = "medpharma:queue-changes"
RECONNECT_DELAY_SECONDS = (0.2, 0.5, 1, 2, 5)


class InProcessBus:
    def __init__(self, registry, revocations):
        self.registry = registry
        self.revocations = revocations

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, change) -> None:
        await self.deliver(change)

    async def deliver(self, message) -> None:
        """A queue change to the doctor's actor; a revocation to this node's revocation list."""
        if isinstance(message, (SessionsRevoked, AccountDisabled)):
            self.revocations.apply(message)
        else:
            await self.registry.deliver(message)


def encode_change(change, node_id: str) -> str:
    """Extended JSON (bson.json_util) keeps ObjectIds and datetimes exact across the wire."""
    if isinstance(change, SessionsRevoked):
        return json_util.dumps({"node": node_id, "kind": change.kind, "sessionIds": list(change.session_ids)})
    if isinstance(change, AccountDisabled):
        return json_util.dumps({"node": node_id, "kind": change.kind, "userId": change.user_id,
                                "disabled": change.disabled})
    message = {"node": node_id, "kind": change.kind, "doctorId": change.doctor_id}
    if isinstance(change, AppointmentsChanged):
        message["documents"] = list(change.appointments)
    elif isinstance(change, DoctorChanged):
        message["document"] = change.doctor
    return json_util.dumps(message)


def decode_change(raw: str | bytes) -> tuple[str, AppointmentsChanged | DoctorChanged | DoctorDeleted]:
    message = json_util.loads(raw, json_options=json_util.JSONOptions(tz_aware=True))
    if message["kind"] == SessionsRevoked.kind:
        return message["node"], SessionsRevoked(tuple(message["sessionIds"]))
    if message["kind"] == AccountDisabled.kind:
        return message["node"], AccountDisabled(message["userId"], bool(message["disabled"]))
    kind, doctor_id = message["kind"], message["doctorId"]
    if kind == AppointmentsChanged.kind:
        return message["node"], AppointmentsChanged(doctor_id, tuple(message["documents"]))
    if kind == DoctorChanged.kind:
        return message["node"], DoctorChanged(doctor_id, message["document"])
    if kind == DoctorDeleted.kind:
        return message["node"], DoctorDeleted(doctor_id)
    raise ValueError(f"unknown change kind {kind!r}")


class RedisBus(InProcessBus):
    def __init__(self, registry, revocations, redis_url: str, channel: str = CHANNEL):
        super().__init__(registry, revocations)
        self.redis_url = redis_url
        self.channel = channel
        self.node_id = uuid.uuid4().hex
        self._client = None
        self._listener: asyncio.Task | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        import redis.asyncio as redis

        self._client = redis.from_url(self.redis_url, socket_connect_timeout=3, socket_timeout=None,
                                      health_check_interval=15)
        await self._client.ping()
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name="redis-bus")
        await asyncio.wait_for(self.subscribed.wait(), 5)

    async def stop(self) -> None:
        await cancel_and_wait(self._listener)
        if self._client is not None:
            await self._client.aclose()

    async def publish(self, change) -> None:
        await self.deliver(change)
        try:
            await self._client.publish(self.channel, encode_change(change, self.node_id))
        except Exception as exc:  # the write is committed; other nodes reload when their bus returns
            log.warning("could not publish a change to Redis", extra={"error": type(exc).__name__})

    async def _listen(self) -> None:
        attempt = 0
        first = True
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                if not first:
                    log.info("Redis bus reconnected; reloading queues")
                    await self.registry.reload_all()
                first, attempt = False, 0
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._receive(message["data"])
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except Exception as exc:
                self.subscribed.clear()
                delay = RECONNECT_DELAY_SECONDS[min(attempt, len(RECONNECT_DELAY_SECONDS) - 1)]
                attempt += 1
                log.warning("Redis bus connection lost; retrying", extra={"error": type(exc).__name__,
                                                                          "retryInSeconds": delay})
                try:
                    await pubsub.aclose()
                except Exception:
                    pass
                await asyncio.sleep(delay)

    async def _receive(self, raw) -> None:
        try:
            node, change = decode_change(raw)
        except Exception:
            log.warning("ignoring a malformed bus message")
            return
        if node != self.node_id:
            await self.deliver(change)
