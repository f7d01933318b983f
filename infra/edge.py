"""The HTTP server at the network edge: slow or silent connections are closed, and running out of
file descriptors pauses accepting instead of spinning.

- **Timeouts.** A new connection must send its request headers within `HEADER_TIMEOUT_SECONDS`;
  a kept-alive connection may then sit idle `IDLE_TIMEOUT_SECONDS` before its next request, and a
  request body may stall no longer than that. Tornado has one header timer per request (it starts
  when the server begins reading a request), so the first request of a connection gets the short
  one and later requests the idle one.
- **File descriptors.** Tornado's accept handler lets `EMFILE` ("Too many open files") escape; the
  listening socket stays readable, so the loop calls it again at once, forever, logging each time,
  and the server is no use to anyone. Ours stops watching the listening socket for a short,
  growing while (new connections wait in the kernel's backlog), keeps serving the connections it
  has, says so in the log at most once a minute, and resumes by itself once descriptors are free.
- **Malformed requests.** For a request it cannot parse, Tornado writes a bare `400 Bad Request`
  and closes; our streams turn that into the API's JSON error with `Connection: close`.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import time
import weakref

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from core import metrics
from infra.tornado_compat import (BARE_400, connection_params, copy_connection_params, stream_options,
                                  use_connection_params)

log = logging.getLogger("medpharma.server")

HEADER_TIMEOUT_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 60.0
ACCEPT_BATCH = 128  # connections accepted per readiness event (Tornado's own backlog figure)
ACCEPT_PAUSE_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0)  # growing while descriptors stay short
OUT_OF_DESCRIPTORS_LOG_SECONDS = 60.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_MALFORMED_BODY = json.dumps({"message": "The request could not be parsed as HTTP.",
                              "code": "malformed_request"}).encode()
_MALFORMED_ANSWER = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n"
                     b"Content-Length: " + str(len(_MALFORMED_BODY)).encode() + b"\r\nConnection: close\r\n\r\n"
                     + _MALFORMED_BODY)


class EdgeIOStream(IOStream):
    def write(self, data, *args, **kwargs):
        if data == BARE_400:  # only ever written for a request Tornado could not parse
            data = _MALFORMED_ANSWER
        return super().write(data, *args, **kwargs)


class EdgeHTTPServer(HTTPServer):
    def initialize(self, *args, header_timeout: float = HEADER_TIMEOUT_SECONDS,
                   idle_timeout: float = IDLE_TIMEOUT_SECONDS, **kwargs) -> None:
        super().initialize(*args, idle_connection_timeout=header_timeout, body_timeout=idle_timeout, **kwargs)
        self.idle_params = copy_connection_params(connection_params(self), header_timeout=idle_timeout)
        self._served_before: weakref.WeakSet = weakref.WeakSet()
        self._listening: dict[int, socket.socket] = {}
        self._paused: dict[int, object] = {}  # fd → the timeout that resumes it
        self._pause_step: dict[int, int] = {}
        self._last_logged = float("-inf")
        self._stopping = False

    # -- timeouts ------------------------------------------------------------------------------------
    def start_request(self, server_conn, request_conn):
        if server_conn in self._served_before:
            use_connection_params(request_conn, self.idle_params)  # waiting for a kept-alive connection's next request
        else:
            self._served_before.add(server_conn)
        return super().start_request(server_conn, request_conn)

    # -- accepting ----------------------------------------------------------------------------------
    def add_sockets(self, sockets) -> None:
        for sock in sockets:
            sock.setblocking(False)
            self._listening[sock.fileno()] = sock
            self._watch(sock)

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        loop = IOLoop.current()
        for fd, sock in self._listening.items():
            resume = self._paused.pop(fd, None)
            if resume is not None:
                loop.remove_timeout(resume)
            else:
                loop.remove_handler(fd)
            sock.close()
        self._listening.clear()

    def _watch(self, sock: socket.socket) -> None:
        IOLoop.current().add_handler(sock, lambda fd, events: self._accept(sock), IOLoop.READ)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._pause(sock, exc)
                    return
                raise
            self._pause_step.pop(sock.fileno(), None)
            self._serve(connection, address)

    def _serve(self, connection: socket.socket, address) -> None:
        stream = EdgeIOStream(connection, **stream_options(self))
        self.handle_stream(stream, address)

    def _pause(self, sock: socket.socket, exc: OSError) -> None:
        fd = sock.fileno()
        step = self._pause_step.get(fd, 0)
        self._pause_step[fd] = step + 1
        delay = ACCEPT_PAUSE_SECONDS[min(step, len(ACCEPT_PAUSE_SECONDS) - 1)]
        metrics.accept_paused_total.inc()
        now = time.monotonic()
        if now - self._last_logged >= OUT_OF_DESCRIPTORS_LOG_SECONDS:
            self._last_logged = now
            log.error("out of file descriptors: pausing new connections, serving the open ones",
                      extra={"error": errno.errorcode.get(exc.errno, str(exc.errno)),
                             "retryInSeconds": delay})
        loop = IOLoop.current()
        loop.remove_handler(fd)
        self._paused[fd] = loop.call_later(delay, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        self._paused.pop(fd, None)
        if self._stopping or fd not in self._listening:
            return
        self._watch(sock)

