"""Logging: one JSON object per line, for requests and lifecycle events alike.

Secrets never reach a line: the access log writes the route pattern and the path without its query
string (so `?token=` cannot leak), never headers or bodies; and a filter masks anything that looks
like a bearer token or a `token=`/`password=` pair in any message, as a last line of defence.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import datetime, timezone

from core.metrics import method_label

_SECRET_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"(?i)((?:token|password|passwordHash|secret)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"),
     r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+"), "[redacted-jwt]"),
]
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Tornado's own access log would print the raw URI, query string and all; ours replaces it.
    logging.getLogger("tornado.access").disabled = True


access_log = logging.getLogger("medpharma.access")


def log_request(handler) -> None:
    """Tornado's `log_function`: one line per request, with no query string and no secrets."""
    request = handler.request
    status = handler.get_status()
    principal = getattr(handler, "_principal", None) or getattr(handler, "viewer", None)
    level = logging.INFO if status < 500 else logging.WARNING if status == 503 else logging.ERROR
    access_log.log(level, "request", extra={
        "requestId": getattr(handler, "request_id", None) or request_id_for(request),
        "method": method_label(request.method),
        "route": getattr(handler, "route", "unmatched"),
        "path": request.path,
        "status": status,
        "durationMs": round(request.request_time() * 1000, 2),
        "userId": principal.user_id if principal is not None else None,
    })


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_for(request) -> str:
    """The caller's X-Request-Id if it is 1-64 characters of `[A-Za-z0-9._-]`, else a new one: an id is
    echoed into answers and every log line of the request, so it must not carry spaces, quotes,
    markup or look-alike Unicode that could forge or garble a line."""
    incoming = request.headers.get("X-Request-Id", "")
    return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
