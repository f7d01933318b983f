"""Every place the server relies on Tornado below its documented API, in one module.

Each name says why it is needed. `tests/test_tornado_compat.py` holds a canary for each that fails
loudly when a Tornado release changes what it relies on. Checked against Tornado 6.5.0, 6.5.10,
6.6.0 and 6.6.1 (the pin in setup.cfg); re-run those canaries before widening the pin.
"""

from __future__ import annotations

from asyncio import Future

from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders
from tornado.iostream import IOStream
from tornado.websocket import WebSocketClosedError, WebSocketHandler

CHECKED_TORNADO_VERSIONS = ("6.5.0", "6.5.10", "6.6.0", "6.6.1")

# -- the HTTP edge (infra/edge.py) ------------------------------------------------------------------

BARE_400 = b"HTTP/1.1 400 Bad Request\r\n\r\n"
"""What Tornado writes, in one `IOStream.write`, for a request it cannot parse
(`HTTP1Connection._read_message`); the edge's stream swaps exactly these bytes for the JSON error."""

CONNECTION_PARAMETER_FIELDS = ("no_keep_alive", "chunk_size", "max_header_size", "header_timeout",
                               "max_body_size", "body_timeout", "decompress")
"""`HTTP1ConnectionParameters.__init__`'s arguments, each kept as an attribute of the same name."""


def connection_params(server: HTTPServer) -> HTTP1ConnectionParameters:
    """The parameters `HTTPServer.initialize` built for its connections (`conn_params`, undocumented)."""
    return server.conn_params


def copy_connection_params(params: HTTP1ConnectionParameters, **changes) -> HTTP1ConnectionParameters:
    """A copy of `params` with `changes`, field by field: the class has no copy or replace of its own."""
    values = {name: getattr(params, name) for name in CONNECTION_PARAMETER_FIELDS}
    values.update(changes)
    return HTTP1ConnectionParameters(**values)


def use_connection_params(request_conn: HTTP1Connection, params: HTTP1ConnectionParameters) -> None:
    """Gives one request its own limits (a kept-alive connection's idle timeout). `HTTP1Connection`
    reads its `params` attribute (undocumented) for the headers only after `start_request` returned."""
    request_conn.params = params


def stream_options(server: HTTPServer) -> dict:
    """The `IOStream` arguments `TCPServer` gives an accepted connection (attributes its `__init__`
    keeps, undocumented), for an edge that accepts connections itself."""
    return {"max_buffer_size": server.max_buffer_size, "read_chunk_size": server.read_chunk_size}


# -- the open WebSocket (live/) ---------------------------------------------------------------------

def socket_is_open(handler: WebSocketHandler) -> bool:
    """True while frames can be sent: the test `write_message` makes (`ws_connection`, `is_closing`)."""
    connection = handler.ws_connection
    return connection is not None and not connection.is_closing()


def frame_stream(handler: WebSocketHandler) -> IOStream:
    """The stream under an open socket, for writing whole frames to as `WebSocketProtocol13._write_frame`
    does. A server's frames are unmasked, and never compressed since `QueueSocket` leaves
    `get_compression_options` at Tornado's default (None: no permessage-deflate).
    Raises WebSocketClosedError as `write_message` does when the socket is closed or closing."""
    if not socket_is_open(handler):
        raise WebSocketClosedError()
    return handler.ws_connection.stream


def write_now(stream: IOStream, data: bytes) -> "Future[None] | None":
    """`stream.write(data)`, but when nothing waits in the stream's write buffer (a reader that keeps
    up: the usual case) the one `send` is made here, and if the kernel takes every byte there is
    nothing more to do: None is returned, with no Future, no done-callback scheduled on the loop and
    no buffer bookkeeping. That was about a third of Tornado's Python per socket of a fan-out
    (issue 29's profile). What the kernel does not take, and any error, goes to `stream.write` as
    usual: it queues behind nothing, so the bytes stay in order, and Tornado sees the error and
    closes the stream as it would have. Only for plain sockets (`write_to_fd` is `IOStream`'s: a TLS
    stream writes through its SSL object). Reads `_write_buffer` and `_connecting` (private)."""
    if not stream._write_buffer and not stream._connecting and type(stream).write_to_fd is _PLAIN_WRITE_TO_FD:
        try:
            sent = stream.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return stream.write(data)
        if sent == len(data):
            return None
        if sent:
            data = memoryview(data)[sent:]
    return stream.write(data)


_PLAIN_WRITE_TO_FD = IOStream.write_to_fd


def release_upgrade_state(handler: WebSocketHandler) -> None:
    """Drops, from `open()` on, what only the upgrade's HTTP exchange needed. By then Tornado has
    answered 101, called `on_finish` and the log function and detached the stream from HTTP, and it
    reads none of these again. The request object stays (Tornado logs its method and path if a frame
    handler fails); its headers are emptied in place, as the upgrade's suspended frames share them."""
    request = handler.request
    request.connection = None  # the finished HTTP/1.1 exchange: its parser state and futures
    request.server_connection = None  # its connection reader, which ended when the stream left it
    request.headers.clear()  # the upgrade's headers, the access token among them
    handler._headers = HTTPHeaders()  # the 101's headers, already written
    handler.ui = None  # template helpers; a socket renders no templates
