"""Errors that become the API's JSON error shape.

Code anywhere below the handlers raises these: plain exceptions that carry a status and a code, so
the domain, the actors and the CLI never import a web framework. The HTTP edge
(`handlers.base.JsonErrors`) turns them into `{"message", "code", "details"?}` with that status and
keeps them out of the error log; anything else that escapes a handler is a bug and becomes a bare 500
with no internals in the body.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "bad_request"
    message = "The request is invalid."

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 status: int | None = None, details: dict | None = None,
                 headers: dict[str, str] | None = None):
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ValidationFailed(ApiError):
    status = 400
    code = "validation_error"
    message = "Some fields are invalid."


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    message = "Authentication is required."


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFound(ApiError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(ApiError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"
    message = "The request body is larger than 64 KiB."


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"
    message = "Too many requests; try again later."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    message = "Send the request body as JSON (Content-Type: application/json)."


class Busy(ApiError):
    status = 503
    code = "busy"
    message = "The server is busy; try again in a moment."


class StoreUnavailable(ApiError):
    status = 503
    code = "store_unavailable"
    message = "The data store is unavailable; try again shortly."


class StartupError(Exception):
    """The server cannot start (Redis unreachable, say); the message is the one line the CLI prints,
    naming the setting to check."""
