"""HTTP conventions every endpoint shares: JSON errors, body rules, request ids, CORS."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.conftest import start_harness, stop_harness

MAX_BODY = 64 * 1024
ALLOWED_ORIGIN = "https://app.example.com"


def assert_json(response) -> None:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    assert response.body is not None, response.text


def assert_error(response, status: int, code: str | None = None) -> None:
    assert response.status == status, (response.status, response.text)
    assert_json(response)
    assert set(response.body) <= {"message", "code", "details"}
    assert {"message", "code"} <= set(response.body)
    assert isinstance(response.body["message"], str) and response.body["message"]
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", response.body["code"]), response.body["code"]
    assert "Traceback" not in response.text
    if code is not None:
        assert response.body["code"] == code, response.body


def register_body(**extra) -> dict:
    return {"name": "Pat", "email": f"p-{uuid.uuid4().hex[:10]}@example.org", "password": "patient-password",
            **extra}


# -- basics --------------------------------------------------------------------------------------------
async def test_liveness(harness):
    response = await harness.api.get("/")
    assert response.status == 200
    assert response.body == {"message": "MedPharma API is running..."}
    assert_json(response)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/nothing-here"),
    ("GET", "/api"),
    ("GET", "/api/doctors/"),
    ("POST", "/api/unknown"),
    ("DELETE", "/nope/nope"),
    ("PUT", "/api/auth/register/extra"),
])
async def test_unknown_path_is_json_404(harness, method, path):
    response = await harness.api.request(method, path, body={} if method in ("POST", "PUT") else None)
    assert_error(response, 404, "not_found")
    assert set(response.body) == {"message", "code"}


@pytest.mark.parametrize("method, path", [
    ("DELETE", "/api/auth/login"),
    ("GET", "/api/auth/login"),
    ("GET", "/api/auth/register"),
    ("POST", "/api/auth/me"),
    ("PATCH", "/api/doctors"),
    ("POST", "/"),
])
async def test_wrong_method_is_json_405(harness, method, path):
    response = await harness.api.request(method, path, body={} if method in ("POST", "PATCH") else None)
    assert_error(response, 405, "method_not_allowed")


# -- bodies ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [b"{", b"{'name': 'x'}", b'{"name": }', b"nul", b"\xff\xfe{}", b'{"a": 1} x'])
async def test_invalid_json_is_400(harness, raw):
    response = await harness.api.post("/api/auth/register", raw=raw,
                                      headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("raw", [b"[]", b'[{"name": "x"}]', b'"a string"', b"42", b"true", b"null"])
async def test_non_object_body_is_400(harness, raw):
    response = await harness.api.post("/api/auth/register", raw=raw,
                                      headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_body")


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n"])
async def test_empty_body_on_post_is_400(harness, raw):
    response = await harness.api.post("/api/auth/register", raw=raw)
    assert_error(response, 400, "invalid_body")


async def test_empty_body_on_put_is_400(harness):
    admin = await harness.admin_token()
    doctor = await harness.create_doctor(admin)
    response = await harness.api.put(f"/api/doctors/{doctor['id']}", raw=b"", token=admin)
    assert_error(response, 400, "invalid_body")


def padded_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    skeleton = json.dumps({"name": "", "email": "a@example.org", "password": "patient-password"}).encode()
    filler = size - len(skeleton)
    assert filler > 0
    body = json.dumps({"name": "x" * filler, "email": "a@example.org", "password": "patient-password"}).encode()
    assert len(body) == size
    return body


async def test_body_of_exactly_64_kib_is_read(harness):
    response = await harness.api.post("/api/auth/register", raw=padded_body(MAX_BODY))
    assert_error(response, 400, "validation_error")
    assert set(response.body["details"]) == {"name"}


@pytest.mark.parametrize("size", [MAX_BODY + 1, 100 * 1024, 900 * 1024, 2 * 1024 * 1024])
async def test_body_over_64_kib_with_content_length_is_413(harness, size):
    response = await harness.api.post("/api/auth/register", raw=padded_body(size))
    assert_error(response, 413, "payload_too_large")
    assert set(response.body) == {"message", "code"}
    # The connection and the server are still fine afterwards.
    assert (await harness.api.get("/")).status == 200


async def test_body_over_64_kib_on_an_authenticated_endpoint_is_413(harness):
    admin = await harness.admin_token()
    response = await harness.api.post("/api/doctors", raw=b'{"name": "' + b"x" * (MAX_BODY + 10) + b'"}',
                                      token=admin)
    assert_error(response, 413, "payload_too_large")


async def chunked_post(harness, path: str, chunks: list[bytes]):
    async def producer(write):
        for chunk in chunks:
            await write(chunk)

    request = HTTPRequest(harness.base + path, method="POST", body_producer=producer,
                          headers={"Content-Type": "application/json"}, request_timeout=30)
    return await AsyncHTTPClient().fetch(request, raise_error=False)


async def test_chunked_body_over_64_kib_is_413(harness):
    body = padded_body(MAX_BODY + 4096)
    chunks = [body[i:i + 8192] for i in range(0, len(body), 8192)]
    response = await chunked_post(harness, "/api/auth/register", chunks)
    assert response.code == 413
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body)["code"] == "payload_too_large"


async def test_small_chunked_body_is_accepted(harness):
    """The control for the test above: chunked transfer itself is fine."""
    body = json.dumps(register_body()).encode()
    response = await chunked_post(harness, "/api/auth/register", [body[:10], body[10:]])
    assert response.code == 201, response.body
    assert json.loads(response.body)["user"]["role"] == "patient"


# -- response headers --------------------------------------------------------------------------------
async def test_responses_are_json_for_success_and_errors(harness):
    for response in (await harness.api.get("/"),
                     await harness.api.get("/api/doctors"),
                     await harness.api.post("/api/auth/register", register_body()),
                     await harness.api.get("/api/auth/me"),
                     await harness.api.get("/missing"),
                     await harness.api.delete("/api/auth/login")):
        assert_json(response)
        assert "charset=utf-8" in response.headers["Content-Type"].lower()


async def test_request_id_is_echoed(harness):
    request_id = f"req-{uuid.uuid4().hex}"
    for response in (await harness.api.get("/", headers={"X-Request-Id": request_id}),
                     await harness.api.get("/missing", headers={"X-Request-Id": request_id}),
                     await harness.api.post("/api/auth/login", {"email": "x@example.org", "password": "wrong-pass"},
                                            headers={"X-Request-Id": request_id})):
        assert response.headers["X-Request-Id"] == request_id


async def test_request_id_is_generated_when_missing(harness):
    first = await harness.api.get("/")
    second = await harness.api.get("/missing")
    ids = [first.headers.get("X-Request-Id"), second.headers.get("X-Request-Id")]
    assert all(ids) and ids[0] != ids[1]
    for value in ids:
        assert 8 <= len(value) <= 128 and value.isprintable()


async def test_an_oversize_request_id_is_replaced(harness):
    response = await harness.api.get("/", headers={"X-Request-Id": "x" * 500})
    assert response.headers["X-Request-Id"] and response.headers["X-Request-Id"] != "x" * 500


# -- CORS --------------------------------------------------------------------------------------------
async def test_cors_preflight_from_an_allowed_origin():
    harness = await start_harness(settings={"client_origins": (ALLOWED_ORIGIN,)})
    try:
        preflight = await harness.api.request("OPTIONS", "/api/auth/login", headers={
            "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Authorization"})
        assert preflight.status in (200, 204)
        assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        allowed_headers = preflight.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers
        assert "Origin" in preflight.headers.get("Vary", "")

        actual = await harness.api.get("/api/doctors", headers={"Origin": ALLOWED_ORIGIN})
        assert actual.status == 200
        assert actual.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        error = await harness.api.get("/api/auth/me", headers={"Origin": ALLOWED_ORIGIN})
        assert error.status == 401
        assert error.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    finally:
        await stop_harness(harness)


async def test_cors_preflight_from_another_origin_gets_no_allow_origin():
    harness = await start_harness(settings={"client_origins": (ALLOWED_ORIGIN,)})
    try:
        for origin in ("https://evil.example.com", "http://app.example.com", "https://app.example.com.evil.org",
                       "null"):
            preflight = await harness.api.request("OPTIONS", "/api/auth/login", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST"})
            assert "Access-Control-Allow-Origin" not in preflight.headers, origin
            actual = await harness.api.get("/api/doctors", headers={"Origin": origin})
            assert actual.status == 200
            assert "Access-Control-Allow-Origin" not in actual.headers, origin
    finally:
        await stop_harness(harness)


async def test_no_cors_without_configured_origins(harness):
    preflight = await harness.api.request("OPTIONS", "/api/auth/login", headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


@pytest.mark.parametrize("raw", [
    '{"email": "a@b.org", "password": NaN}',
    '{"email": "a@b.org", "password": Infinity}',
    '{"email": "a@b.org", "password": "x"}'.encode("utf-16"),
    '{"email": "a@b.org", "password": "x"}'.encode("utf-32"),
])
async def test_bodies_that_are_not_utf8_json_are_refused(harness, raw):
    response = await harness.api.post("/api/auth/login", raw=raw)
    assert response.status == 400
    assert response.body["code"] == "invalid_json"


# -- no banner ---------------------------------------------------------------------------------------------
def test_every_handler_class_takes_off_the_server_banner():
    from handlers.base import NoServerBanner, NotFoundHandler
    from server.app import ROUTES
    classes = {handler for _, handler in ROUTES} | {NotFoundHandler}
    assert [cls.__name__ for cls in classes if not issubclass(cls, NoServerBanner)] == []


async def raw_answer(harness, request: bytes) -> tuple[int, dict[str, str]]:
    """The status and headers of the first answer to `request`, sent as it is over a new connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def test_no_answer_names_the_server_software(harness):
    """Every answer named `TornadoServer/6.6.1`: the API's, the web app's files, a 404, a refused socket."""
    token, _ = await harness.register()
    head = "\r\nHost: 127.0.0.1\r\n"
    upgrade = ("GET /ws?token={token} HTTP/1.1" + head + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n")
    requests = {
        "api": f"GET /api/doctors HTTP/1.1{head}\r\n",
        "liveness": f"GET / HTTP/1.1{head}\r\n",
        "api 401": f"GET /api/auth/me HTTP/1.1{head}\r\n",
        "api 404": f"GET /api/nothing-here HTTP/1.1{head}\r\n",
        "api 405": f"DELETE /api/auth/login HTTP/1.1{head}\r\n",
        "preflight": f"OPTIONS /api/auth/login HTTP/1.1{head}Origin: https://app.example.com\r\n\r\n",
        "metrics": f"GET /metrics HTTP/1.1{head}\r\n",
        "description": f"GET /api/openapi.json HTTP/1.1{head}\r\n",
        "static": f"GET /app/app.css HTTP/1.1{head}\r\n",
        "app page": f"GET /app/waiting/123 HTTP/1.1{head}\r\n",
        "static 404": f"GET /app/missing.js HTTP/1.1{head}\r\n",
        "app redirect": f"GET /app HTTP/1.1{head}\r\n",
        "socket without upgrade": f"GET /ws?token={token} HTTP/1.1{head}\r\n",
        "socket without token": upgrade.format(token="", extra=""),
        "socket from another origin": upgrade.format(token=token, extra="Origin: https://evil.example\r\n"),
        "socket": upgrade.format(token=token, extra=""),
        "unparsable": "NOT HTTP AT ALL\r\n\r\n",
    }
    statuses = {}
    for name, request in requests.items():
        status, headers = await raw_answer(harness, request.encode())
        statuses[name] = status
        assert "server" not in headers, (name, headers)
    assert statuses == {"api": 200, "liveness": 200, "api 401": 401, "api 404": 404, "api 405": 405,
                        "preflight": 204, "metrics": 200, "description": 200, "static": 200, "app page": 200,
                        "static 404": 404, "app redirect": 302, "socket without upgrade": 400,
                        "socket without token": 401, "socket from another origin": 403, "socket": 101,
                        "unparsable": 400}
    # Nor does a 304 for a file the browser already has.
    _, first = await raw_answer(harness, f"GET /app/app.css HTTP/1.1{head}\r\n".encode())
    status, headers = await raw_answer(harness, f"GET /app/app.css HTTP/1.1{head}If-None-Match: {first['etag']}\r\n\r\n"
                                       .encode())
    assert status == 304 and "server" not in headers
