"""The registry: one `DoctorActor` per doctor, spawned on first use, ticked, evicted when idle.

- **One actor per doctor**, even when many requests for a cold doctor arrive at once: the actor is put
  in the table before anything awaits, so every concurrent caller finds the same one.
- **Ticks**: ETAs move with the clock; every `tick_seconds` each watched actor is told to re-estimate,
  and it pushes only ETAs that moved.
- **Eviction**: an actor nobody watches and nobody has written to for `idle_seconds` is stopped, so
  memory follows the doctors in use today, not every doctor ever. It reloads on next use.
- **Followed doctors**: notifications (Web Push, webhooks) must hear `turn:soon` and delays of a
  queue nobody has open; `follow(doctor_id)` keeps that doctor's actor loaded and ticking as if
  watched, and hands its notable moments to `listener`, until its queue is empty. Watching
  (`Rooms.watched`) is not changed by it: sockets see exactly what they saw before.
- **Delivery** (the in-process end of the event bus): a change for a doctor with no live actor is
  dropped on purpose — the store already has it and a later load will read it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import datetime
from typing import Callable

from actors.base import ActorStopped
from actors.doctor import DoctorActor, DoctorNotFound, Told
from actors.rooms import Rooms
from actors.messages import EnsureLoaded, PresenceChanged, Reload, Tick
from core.bus_messages import AppointmentsChanged, DoctorChanged, DoctorDeleted
from actors.presence import Presence
from actors.snapshot import QueueSnapshot
from actors.today import DayLedger
from core.days import UTC_CALENDAR, ClinicCalendar
from core.doctors import DEFAULT_SOON_MINUTES
from core import metrics
from core.tasks import cancel_and_wait

log = logging.getLogger("medpharma.actors")

TICK_SECONDS = 10.0    # how often watched queues re-estimate as time passes
IDLE_SECONDS = 300.0   # an actor nobody watches or writes to for this long is evicted


class QueueRegistry:
    def __init__(self, store, hub: Rooms, *, clock: Callable[[], datetime],
                 calendar: ClinicCalendar = UTC_CALENDAR, tick_seconds: float = TICK_SECONDS,
                 idle_seconds: float = IDLE_SECONDS,
                 soon_minutes: int = DEFAULT_SOON_MINUTES, presence: Presence | None = None, learning: bool = True,
                 listener: Callable[[str, str, str, dict], None] | None = None):
        self.store = store
        self.calendar = calendar
        self.soon_minutes = soon_minutes
        self.presence = presence or Presence()
        self.learning = learning  # False (ETA_LEARNING=off): every queue follows the plain rule
        self.hub = hub
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.idle_seconds = idle_seconds
        self.actors: dict[str, DoctorActor] = {}
        self.today = DayLedger(calendar)  # every doctor's appointments of today, for reports
        self.appointment_doctor: dict[str, str] = {}
        self.listener = listener    # (doctor id, kind, appointment id, data), for followed doctors only
        self.followed: set[str] = set()
        self._ticker: asyncio.Task | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever(), name="queue-ticker")

    async def stop(self) -> None:
        await cancel_and_wait(self._ticker)
        self._ticker = None
        for doctor_id in list(self.actors):
            await self._evict(doctor_id)

    # -- actors ----------------------------------------------------------------------------------
    def _actor(self, doctor_id: str) -> DoctorActor:
        actor = self.actors.get(doctor_id)
        if actor is None or actor.stopped:
            actor = DoctorActor(doctor_id, store=self.store, hub=self.hub, clock=self.clock,
                                calendar=self.calendar, index=self.appointment_doctor, presence=self.presence,
                                soon_minutes=self.soon_minutes, learning=self.learning,
                                notify=functools.partial(self._notify, doctor_id))
            actor.start()
            self.actors[doctor_id] = actor
            metrics.actors_live.set(len(self.actors))
        return actor

    def live(self, doctor_id: str) -> DoctorActor | None:
        actor = self.actors.get(doctor_id)
        return actor if actor is not None and not actor.stopped else None

    async def snapshot(self, doctor_id: str) -> QueueSnapshot:
        """The doctor's queue now, loading the actor if needed. `DoctorNotFound` for an unknown doctor."""
        actor = self._actor(doctor_id)
        if actor.loaded:
            return actor.view()
        try:
            await actor.ask(EnsureLoaded())
        except DoctorNotFound:
            await self._evict(doctor_id)
            raise
        except ActorStopped:
            return await self.snapshot(doctor_id)
        return actor.view()

    def _notify(self, doctor_id: str, kind: str, appointment_id: str, data: dict) -> None:
        if self.listener is not None and doctor_id in self.followed:
            self.listener(doctor_id, kind, appointment_id, data)

    async def follow(self, doctor_id: str) -> None:
        """Keeps this doctor's queue live for notifications (see the module docstring); loads it now,
        so what is already soon is handed to the listener."""
        if doctor_id in self.followed and self.live(doctor_id) is not None:
            return
        self.followed.add(doctor_id)
        try:
            await self.snapshot(doctor_id)
        except DoctorNotFound:
            self.followed.discard(doctor_id)

    def doctor_of(self, appointment_id: str) -> str | None:
        """Which live queue holds this appointment, with no store round trip."""
        return self.appointment_doctor.get(appointment_id)

    def expectation_for(self, doctor_id: str, appointment_id: str, started_at: datetime) -> Told | None:
        """What the live queue told this appointment's watchers at least 30 minutes before `started_at`:
        the expected start and its range."""
        actor = self.live(doctor_id)
        return actor.expectation_for(appointment_id, started_at) if actor is not None else None

    def presence_changed(self, appointment_ids) -> None:
        """The staff views of the queues holding these appointments re-render their `present` flags."""
        for doctor_id in {self.appointment_doctor.get(a) for a in appointment_ids} - {None}:
            actor = self.live(doctor_id)
            if actor is not None and actor.loaded:
                actor.tell(PresenceChanged(doctor_id))

    # -- the bus end ---------------------------------------------------------------------------
    async def deliver(self, change: AppointmentsChanged | DoctorChanged | DoctorDeleted) -> None:
        """Hands a committed change to the doctor's live actor and waits until its queue has it (and
        to today's ledger, whether or not the doctor's queue is live)."""
        if isinstance(change, AppointmentsChanged):
            self.today.take(change.appointments)
        actor = self.live(change.doctor_id)
        if actor is None:
            return
        try:
            await actor.ask(change)
        except ActorStopped:
            return
        except DoctorNotFound:
            await self._evict(change.doctor_id)
            return
        except Exception:
            # The actor crashed on it and restarted from the store, which already holds the change;
            # make sure the reload finished before the caller reads.
            log.warning("change delivery failed; queue reloaded from the store",
                        extra={"doctor": change.doctor_id})
            try:
                await actor.ask(EnsureLoaded())
            except DoctorNotFound:
                await self._evict(change.doctor_id)
        if isinstance(change, DoctorDeleted):
            await self._evict(change.doctor_id)
        # No gauge refresh here: summing every live queue on each change made a change cost time in
        # the number of doctors (3 ms at 10,000); /metrics and the tick refresh the gauges.

    async def reload_all(self) -> None:
        """Every live queue re-reads the store and pushes whatever it missed."""
        await self.reload(list(self.actors))

    async def reload(self, doctor_ids) -> None:
        """These doctors' live queues re-read the store and push whatever they missed. Today's ledger,
        which may have missed the same changes, is dropped: the next report that reads it loads it."""
        self.today.forget()
        live = [(doctor_id, actor) for doctor_id in doctor_ids
                if (actor := self.live(doctor_id)) is not None]
        results = await asyncio.gather(*(actor.ask(Reload()) for _, actor in live), return_exceptions=True)
        for (doctor_id, _), result in zip(live, results):
            if isinstance(result, DoctorNotFound):
                await self._evict(doctor_id)

    # -- time ------------------------------------------------------------------------------------
    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.tick()
            except Exception:
                log.exception("queue tick failed")

    async def tick(self) -> None:
        """Re-estimates every watched queue and evicts idle unwatched ones. Returns once all are done."""
        now = time.monotonic()
        pending = []
        for doctor_id, actor in list(self.actors.items()):
            if doctor_id in self.followed and actor.loaded and not actor.has_entries:
                self.followed.discard(doctor_id)  # nobody left to notify in this queue
            if actor.watched() or doctor_id in self.followed:
                if actor.loaded:
                    pending.append(actor.ask(Tick()))
            elif now - actor.last_active >= self.idle_seconds and actor.mailbox_depth == 0:
                await self._evict(doctor_id)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self.presence_changed(self.presence.expire())
        self._update_gauges()

    async def _evict(self, doctor_id: str) -> None:
        self.followed.discard(doctor_id)
        actor = self.actors.pop(doctor_id, None)
        if actor is None:
            return
        await actor.stop()
        actor._forget_all()
        metrics.actors_live.set(len(self.actors))

    def _update_gauges(self) -> None:
        metrics.actors_live.set(len(self.actors))
        metrics.queue_waiting_appointments.set(sum(a.waiting_count for a in self.actors.values()))
