"""`GET /ws`: the live queue over a native WebSocket.

Authentication and the Origin check happen before the upgrade, so a refused client gets a plain
`401`/`403` with the JSON error shape, never an open socket. After that every frame is a JSON object;
anything wrong with a frame answers an `error` frame and the socket stays open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone
from functools import partial
from urllib.parse import urlsplit

from tornado import websocket

from actors.rooms import Outgoing, appointment_room, doctor_room
from actors.state_frames import state_message
from handlers.base import JsonErrors, bearer_token
from live.outbox import Outbox
from live.wire import write_text_pieces
from core import metrics
from infra.auth import TokenError
from core.limits import (GOING_AWAY_CLOSE_CODE, MAX_SUBSCRIPTIONS, SESSION_ENDED_CLOSE_CODE,
                         SLOW_READER_CLOSE_CODE)
from infra.logs import request_id_for
from infra.tornado_compat import release_upgrade_state, socket_is_open
from core.errors import Forbidden, NotFound, RateLimited, StoreUnavailable, Unauthorized, ValidationFailed
from core.values import canonical_id, format_utc
from domain import presence
from domain.queues import locate_appointment, watch_doctor

log = logging.getLogger("medpharma.ws")

FRAME_KEYS = {"type", "doctorId", "appointmentId", "token"}
SOCKETS_FULL_RETRY_AFTER_SECONDS = 10


class FrameError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class QueueSocket(JsonErrors, websocket.WebSocketHandler):
    def initialize(self, route: str = "/ws") -> None:
        self.route = route
        self.viewer = None
        self.outbox: Outbox | None = None
        self.rooms: set[str] = set()
        # Own appointments this socket makes "present": a set from the first one on (most sockets
        # never have one, and an empty set costs 216 bytes on each of thousands of sockets).
        self.here_for: set[str] | tuple[()] = ()
        self.drop_reason: str | None = None
        self.request_id = ""
        self._expiry: asyncio.TimerHandle | None = None
        self._holds_user_slot = False

    @property
    def services(self):
        return self.application.settings["services"]

    # -- before the upgrade ------------------------------------------------------------------------
    def prepare(self) -> None:
        self.request_id = request_id_for(self.request)
        self.set_header("X-Request-Id", self.request_id)
        origin = self.request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin):
            metrics.auth_failures_total.labels("forbidden").inc()
            raise Forbidden("This origin may not open a live connection.", code="origin_not_allowed")
        token = bearer_token(self.request.headers.get("Authorization")) or self.get_query_argument("token", None)
        if not token:
            metrics.auth_failures_total.labels("missing_token").inc()
            raise Unauthorized("Send a token: Authorization: Bearer <token>, or ?token=<token>.")
        self.viewer = self._principal_of(token)
        if self.viewer is None:
            raise Unauthorized("The access token is invalid, expired or its session has ended.", code="bad_token")
        self._take_user_slot()

    async def get(self, *args, **kwargs) -> None:
        """A plain GET (no upgrade) gets the API's JSON 400 rather than Tornado's text one."""
        headers = self.request.headers
        upgrade = headers.get("Upgrade", "").lower() == "websocket"
        connection = "upgrade" in (part.strip().lower() for part in headers.get("Connection", "").split(","))
        if not (upgrade and connection):
            raise ValidationFailed("This address speaks WebSocket only: send an upgrade request "
                                   "(Upgrade: websocket, Connection: Upgrade).", code="not_websocket")
        await super().get(*args, **kwargs)

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
        """One user holds at most WS_MAX_PER_USER sockets on this node. The slot is taken before the
        upgrade (so concurrent upgrades cannot all slip in) and given back when the socket ends or
        the upgrade does not happen."""
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

    def on_finish(self) -> None:
        """Tornado finishes the upgrade's HTTP exchange with a 101 too; any other status means no
        socket was opened, so the slot goes back now (an open socket gives it back in on_close)."""
        if self.get_status() != 101:
            self._give_back_user_slot()

    def _origin_allowed(self, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in (o.lower() for o in self.services.settings.client_origins):
            return True
        return urlsplit(origin).netloc == self.request.host.lower()

    def check_origin(self, origin: str) -> bool:
        return True  # already decided in prepare(), with a JSON 403

    # -- the open socket -----------------------------------------------------------------------------
    def open(self) -> None:
        self._release_upgrade()
        self.outbox = Outbox(self.viewer, partial(write_text_pieces, self), self._drop_slow_reader)
        self.outbox.start()
        self.services.sockets.add(self)
        metrics.ws_connections_open.inc()
        self._expire_with_token()

    def _release_upgrade(self) -> None:
        """Lets go of what only the upgrade's HTTP exchange needed (see `release_upgrade_state`): left
        alone it would live as long as the socket, nearly 5 KiB on each idle one
        (`python -m bench.socket_memory`)."""
        release_upgrade_state(self)

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

    async def on_message(self, message: str | bytes) -> None:
        try:
            frame = self._parse(message)
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

    def on_close(self) -> None:
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

    def _close_reason(self) -> str:
        """Why the socket ended, for the metrics. Tornado does not tell a vanished peer, one that
        stopped answering pings and a close frame without a code apart, so those share one label."""
        if self.drop_reason is not None:
            return self.drop_reason
        return "client_closed" if self.close_code is not None else "connection_lost"

    def shutdown(self) -> None:
        """Server going away: 1001, as RFC 6455 asks."""
        self.drop_reason = "shutdown"
        self.close(GOING_AWAY_CLOSE_CODE, "server shutting down")

    def _drop_slow_reader(self) -> None:
        self.drop_reason = "slow_reader"
        log.warning("closing a socket that stopped reading", extra={"user": self.viewer.user_id})
        self.close(SLOW_READER_CLOSE_CODE, "too many unread messages")

    # -- frames ------------------------------------------------------------------------------------
    @staticmethod
    def _parse(message: str | bytes) -> dict:
        if isinstance(message, bytes):
            raise FrameError("bad_frame", "Send text frames holding JSON objects.")
        try:
            frame = json.loads(message)
        except (ValueError, RecursionError):  # RecursionError: nesting too deep
            raise FrameError("bad_json", "The frame is not valid JSON.") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("bad_frame", "A frame is a JSON object with a string \"type\".")
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

    def _still_open(self) -> bool:
        """After an await: a socket that is closing joins no more rooms."""
        return self.outbox is not None and socket_is_open(self)

    def _join(self, room: str) -> None:
        self.rooms.add(room)
        self.services.hub.join(room, self.outbox)

    def _send_event(self, event: str, data: dict | None) -> None:
        if self.outbox is not None:
            self.outbox.offer_event(Outgoing(event, data))
