"""`/socket.io/`: the live queue for clients written for the original design, over Socket.IO.

python-socketio speaks the protocol (Socket.IO v5 over Engine.IO v4, WebSocket and long-polling) in
its Tornado mode, on the server's own port and event loop; everything else is the `/ws` session
(`live.session.LiveSession`): the same token check, Origin rule, per-user slot (both endpoints count
together towards WS_MAX_PER_USER), rooms, presence, `auth` refresh, expiry, and the same per-socket
`Outbox` the hub offers each change to. A change is rendered once for both endpoints: the outbox's
writer turns the JSON frame `/ws` would send, `{"event":E,"data":D}`, into the Socket.IO event packet
`2["E",D]` by splicing its bytes (`event_packet`), once per distinct frame.

Socket.IO has no close codes: where `/ws` closes with 4001/4003/1001, a Socket.IO client is sent an
`error` event whose `code` says why (`session_ended`, `token_expired`, `account_disabled`,
`shutdown`) and is then disconnected by the server (its client does not reconnect by itself).

A client on the WebSocket transport from its first request (what the original design's clients do)
is written to directly, as `/ws` is: when nothing of Engine.IO's waits to be sent to it, the frame goes
to its Tornado stream with its header, framed once per distinct frame for every client that gets it
(`_framed_event`), and the outbox waits for a write the kernel did not take at once, so a slow
reader coalesces latest values as on `/ws`. Otherwise (long-polling, a connection upgraded from it,
or Engine.IO holding packets of its own) the packet goes into Engine.IO's queue, behind them, and
its writer task sends it (issue 29: at 1,000 clients the queue, the task switch and the two copies
of each packet per client cost more than python-socketio's own room emit).

A reader that stops reading on the queue path: python-socketio queues packets per client without a
bound, so the writer looks at that queue (long-polling: packets wait there for the next poll) and
the endpoint's WebSocket counts frames Tornado has not yet flushed; past `MAX_UNSENT_PACKETS` either
way the client is dropped, as `/ws` drops one with 1013. Nothing an actor does ever waits for it.

Below python-socketio's documented API (each with a canary in `tests/test_socketio_compat.py`, run it
before widening the pin in setup.cfg; checked against `CHECKED_VERSIONS`):
- `sio.eio.sockets[eio_sid]`, Engine.IO's session of a client, and of it `closed`, `closing` and
  `queue` (an `asyncio.Queue` of `engineio.packet.Packet`s its writer sends in order; `None` ends a
  waiting long-poll): the outbox's frames go straight into it, already encoded;
- `sio.manager.eio_sid_from_sid(sid, "/")`: which Engine.IO session carries a Socket.IO client;
- `sio.eio.handlers["disconnect"]`: the handler python-socketio registered, wrapped by ours;
- the Tornado driver writes each packet with the handler's `write_message` and does not wait for it
  (so `SocketIOHandler.write_message` sees, and bounds, every frame Tornado holds unflushed), and the
  connect event's environ carries the request's handler as `environ["tornado.handler"]`; a session's
  queue is empty only once its writer has handed every packet to `write_message` (the direct path's
  order rests on it), and `upgrading` is true while a polling client moves to WebSocket.

The Origin check is made when the Socket.IO connection is asked for rather than by Engine.IO's own
`cors_allowed_origins`, so a refused client is told why (`connect_error` data `{code, message}`, as
for a missing token); the CORS answer headers of long-polling are given to allowed origins only.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Sequence
from urllib.parse import parse_qs

import socketio
from engineio import packet as eio_packet
from socketio.exceptions import ConnectionRefusedError as SocketIORefused

from core import metrics
from core.errors import ApiError, Forbidden, Unauthorized
from core.limits import MAX_FRAME_BYTES, PING_INTERVAL_SECONDS, PING_TIMEOUT_SECONDS, SLOW_READER_CLOSE_CODE
from handlers.base import JsonErrors, bearer_token
from infra.logs import request_id_for
from infra.tornado_compat import frame_stream, socket_is_open, write_now
from live.outbox import MAX_PENDING_EVENTS, Outbox
from live.session import FrameError, LiveSession, checked_frame, origin_allowed
from live.wire import frame_header

log = logging.getLogger("medpharma.ws")

CHECKED_VERSIONS = {"python-socketio": ("5.16", "5.17", "5.18"),  # major.minor, see above (5.11 fails them)
                    "python-engineio": ("4.12", "4.14", "4.15")}
PATH = "/socket.io/"
MAX_UNSENT_PACKETS = MAX_PENDING_EVENTS  # per client, queued or unflushed; past it the client is dropped
_HEAD = b'{"event":"'
_DATA = b',"data":'
# Why a Socket.IO client was disconnected, told in an `error` event first (where /ws has close codes).
TOLD_REASONS = {"session_ended", "token_expired", "account_disabled", "shutdown"}


@functools.lru_cache(maxsize=64)
def _packet_of(frame: bytes) -> str:
    if not frame.startswith(_HEAD):
        raise ValueError("not an event frame")
    end = frame.index(b'"', len(_HEAD))
    name = frame[len(_HEAD) - 1:end + 1]  # the event's name, quoted, as JSON already wrote it
    rest = frame[end + 1:]
    if rest == b"}":
        return "2[" + name.decode("ascii") + "]"
    if not (rest.startswith(_DATA) and rest.endswith(b"}")):
        raise ValueError("not an event frame")
    return "2[" + name.decode("ascii") + "," + rest[len(_DATA):-1].decode("utf-8") + "]"


def _framed(frame: bytes, packet_of=_packet_of) -> bytes:
    """The WebSocket text frame carrying Engine.IO's MESSAGE (`4`) of the Socket.IO packet of `frame`."""
    payload = ("4" + packet_of(frame)).encode()
    return frame_header(len(payload)) + payload


