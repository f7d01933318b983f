"""Rooms: who is listening to which doctor and which appointment.

Actors publish into rooms without knowing what a socket is; anything with `offer` and `offer_event`
can subscribe (the WebSocket handler's outbox does). Publishing is synchronous and never waits on a
subscriber: a slow reader's outbox absorbs or coalesces what it is offered.

A message may carry a `render(viewer)` instead of fixed data: a doctor's queue looks different to
the doctor (names) and to a patient (no identities, "mine" flags), and the outbox renders it only
when it is about to write, so a socket that falls behind never pays to render values it will skip.
"""

from __future__ import annotations

from collections import defaultdict
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for a room. `render(viewer)` returns `(variant, data)`: viewers that share a
    variant (all patients with nothing of their own in a queue, say) share one serialized frame, so a
    change fanned out to many sockets is serialized once per variant, not once per socket.

    `pieces(viewer)`, when given, encodes the frame itself as pieces that join to the same bytes
    (see `actors/state_frames.py`): large frames then share their bytes across viewers, personal
    ones included, all the way to the socket."""

    event: str
    data: dict | None = None
    render: Callable[[Any], tuple[str | None, dict]] | None = None
    pieces: Callable[[Any], Sequence[bytes | memoryview]] | None = None
    _frames: dict = field(default_factory=dict, compare=False, repr=False)

    def payload_for(self, viewer: Any) -> dict:
        if self.render is not None:
            return {"event": self.event, "data": self.render(viewer)[1]}
        if self.data is None:
            return {"event": self.event}  # e.g. {"event": "pong"}
        return {"event": self.event, "data": self.data}

    def pieces_for(self, viewer: Any) -> Sequence[bytes | memoryview]:
        """The frame for this viewer as pieces to write in order (usually one)."""
        if self.pieces is not None:
            return self.pieces(viewer)
        return (self.frame_for(viewer),)

    def frame_for(self, viewer: Any) -> bytes:
        """The JSON text (UTF-8) for this viewer, serialized once per variant."""
        if self.pieces is not None:
            return b"".join(self.pieces(viewer))
        if self.render is None:
            variant, payload = "", None
        else:
            variant, data = self.render(viewer)
            payload = {"event": self.event, "data": data}
        if variant is not None and variant in self._frames:
            return self._frames[variant]
        frame = json.dumps(payload if payload is not None else self.payload_for(viewer),
                           separators=(",", ":")).encode("ascii")
        if variant is not None:
            self._frames[variant] = frame
        return frame


class Subscriber(Protocol):
    viewer: Any

    def offer(self, key: str, message: Outgoing) -> None:
        """Latest-value delivery: replaces an unsent message with the same key."""

    def offer_event(self, message: Outgoing) -> None:
        """Every-value delivery, bounded: a subscriber past its bound is dropped."""


def doctor_room(doctor_id: str) -> str:
    return f"doctor:{doctor_id}"


def appointment_room(appointment_id: str) -> str:
    return f"appointment:{appointment_id}"


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
