"""Rooms: who is listening to which doctor and which appointment.

Anything with `offer` and `offer_event` can subscribe (the WebSocket handler's outbox does). Actors
publish here through `actors.rooms.Rooms`; publishing never waits on a subscriber: a slow reader's
outbox absorbs or coalesces what it is offered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

from actors.rooms import Outgoing


class Subscriber(Protocol):
    viewer: Any

    def offer(self, key: str, message: Outgoing) -> None:
        """Latest-value delivery: replaces an unsent message with the same key."""

    def offer_event(self, message: Outgoing) -> None:
        """Every-value delivery, bounded: a subscriber past its bound is dropped."""


class Hub:
    def __init__(self) -> None:
        self._rooms: dict[str, set[Subscriber]] = defaultdict(set)

    def join(self, room: str, subscriber: Subscriber) -> None:
        self._rooms[room].add(subscriber)

    def leave(self, room: str, subscriber: Subscriber) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.discard(subscriber)
            if not members:
                del self._rooms[room]

    def watched(self, room: str) -> bool:
        return room in self._rooms

    def member_count(self, room: str) -> int:
        return len(self._rooms.get(room, ()))

    def publish(self, room: str, message: Outgoing, key: str | None = None) -> int:
        """Offers to every member; `key` makes it latest-value, else it is an event. Returns members."""
        members = self._rooms.get(room)
        if not members:
            return 0
        for subscriber in tuple(members):
            if key is None:
                subscriber.offer_event(message)
            else:
                subscriber.offer(key, message)
        return len(members)
