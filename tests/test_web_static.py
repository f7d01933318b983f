"""The web app's files as the server hands them out: types, security headers, deep links, and no
way out of web/."""

from __future__ import annotations


import pytest

from handlers.web import CONTENT_SECURITY_POLICY


async def raw_get(harness, path: str) -> tuple[int, str]:
    """A request line sent byte for byte, so no client library tidies the path first."""
    import asyncio
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.decode("latin-1").partition("\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", ["/app/", "/app/waiting/6563a1f0c2b1e4a7d9f01234", "/app/console",
                                  "/app/invite", "/app/no/such/page"])
async def test_every_page_address_answers_the_app(harness, path):
    response = await harness.api.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/app/js/app.js">' in response.text
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-Id"]


async def test_policy_allows_scripts_only_from_the_server_itself(harness):
    response = await harness.api.get("/app/")
    directives = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path, content_type", [
    ("/app/js/app.js", "text/javascript; charset=utf-8"),
    ("/app/js/views/waiting.js", "text/javascript; charset=utf-8"),
    ("/app/app.css", "text/css; charset=utf-8"),
    ("/app/icon.svg", "image/svg+xml"),
])
async def test_files_carry_their_content_type(harness, path, content_type):
    response = await harness.api.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers.get("Etag")


async def test_a_missing_file_is_a_json_404_not_the_app(harness):
    response = await harness.api.get("/app/js/missing.js")
    assert response.status == 404
    assert response.body["code"] == "not_found"
    assert response.headers["Content-Type"].startswith("application/json")


async def test_app_without_slash_redirects(harness):
    response = await harness.api.request("GET", "/app", headers={}, )
    # Tornado's client follows redirects: it ends on the app.
    assert response.status == 200
    assert "<title>MedPharma Queue</title>" in response.text


@pytest.mark.parametrize("path", ["/app/../server/app.py", "/app/%2e%2e/server/app.py",
                                  "/app/..%2fserver%2fapp.py", "/app/js/..%2f..%2fserver%2fapp.py",
                                  "/app/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/app/..%5cserver%5capp.py"])
async def test_dot_dot_cannot_leave_the_web_folder(harness, path):
    status, body = await raw_get(harness, path)
    assert "import" not in body and "root:" not in body
    assert status in (200, 403, 404)
    if status == 200:  # treated as a page address inside the app
        assert '<script type="module" src="/app/js/app.js">' in body


async def test_a_folder_is_never_listed(harness):
    response = await harness.api.get("/app/js/")
    assert response.status == 200
    assert '<script type="module" src="/app/js/app.js">' in response.text  # the app, not a listing
    assert "views" not in response.text


async def test_only_get_and_head(harness):
    response = await harness.api.post("/app/", {})
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.body["code"] == "method_not_allowed"
    head = await harness.api.request("HEAD", "/app/app.css")
    assert head.status == 200


async def test_the_api_is_untouched(harness):
    response = await harness.api.get("/api/nope")
    assert response.status == 404
    assert "Content-Security-Policy" not in response.headers


def test_no_file_of_the_app_names_another_host():
    """Nothing is loaded from elsewhere: no absolute http(s) address in any file the app ships."""
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parent.parent / "web"
    offenders = []
    for file in root.rglob("*"):
        if file.suffix in (".html", ".js", ".css") and re.search(r"(?<![\w.])(https?:)?//[a-z0-9.-]+\.[a-z]{2,}",
                                                                   file.read_text()):
            offenders.append(file.name)
    assert offenders == []




async def test_clinic_json_names_the_clinics_time_zone(harness):
    """The app names the clinic's zone where it differs from the browser's; no API payload has it."""
    from tests.conftest import TEST_CLINIC_ZONE
    response = await harness.api.get("/app/clinic.json")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.body == {"timeZone": TEST_CLINIC_ZONE}
    head = await harness.api.request("HEAD", "/app/clinic.json")
    assert head.status == 200
