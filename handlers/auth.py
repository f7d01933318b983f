"""Registration, login, the current user, and registration with an invite: parse, call, render."""

from __future__ import annotations

from domain import accounts, sessions
from handlers.base import APIHandler
from schemas.auth import (InviteRegisterSchema, LoginSchema, PasswordChangeSchema, RefreshSchema, RegisterSchema,
                          public_user)
from schemas.base import load_body

register_schema = RegisterSchema()
login_schema = LoginSchema()
invite_register_schema = InviteRegisterSchema()
refresh_schema = RefreshSchema()
password_change_schema = PasswordChangeSchema()


class SignInRenderer:
    def render_signed_in(self: APIHandler, signed_in: sessions.SignedIn, status: int = 200) -> None:
        self.send_json({"token": signed_in.token, "refreshToken": signed_in.refresh_token,
                        "user": public_user(signed_in.user)}, status)


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


class RefreshHandler(APIHandler):
    async def post(self) -> None:
        body = load_body(refresh_schema, self.json_body())
        renewed = await sessions.refresh(self.services, body["refreshToken"])
        self.send_json({"token": renewed.token, "refreshToken": renewed.refresh_token})


class LogoutHandler(APIHandler):
    async def post(self) -> None:
        await sessions.logout(self.services, self.caller_of(sessions.logout))
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
