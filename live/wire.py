"""Writes one WebSocket text frame from pieces, without joining or copying them.

Tornado's `write_message` turns a `str` into new bytes and then prepends the frame header by
concatenation: two copies of the whole frame per socket. For a 300 KB `queue:state` sent to 10,000
sockets that is gigabytes held until the clients read. Tornado's IOStream keeps any piece larger than
2 KB as a view of the caller's buffer, so writing the header and then the (shared) pieces straight
to the stream sends the same bytes on the wire with one copy of each large piece in the process,
however many sockets are sending it.

Each `IOStream.write` is a `send` system call of its own (and, with Nagle off as Tornado sets it for
WebSockets, a TCP segment of its own the reader must wake for), so a frame up to `JOIN_FRAME_BYTES`
is joined with its header and written at once: copying a few KiB costs less than a second system
call, and the kernel's send buffer (16 KiB to start with on Linux) takes such a frame whole, so the
copy is freed at once. Only larger frames (a long queue's `queue:state`) go out as header + views.

A frame most viewers share (the public `queue:state` of a room) is one `bytes` object handed to every
socket of the fan-out, so its framed form (header + payload) is built once, for the first socket, and
written as is to the others (`_framed`): per socket, no header, no join and no copy of the frame
(issue 29: at 1,000 watchers that was a 5 KB allocation and copy per socket). One entry is kept, the
latest frame (at most `JOIN_FRAME_BYTES` plus its header): a fan-out writes the same frame to every
socket in a row.

This reaches one level below `write_message`, to the stream under the socket, as
`WebSocketProtocol13` does itself (`infra.tornado_compat.frame_stream`). Frames go out unmasked and
uncompressed, as Tornado's own do: the server never negotiates per-message compression.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Sequence

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from infra.tornado_compat import frame_stream, write_now

TEXT_FIN = 0x80 | 0x1  # FIN bit and the text opcode
JOIN_FRAME_BYTES = 16 * 1024  # frames up to this size are written with their header in one call


def frame_header(length: int) -> bytes:
    """RFC 6455 §5.2 header of an unmasked (server-to-client), final text frame."""
    if length < 126:
        return struct.pack("!BB", TEXT_FIN, length)
    if length <= 0xFFFF:
        return struct.pack("!BBH", TEXT_FIN, 126, length)
    return struct.pack("!BBQ", TEXT_FIN, 127, length)


# (payload, header + payload) of the latest shared frame written; replaced as one tuple, so a server on
# another thread (the bench, the tests) never sees one's payload with another's framing.
_framed: tuple[bytes, bytes] = (b"", frame_header(0))


def write_text_pieces(handler: WebSocketHandler, pieces: Sequence[bytes | memoryview]) -> "asyncio.Future[None]":
    """Sends `pieces`, in order, as one text frame. Returns None when the kernel took the whole frame
    at once (`infra.tornado_compat.write_now`), else the stream's future for the rest, which resolves
    when written (failed with StreamClosedError if the socket closes first)."""
    global _framed
    stream = frame_stream(handler)
    if len(pieces) == 1:
        payload = pieces[0]
        latest = _framed
        if latest[0] is payload:  # the frame the previous socket had: framed already
            return _write(stream, latest[1])
        if type(payload) is bytes and len(payload) <= JOIN_FRAME_BYTES:
            latest = _framed = (payload, frame_header(len(payload)) + payload)
            return _write(stream, latest[1])
    length = sum(len(piece) for piece in pieces)
    try:
        if length <= JOIN_FRAME_BYTES:  # one write, one system call (see the module docstring)
            return write_now(stream, frame_header(length) + b"".join(pieces))
        written = stream.write(frame_header(length))
        for piece in pieces:
            written = stream.write(piece)
    except StreamClosedError:
        raise WebSocketClosedError() from None
    return written


def _write(stream, data: bytes) -> "asyncio.Future[None] | None":
    try:
        return write_now(stream, data)
    except StreamClosedError:
        raise WebSocketClosedError() from None
