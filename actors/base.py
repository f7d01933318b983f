"""A minimal actor: a mailbox, one message handled at a time, `tell`, `ask`, restart on crash.

The Pykka/Erlang shape in a few lines of asyncio. Because an actor handles one message at a time and
no one else touches its state, a booking, a cancellation and a status change for the same doctor can
never interleave half-way, with no locks. A message that raises is logged, fails its asker, and the
actor restarts in place (`on_restart` rebuilds its state from the source of truth) before it reads
the next message: one bad message never leaves a half-updated queue behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from core import metrics

log = logging.getLogger("medpharma.actors")


class ActorStopped(RuntimeError):
    """The actor was stopped before it could handle the message."""


_STOP = object()


class Actor:
    # Failures that answer the asker but leave the actor's state as it was (no restart, no alarm).
    expected_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, name: str):
        self.name = name
        self._mailbox: asyncio.Queue[tuple[Any, asyncio.Future | None, float]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.last_active = time.monotonic()
        self.stopped = False

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"actor:{self.name}")

    async def stop(self) -> None:
        """Handles what is already in the mailbox, then ends."""
        if self._task is None or self.stopped:
            return
        self.stopped = True
        self._mailbox.put_nowait((_STOP, None, time.perf_counter()))
        await asyncio.shield(self._task)

    @property
    def mailbox_depth(self) -> int:
        return self._mailbox.qsize()

    # -- messaging ---------------------------------------------------------------------------
    def tell(self, message: Any) -> None:
        if self.stopped:
            raise ActorStopped(self.name)
        self._mailbox.put_nowait((message, None, time.perf_counter()))
        metrics.actor_mailbox_depth.inc()

    def ask(self, message: Any) -> asyncio.Future:
        if self.stopped:
            raise ActorStopped(self.name)
        reply = asyncio.get_running_loop().create_future()
        self._mailbox.put_nowait((message, reply, time.perf_counter()))
        metrics.actor_mailbox_depth.inc()
        return reply

    async def _run(self) -> None:
        while True:
            message, reply, queued_at = await self._mailbox.get()
            if message is _STOP:
                break
            metrics.actor_mailbox_depth.dec()
            self.last_active = time.monotonic()
            started = time.perf_counter()
            try:
                result = await self.receive(message, queued_at)
            except self.expected_errors as exc:  # an answer, not a crash: state is untouched
                if reply is not None and not reply.done():
                    reply.set_exception(exc)
            except Exception as exc:  # supervision: log, fail the asker, rebuild, go on
                log.exception("actor crashed; restarting", extra={"actor": self.name})
                metrics.actor_restarts_total.inc()
                if reply is not None and not reply.done():
                    reply.set_exception(exc)
                await self._restart()
            else:
                if reply is not None and not reply.done():
                    reply.set_result(result)
            finally:
                metrics.actor_message_duration_seconds.labels(self.message_kind(message)).observe(
                    time.perf_counter() - started)
        # Whatever was told after the stop has no one to handle it now.
        while not self._mailbox.empty():
            _message, reply, _ = self._mailbox.get_nowait()
            if reply is not None and not reply.done():
                reply.set_exception(ActorStopped(self.name))
            if _message is not _STOP:
                metrics.actor_mailbox_depth.dec()

    async def _restart(self) -> None:
        try:
            await self.on_restart()
        except Exception:
            log.exception("actor restart failed; it will rebuild on its next message",
                          extra={"actor": self.name})

    # -- for subclasses ------------------------------------------------------------------------
    async def receive(self, message: Any, queued_at: float) -> Any:
        raise NotImplementedError

    async def on_restart(self) -> None:
        """Rebuild state after a crash."""

    @staticmethod
    def message_kind(message: Any) -> str:
        return getattr(message, "kind", type(message).__name__)
