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
- **No replays.** The signature also covers the sending node, the time it was sent and that node's
  sequence number (the envelope), so a message captured off Redis and published again changes
  nothing: one more than `MAX_AGE_SECONDS` old is dropped as `stale` (so a node started later
  cannot be fooled either), and one whose (node, sequence) was already taken in as `replayed`
  (`ReplayGuard`: per node, its highest sequence and a bitmap of the `REPLAY_WINDOW` below it —
  bounded memory; a node silent for longer than a message lives is forgotten). Nodes' clocks must
  agree within well under a minute (NTP).
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
import re
import time
import uuid
from dataclasses import dataclass
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
SIGNATURE_VERSION = b"v2"  # v2: the signature covers the envelope (node, sequence, time) and the body
MAX_AGE_SECONDS = 60.0  # an older message is dropped as stale (the API contract)
REPLAY_WINDOW = 4096  # sequence numbers below a node's highest that are still told apart
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


@dataclass(frozen=True)
class Envelope:
    """What the signature binds to a body besides its content: who sent it, which of theirs it is, when."""

    node: str
    sequence: int
    sent_at: float  # seconds since the epoch, by the sender's clock


_HEADER = re.compile(rb"([0-9A-Za-z_-]{1,64}):(\d{1,19}):(\d{1,16})")


def sign(payload: str, key: bytes, *, node: str, sequence: int, sent_at: float) -> bytes:
    """`v2.<hex HMAC>.<node>:<sequence>:<milliseconds>.<body>`, the HMAC over everything after it."""
    signed = f"{node}:{sequence}:{int(sent_at * 1000)}".encode() + b"." + payload.encode()
    digest = hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
    return SIGNATURE_VERSION + b"." + digest + b"." + signed


def verify(raw: str | bytes, key: bytes) -> tuple[Envelope, bytes]:
    """The envelope and the signed body, or `BadMessage` saying why not."""
    data = raw.encode() if isinstance(raw, str) else raw
    version, _, rest = data.partition(b".")
    digest, _, signed = rest.partition(b".")
    if version != SIGNATURE_VERSION or len(digest) != 64:
        raise BadMessage("unsigned")
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(digest, expected):
        raise BadMessage("bad_signature")
    header, _, body = signed.partition(b".")
    match = _HEADER.fullmatch(header)
    if match is None:
        raise BadMessage("malformed")
    node, sequence, millis = match.groups()
    return Envelope(node.decode(), int(sequence), int(millis) / 1000), body


class ReplayGuard:
    """Which signed messages were already taken in, in bounded memory, and which are too old.

    Each node numbers its messages 1, 2, 3, …; Redis delivers one publisher's messages nearly in
    order (a retry or two tasks publishing at once can swap neighbours). So per node it is enough to
    keep the highest sequence seen and a bitmap of the `window` sequences below it: a sequence
    already marked, or further below than the window, is a replay. A node whose newest message is
    older than `max_age` is forgotten — anything of its that could come again is stale by then."""

    def __init__(self, window: int = REPLAY_WINDOW, max_age: float = MAX_AGE_SECONDS):
        self.window = window
        self.max_age = max_age
        self._nodes: dict[str, list] = {}  # node → [highest sequence, bitmap, newest sent_at]
        self._swept_at = float("-inf")

    def __len__(self) -> int:
        return len(self._nodes)

    def admit(self, envelope: Envelope, now: float) -> str | None:
        """None if the message is new and fresh (and records it), else the reason to drop it."""
        if now - envelope.sent_at > self.max_age:
            return "stale"
        if now - self._swept_at > self.max_age:
            self._sweep(now)
        seen = self._nodes.get(envelope.node)
        if seen is None:
            self._nodes[envelope.node] = [envelope.sequence, 1, envelope.sent_at]
            return None
        highest, bitmap, newest = seen
        if envelope.sequence > highest:
            shift = envelope.sequence - highest
            bitmap = ((bitmap << shift) | 1) & ((1 << self.window) - 1) if shift < self.window else 1
            highest = envelope.sequence
        else:
            offset = highest - envelope.sequence
            if offset >= self.window or (bitmap >> offset) & 1:
                return "replayed"
            bitmap |= 1 << offset
        seen[:] = [highest, bitmap, max(newest, envelope.sent_at)]
        return None

    def _sweep(self, now: float) -> None:
        self._swept_at = now
        for node in [n for n, (_, _, newest) in self._nodes.items() if now - newest > self.max_age]:
            del self._nodes[node]


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
        self.wall_clock: Callable[[], float] = time.time  # the envelope's time (not the workflows' clock)
        self.replays = ReplayGuard()
        self._sequence = 0
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

    def _signed(self, message) -> bytes:
        """The wire form of `message` in a fresh envelope: this node's next sequence number, now."""
        self._sequence += 1
        return sign(bus_messages.encode(message, self.node_id), self._key, node=self.node_id,
                    sequence=self._sequence, sent_at=self.wall_clock())

    async def _publish_forever(self) -> None:
        while True:
            change = await self._outgoing.get()
            message = self._signed(change)
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
            if await self._send(self._signed(self.owed_revocations[0]), ()):
                self.owed_revocations.pop(0)
                continue
            await asyncio.sleep(self.resync_retry_delays[min(attempt, len(self.resync_retry_delays) - 1)])
            attempt += 1
        while self.owed_resync:
            doctors = set(self.owed_resync)
            if await self._send(self._signed(Resync(frozenset(doctors))), ()):
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
            await self._send(self._signed(report), ())

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
            envelope, body = verify(raw, self._key)
            node, content = decode_message(body)
            if node != envelope.node:  # the body names another sender than the envelope
                raise BadMessage("malformed")
            if node == self.node_id:
                return
            refused = self.replays.admit(envelope, self.wall_clock())
            if refused is not None:
                raise BadMessage(refused)
        except BadMessage as bad:
            metrics.bus_rejected_total.labels(bad.reason).inc()
            log.warning("dropped a bus message", extra={"reason": bad.reason})
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
