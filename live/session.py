"""A live session: what a socket does for its viewer, whatever carries its frames.

`/ws` (a native WebSocket, `live.ws`) and `/socket.io/` (the Socket.IO protocol, `live.socketio`) are
two ways of carrying the same session: the token check, who may join which room, presence, the `auth`
refresh, the expiry timer, the per-user slot counted across both endpoints, and the per-socket
`Outbox` the hub offers to. A transport mixes this in and provides only how to write a rendered frame
(the `Outbox`'s writer), `close(code, reason)` and `_still_open()`.

It is a mixin rather than an object of its own so that a `/ws` socket, the performance-tuned path,
costs not one byte or indirection more than before (`python -m bench.socket_memory`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

from actors.rooms import Outgoing, appointment_room, doctor_room
from actors.state_frames import state_message
from core import metrics
from core.errors import Forbidden, NotFound, RateLimited, StoreUnavailable
from core.limits import MAX_SUBSCRIPTIONS, SESSION_ENDED_CLOSE_CODE, SLOW_READER_CLOSE_CODE
from core.values import canonical_id, format_utc
from domain import presence
from domain.queues import locate_appointment, watch_doctor
from infra.auth import TokenError

log = logging.getLogger("medpharma.ws")

FRAME_KEYS = {"type", "doctorId", "appointmentId", "token"}
SOCKETS_FULL_RETRY_AFTER_SECONDS = 10


class FrameError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def origin_allowed(settings: Any, origin: str, host: str) -> bool:
    """The live endpoints' Origin rule: one of `CLIENT_ORIGIN`, or the app's own host."""
    origin = origin.rstrip("/").lower()
    if origin in (o.lower() for o in settings.client_origins):
        return True
    return urlsplit(origin).netloc == host.lower()


def checked_frame(frame: dict) -> dict:
    """A client frame `{"type", ...}` with only known fields, its ids in canonical (lower) case."""
    unknown = set(frame) - FRAME_KEYS
    if unknown:
        raise FrameError("bad_frame", f"Unknown fields: {', '.join(sorted(unknown))}.")
    for key in ("doctorId", "appointmentId"):
        if key in frame:
            canonical = canonical_id(frame[key])
            if canonical is None:
                raise FrameError("bad_frame", f"{key} must be a 24-hex id.")
            frame[key] = canonical  # the same id in either case is the same room
    return frame


class LiveSession:
    """Needs `services`, and the attributes set by `_begin_session_state`."""

    __slots__ = ()

    def _begin_session_state(self) -> None:
        self.viewer = None
        self.outbox = None
        self.rooms: set[str] = set()
        # Own appointments this socket makes "present": a set from the first one on (most sockets
        # never have one, and an empty set costs 216 bytes on each of thousands of sockets).
        self.here_for: set[str] | tuple[()] = ()
        self.drop_reason: str | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._holds_user_slot = False

    # -- admission ---------------------------------------------------------------------------------
    def _principal_of(self, token: str):
        """The token's principal if it may still be used (valid, and its session not ended)."""
        try:
            principal = self.services.tokens.decode(token)
        except TokenError as exc:
            metrics.auth_failures_total.labels(exc.reason).inc()
            return None
        if self.services.revocations.is_refused(principal.user_id, principal.session_id) is not None:
            metrics.auth_failures_total.labels("bad_token").inc()
            return None
        return principal

    def _take_user_slot(self) -> None:
        """One user holds at most WS_MAX_PER_USER sockets on this node, `/ws` and Socket.IO together.
        The slot is taken before the socket opens (so concurrent openings cannot all slip in) and
        given back when it ends or does not open."""
        per_user = self.services.sockets_per_user
        if per_user[self.viewer.user_id] >= self.services.settings.ws_max_per_user:
            metrics.requests_refused_total.labels("ws_per_user").inc()
            raise RateLimited("Too many open live connections for this account; close one first.",
                              code="too_many_sockets",
                              headers={"Retry-After": str(SOCKETS_FULL_RETRY_AFTER_SECONDS)})
        per_user[self.viewer.user_id] += 1
        self._holds_user_slot = True

    def _give_back_user_slot(self) -> None:
        if self._holds_user_slot:
            self._holds_user_slot = False
            per_user = self.services.sockets_per_user
            per_user[self.viewer.user_id] -= 1
            if per_user[self.viewer.user_id] <= 0:
                del per_user[self.viewer.user_id]

    # -- lifetime ----------------------------------------------------------------------------------
    def _session_opened(self) -> None:
        """The socket is open and its outbox started: it joins the node's registry (logout, disable
        and shutdown find it there) and lives no longer than its token."""
        self.services.sockets.add(self)
        metrics.ws_connections_open.inc()
        self._expire_with_token()

    def _expire_with_token(self) -> None:
        """A socket lives no longer than its latest token (the one that opened it, or an `auth` frame's)."""
        if self._expiry is not None:
            self._expiry.cancel()
        if self.viewer.expires_at is not None:
            delay = max(0.0, self.viewer.expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(delay, self._token_expired)

    def _token_expired(self) -> None:
        self.end(SESSION_ENDED_CLOSE_CODE, "token expired; reconnect with a new one", "token_expired")

    def end(self, code: int, reason: str, drop_reason: str = "session_ended") -> None:
        """The server ends the socket: an expired token, an ended session, a disabled account."""
        if self.drop_reason is None:
            self.drop_reason = drop_reason
        self.close(code, reason)

    def _drop_slow_reader(self) -> None:
        self.drop_reason = "slow_reader"
        log.warning("closing a socket that stopped reading", extra={"user": self.viewer.user_id})
        self.close(SLOW_READER_CLOSE_CODE, "too many unread messages")

    def _session_closed(self) -> None:
        """The socket is gone: rooms, presence, slot, timer and outbox are given back."""
        self._give_back_user_slot()
        if self._expiry is not None:
            self._expiry.cancel()
        hub = self.services.hub
        for room in self.rooms:
            if self.outbox is not None:
                hub.leave(room, self.outbox)
        self.rooms.clear()
        for appointment_id in list(self.here_for):
            self._not_here(appointment_id)
        if self.outbox is not None:
            self.outbox.close()
        if self in self.services.sockets:
            self.services.sockets.discard(self)
            metrics.ws_connections_open.dec()
            metrics.ws_sockets_dropped_total.labels(self._close_reason()).inc()

    # -- frames ------------------------------------------------------------------------------------
    async def on_frame(self, raw: Any, parse: Callable[[Any], dict]) -> None:
        """One client message: `parse` makes it a checked frame (`checked_frame`); anything wrong with
        it, or a subscription refused, answers an `error` event and the socket stays open."""
        try:
            frame = parse(raw)
            kind = frame["type"]
            if kind == "ping":
                self._send_event("pong", None)
            elif kind == "queue:subscribe":
                await self._subscribe(frame)
            elif kind == "queue:unsubscribe":
                self._unsubscribe(frame)
            elif kind == "auth":
                self._reauthenticate(frame)
            else:
                raise FrameError("unknown_type", f"Unknown frame type {kind!r}.")
        except FrameError as exc:
            self._send_event("error", {"code": exc.code, "message": exc.message})
        except StoreUnavailable as exc:
            self._send_event("error", {"code": exc.code, "message": exc.message})

    def _reauthenticate(self, frame: dict) -> None:
        """`{"type": "auth", "token"}`: a fresh token of the same user keeps the socket open."""
        token = frame.get("token")
        principal = self._principal_of(token) if isinstance(token, str) else None
        if principal is None or principal.user_id != self.viewer.user_id or principal.role != self.viewer.role:
            raise FrameError("bad_token", "That token is not a valid token of this socket's user.")
        self.viewer = principal
        self.outbox.viewer = principal
        self._expire_with_token()
        self._send_event("auth:ok", {"expiresAt": format_utc(datetime.fromtimestamp(principal.expires_at,
                                                                                     timezone.utc))})

    async def _subscribe(self, frame: dict) -> None:
        doctor_id, appointment_id = frame.get("doctorId"), frame.get("appointmentId")
        if doctor_id is None and appointment_id is None:
            raise FrameError("bad_frame", "Give doctorId and/or appointmentId.")
        new_rooms = {r for r in (doctor_id and doctor_room(doctor_id),
                                 appointment_id and appointment_room(appointment_id)) if r} - self.rooms
        if len(self.rooms) + len(new_rooms) > MAX_SUBSCRIPTIONS:
            raise FrameError("too_many_subscriptions", f"At most {MAX_SUBSCRIPTIONS} subscriptions per socket.")
        if appointment_id is not None:
            await self._subscribe_appointment(appointment_id)
        if doctor_id is not None:
            await self._subscribe_doctor(doctor_id)

    async def _subscribe_doctor(self, doctor_id: str) -> None:
        try:
            snapshot = await watch_doctor(self.services, self.viewer, doctor_id)
        except NotFound:
            raise FrameError("not_found", "Doctor not found.") from None
        if not self._still_open():
            return
        self._join(doctor_room(doctor_id))
        self.outbox.offer(f"queue:state:{doctor_id}", state_message(snapshot))

    async def _subscribe_appointment(self, appointment_id: str) -> None:
        try:
            found = await locate_appointment(self.services, self.viewer, appointment_id)
        except NotFound:
            raise FrameError("not_found", "Appointment not found.") from None
        except Forbidden:
            raise FrameError("forbidden", "You may not follow this appointment.") from None
        if not self._still_open():
            return
        self._join(appointment_room(appointment_id))
        if found.patient_id == self.viewer.user_id and appointment_id not in self.here_for:
            if not self.here_for:
                self.here_for = set()
            self.here_for.add(appointment_id)
            presence.arrived(self.services, appointment_id)
        self.outbox.offer(f"queue:update:{appointment_id}", Outgoing("queue:update", found.update))
        if found.update["status"] == "in_consultation" and found.entry is not None and found.entry.join_url:
            # Joining while already called (a reconnect, a second device): it is still your turn.
            self.outbox.offer(f"turn:now:{appointment_id}", Outgoing(
                "turn:now", {"appointmentId": appointment_id, "joinUrl": found.entry.join_url}))

    def _unsubscribe(self, frame: dict) -> None:
        rooms = [r for r in (frame.get("doctorId") and doctor_room(frame["doctorId"]),
                             frame.get("appointmentId") and appointment_room(frame["appointmentId"])) if r]
        if not rooms:
            raise FrameError("bad_frame", "Give doctorId and/or appointmentId.")
        for room in rooms:
            if room in self.rooms:
                self.rooms.discard(room)
                self.services.hub.leave(room, self.outbox)
        if frame.get("appointmentId") in self.here_for:
            self._not_here(frame["appointmentId"])

    def _not_here(self, appointment_id: str) -> None:
        self.here_for.discard(appointment_id)
        presence.left(self.services, appointment_id)

    def _join(self, room: str) -> None:
        self.rooms.add(room)
        self.services.hub.join(room, self.outbox)

    def _send_event(self, event: str, data: dict | None) -> None:
        if self.outbox is not None:
            self.outbox.offer_event(Outgoing(event, data))
