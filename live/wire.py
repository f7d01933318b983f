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

from infra.tornado_compat import frame_stream

TEXT_FIN = 0x80 | 0x1  # FIN bit and the text opcode
JOIN_FRAME_BYTES = 16 * 1024  # frames up to this size are written with their header in one call


def frame_header(length: int) -> bytes:
    """RFC 6455 §5.2 header of an unmasked (server-to-client), final text frame."""
    if length < 126:
        return struct.pack("!BB", TEXT_FIN, length)
    if length <= 0xFFFF:
        return struct.pack("!BBH", TEXT_FIN, 126, length)
    return struct.pack("!BBQ", TEXT_FIN, 127, length)


def write_text_pieces(handler: WebSocketHandler, pieces: Sequence[bytes | memoryview]) -> "asyncio.Future[None]":
    """Sends `pieces`, in order, as one text frame; the returned future resolves when written (it
    is the stream's own: already done when the kernel took the frame at once, failed with
    StreamClosedError if the socket closes first)."""
    stream = frame_stream(handler)
    length = sum(len(piece) for piece in pieces)
    try:
        if length <= JOIN_FRAME_BYTES:  # one write, one system call (see the module docstring)
            return stream.write(frame_header(length) + b"".join(pieces))
        written = stream.write(frame_header(length))
        for piece in pieces:
            written = stream.write(piece)
    except StreamClosedError:
        raise WebSocketClosedError() from None
    return written
