"""Limits at the HTTP edge: bounded metric labels, honest `Connection: close`, `Allow` on 405, sane
request ids, and `415` for bodies that say they are not JSON."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

HEX_ID = re.compile(r"[0-9a-f]{32}")


PROBE = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


async def read_answer(reader: asyncio.StreamReader) -> str:
    """One whole answer off the connection (by its Content-Length, or to the end without one); its head."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")[:-4]
    assert header(head, "Transfer-Encoding") is None, head
    length = header(head, "Content-Length")
    if length is None:
        await asyncio.wait_for(reader.read(), 10)
    else:
        await asyncio.wait_for(reader.readexactly(int(length)), 10)
    return head


async def raw_exchange(port: int, request: bytes) -> tuple[str, bool]:
    """Sends raw bytes; returns the answer's head and whether the server closed the connection after
    it. Nothing is waited out: a connection the answer says is closing is read to its end (EOF), and
    any other is sent a second request, whose answer shows it was kept."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await read_answer(reader)
        if (header(head, "Connection") or "").lower() == "close":
            try:
                closed = await asyncio.wait_for(reader.read(), 10) == b""
            except asyncio.TimeoutError:
                closed = False  # said close, stayed open
            except ConnectionError:
                closed = True
        else:
            try:
                writer.write(PROBE)
                await writer.drain()
                closed = not (await read_answer(reader)).startswith("HTTP/1.1 200 ")
            except (asyncio.IncompleteReadError, ConnectionError):
                closed = True
    finally:
        writer.close()
    return head, closed


def header(head: str, name: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


# -- Connection: close ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, request_bytes", [
    ("unknown path", b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("unknown path with a body", b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"),
    ("declared body over 64 KiB", b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"),
    ("invented method", b"FROB /api/auth/login HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("wrong method", b"GET /api/auth/login HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("form body", b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: 3\r\n\r\na=b"),
    ("refused upgrade", b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
    ("client asks to close", b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ("malformed request", b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"),
    ("malformed header line", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
])
async def test_the_server_says_connection_close_exactly_when_it_closes(harness, name, request_bytes):
    head, closed = await raw_exchange(harness.port, request_bytes)
    assert head.startswith("HTTP/1.1 "), (name, head)
    says_close = (header(head, "Connection") or "").lower() == "close"
    assert says_close == closed, (name, head, closed)


async def test_an_oversize_body_and_an_invented_method_close_and_say_so(harness):
    head, closed = await raw_exchange(
        harness.port, b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    assert head.startswith("HTTP/1.1 413") and closed and header(head, "Connection") == "close"
    head, closed = await raw_exchange(harness.port, b"FROB /api/doctors HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith("HTTP/1.1 405") and closed and header(head, "Connection") == "close"
    assert HEX_ID.fullmatch(header(head, "X-Request-Id") or "")


async def test_a_404_keeps_the_connection_for_the_next_request(harness):
    head, closed = await raw_exchange(harness.port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith("HTTP/1.1 404") and not closed


# -- 405 Allow -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/api/auth/login", {"POST", "OPTIONS"}),
    ("GET", "/api/auth/register", {"POST", "OPTIONS"}),
    ("PATCH", "/api/doctors", {"GET", "POST", "OPTIONS"}),
    ("POST", "/healthz", {"GET", "OPTIONS"}),
    ("FROB", "/api/auth/me", {"GET", "OPTIONS"}),
])
async def test_405_says_which_methods_the_path_has(harness, method, path, allowed):
    response = await harness.api.request(method, path)
    assert response.status == 405
    assert response.body["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


async def test_allow_lists_what_really_works(harness):
    response = await harness.api.request("DELETE", "/api/auth/login")
    for method in response.headers["Allow"].split(", "):
        tried = await harness.api.request(method, "/api/auth/login",
                                          body={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
                                          if method == "POST" else None)
        assert tried.status != 405, method


# -- X-Request-Id ----------------------------------------------------------------------------------
@pytest.mark.parametrize("given", ["a", "trace-1.2_3", "A" * 64, str(uuid.uuid4())])
async def test_a_well_formed_request_id_is_kept(harness, given):
    response = await harness.api.get("/healthz", headers={"X-Request-Id": given})
    assert response.headers["X-Request-Id"] == given


@pytest.mark.parametrize("given", ["A" * 65, "has space", "quote\"d", "<script>", "tab\tid", "ünïcode",
                                   "semi;colon", "a/b", "{\"json\":1}"])
async def test_any_other_request_id_is_replaced_by_a_new_one(harness, given):
    for path in ("/healthz", "/nope", "/api/auth/me"):
        response = await harness.api.get(path, headers={"X-Request-Id": given})
        assert HEX_ID.fullmatch(response.headers["X-Request-Id"]), (path, response.headers["X-Request-Id"])


# -- 415 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain",
                                          "multipart/form-data; boundary=x", "application/jsonp",
                                          "text/json"])
async def test_a_body_that_is_not_declared_json_is_415(harness, content_type):
    response = await harness.api.post("/api/auth/login", raw=f'{{"email": "{ADMIN_EMAIL}", '
                                      f'"password": "{ADMIN_PASSWORD}"}}', headers={"Content-Type": content_type})
    assert response.status == 415
    assert response.body["code"] == "unsupported_media_type"
    assert set(response.body) == {"message", "code"}


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;charset=UTF-8", None])
async def test_json_with_parameters_or_no_content_type_is_read_as_json(harness, content_type):
    raw = f'{{"email": "{ADMIN_EMAIL}", "password": "{ADMIN_PASSWORD}"}}'.encode()
    port = harness.port
    lines = [b"POST /api/auth/login HTTP/1.1", b"Host: x", b"Connection: close",
             b"Content-Length: " + str(len(raw)).encode()]
    if content_type is not None:
        lines.append(b"Content-Type: " + content_type.encode())
    head, _ = await raw_exchange(port, b"\r\n".join(lines) + b"\r\n\r\n" + raw)
    assert head.startswith("HTTP/1.1 200"), head


# -- metrics stay bounded ------------------------------------------------------------------------------
def series_names(scrape: str) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in scrape.splitlines() if line.startswith("medpharma_http_")]


def series_count(scrape: str) -> int:
    return sum(1 for line in scrape.splitlines() if line.startswith("medpharma_http_"))


@pytest.mark.slow  # a flood of 600 requests: seconds
async def test_invented_methods_and_paths_do_not_grow_the_metrics(harness):
    for i in range(2):  # every series the flood can touch exists before the count
        await harness.api.request(f"WARM{i}", f"/warm/{i}")
        await harness.api.request(f"WARM{i}", "/api/doctors")
        await harness.api.get(f"/warm/{i}")
        await harness.api.get("/metrics")
    before = (await harness.api.get("/metrics")).text
    for i in range(500):
        method = f"X{uuid.uuid4().hex[:12].upper()}"
        await harness.api.request(method, f"/made-up/{uuid.uuid4().hex}/{i}")
        if i % 5 == 0:
            await harness.api.request(method, "/api/doctors")
            await harness.api.get(f"/also-made-up-{i}")
    after = (await harness.api.get("/metrics")).text
    grown = set(series_names(after)) - set(series_names(before))
    assert not grown
    assert series_count(after) == series_count(before)
    assert len(after) < len(before) * 1.1
    assert 'method="OTHER",route="unmatched"' in after
    assert not re.search(r'method="X[0-9A-F]{11}', after)
    assert "/made-up/" not in after


async def test_a_request_tornado_cannot_parse_gets_the_json_error_shape(harness):
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)  # to the end: the server closes
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert header(head.decode(), "Connection") == "close"
    assert header(head.decode(), "Content-Type").startswith("application/json")
    assert json.loads(body) == {"message": "The request could not be parsed as HTTP.", "code": "malformed_request"}
