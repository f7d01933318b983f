"""`GET /ws`: the live queue over a native WebSocket.

Authentication and the Origin check happen before the upgrade, so a refused client gets a plain
`401`/`403` with the JSON error shape, never an open socket. After that every frame is a JSON object;
anything wrong with a frame answers an `error` frame and the socket stays open.
"""

from __future__ import annotations

import json
from functools import partial

from tornado import websocket

from handlers.base import JsonErrors, bearer_token
from live.outbox import Outbox
from live.session import FRAME_KEYS, FrameError, LiveSession, checked_frame, origin_allowed  # noqa: F401 (FRAME_KEYS: re-exported)
from live.wire import write_text_pieces
from core import metrics
from core.limits import GOING_AWAY_CLOSE_CODE
from infra.logs import request_id_for
from infra.tornado_compat import release_upgrade_state, socket_is_open
from core.errors import Forbidden, Unauthorized, ValidationFailed


class QueueSocket(JsonErrors, LiveSession, websocket.WebSocketHandler):
    """The transport of a `LiveSession` over a native WebSocket: frames are JSON text, written by
    `live.wire` from the pieces the outbox renders."""

    def initialize(self, route: str = "/ws") -> None:
        self.route = route
        self._begin_session_state()
        self.request_id = ""

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

    def on_finish(self) -> None:
        """Tornado finishes the upgrade's HTTP exchange with a 101 too; any other status means no
        socket was opened, so the slot goes back now (an open socket gives it back in on_close)."""
        if self.get_status() != 101:
            self._give_back_user_slot()

    def _origin_allowed(self, origin: str) -> bool:
        return origin_allowed(self.services.settings, origin, self.request.host)

    def check_origin(self, origin: str) -> bool:
        return True  # already decided in prepare(), with a JSON 403

    # -- the open socket -----------------------------------------------------------------------------
    def open(self) -> None:
        self._release_upgrade()
        self.outbox = Outbox(self.viewer, partial(write_text_pieces, self), self._drop_slow_reader)
        self.outbox.start()
        self._session_opened()

    def _release_upgrade(self) -> None:
        """Lets go of what only the upgrade's HTTP exchange needed (see `release_upgrade_state`): left
        alone it would live as long as the socket, nearly 5 KiB on each idle one
        (`python -m bench.socket_memory`)."""
        release_upgrade_state(self)

    async def on_message(self, message: str | bytes) -> None:
        await self.on_frame(message, self._parse)

    def on_close(self) -> None:
        self._session_closed()

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
        return checked_frame(frame)

    def _still_open(self) -> bool:
        """After an await: a socket that is closing joins no more rooms."""
        return self.outbox is not None and socket_is_open(self)