_framed_event = functools.lru_cache(maxsize=64)(_framed)
"""The same, built once per distinct frame: a frame shared by many clients is one bytes object."""


def framed_event(pieces: Sequence[bytes | memoryview]) -> bytes:
    """The WebSocket frame for the `/ws` frame `pieces`: cached when it is a shared frame (one bytes
    object), built alone when it is a viewer's own (pieces around their entries: no other client gets it)."""
    if len(pieces) == 1 and isinstance(pieces[0], bytes):
        return _framed_event(pieces[0])
    return _framed(b"".join(pieces), _packet_of.__wrapped__)


def event_packet(pieces: Sequence[bytes | memoryview]) -> str:
    """The Socket.IO EVENT packet (default namespace) carrying what the `/ws` frame `pieces` carries:
    `{"event":"E","data":D}` → `2["E",D]`, `{"event":"E"}` → `2["E"]`. Frames shared by many viewers
    are the same bytes object, so each is converted once (the cache), however many clients get it."""
    frame = pieces[0] if len(pieces) == 1 and isinstance(pieces[0], bytes) else b"".join(pieces)
    return _packet_of(frame)


class SocketIOSession(LiveSession):
    """One Socket.IO connection's live session; its transport is python-socketio."""

    __slots__ = ("services", "endpoint", "sid", "eio_sid", "handler", "viewer", "outbox", "rooms", "here_for",
                 "drop_reason", "_expiry", "_holds_user_slot", "_closing")

    def __init__(self, endpoint: "Endpoint", sid: str, eio_sid: str):
        self.services = endpoint.services
        self.endpoint = endpoint
        self.sid = sid
        self.eio_sid = eio_sid
        self.handler: SocketIOHandler | None = None  # the WebSocket it came on, when it came on one
        self._begin_session_state()
        self._closing = False

    def admit(self, environ: dict, auth: Any) -> None:
        """The checks `/ws` makes before its upgrade, in the same order; raises the same ApiErrors."""
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not origin_allowed(self.services.settings, origin, environ.get("HTTP_HOST", "")):
            metrics.auth_failures_total.labels("forbidden").inc()
            raise Forbidden("This origin may not open a live connection.", code="origin_not_allowed")
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            token = (bearer_token(environ.get("HTTP_AUTHORIZATION"))
                     or parse_qs(environ.get("QUERY_STRING", "")).get("token", [None])[0])
        if not token:
            metrics.auth_failures_total.labels("missing_token").inc()
            raise Unauthorized("Send a token: auth: {token}, Authorization: Bearer <token>, or ?token=<token>.")
        self.viewer = self._principal_of(token)
        if self.viewer is None:
            raise Unauthorized("The access token is invalid, expired or its session has ended.", code="bad_token")
        self._take_user_slot()

    def open(self) -> None:
        self.outbox = Outbox(self.viewer, self._write, self._drop_slow_reader)
        self.outbox.start()
        self._session_opened()

    # -- the transport: write, close ---------------------------------------------------------------
    def _write(self, pieces: Sequence[bytes | memoryview]) -> "asyncio.Future[None] | None":
        socket = self.endpoint.sio.eio.sockets.get(self.eio_sid)
        if socket is None or socket.closed or socket.closing:
            raise ConnectionError("the Socket.IO client is gone")  # the outbox stops; disconnect cleans up
        if self.handler is not None and not socket.upgrading and socket.queue.empty():
            return write_now(frame_stream(self.handler), framed_event(pieces))  # see the module docstring
        if socket.queue.qsize() >= MAX_UNSENT_PACKETS:
            self.outbox.close()
            self._drop_slow_reader()
            return None
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=event_packet(pieces)))
        return None

    def close(self, code: int, reason: str) -> None:
        """Ends the connection from the server's side (the reason is in `drop_reason`)."""
        if self._closing:
            return
        self._closing = True
        if self.outbox is not None:
            self.outbox.close()
        if self.drop_reason in TOLD_REASONS:
            socket = self.endpoint.sio.eio.sockets.get(self.eio_sid)
            if socket is not None and not socket.closed:
                told = {"code": self.drop_reason, "message": reason[:1].upper() + reason[1:] + "."}
                socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE,
                                                          data=_packet_of(_error_frame(told))))
        self.endpoint.background(self.endpoint.sio.disconnect(self.sid))
        if code == SLOW_READER_CLOSE_CODE:  # it does not read the disconnect either: drop the transport
            self.endpoint.background(self.endpoint.sio.eio.disconnect(self.eio_sid))

    def shutdown(self) -> None:
        self.end(0, "server shutting down", "shutdown")

    def _still_open(self) -> bool:
        return self.outbox is not None and not self._closing

    def _close_reason(self) -> str:
        return self.drop_reason or "connection_lost"


