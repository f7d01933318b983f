"""What actors publish, and where: the `Outgoing` message and the names of the rooms.

Actors publish into rooms without knowing what a socket is: they are handed something with
`publish(room, message, key)` and `watched(room)` (`Rooms`), which the socket transport (`live.hub`)
implements. Publishing is synchronous and never waits on a subscriber.

A message may carry a `render(viewer)` instead of fixed data: a doctor's queue looks different to
the doctor (names) and to a patient (no identities, "mine" flags), and the outbox renders it only
when it is about to write, so a socket that falls behind never pays to render values it will skip.
"""

from __future__ import annotations

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


class Rooms(Protocol):
    """Where an actor publishes: `live.hub.Hub` in the server, a recorder in tests."""

    def publish(self, room: str, message: Outgoing, key: str | None = None) -> int:
        """Offers to every member; `key` makes it latest-value, else it is an event. Returns members."""

    def watched(self, room: str) -> bool:
        """Whether anyone listens in this room (an actor with no watchers may be evicted)."""


def doctor_room(doctor_id: str) -> str:
    return f"doctor:{doctor_id}"


def appointment_room(appointment_id: str) -> str:
    return f"appointment:{appointment_id}"
