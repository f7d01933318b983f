"""Registration, login, the current user, and registration with an invite."""

from __future__ import annotations

import logging

from server import metrics
from server.errors import ApiError, Conflict, NotFound, Unauthorized
from server.store import DuplicateKeyError, to_object_id, utcnow
from server.auth import hash_invite_token
from handlers.base import APIHandler
from schemas.auth import InviteRegisterSchema, LoginSchema, RegisterSchema, public_user
from schemas.base import load_body

log = logging.getLogger("medpharma.auth")

register_schema = RegisterSchema()
login_schema = LoginSchema()
invite_register_schema = InviteRegisterSchema()

EMAIL_TAKEN = "An account with this email already exists."


def new_user(name: str, email: str, password_hash: str, role: str, doctor_id=None) -> dict:
    now = utcnow()
    user = {"name": name, "email": email, "passwordHash": password_hash, "role": role,
            "createdAt": now, "updatedAt": now}
    if doctor_id is not None:
        user["doctorId"] = doctor_id
    return user


class RegisterHandler(APIHandler):
    async def post(self) -> None:
        body = load_body(register_schema, self.json_body())
        services = self.services
        async with services.registration_limits.attempt(self.request.remote_ip):
            if await services.store.user_email_taken(body["email"]):
                raise Conflict(EMAIL_TAKEN, code="email_taken")
            password_hash = await services.hasher.hash(body["password"], client=self.request.remote_ip)
            try:
                user = await services.store.insert_user(
                    new_user(body["name"], body["email"], password_hash, "patient"))
            except DuplicateKeyError:
                raise Conflict(EMAIL_TAKEN, code="email_taken") from None
        self.send_json({"token": services.tokens.issue(user), "user": public_user(user)}, 201)


class LoginHandler(APIHandler):
    async def post(self) -> None:
        body = load_body(login_schema, self.json_body())
        services = self.services
        email = body["email"].strip().lower()
        async with services.login_limits.attempt(email, self.request.remote_ip) as attempt:
            user = await services.store.find_user_by_email(email)
            matched = await services.hasher.verify(body["password"], user["passwordHash"] if user else None,
                                                   client=self.request.remote_ip)
            if matched:
                attempt.forgive()  # only failures count
        if not matched:
            metrics.auth_failures_total.labels("bad_credentials").inc()
            raise Unauthorized("Wrong email or password.", code="invalid_credentials")
        self.send_json({"token": services.tokens.issue(user), "user": public_user(user)})


class MeHandler(APIHandler):
    async def get(self) -> None:
        principal = self.require_user()
        user = await self.services.store.find_user(to_object_id(principal.user_id))
        if user is None:
            raise Unauthorized("This account no longer exists.", code="unknown_user")
        self.send_json({"user": public_user(user)})


class InviteRegisterHandler(APIHandler):
    """Turns an invite into an account. The invite is claimed by one conditional update, so of many
    concurrent uses of one token exactly one creates an account; if that account cannot be created
    (its email got taken meanwhile) the claim is undone, so the invite is not lost."""

    async def post(self) -> None:
        body = load_body(invite_register_schema, self.json_body())
        services = self.services
        store = services.store
        token_hash = hash_invite_token(body["token"])
        invite = await store.find_invite_by_hash(token_hash)
        self._check_usable(invite)
        if await store.user_email_taken(invite["email"]):
            raise Conflict(EMAIL_TAKEN, code="email_taken")
        password_hash = await services.hasher.hash(body["password"], client=self.request.remote_ip)
        claimed = await store.claim_invite(token_hash, utcnow())
        if claimed is None:
            self._check_usable(await store.find_invite_by_hash(token_hash))
            raise ApiError("This invite has already been used.", code="invite_used")
        doctor_id = claimed.get("doctorId") if claimed["role"] == "doctor" else None
        if claimed["role"] == "doctor" and (doctor_id is None or await store.find_doctor(doctor_id) is None):
            await store.release_invite(claimed)
            raise NotFound("The doctor profile this invite was for no longer exists.", code="doctor_not_found")
        try:
            user = await store.insert_user(
                new_user(body["name"], claimed["email"], password_hash, claimed["role"], doctor_id))
        except DuplicateKeyError:
            await store.release_invite(claimed)
            raise Conflict(EMAIL_TAKEN, code="email_taken") from None
        await store.mark_invite_used_by(claimed["_id"], user["_id"])
        log.info("invite redeemed", extra={"inviteId": str(claimed["_id"]), "role": claimed["role"]})
        self.send_json({"token": services.tokens.issue(user), "user": public_user(user)}, 201)

    @staticmethod
    def _check_usable(invite: dict | None) -> None:
        if invite is None:
            metrics.auth_failures_total.labels("invite_invalid").inc()
            raise ApiError("This invite is not valid.", code="invite_invalid")
        if invite.get("usedAt") is not None:
            metrics.auth_failures_total.labels("invite_used").inc()
            raise ApiError("This invite has already been used.", code="invite_used")
        if invite["expiresAt"] <= utcnow():
            metrics.auth_failures_total.labels("invite_expired").inc()
            raise ApiError("This invite has expired.", code="invite_expired")
