"""Canaries for `infra/tornado_compat.py`: one per thing the server relies on below Tornado's
documented API, each failing with a message that names the change, and a scan that no other module
reaches below that API itself. Run these first after changing the `tornado` pin in setup.cfg."""

from __future__ import annotations

import ast
import asyncio
import functools
import importlib
import inspect
import logging
import socket
import struct
import sys
import textwrap
from pathlib import Path

import pytest
import tornado
from tornado import web
from tornado.http1connection import HTTP1ConnectionParameters
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders
from tornado.netutil import bind_sockets
from tornado.tcpserver import TCPServer
from tornado.websocket import WebSocketClosedError, WebSocketHandler, websocket_connect

from infra import tornado_compat as compat
from live import wire
from live.wire import JOIN_FRAME_BYTES, write_text_pieces
from live.ws import QueueSocket

ROOT = Path(__file__).resolve().parent.parent
TORNADO_DIR = Path(tornado.__file__).resolve().parent
SEE = "see infra/tornado_compat.py"
PRODUCTION_PACKAGES = ("core", "config", "schemas", "actors", "infra", "domain", "handlers", "live", "server")


def changed(what: str) -> str:
    return f"Tornado {tornado.version} changed {what}; {SEE}"


# -- a throwaway Tornado server on a loopback port ---------------------------------------------------

class Loopback:
    def __init__(self, server: HTTPServer):
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.server = server
        server.add_sockets(sockets)

    async def raw(self, request: bytes) -> bytes:
        """Sends `request` on a new connection and reads until the server closes it."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(request)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()

    async def close(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()


class Hello(web.RequestHandler):
    def get(self) -> None:
        self.write("hello")


class RecordingHTTPServer(HTTPServer):
    """Tornado's own server, recording each `IOStream.write` it makes on a connection."""

    def initialize(self, *args, writes: list, **kwargs) -> None:
        super().initialize(*args, **kwargs)
        self.writes = writes

    def handle_stream(self, stream, address) -> None:
        record_writes(stream, self.writes)
        super().handle_stream(stream, address)


def record_writes(stream, writes: list) -> None:
    write = stream.write

    def recording(data, *args, **kwargs):
        writes.append(bytes(data))
        return write(data, *args, **kwargs)

    stream.write = recording


def test_tornado_is_a_version_these_canaries_were_checked_against():
    checked = {tuple(v.split(".")[:2]) for v in compat.CHECKED_TORNADO_VERSIONS}
    assert tuple(tornado.version.split(".")[:2]) in checked, \
        f"Tornado {tornado.version} is not one of {compat.CHECKED_TORNADO_VERSIONS}: run these canaries, {SEE}"


# -- the HTTP edge ------------------------------------------------------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
], ids=["bad length", "negative length", "header line without a colon"])
async def test_tornado_answers_a_request_it_cannot_parse_with_the_bare_400_in_one_write(request_bytes):
    writes: list[bytes] = []
    loopback = Loopback(RecordingHTTPServer(web.Application([("/", Hello)]), writes=writes))
    try:
        answer = await loopback.raw(request_bytes)
    finally:
        await loopback.close()
    assert answer == compat.BARE_400, changed(f"its answer to a malformed request (now {answer!r})")
    assert writes == [compat.BARE_400], changed(f"how it writes that answer (writes: {writes!r})")


def test_the_connection_parameters_are_the_fields_we_copy():
    arguments = set(inspect.signature(HTTP1ConnectionParameters.__init__).parameters) - {"self"}
    assert arguments == set(compat.CONNECTION_PARAMETER_FIELDS), \
        changed(f"HTTP1ConnectionParameters' arguments (now {sorted(arguments)})")
    values = dict(no_keep_alive=True, chunk_size=3, max_header_size=5, header_timeout=7.0, max_body_size=11,
                  body_timeout=13.0, decompress=True)
    params = HTTP1ConnectionParameters(**values)
    kept = {name: getattr(params, name, "missing") for name in compat.CONNECTION_PARAMETER_FIELDS}
    assert kept == values, changed(f"the attributes HTTP1ConnectionParameters keeps its arguments in ({kept})")
    copy = compat.copy_connection_params(params, header_timeout=60.0)
    assert copy is not params and vars(copy) == {**vars(params), "header_timeout": 60.0}


def test_the_server_keeps_its_connection_parameters_in_conn_params():
    server = HTTPServer(web.Application(), no_keep_alive=True, chunk_size=3, max_header_size=5, idle_connection_timeout=7.0,
                        max_body_size=11, body_timeout=13.0, decompress_request=True)
    params = compat.connection_params(server)
    assert isinstance(params, HTTP1ConnectionParameters), changed("HTTPServer.conn_params")
    kept = {name: getattr(params, name) for name in compat.CONNECTION_PARAMETER_FIELDS}
    assert kept == dict(no_keep_alive=True, chunk_size=3, max_header_size=5, header_timeout=7.0, max_body_size=11,
                        body_timeout=13.0, decompress=True), changed(f"what HTTPServer puts in conn_params ({kept})")


