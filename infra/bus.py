"""The event bus between handlers and actors.

`publish(change)` returns once this process's actor for the doctor has taken the change in, so a
read right after a write sees it (read-your-writes); a revocation (a session ended, an account
disabled) is applied to this node's revocation list. In one process that is all there is.

With `REDIS_URL` set, the change is also published on a Redis channel, and every other node's
registry hands it to its own actor for that doctor, so a patient watching through node A sees a
cancellation made through node B. Redis pub/sub is at-most-once and unordered across publishers;
that is fine here because each change carries the appointment's `version` (stale or repeated
deliveries are ignored by the actor), and a node that may have missed messages repairs itself from
MongoDB, the source of truth:

- **Isolation.** The channel is named after `MONGO_DB`, so two deployments sharing one Redis never
  hear each other, and every message is signed (HMAC-SHA256, with a key derived from `JWT_SECRET`
  and `MONGO_DB`): whoever can reach Redis but does not hold the secret cannot inject a change (a
  forged `turn:now` with a phishing link, say). Anything unsigned, badly signed or malformed is
  dropped and counted in `medpharma_bus_rejected_total`; the listener never stops for it.
- **Publishing never holds up the answer.** The local actor is awaited; the Redis publish goes to a
  background publisher that retries with backoff, in order. If it gives up, the node reloads the
  queues concerned and, once Redis answers again, publishes a signed `resync` naming those doctors,
  so every other node reloads them too. A revocation that could not be published is sent again
  then, as it is: a queue can be reloaded from the store, a node's revocation list only at start.
- **Reconnects.** A listener that lost its connection reloads every live queue when it is back (it
  may have missed anything in between), then sends any resync still owed.
- **No head-of-line blocking.** The listener hands each message to its actor without waiting for
  the actor to finish (one slow queue must not hold up other doctors); messages still reach each
  actor's mailbox in the order they arrived, so per-doctor order is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import uuid
from typing import Awaitable, Callable

from core import bus_messages
from core import metrics
from core.bus_messages import PRESENCE, RESYNC, REVOCATION, PresenceReport, Resync
from core.tasks import cancel_and_wait

log = logging.getLogger("medpharma.bus")

CHANNEL_PREFIX = "medpharma"
RECONNECT_DELAY_SECONDS = (0.2, 0.5, 1, 2, 5)
PUBLISH_RETRY_DELAYS_SECONDS = (0.1, 0.3, 1.0, 3.0)  # then give up and repair
RESYNC_RETRY_DELAYS_SECONDS = (0.5, 1, 2, 5)
STOP_FLUSH_SECONDS = 1.0
MAX_OUTGOING = 10_000  # past this the oldest changes are not published, only resynced
SIGNATURE_VERSION = b"v1"
PRESENCE_REPORT_SECONDS = 5.0     # a node tells the others who is here at least this often
PRESENCE_LIFETIME_PERIODS = 3     # and what it told holds for this many periods
PRESENCE_COALESCE_SECONDS = 0.1   # arrivals and departures this close share one report


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
        if message.route == REVOCATION:
            self.revocations.apply(message)
        else:
            await self.registry.deliver(message)

    def local_presence_changed(self) -> None:
        """A patient arrived or left on this node; one process has no one else to tell."""

    on_reconnect: Callable[[], Awaitable[None]] | None = None  # what else to re-read after being deaf


def channel_name(mongo_db: str) -> str:
    return f"{CHANNEL_PREFIX}:{mongo_db}:queue-changes"


def signing_key(jwt_secret: str, mongo_db: str) -> bytes:
    """A key of its own for the bus (a leaked bus key forges no tokens), bound to the deployment."""
    return hmac.new(jwt_secret.encode(), f"medpharma-bus|{mongo_db}".encode(), hashlib.sha256).digest()


class BadMessage(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # a medpharma_bus_rejected_total label


def sign(payload: str, key: bytes) -> bytes:
    body = payload.encode()
    digest = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    return SIGNATURE_VERSION + b"." + digest + b"." + body


def verify(raw: str | bytes, key: bytes) -> bytes:
    """The signed payload, or `BadMessage` saying why not."""
    data = raw.encode() if isinstance(raw, str) else raw
    version, _, rest = data.partition(b".")
    digest, _, body = rest.partition(b".")
    if version != SIGNATURE_VERSION or len(digest) != 64:
        raise BadMessage("unsigned")
    expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(digest, expected):
        raise BadMessage("bad_signature")
    return body


def decode_message(body: bytes) -> tuple[str, bus_messages.BusMessage]:
    """(sending node, message); `BadMessage` if it is not one of ours, whole."""
    try:
        return bus_messages.decode(body)
    except ValueError:
        raise BadMessage("malformed") from None


class RedisBus(InProcessBus):
    def __init__(self, registry, revocations, redis_url: str, *, jwt_secret: str, mongo_db: str,
                 presence_report_seconds: float = PRESENCE_REPORT_SECONDS):
        super().__init__(registry, revocations)
        self.presence_report_seconds = presence_report_seconds
        self._presence_changed = asyncio.Event()
        self._presence_reporter: asyncio.Task | None = None
        self.redis_url = redis_url
        self.channel = channel_name(mongo_db)
        self._key = signing_key(jwt_secret, mongo_db)
        self.node_id = uuid.uuid4().hex
        self.publish_retry_delays = PUBLISH_RETRY_DELAYS_SECONDS
        self.resync_retry_delays = RESYNC_RETRY_DELAYS_SECONDS
        self.received = 0  # messages from other nodes accepted (for tests and debugging)
        self.owed_resync: set[str] = set()  # doctors whose changes other nodes may have missed
        self.owed_revocations: list = []  # revocations other nodes have not heard of yet
        self._client = None
        self._listener: asyncio.Task | None = None
        self._publisher: asyncio.Task | None = None
        self._outgoing: asyncio.Queue = asyncio.Queue()
        self._deliveries: set[asyncio.Task] = set()
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        import redis.asyncio as redis

        self._client = redis.from_url(self.redis_url, socket_connect_timeout=3, socket_timeout=None,
                                      health_check_interval=15)
        await self._client.ping()
        loop = asyncio.get_running_loop()
        self._listener = loop.create_task(self._listen(), name="redis-bus")
        self._publisher = loop.create_task(self._publish_forever(), name="redis-bus-publisher")
        self._presence_reporter = loop.create_task(self._report_presence_forever(), name="redis-bus-presence")
        await asyncio.wait_for(self.subscribed.wait(), 5)

    async def stop(self) -> None:
        await cancel_and_wait(self._presence_reporter)
        await cancel_and_wait(self._listener)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_FLUSH_SECONDS
        while self._publisher is not None and not self._outgoing.empty() and loop.time() < deadline:
            await asyncio.sleep(0.01)  # the last changes before a stop still reach the other nodes
        await cancel_and_wait(self._publisher)
        for task in list(self._deliveries):
            await cancel_and_wait(task)
        if self._client is not None:
            await self._client.aclose()

    # -- sending -----------------------------------------------------------------------------------
    async def publish(self, change) -> None:
        await self.deliver(change)
        if self._outgoing.qsize() >= MAX_OUTGOING:
            self._owe(change)  # Redis has been away long; the repair will cover it
            return
        self._outgoing.put_nowait(change)

    def _owe(self, change) -> None:
        if change.route == REVOCATION:
            self.owed_revocations.append(change)
        else:
            self.owed_resync.add(change.doctor_id)

    async def _publish_forever(self) -> None:
        while True:
            change = await self._outgoing.get()
            message = sign(bus_messages.encode(change, self.node_id), self._key)
            if await self._send(message, self.publish_retry_delays):
                continue
            failed = [change]
            while not self._outgoing.empty():  # Redis is away: everything queued shares the fate
                failed.append(self._outgoing.get_nowait())
            metrics.bus_publish_failures_total.inc()
            log.warning("could not publish changes to Redis; repairing", extra={"changes": len(failed)})
            for message in failed:
                self._owe(message)
            await self.registry.reload(set(self.owed_resync))
            await self._send_owed_resync()

    async def _send(self, message: bytes, retry_delays) -> bool:
        for delay in (*retry_delays, None):
            try:
                await self._client.publish(self.channel, message)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if delay is None:
                    return False
                log.info("Redis publish failed; retrying", extra={"error": type(exc).__name__,
                                                                    "retryInSeconds": delay})
                await asyncio.sleep(delay)
        return False

    async def _send_owed_resync(self) -> None:
        """Sends the revocations other nodes missed, then tells them to reload the doctors they may
        have missed changes of; keeps trying (with backoff) until Redis takes it all."""
        attempt = 0
        while self.owed_revocations:
            if await self._send(sign(bus_messages.encode(self.owed_revocations[0], self.node_id), self._key), ()):
                self.owed_revocations.pop(0)
                continue
            await asyncio.sleep(self.resync_retry_delays[min(attempt, len(self.resync_retry_delays) - 1)])
            attempt += 1
        while self.owed_resync:
            doctors = set(self.owed_resync)
            if await self._send(sign(bus_messages.encode(Resync(frozenset(doctors)), self.node_id), self._key), ()):
                self.owed_resync -= doctors
                log.info("published a resync", extra={"doctors": len(doctors)})
                return
            delay = self.resync_retry_delays[min(attempt, len(self.resync_retry_delays) - 1)]
            attempt += 1
            await asyncio.sleep(delay)

    # -- presence ----------------------------------------------------------------------------------
    def local_presence_changed(self) -> None:
        self._presence_changed.set()

    async def _report_presence_forever(self) -> None:
        """Tells the other nodes which appointments have their patient here: soon after a change
        (changes within PRESENCE_COALESCE_SECONDS share one report) and every report period anyway,
        each report valid for PRESENCE_LIFETIME_PERIODS periods. A node that dies stops reporting,
        and its patients stop counting as present when that lifetime runs out."""
        while True:
            try:
                await asyncio.wait_for(self._presence_changed.wait(), self.presence_report_seconds)
                await asyncio.sleep(PRESENCE_COALESCE_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._presence_changed.clear()
            report = PresenceReport(tuple(sorted(self.registry.presence.local_ids())),
                                    self.presence_report_seconds * PRESENCE_LIFETIME_PERIODS)
            await self._send(sign(bus_messages.encode(report, self.node_id), self._key), ())

    # -- receiving ---------------------------------------------------------------------------------
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
                    if self.on_reconnect is not None:
                        self._spawn(self.on_reconnect())
                    self.local_presence_changed()
                    if self.owed_resync or self.owed_revocations:
                        self._spawn(self._send_owed_resync())
                first, attempt = False, 0
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._receive(message["data"])
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

    def _receive(self, raw) -> None:
        try:
            node, content = decode_message(verify(raw, self._key))
        except BadMessage as bad:
            metrics.bus_rejected_total.labels(bad.reason).inc()
            log.warning("dropped a bus message", extra={"reason": bad.reason})
            return
        if node == self.node_id:
            return
        self.received += 1
        if content.route == PRESENCE:
            changed = self.registry.presence.remote(node, frozenset(content.appointment_ids), content.lifetime)
            self.registry.presence_changed(changed)
        elif content.route == RESYNC:
            self._spawn(self.registry.reload(content.doctor_ids))
        else:
            # Not awaited: deliveries to one doctor enter its mailbox in the order they are spawned,
            # while a slow queue keeps no other doctor waiting.
            self._spawn(self.deliver(content))

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._deliveries.add(task)
        task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task) -> None:
        self._deliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a bus delivery failed", exc_info=task.exception())
