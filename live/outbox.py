"""Per-socket outbox: what keeps one slow reader from holding up the server or anyone else.

Actors offer messages synchronously and never wait. Two kinds of message:
- **latest-value** (`queue:state` per doctor, `queue:update` per appointment): keyed by subscription;
  a newer value replaces an unsent older one, so a reader that falls behind costs one pending message
  per subscription, however long it stalls, and gets the newest value when it catches up;
- **events** (`turn:now`, `doctor:status`, `pong`, `error`): every one matters, so they queue, up to
  a bound; a socket past it is closed with 1013 ("try again later") rather than buffered forever.

The outbox drains itself one write at a time, so at most one frame sits in Tornado's buffer. It is
driven by callbacks rather than a task per socket: a write the kernel takes at once (the usual case)
goes straight on to the next message, and one that is buffered continues from its completion. An
idle socket holds no task. Messages are rendered (per viewer) and serialized only when about to be
written.

Outboxes offered something are drained together, in the order they were offered, from the loop's
next turn (`Wakeups`): one callback for a whole fan-out rather than one per socket. The first
`DRAIN_BEFORE_ANSWER` of them are written before the request that caused the change is answered,
and the rest after it. An actor offers a change to every watcher and then answers whoever asked,
so the asker's wake-up is queued behind the drain's first callback; the rest of the drain is
scheduled behind the asker. A room of a few hundred (the usual clinic) is written to before the
answer goes out, as a plain broadcast would: the answer's own write is no longer in every
watcher's wait (issue 29: about 1 ms of a 10 ms change at 100 watchers). A hotline's booking is
answered after those few hundred writes, not after all of them (with the whole fan-out first, a
booking on a doctor watched by 3,000 sockets waited 0.37 s of the fan-out's 0.65 s for its answer).

An idle outbox is small, because there is one per watching socket (10,000 on a busy node): its fields
are slots, pending latest values sit in a plain dict (insertion-ordered, a quarter of an
`OrderedDict`'s size when empty) and the event queue is created with the first event (an empty
`deque` already holds a 64-slot block, about 0.75 KiB).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from functools import partial
from typing import Any, Callable, Sequence

from actors.rooms import Outgoing
from core import metrics

log = logging.getLogger("medpharma.ws")

MAX_PENDING_EVENTS = 256


class Outbox:
    __slots__ = ("viewer", "_write", "_on_overflow", "_max_events", "_latest", "_events", "_closed", "_started",
                 "_wake_scheduled", "_writing", "_wakeups")

    def __init__(self, viewer: Any, write: Callable[[Sequence[bytes | memoryview]], Any], on_overflow: Callable[[], None],
                 max_events: int = MAX_PENDING_EVENTS):
        self.viewer = viewer
        self._write = write
        self._on_overflow = on_overflow
        self._max_events = max_events
        self._latest: dict[str, Outgoing] = {}  # oldest first: a replaced value keeps its place
        self._events: deque[Outgoing] | None = None  # created with the first event
        self._closed = False
        self._started = False
        self._wake_scheduled = False
        self._writing = False  # a write is buffered; its completion drains the rest

    # -- the Subscriber protocol (called by actors; never blocks) ----------------------------------
    def offer(self, key: str, message: Outgoing) -> None:
        if self._closed:
            return
        self._latest[key] = message
        self._wake_soon()

    def offer_event(self, message: Outgoing) -> None:
        if self._closed:
            return
        if self._events is None:
            self._events = deque()
        if len(self._events) >= self._max_events:
            self.close()
            self._on_overflow()
            return
        self._events.append(message)
        self._wake_soon()

    def _wake_soon(self) -> None:
        """Drains with everyone offered something this turn, two turns from now (see `Wakeups`)."""
        if self._started and not self._wake_scheduled and not self._writing:
            self._wake_scheduled = True
            self._wakeups.add(self)

    def _wake_now(self) -> None:
        self._wake_scheduled = False
        self._drain()

    @property
    def pending(self) -> int:
        return len(self._latest) + (len(self._events) if self._events else 0)

    # -- the writer ------------------------------------------------------------------------------
    def start(self) -> None:
        """Called on the loop that will write to the socket; nothing is written before."""
        self._wakeups = Wakeups.of_running_loop()
        self._started = True
        if self.pending:
            self._wake_soon()

    def close(self) -> None:
        self._closed = True
        self._latest.clear()
        self._events = None

    def _drain(self) -> None:
        while not self._closed and not self._writing and (self._events or self._latest):
            if self._events:
                message = self._events.popleft()
                if not self._events:
                    self._events = None  # an idle socket gives the block back
            else:
                message = self._latest.pop(next(iter(self._latest)))
            try:
                frame = message.pieces_for(self.viewer)
            except Exception:
                log.exception("could not render a message", extra={"event": message.event})
                continue
            try:
                written = self._write(frame)
            except Exception:  # the socket closed under us; on_close does the clean-up
                self._closed = True
                return
            if written is not None and not written.done():
                self._writing = True
                written.add_done_callback(partial(self._written, message.event))
                return
            self._written(message.event, written)

    def _written(self, event: str, written: "asyncio.Future | None") -> None:
        self._writing = False
        if written is not None and (written.cancelled() or written.exception() is not None):
            self._closed = True  # the socket closed under us; on_close does the clean-up
            return
        metrics.count_sent(event)
        self._drain()


DRAIN_BEFORE_ANSWER = 256  # outboxes written before the request that caused the change is answered


class Wakeups:
    """The outboxes of one event loop waiting to drain. The first one added schedules the drain for
    the loop's next turn; it writes the first `DRAIN_BEFORE_ANSWER` outboxes, then leaves the rest for
    a turn after whatever the offering step queued (the asker's wake-up, when an actor answers after
    publishing)."""

    # One per loop (the bench runs servers on several); keyed weakly, and holding no reference to
    # its loop, so a closed loop and its Wakeups go together.
    _by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Wakeups]" = weakref.WeakKeyDictionary()

    def __init__(self) -> None:
        self._due: list[Outbox] = []
        self._scheduled = 0  # drain callbacks queued on the loop and not yet run
        self._settle: list[asyncio.Future] = []

    @classmethod
    def of_running_loop(cls) -> "Wakeups":
        loop = asyncio.get_running_loop()
        wakeups = cls._by_loop.get(loop)
        if wakeups is None:
            wakeups = cls._by_loop[loop] = cls()
        return wakeups

    def add(self, outbox: Outbox) -> None:
        """Called on this Wakeups' loop, as everything an outbox does."""
        if not self._due:
            asyncio.get_running_loop().call_soon(self._drain_first)
            self._scheduled += 1
        self._due.append(outbox)

    async def settled(self) -> None:
        """Returns once every outbox offered something so far has been drained: each watcher's frame
        handed to its socket (or, for a slow reader, queued behind the write it is waiting on). Work
        that can wait a few milliseconds (planning and sending notifications) waits here, so it never
        runs between the first watchers of a fan-out and the last. Returns at once when nothing is
        due, without yielding."""
        if not self._scheduled and not self._due:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._settle.append(waiter)
        await waiter

    def _drain_first(self) -> None:
        self._scheduled -= 1
        due, self._due = self._due, []
        if len(due) > DRAIN_BEFORE_ANSWER:
            rest = due[DRAIN_BEFORE_ANSWER:]
            loop = asyncio.get_running_loop()
            self._scheduled += 1
            loop.call_soon(loop.call_soon, self._drain_rest, rest)  # behind the asker's wake-up
            due = due[:DRAIN_BEFORE_ANSWER]
        self._drain(due)
        self._maybe_settled()

    def _drain_rest(self, due: list[Outbox]) -> None:
        self._scheduled -= 1
        self._drain(due)
        self._maybe_settled()

    def _maybe_settled(self) -> None:
        if self._scheduled or self._due or not self._settle:
            return
        waiters, self._settle = self._settle, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @staticmethod
    def _drain(due: list[Outbox]) -> None:
        for outbox in due:
            try:
                outbox._wake_now()
            except Exception:  # one outbox's failure must not leave the others waiting for ever
                log.exception("could not drain an outbox")


async def fanout_settled() -> None:
    """`Wakeups.settled` for the running loop: what the notification planner and worker wait on, so
    they never run in the middle of a fan-out (handed to them by the composition root)."""
    await Wakeups.of_running_loop().settled()