class OneRequestParams(HTTPServer):
    """Gives each request a header limit no request meets, as the edge gives kept-alive ones the idle timeout."""

    def start_request(self, server_conn, request_conn):
        compat.use_connection_params(
            request_conn, compat.copy_connection_params(compat.connection_params(self), max_header_size=16))
        return super().start_request(server_conn, request_conn)


async def test_a_request_is_read_with_the_parameters_start_request_gave_it():
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answers = []
    for server_class in (HTTPServer, OneRequestParams):
        loopback = Loopback(server_class(web.Application([("/", Hello)])))
        try:
            answers.append(await loopback.raw(request))
        finally:
            await loopback.close()
    plain, limited = answers
    assert plain.startswith(b"HTTP/1.1 200 "), plain
    assert limited == b"", changed(f"when a request connection's params are read (answered {limited[:40]!r})")


def test_the_stream_options_are_the_servers_attributes():
    server = TCPServer(max_buffer_size=1234, read_chunk_size=567)
    assert compat.stream_options(server) == {"max_buffer_size": 1234, "read_chunk_size": 567}, \
        changed("the attributes TCPServer keeps max_buffer_size and read_chunk_size in")


# -- the open WebSocket --------------------------------------------------------------------------------

class Canary(WebSocketHandler):
    """Answers each text with that text doubled, twice: by Tornado's `write_message`, then by our frame
    writer (in two pieces), recording the bytes each put on the stream. Opens as QueueSocket does."""

    def initialize(self, seen: dict) -> None:
        self.seen = seen

    def on_finish(self) -> None:
        self.seen.setdefault("events", []).append("on_finish")

    def open(self) -> None:
        request = self.request
        self.seen["events"].append("open")
        self.seen["before release"] = {
            "request.connection": request.connection is not None,
            "request.server_connection": getattr(request, "server_connection", None) is not None,
            "handler._headers": isinstance(getattr(self, "_headers", None), HTTPHeaders),
            "handler.ui": getattr(self, "ui", None) is not None,
        }
        self.seen["open when opened"] = compat.socket_is_open(self)
        compat.release_upgrade_state(self)
        self.writes: list[bytes] = []
        record_writes(compat.frame_stream(self), self.writes)

    def on_message(self, message) -> None:
        if message == "vanish":  # as a peer that vanished looks, before Tornado has noticed
            compat.frame_stream(self).close()
            self.seen["open when vanished"] = compat.socket_is_open(self)
            try:
                compat.frame_stream(self)
            except WebSocketClosedError:
                self.seen["frame_stream when vanished"] = "WebSocketClosedError"
            return
        text = message * 2  # two copies, so the frame writer gets two pieces
        mark = len(self.writes)
        self.write_message(text)
        tornado_bytes = b"".join(self.writes[mark:])
        mark = len(self.writes)
        encoded = message.encode()
        write_text_pieces(self, [encoded, memoryview(encoded)])
        self.seen.setdefault("frames", []).append((tornado_bytes, b"".join(self.writes[mark:])))

    def on_close(self) -> None:
        self.seen["events"].append("on_close")


