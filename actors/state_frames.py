"""`queue:state` frames encoded once per snapshot and spliced per viewer.

A popular doctor's room (a hotline, a vaccination day: 2,000 waiting, 10,000 watching) made every
watcher with an appointment in the list pay for a whole personal rendering and serialization of the
list, and every watcher's frame was copied again on its way to the socket: gigabytes per change. The
list is the same for every non-staff viewer except their own entries (`"mine":true` and their
`appointmentId`), so the public list is encoded once per snapshot and day, and a personal frame is a
short sequence of pieces: views into that shared encoding, with the viewer's own entries (and
`inConsultation`, if it is theirs) encoded alone in between. The socket writer sends the pieces as
one WebSocket text frame without joining them (`live/wire.py`).

The pieces join to exactly the bytes `json.dumps(payload, separators=(",", ":"))` gives for the
payload `QueueSnapshot.state_variant` describes; tests hold the two to byte equality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any, Sequence

from actors.rooms import Outgoing
from actors.snapshot import QueueSnapshot
from core.access import PATIENT, is_staff_of

EVENT = "queue:state"
Pieces = Sequence[bytes | memoryview]


def encode(payload: Any) -> bytes:
    """The one JSON encoding of every frame (ASCII, compact), as `Outgoing` has always written."""
    return json.dumps(payload, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True, slots=True)
class _PublicDay:
    """One day's public `queue:state`, encoded: `head + body + TAIL`, with each entry's place in body."""

    head: bytes                       # `{"event":…,"data":{…,"inConsultation":…,"list":[`
    body: bytes                       # the entries, comma-separated
    spans: tuple[tuple[int, int], ...]  # (start, end) of each entry in body

    def whole(self) -> bytes:
        return self.head + self.body + _TAIL


_TAIL = b"]}}"


def _envelope_head(data: dict) -> bytes:
    """Everything of the frame before the list's first entry (the list comes last in the data)."""
    encoded = encode({"event": EVENT, "data": {**data, "list": []}})
    assert encoded.endswith(b"[" + _TAIL), "the list must be the last field of queue:state"
    return encoded[:-len(_TAIL)]


def _public_day(snapshot: QueueSnapshot, day: date) -> _PublicDay:
    cache = snapshot._encoded
    found = cache.get(("public", day))
    if found is None:
        _, data = snapshot.state_variant(False, None, day)
        spans, parts, at = [], [], 0
        for entry in data["list"]:
            encoded = encode(entry)
            if parts:
                at += 1  # the comma
            spans.append((at, at + len(encoded)))
            parts.append(encoded)
            at += len(encoded)
        found = cache[("public", day)] = _PublicDay(_envelope_head(data), b",".join(parts), tuple(spans))
    return found


def state_pieces(snapshot: QueueSnapshot, staff: bool, viewer_id: str | None, day: date | None = None) -> Pieces:
    """The encoded `queue:state` this viewer gets, as pieces that join to the whole frame."""
    day = snapshot.today if day is None else day
    if staff:
        cache = snapshot._encoded
        if ("staff", day) not in cache:
            cache[("staff", day)] = encode({"event": EVENT, "data": snapshot.state_variant(True, None, day)[1]})
        return (cache[("staff", day)],)
    if not snapshot.is_personal(viewer_id, day):  # nothing of the viewer's own here: the one shared frame
        cache = snapshot._encoded
        if ("public-whole", day) not in cache:
            cache[("public-whole", day)] = _public_day(snapshot, day).whole()
        return (cache[("public-whole", day)],)
    shared = _public_day(snapshot, day)
    _, data = snapshot.state_variant(False, viewer_id, day)
    head = _envelope_head(data) if data["inConsultation"] is not None and data["inConsultation"]["mine"] \
        else shared.head
    pieces: list[bytes | memoryview] = [head]
    body, at = memoryview(shared.body), 0
    for offset in snapshot.own_offsets(day, viewer_id):
        start, end = shared.spans[offset]
        pieces += [body[at:start], encode(data["list"][offset])]
        at = end
    pieces += [body[at:], _TAIL]
    return tuple(piece for piece in pieces if len(piece))


def state_message(snapshot: QueueSnapshot) -> Outgoing:
    """The doctor room's `queue:state`: names for the doctor and admins only, `mine` for each patient."""

    def render(viewer) -> tuple[str | None, dict]:
        return snapshot.state_variant(is_staff_of(viewer, snapshot.doctor_id), viewer.user_id)

    public: list[Pieces] = []  # the shared frame's pieces, once asked for

    def pieces(viewer) -> Pieces:
        # The usual viewer of a busy room, a patient with nothing of their own in it, is told apart in
        # two checks (a patient is never staff: core.access.relation) and gets the one shared tuple:
        # this runs once per socket of every fan-out (issue 29).
        if viewer.role == PATIENT and not snapshot.is_personal(viewer.user_id, snapshot.today):
            if not public:
                public.append(state_pieces(snapshot, False, None))
            return public[0]
        return state_pieces(snapshot, is_staff_of(viewer, snapshot.doctor_id), viewer.user_id)

    return Outgoing(EVENT, render=render, pieces=pieces)
