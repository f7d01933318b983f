"""Who is here: which appointments have their patient watching right now, on any node.

Presence is derived from subscriptions: a patient's socket subscribed to its own appointment's room
counts; the doctor or an admin watching the same room does not. This node's count comes from its
WebSocket handler; other nodes' sets arrive over the bus, each with a lifetime, so the presences of a
node that died expire with it instead of showing a patient as here for good.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable


class Presence:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._local: Counter[str] = Counter()              # appointment id → this patient's sockets here
        self._remote: dict[str, tuple[frozenset[str], float]] = {}  # node → (appointment ids, expires at)

    def is_present(self, appointment_id: str) -> bool:
        if self._local[appointment_id] > 0:
            return True
        now = self.clock()
        return any(appointment_id in ids and expires > now for ids, expires in self._remote.values())

    def local_ids(self) -> frozenset[str]:
        return frozenset(a for a, count in self._local.items() if count > 0)

    def join(self, appointment_id: str) -> bool:
        """One more of the patient's sockets here; True if that made the appointment present."""
        was = self.is_present(appointment_id)
        self._local[appointment_id] += 1
        return not was

    def leave(self, appointment_id: str) -> bool:
        """One fewer; True if that made the appointment absent."""
        self._local[appointment_id] -= 1
        if self._local[appointment_id] <= 0:
            del self._local[appointment_id]
        return not self.is_present(appointment_id)

    def remote(self, node: str, appointment_ids: frozenset[str], lifetime: float) -> set[str]:
        """Another node's current set; returns the appointments whose presence this changed."""
        before = self._remote.get(node, (frozenset(), 0.0))[0]
        known_before = {a: self.is_present(a) for a in before | appointment_ids}
        self._remote[node] = (appointment_ids, self.clock() + lifetime)
        return {a for a, was in known_before.items() if self.is_present(a) != was}

    def expire(self) -> set[str]:
        """Forgets nodes that stopped telling; returns the appointments that are no longer present."""
        now = self.clock()
        gone = [node for node, (_, expires) in self._remote.items() if expires <= now]
        affected: set[str] = set()
        for node in gone:
            affected |= self._remote.pop(node)[0]
        return {a for a in affected if not self.is_present(a)}