@pytest.fixture
async def canary():
    seen: dict = {}

    def log_function(handler) -> None:
        seen.setdefault("events", []).append("logged")

    loopback = Loopback(HTTPServer(web.Application([("/ws", Canary, {"seen": seen})], log_function=log_function)))
    errors = ErrorRecords()
    logging.getLogger("tornado").addHandler(errors)
    try:
        yield loopback, seen, errors.records
    finally:
        logging.getLogger("tornado").removeHandler(errors)
        await loopback.close()


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_the_frame_writer_writes_what_tornado_writes_for_the_same_text(canary, monkeypatch):
    loopback, seen, errors = canary
    # The frame's bytes, whichever way they go to the socket (write_now has canaries of its own below).
    monkeypatch.setattr(wire, "write_now", lambda stream, data: stream.write(data))
    client = await websocket_connect(f"ws://127.0.0.1:{loopback.port}/ws")
    # Each header length form (7-bit, 16-bit, 64-bit) and both ways of writing (joined, pieces).
    sizes = [3, 100, 1000, JOIN_FRAME_BYTES // 2 + 10, 40_000]
    for size in sizes:
        text = ("zoë-" * size)[:size]
        client.write_message(text)
        assert await client.read_message() == text * 2
        assert await client.read_message() == text * 2
    client.close()
    assert len(seen["frames"]) == len(sizes)
    for size, (theirs, ours) in zip(sizes, seen["frames"]):
        assert theirs and ours == theirs, changed(f"the bytes write_message puts on the stream for a {size}-character "
                                                  f"text frame (ours {ours[:12]!r}…, Tornado's {theirs[:12]!r}…)")
    assert not errors, [r.getMessage() for r in errors]


class HeldStreams(TCPServer):
    """Keeps each accepted connection's IOStream, to write to it directly."""

    def __init__(self) -> None:
        super().__init__()
        self.streams: asyncio.Queue = asyncio.Queue()

    async def handle_stream(self, stream, address) -> None:
        await self.streams.put(stream)


async def held_stream():
    server = HeldStreams()
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    reader, writer = await asyncio.open_connection("127.0.0.1", sockets[0].getsockname()[1])
    return server, await asyncio.wait_for(server.streams.get(), 5), reader, writer


async def test_write_now_sends_at_once_when_nothing_is_buffered():
    server, stream, reader, writer = await held_stream()
    try:
        assert compat.write_now(stream, b"hello, ") is None, changed("how IOStream keeps its write buffer "
                                                                     "(_write_buffer, _connecting)")
        assert compat.write_now(stream, b"world") is None
        assert await asyncio.wait_for(reader.readexactly(12), 5) == b"hello, world"
    finally:
        writer.close()
        server.stop()
        stream.close()


async def test_write_now_queues_behind_what_the_kernel_did_not_take_and_keeps_the_order():
    """A reader that stops reading: the kernel's buffers fill, the rest of a write waits in Tornado's
    buffer (a future comes back), and every later write queues behind it, in order, through
    `stream.write`; once the reader reads, every byte arrives in the order written."""
    server, stream, reader, writer = await held_stream()
    try:
        chunks, futures = [], []
        for number in range(400):  # 400 x 64 KiB: far more than loopback's socket buffers hold
            chunk = number.to_bytes(4, "big") * (16 * 1024)
            chunks.append(chunk)
            written = compat.write_now(stream, chunk)
            if written is not None:
                futures.append(written)
        assert futures, "the kernel took 25 MiB unread: this test no longer fills its buffers"
        assert not futures[-1].done() and stream._write_buffer, \
            changed("what IOStream.write leaves in _write_buffer when the kernel is full")
        received = await asyncio.wait_for(reader.readexactly(sum(map(len, chunks))), 30)
        assert received == b"".join(chunks)
        await asyncio.wait_for(asyncio.gather(*futures), 5)
    finally:
        writer.close()
        server.stop()
        stream.close()


async def test_write_now_on_a_reset_connection_lets_tornado_close_the_stream():
    server, stream, reader, writer = await held_stream()
    try:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        writer.close()
        await asyncio.sleep(0.1)
        outcomes = []
        for _ in range(3):
            try:
                written = compat.write_now(stream, b"x" * 100_000)
            except Exception as error:  # StreamClosedError, as stream.write raises on a closed stream
                outcomes.append(type(error).__name__)
                break
            if written is not None:
                try:
                    await asyncio.wait_for(written, 5)
                except Exception as error:
                    outcomes.append(type(error).__name__)
                    break
        assert outcomes == ["StreamClosedError"] and stream.closed()
    finally:
        server.stop()
        stream.close()


async def test_the_upgrade_is_over_before_open_and_what_it_leaves_can_be_released(canary):
    loopback, seen, errors = canary
    client = await websocket_connect(f"ws://127.0.0.1:{loopback.port}/ws")
    client.write_message("ping")
    await client.read_message()
    await client.read_message()
    client.write_message("vanish")
    assert await client.read_message() is None  # the connection is gone
    for _ in range(1000):
        if "on_close" in seen["events"]:
            break
        await asyncio.sleep(0.01)
    assert seen["before release"] == dict.fromkeys(seen["before release"], True), \
        changed(f"the upgrade's attributes that release_upgrade_state drops ({seen['before release']})")
    assert seen["events"] == ["logged", "on_finish", "open", "on_close"], \
        changed(f"the order of the upgrade's end and open() ({seen['events']})")
    assert seen["open when opened"] is True, changed("ws_connection / is_closing on an open socket")
    assert seen["open when vanished"] is False, changed("ws_connection / is_closing once the stream is closed")
    assert seen["frame_stream when vanished"] == "WebSocketClosedError"
    assert not errors, changed(f"what it touches after open(): {[r.getMessage() for r in errors]}")


async def test_the_live_socket_never_negotiates_per_message_compression(harness):
    """The frame writer sends uncompressed frames; that is only right while this stays true."""
    assert QueueSocket.get_compression_options is WebSocketHandler.get_compression_options, \
        "QueueSocket enables compression: live/wire.py writes uncompressed frames; see infra/tornado_compat.py"
    token, _ = await harness.register()
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
    try:
        writer.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
        await writer.drain()
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode().lower()
    finally:
        writer.close()
    assert head.startswith("http/1.1 101 "), head
    assert "sec-websocket-extensions" not in head, changed(f"compression negotiation: the 101 agreed to {head!r}")


# -- no other module reaches below Tornado's documented API ---------------------------------------------

UNDOCUMENTED = {"ws_connection", "conn_params", "server_connection", "mask_outgoing", "is_closing", "stream", "params",
                "max_buffer_size", "read_chunk_size"}
"""Tornado attributes without a leading underscore that its documentation does not offer either."""


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_names_in(tree: ast.AST) -> set[str]:
    """The `_names` a piece of code defines or reads as attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and is_private(node.name):
            names.add(node.name)
    return names


TORNADO_PRIVATE = set().union(*(private_names_in(ast.parse(path.read_text())) for path in TORNADO_DIR.rglob("*.py")))


@functools.cache
def tornado_names_of(cls: type) -> set[str]:
    """The `_names` of the Tornado classes `cls` inherits from: ours must neither read nor override them."""
    return set().union(*(private_names_of_class(base) for base in cls.__mro__
                          if base.__module__.split(".")[0] == "tornado"))


@functools.cache
def private_names_of_class(cls: type) -> frozenset[str]:
    return frozenset(private_names_in(ast.parse(textwrap.dedent(inspect.getsource(cls)))))


def tornado_touches(path: Path, module) -> list[str]:
    """Each place in a source file that reaches below Tornado's documented API: a private name of
    Tornado's read on another object, on `self` in a subclass of Tornado's, or overridden there; one of
    the undocumented attributes; a private import; Tornado's bare-400 bytes. Our own `_names` pass."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def touch(node: ast.AST, what: str) -> None:
        found.append(f"{path.name}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tornado":
            found.extend(f"{path.name}:{node.lineno}: imports {a.name}" for a in node.names if is_private(a.name))
        elif isinstance(node, ast.Attribute):
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if node.attr in UNDOCUMENTED or (not on_self and node.attr in TORNADO_PRIVATE):
                touch(node, f".{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in TORNADO_PRIVATE | UNDOCUMENTED):
            touch(node, f"{node.func.id}(…, {node.args[1].value!r})")
        elif isinstance(node, ast.Constant) and node.value == compat.BARE_400:
            touch(node, "Tornado's bare-400 bytes")
    for class_node in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        cls = getattr(module, class_node.name, None)
        theirs = tornado_names_of(cls) if isinstance(cls, type) else set()
        for node in ast.walk(class_node):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in ("self", "cls") and node.attr in theirs):
                touch(node, f"{node.value.id}.{node.attr} (Tornado's)")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in theirs:
                touch(node, f"overrides Tornado's {node.name}")
    return found


def production_modules() -> dict[str, Path]:
    modules = {}
    for package in PRODUCTION_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
            modules[name] = path
    return modules


def loaded(name: str, path: Path):
    """The module, for resolving its classes' bases; a file with no class (a `__main__`) is not run."""
    if not any(isinstance(n, ast.ClassDef) for n in ast.walk(ast.parse(path.read_text()))):
        return None
    return importlib.import_module(name)


@pytest.mark.parametrize("name", sorted(set(production_modules()) - {"infra.tornado_compat"}))
def test_only_the_compat_module_reaches_below_tornados_api(name):
    path = production_modules()[name]
    touches = tornado_touches(path, loaded(name, path))
    assert not touches, f"{name} reaches below Tornado's documented API: {touches}; move it to infra/tornado_compat.py"


def test_the_scan_sees_each_kind_of_touch(tmp_path, monkeypatch):
    """The scan above is not vacuous: a module doing each of the things it forbids is caught, and one
    using only its own `_names` (one of which Tornado also uses elsewhere) is not."""
    source = textwrap.dedent('''
        from tornado.websocket import WebSocketHandler, _websocket_mask
        from tornado.httputil import HTTPHeaders

        class Socket(WebSocketHandler):
            def open(self):
                self._headers = HTTPHeaders()
                self._started = 1  # TCPServer's name, not WebSocketHandler's: ours to use
                getattr(self.ws_connection, "_compressor", None)

            def _break_cycles(self):
                pass

        def bare():
            return b"HTTP/1.1 400 Bad Request\\r\\n\\r\\n"

        def params(server, conn):
            conn.params = server.conn_params
            return conn.stream._read_buffer
    ''')
    (tmp_path / "touchy.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("touchy")
    try:
        touches = {t.split(": ", 1)[1] for t in tornado_touches(tmp_path / "touchy.py", module)}
    finally:
        sys.modules.pop("touchy", None)
    assert touches == {"imports _websocket_mask", "self._headers (Tornado's)", ".ws_connection",
                       "getattr(…, '_compressor')", "overrides Tornado's _break_cycles", "Tornado's bare-400 bytes",
                       ".conn_params", ".params", ".stream", "._read_buffer"}