def _error_frame(data: dict) -> bytes:
    from actors.rooms import Outgoing
    return Outgoing("error", data).frame_for(None)


class Endpoint:
    """The app's Socket.IO server and its sessions (one per application, made at its first request)."""

    def __init__(self, services: Any):
        self.services = services
        self.sio = socketio.AsyncServer(
            async_mode="tornado", transports=["polling", "websocket"],
            cors_allowed_origins=[],  # the Origin is judged at connect (see the module docstring)
            ping_interval=PING_INTERVAL_SECONDS, ping_timeout=PING_TIMEOUT_SECONDS,
            max_http_buffer_size=MAX_FRAME_BYTES, async_handlers=False,  # in order, one at a time, as /ws
            logger=False, engineio_logger=False)
        self.sessions: dict[str, SocketIOSession] = {}
        self._tasks: set[asyncio.Task] = set()
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("*", self._event)
        socketio_sees_closed = self.sio.eio.handlers["disconnect"]

        async def closed(eio_sid: str, *reason: Any) -> None:
            """An Engine.IO session closed: a long-poll still waiting on it gets its (empty) answer
            now, not when Engine.IO's ping timeout (40 s) would end it."""
            await socketio_sees_closed(eio_sid, *reason)
            socket = self.sio.eio.sockets.get(eio_sid)
            if socket is not None:
                socket.queue.put_nowait(None)

        self.sio.eio.on("disconnect", closed)

    def background(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        session = SocketIOSession(self, sid, self.sio.manager.eio_sid_from_sid(sid, "/"))
        try:
            session.admit(environ, auth)
        except ApiError as error:
            raise SocketIORefused(error.message, {"code": error.code, "message": error.message}) from None
        handler = environ.get("tornado.handler")
        if isinstance(handler, SocketIOHandler) and socket_is_open(handler):
            session.handler = handler  # a WebSocket from the first request: written to directly
        self.sessions[sid] = session
        session.open()

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        if session.drop_reason is None:
            session.drop_reason = ("client_closed" if reason == self.sio.reason.CLIENT_DISCONNECT
                                   else "connection_lost")
        session._closing = True
        session._session_closed()

    async def _event(self, event: str, sid: str, *args: Any) -> None:
        session = self.sessions.get(sid)
        if session is not None and not session._closing:
            await session.on_frame((event, args), _parse)


def _parse(raw: tuple[str, tuple]) -> dict:
    """An emitted event and its arguments → the frame `/ws` would have received."""
    event, args = raw
    if len(args) > 1 or (args and not isinstance(args[0], dict)):
        raise FrameError("bad_frame", "Send one object with the event: {doctorId?, appointmentId?} or {token}.")
    data = dict(args[0]) if args else {}
    if "type" in data:
        raise FrameError("bad_frame", "Unknown fields: type.")
    data["type"] = event
    return checked_frame(data)


async def stop(application: Any, seconds: float = 1.0) -> None:
    """Ends python-socketio's background work (Engine.IO pings, its session sweeper) when the server
    stops, after the sessions were ended the usual way; a client that stopped polling is not waited
    for beyond `seconds`."""
    endpoint = application.settings.get("socketio")
    if endpoint is not None:
        try:
            await asyncio.wait_for(endpoint.sio.shutdown(), seconds)
        except asyncio.TimeoutError:
            log.warning("some Socket.IO clients did not close in time")


def endpoint_of(application: Any) -> Endpoint:
    settings = application.settings
    endpoint = settings.get("socketio")
    if endpoint is None:
        endpoint = settings["socketio"] = Endpoint(settings["services"])
    return endpoint


class _EachApplication:
    """What python-socketio's Tornado handler is bound to: each request is handed to the Socket.IO
    server of the application it came to (tests and the bench run several in one process)."""

    cors_allowed_origins = "*"  # the handler's own check_origin is replaced below

    @property
    def eio(self):
        return self

    async def handle_request(self, handler):
        return await endpoint_of(handler.application).sio.handle_request(handler)


class SocketIOHandler(JsonErrors, socketio.get_tornado_handler(_EachApplication())):
    """`/socket.io/`: python-socketio's handler, with the app's request id, CORS answer headers for
    allowed origins, and a bound on frames Tornado holds unflushed for a client that stopped reading."""

    def initialize(self, route: str = PATH) -> None:
        self.route = route
        self.request_id = ""
        self._unflushed = 0

    @property
    def services(self):
        return self.application.settings["services"]

    def prepare(self) -> None:
        self.request_id = request_id_for(self.request)
        self.set_header("X-Request-Id", self.request_id)
        origin = self.request.headers.get("Origin")
        if origin is not None and origin_allowed(self.services.settings, origin, self.request.host):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.set_header("Vary", "Origin")
            if self.request.method == "OPTIONS":
                self.set_header("Access-Control-Allow-Methods", "OPTIONS, GET, POST")
                asked = self.request.headers.get("Access-Control-Request-Headers")
                if asked:
                    self.set_header("Access-Control-Allow-Headers", asked)

    def check_origin(self, origin: str) -> bool:
        return True  # judged when the Socket.IO connection is asked for, so the refusal carries its code

    def get_compression_options(self) -> None:
        return None  # as /ws: no per-message compression (python-socketio's handler turns it on)

    def write_message(self, message, binary: bool = False):
        written = super().write_message(message, binary)
        if not written.done():
            self._unflushed += 1
            if self._unflushed > MAX_UNSENT_PACKETS:
                log.warning("closing a Socket.IO WebSocket that stopped reading")
                self.close(SLOW_READER_CLOSE_CODE, "too many unread messages")
            written.add_done_callback(self._flushed)
        return written

    def _flushed(self, written) -> None:
        self._unflushed -= 1
        if not written.cancelled():
            written.exception()  # a write to a closed stream is no error here (the close is handled)
