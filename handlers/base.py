"""The base every API handler stands on: JSON in and out, errors as JSON, the caller's identity.

Modelled on JupyterHub's `APIHandler`: one place decides how a body is read, how any exception
becomes `{"message", "code", "details"?}` with the right status, and who the caller is. Bodies are
streamed so that an oversize one is refused with `413` as soon as its size is known, instead of
being buffered first (or cut off by Tornado's own limit with a bare `400`).
"""

from __future__ import annotations

import json
import logging
import time
from http import HTTPStatus
from typing import Any

from tornado import web

from core import metrics
from core.access import Principal
from core.limits import MAX_BODY_BYTES
from infra.auth import TokenError
from core.errors import (ApiError, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType,
                         ValidationFailed)
from infra.logs import request_id_for
from core.values import canonical_id
from domain import audit

log = logging.getLogger("medpharma.http")

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                 415: "unsupported_media_type", 429: "rate_limited", 503: "store_unavailable"}
JSON_MEDIA_TYPE = "application/json"


def allowed_methods(handler_class: type) -> list[str]:
    """The methods a handler class implements, for a 405's `Allow` header."""
    return [m for m in metrics.HTTP_METHODS
            if getattr(handler_class, m.lower(), None) is not getattr(web.RequestHandler, m.lower(), None)]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class NoServerBanner:
    """No answer names the server software (the API contract): Tornado's `RequestHandler.clear()` puts
    `Server: TornadoServer/<version>` on every answer — at the start and again before an error page —
    and then calls `set_default_headers`, where this takes it off (`clear_header`, public API). Mixed
    into every handler class the application routes to (`tests/test_http_conventions.py` checks them
    all); the edge's own answer to an unparsable request never had one (`infra.edge`)."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.clear_header("Server")


class JsonErrors(NoServerBanner):
    """Mixed into every handler (the API's, the web app's files, the socket's upgrade): an `ApiError`
    answers with the status it carries, any error answers the API's JSON shape, and an expected
    answer stays out of the error log. Tornado calls `send_error` with 500 for any exception that is
    not its own `HTTPError`; the status is taken from our error instead."""

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            self.set_header("Allow", ", ".join(allowed_methods(type(self))))
        write_json_error(self, status_code, kwargs.get("exc_info", (None, None, None))[1])

    def log_exception(self, typ, value, tb) -> None:
        if not is_expected_error(value):
            super().log_exception(typ, value, tb)


@web.stream_request_body
class APIHandler(JsonErrors, web.RequestHandler):
    route = "unmatched"

    def initialize(self, route: str = "unmatched") -> None:
        self.route = route
        self._body_parts: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._principal: Principal | None = None
        self._started = time.perf_counter()
        self.request_id = ""
        # False until the request passed prepare(): an answer sent before then goes out before the
        # request's body was read, and Tornado closes the connection after it.
        self._prepared = False

    @property
    def services(self):
        return self.application.settings["services"]

    def set_default_headers(self) -> None:
        """CORS for the browser apps named in CLIENT_ORIGIN: access tokens travel in a header; the
        session cookie (handlers.auth) may travel too, only to these origins."""
        super().set_default_headers()
        origin = self.request.headers.get("Origin")
        if origin and origin.rstrip("/") in self.services.settings.client_origins:
            self.set_header("Access-Control-Allow-Origin", origin.rstrip("/"))
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.set_header("Access-Control-Allow-Headers",
                            "Authorization, Content-Type, X-Request-Id, X-Session-Cookie")
            self.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
            self.set_header("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
            self.set_header("Access-Control-Max-Age", "600")
        self.set_header("Vary", "Origin")

    async def options(self, *args) -> None:
        """CORS preflight."""
        self.set_status(204)
        self.finish()

    # -- request body ----------------------------------------------------------------------------
    def prepare(self) -> None:
        self.request_id = request_id_for(self.request)
        self.set_header("X-Request-Id", self.request_id)
        audit.request_info.set(audit.RequestInfo(self.request_id, self.request.remote_ip))
        self.services.in_flight.add(self)
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            self._too_large = True
            raise PayloadTooLarge()
        self._prepared = True

    def data_received(self, chunk: bytes) -> None:
        if self._too_large:
            return
        self._body_size += len(chunk)
        if self._body_size > MAX_BODY_BYTES:
            self._too_large = True
            self._body_parts.clear()
            return
        self._body_parts.append(chunk)

    def has_body(self) -> bool:
        return self._too_large or bool(b"".join(self._body_parts).strip())

    def json_body(self) -> Any:
        """The parsed body; `400` for empty or invalid JSON, `413` past 64 KiB, `415` for a body that
        says it is something other than JSON (no Content-Type at all is read as JSON)."""
        if self._too_large:
            raise PayloadTooLarge()
        raw = b"".join(self._body_parts)
        if not raw.strip():
            raise ValidationFailed("The request body must be a JSON object.", code="invalid_body")
        content_type = self.request.headers.get("Content-Type")
        if content_type is not None and content_type.split(";")[0].strip().lower() != JSON_MEDIA_TYPE:
            raise UnsupportedMediaType()
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nesting too deep
            raise ValidationFailed("The request body is not valid JSON.", code="invalid_json") from None
        if has_lone_surrogate(data):  # a "\ud800" escape: not Unicode text, cannot be stored or echoed
            raise ValidationFailed("The request body is not valid JSON.", code="invalid_json")
        return data

    # -- caller --------------------------------------------------------------------------------
    @property
    def principal(self) -> Principal | None:
        """The caller if a valid token came with the request; a bad token is an error, not anonymity."""
        if self._principal is None:
            token = bearer_token(self.request.headers.get("Authorization"))
            if token is None:
                return None
            try:
                principal = self.services.tokens.decode(token)
            except TokenError as exc:
                metrics.auth_failures_total.labels(exc.reason).inc()
                message = "Your session has expired; sign in again." if exc.reason == "expired_token" \
                    else "The access token is invalid."
                raise Unauthorized(message, code=exc.reason) from None
            refused = self.services.revocations.is_refused(principal.user_id, principal.session_id)
            if refused is not None:
                metrics.auth_failures_total.labels("bad_token").inc()
                raise Unauthorized("This session has ended; sign in again.", code=refused)
            self._principal = principal
        return self._principal

    def caller_of(self, workflow) -> Principal | None:
        """The caller, admitted by the rule the domain declared for `workflow` (`core.policy`), so a
        stranger hears `401`/`403` before the body is read. The workflow checks it again itself:
        this only decides which answer comes first, never whether the call is allowed."""
        return workflow.rule.admit(self.principal)

    @staticmethod
    def path_id(value: str, what: str = "Resource") -> str:
        """The canonical (lower-case) id in a path; anything that is no id → 404."""
        canonical = canonical_id(value)
        if canonical is None:
            raise NotFound(f"{what} not found.")
        return canonical

    def query_arguments(self) -> dict:
        """Each query parameter once, as text; 400 for a repeated one. Digit strings of plausible size
        become ints, so the schema that validates them can refuse `²` or 5000 digits cleanly."""
        query = {}
        for name, values in self.request.query_arguments.items():
            if len(values) != 1:
                raise ValidationFailed(details={name: ["Give this parameter once."]})
            text = values[0].decode("utf-8", "replace")
            numeric = text.isascii() and text.isdigit() and len(text) <= 20
            query[name] = int(text) if numeric else text
        return query

    # -- answers -------------------------------------------------------------------------------
    def send_page(self, items: list, total: int, params: dict) -> None:
        """A listing's one shape: `{items, total, limit, offset}`."""
        self.send_json({"items": items, "total": total, "limit": params["limit"], "offset": params["offset"]})

    def send_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if not self._prepared:
            self.set_header("Connection", "close")
            self.request_id = self.request_id or request_id_for(self.request)  # refused before prepare()
        super().write_error(status_code, **kwargs)

    def on_connection_close(self) -> None:
        self.services.in_flight.discard(self)

    def on_finish(self) -> None:
        self.services.in_flight.discard(self)
        status = self.get_status()
        method = metrics.method_label(self.request.method)
        metrics.http_requests_total.labels(method, self.route, str(status)).inc()
        metrics.http_request_duration_seconds.labels(method, self.route).observe(
            time.perf_counter() - self._started)


def _refuse_constant(name: str):
    """NaN and Infinity are not JSON (RFC 8259), though Python's parser accepts them."""
    raise ValueError(f"{name} is not valid JSON")


def has_lone_surrogate(value: Any) -> bool:
    """True if any string (or key) in a parsed JSON value holds an unpaired UTF-16 surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def write_json_error(handler: web.RequestHandler, status_code: int, exc: BaseException | None) -> None:
    """The API's error shape for any handler (HTTP or a refused WebSocket upgrade); no internals."""
    request_id = getattr(handler, "request_id", "")
    if request_id:  # send_error() has cleared every header set so far
        handler.set_header("X-Request-Id", request_id)
    if isinstance(exc, ApiError):
        for name, value in exc.headers.items():
            handler.set_header(name, value)
        body = {"message": exc.message, "code": exc.code}
        if exc.details:
            body["details"] = exc.details
    elif isinstance(exc, web.HTTPError) and status_code < 500:
        body = {"message": f"{status_phrase(status_code)}.", "code": _STATUS_CODES.get(status_code, "http_error")}
    else:
        body = {"message": "Something went wrong on our side.", "code": "internal_error"}
    handler.clear_header("Content-Type")
    handler.set_header("Content-Type", "application/json; charset=utf-8")
    handler.finish(json.dumps(body))


def status_phrase(status_code: int) -> str:
    """The standard reason phrase of a status code, or "Error" for one `http.HTTPStatus` does not know."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def is_expected_error(e: BaseException | None) -> bool:
    """An ApiError is an answer the API promises, not a failure: it belongs in the access log only."""
    return isinstance(e, ApiError)


class NotFoundHandler(APIHandler):
    """Every unknown path: the JSON 404, whatever the method. Answered from the method rather than
    from prepare(), so the request is read to its end and the connection can be kept alive."""

    def _not_found(self, *args) -> None:
        raise NotFound("No such endpoint.")

    get = head = post = put = patch = delete = options = _not_found


class LivenessHandler(APIHandler):
    async def get(self) -> None:
        self.send_json({"message": "MedPharma API is running..."})
