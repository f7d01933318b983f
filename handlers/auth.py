"""Registration, login, the current user, and registration with an invite: parse, call, render.

**The session cookie.** A browser app asks for its refresh token as a cookie instead of in the body
(`X-Session-Cookie: 1` on the sign-in), so no script of the page — nor anything injected into it — can
ever read it: `medpharma_refresh`, `HttpOnly; SameSite=Strict; Path=/api/auth`, `Secure` unless the page
is served over plain http to a loopback address (a developer's machine), living as long as the session.
`POST /api/auth/refresh` without a `refreshToken` field reads it and sets the next one; logout clears it.
A cookie travels with any request the browser sends, so a refresh that rides on it must also say where
it comes from: an `Origin` of this server itself (same host) or one of `CLIENT_ORIGIN`, else `403`.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from core.errors import Forbidden, Unauthorized
from domain import accounts, sessions
from domain.sessions import REFRESH_REFUSED
from handlers.base import APIHandler
from schemas.auth import (InviteRegisterSchema, LoginSchema, PasswordChangeSchema, RefreshSchema, RegisterSchema,
                          public_user)
from schemas.base import load_body

register_schema = RegisterSchema()
login_schema = LoginSchema()
invite_register_schema = InviteRegisterSchema()
refresh_schema = RefreshSchema()
password_change_schema = PasswordChangeSchema()


SESSION_COOKIE = "medpharma_refresh"
SESSION_COOKIE_PATH = "/api/auth"
COOKIE_REQUEST_HEADER = "X-Session-Cookie"


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1, as a Host header names it (a port, brackets allowed)."""
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class SessionCookie:
    """Setting, reading and clearing the session cookie (see the module's docstring)."""

    def wants_session_cookie(self: APIHandler) -> bool:
        return self.request.headers.get(COOKIE_REQUEST_HEADER, "").strip() == "1"

    def _cookie_attributes(self: APIHandler) -> dict:
        secure = not (self.request.protocol == "http" and is_loopback(self.request.host))
        return {"path": SESSION_COOKIE_PATH, "httponly": True, "samesite": "Strict", "secure": secure}

    def set_session_cookie(self: APIHandler, refresh_token: str) -> None:
        self.set_cookie(SESSION_COOKIE, refresh_token, max_age=self.services.settings.refresh_expires_seconds,
                        **self._cookie_attributes())

    def clear_session_cookie(self: APIHandler) -> None:
        self.clear_cookie(SESSION_COOKIE, **self._cookie_attributes())

    def session_cookie(self: APIHandler) -> str | None:
        return self.get_cookie(SESSION_COOKIE) or None

    def check_cookie_origin(self: APIHandler) -> None:
        """A refresh riding on the cookie comes from this server's own pages (an Origin naming the host
        the request was sent to) or from one of CLIENT_ORIGIN; anything else, no Origin included, `403`."""
        origin = (self.request.headers.get("Origin") or "").rstrip("/")
        parts = urlsplit(origin)
        own = parts.scheme in ("http", "https") and parts.netloc.lower() == self.request.host.lower()
        if not (own or origin in self.services.settings.client_origins):
            raise Forbidden("A refresh with the session cookie must come from the app's own pages.",
                            code="origin_not_allowed")


class SignInRenderer(SessionCookie):
    def render_signed_in(self: APIHandler, signed_in: sessions.SignedIn, status: int = 200) -> None:
        answer = {"token": signed_in.token, "refreshToken": signed_in.refresh_token, "user": public_user(signed_in.user)}
        if self.wants_session_cookie():
            self.set_session_cookie(answer.pop("refreshToken"))
        self.send_json(answer, status)


class RegisterHandler(SignInRenderer, APIHandler):
    async def post(self) -> None:
        body = load_body(register_schema, self.json_body())
        self.render_signed_in(await accounts.register(self.services, body, self.request.remote_ip), 201)


class LoginHandler(SignInRenderer, APIHandler):
    async def post(self) -> None:
        body = load_body(login_schema, self.json_body())
        self.render_signed_in(await accounts.sign_in(self.services, body["email"], body["password"],
                                                     self.request.remote_ip))


class MeHandler(APIHandler):
    async def get(self) -> None:
        principal = self.caller_of(accounts.current_user)
        self.send_json({"user": public_user(await accounts.current_user(self.services, principal))})


class InviteRegisterHandler(SignInRenderer, APIHandler):
    async def post(self) -> None:
        body = load_body(invite_register_schema, self.json_body())
        self.render_signed_in(await accounts.redeem_invite(self.services, body, self.request.remote_ip), 201)


class RefreshHandler(SessionCookie, APIHandler):
    async def post(self) -> None:
        body = load_body(refresh_schema, self.json_body()) if self.has_body() else {"refreshToken": None}
        if body["refreshToken"] is not None:
            renewed = await sessions.refresh(self.services, body["refreshToken"])
            self.send_json({"token": renewed.token, "refreshToken": renewed.refresh_token})
            return
        presented = self.session_cookie()
        if presented is None:
            raise Unauthorized(REFRESH_REFUSED, code="invalid_refresh_token")
        self.check_cookie_origin()
        try:
            renewed = await sessions.refresh(self.services, presented)
        except Unauthorized:
            self.clear_session_cookie()  # dead: the browser need not send it again
            raise
        self.set_session_cookie(renewed.refresh_token)
        self.send_json({"token": renewed.token})


class LogoutHandler(SessionCookie, APIHandler):
    async def post(self) -> None:
        await sessions.logout(self.services, self.caller_of(sessions.logout))
        self.clear_session_cookie()
        self.set_status(204)
        self.finish()


class PasswordHandler(APIHandler):
    async def post(self) -> None:
        principal = self.caller_of(accounts.change_password)
        body = load_body(password_change_schema, self.json_body())
        await accounts.change_password(self.services, principal, body["currentPassword"], body["newPassword"],
                                       self.request.remote_ip)
        self.set_status(204)
        self.finish()
