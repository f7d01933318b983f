"""The web app's files: everything under `/app/` is a file from `web/`, or `web/index.html`.

The app routes in the browser, so any address under `/app/` that is not a file (a deep link such as
`/app/waiting/{id}` opened after a reload) gets `index.html`, and the app draws the page. Only
addresses that name a file (they have an extension) can be a `404`. Tornado's static handler already
refuses paths outside the root and never lists a directory; this adds the headers that keep the page
from loading anything it did not come with.
"""

from __future__ import annotations

import json
import os
import posixpath
import time

from tornado import web

from handlers.base import NoServerBanner, write_json_error
from core import metrics
from infra.logs import request_id_for

WEB_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
INDEX = "index.html"
# What the app needs to know about the clinic that no API payload carries: its time zone
# (CLINIC_TIMEZONE), so pages can name it where it differs from the browser's own.
CLINIC_FILE = "clinic.json"

# Scripts, styles, images, fonts and sockets only from this server; no inline script, no framing.
# `connect-src 'self'` covers ws:// and wss:// to the same host in CSP Level 3 browsers.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "font-src 'self'", "connect-src 'self'", "object-src 'none'", "base-uri 'none'",
    "form-action 'self'", "frame-ancestors 'none'",
])


class WebAppHandler(NoServerBanner, web.StaticFileHandler):
    route = "/app/{path}"

    def initialize(self, route: str = "/app/{path}") -> None:  # type: ignore[override]
        super().initialize(path=WEB_ROOT, default_filename=INDEX)
        self.route = route
        self._started = time.perf_counter()

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")  # invite tokens live in /app/invite?token=…
        self.set_header("X-Frame-Options", "DENY")

    def prepare(self) -> None:
        self.request_id = request_id_for(self.request)
        self.set_header("X-Request-Id", self.request_id)

    async def get(self, path: str, include_body: bool = True) -> None:
        if path == CLINIC_FILE:
            calendar = self.application.settings["services"].calendar
            self.set_header("Content-Type", CONTENT_TYPES[".json"])
            self.set_header("Cache-Control", "no-cache")
            if include_body:
                self.finish(json.dumps({"timeZone": calendar.zone.key}))
            else:
                self.finish()
            return
        await super().get(path, include_body)

    def compute_etag(self) -> str | None:
        # clinic.json is written here, not read from a file: no file's version to tag it with.
        return super().compute_etag() if getattr(self, "absolute_path", None) else None

    def parse_url_path(self, url_path: str) -> str:
        """A path that names no file is a page of the app: answer `index.html` for it."""
        normalized = posixpath.normpath("/" + url_path).lstrip("/")
        if normalized.startswith("..") or "\\" in url_path or "\x00" in url_path:
            raise web.HTTPError(404)
        candidate = os.path.join(WEB_ROOT, *normalized.split("/")) if normalized not in ("", ".") else WEB_ROOT
        if os.path.isfile(candidate):
            return normalized
        last = normalized.rsplit("/", 1)[-1]
        if "." in last:  # it names a file, and there is none
            raise web.HTTPError(404)
        return INDEX

    def set_extra_headers(self, path: str) -> None:
        # Revalidate every time (the ETag makes that a 304): a new release is seen at the next load.
        self.set_header("Cache-Control", "no-cache")

    def get_content_type(self) -> str:
        """Explicit types for what the app ships: `nosniff` makes a wrong guess fatal for scripts."""
        extension = os.path.splitext(self.absolute_path)[1].lower()
        return CONTENT_TYPES.get(extension) or super().get_content_type()

    def write_error(self, status_code: int, **kwargs) -> None:
        if status_code == 405:
            self.set_header("Allow", "GET, HEAD")
        write_json_error(self, status_code, kwargs.get("exc_info", (None, None, None))[1])

    def on_finish(self) -> None:
        method = self.request.method if self.request.method in ("GET", "HEAD") else "OTHER"
        metrics.http_requests_total.labels(method, self.route, str(self.get_status())).inc()
        metrics.http_request_duration_seconds.labels(method, self.route).observe(
            time.perf_counter() - self._started)


CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}


class AppRedirectHandler(NoServerBanner, web.RequestHandler):
    """`/app` → `/app/`, so relative addresses inside the app resolve the same way."""

    def initialize(self, route: str = "/app") -> None:
        self.route = route

    def get(self) -> None:
        self.redirect("/app/", permanent=False)
