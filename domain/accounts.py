"""Accounts: registration, sign-in, invites and the first admin.

An invite is claimed by one conditional update, so of many concurrent uses of one token exactly one
creates an account; if that account cannot be created (its email got taken meanwhile, the doctor
profile was deleted) the claim is undone, so the invite is not lost. Passwords are hashed off the
event loop (`infra.auth.PasswordHasher`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from core import metrics
from core.access import Principal
from core.emails import normalise_email
from core.errors import ApiError, Conflict, Forbidden, NotFound, Unauthorized
from core.policy import guarded
from core.values import to_object_id
from domain import audit, sessions
from domain.sessions import SignedIn
from infra.auth import hash_secret, new_invite_token
from infra.store import DuplicateKeyError

log = logging.getLogger("medpharma.auth")

EMAIL_TAKEN = "An account with this email already exists."


def new_user(now, name: str, email: str, password_hash: str, role: str, doctor_id=None) -> dict:
    user = {"name": name, "email": email, "passwordHash": password_hash, "role": role,
            "createdAt": now, "updatedAt": now}
    if doctor_id is not None:
        user["doctorId"] = doctor_id
    return user


@guarded("auth.register")
async def register(services, body: dict, client_address: str | None = None) -> SignedIn:
    """Public registration: always a patient; limited per client address, every attempt counting (a
    `409` too, so probing which emails have an account runs into the same `429`)."""
    store = services.store
    async with services.registration_limits.attempt(client_address):
        if await store.user_email_taken(body["email"]) or \
                await store.email_has_active_invite(body["email"], services.clock()):
            # An email invited as staff is kept for its invite: registering it first would block
            # that person's onboarding (the invite could never be redeemed).
            raise Conflict(EMAIL_TAKEN, code="email_taken")
        password_hash = await services.hasher.hash(body["password"], client=client_address)
        try:
            user = await store.insert_user(new_user(services.clock(), body["name"], body["email"], password_hash, "patient"))
        except DuplicateKeyError:
            raise Conflict(EMAIL_TAKEN, code="email_taken") from None
    return await sessions.open_session(services, user)


def sign_in_spelling(email: str) -> str:
    """The stored spelling of a typed email; one that can have no account is kept as typed (lower case),
    so it is refused like any unknown email (`401`, after the same checks), not told apart."""
    try:
        return normalise_email(email)
    except ValueError:
        return email.strip().lower()


@guarded("auth.login")
async def sign_in(services, email: str, password: str, client_address: str) -> SignedIn:
    """Same answer for a wrong email and a wrong password; failures are limited per email and per
    client address before any password is checked (`infra.ratelimit.LoginLimits`)."""
    email = sign_in_spelling(email)
    async with services.login_limits.attempt(email, client_address) as attempt:
        user = await services.store.find_user_by_email(email)
        matched = await services.hasher.verify(password, user["passwordHash"] if user else None,
                                               client=client_address)
        if matched:
            attempt.forgive()  # only failures count
    if not matched:
        metrics.auth_failures_total.labels("bad_credentials").inc()
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    if user.get("disabled"):
        metrics.auth_failures_total.labels("forbidden").inc()
        raise Forbidden("This account has been disabled; ask an administrator.", code="account_disabled")
    return await sessions.open_session(services, user)


@guarded("auth.change_password")
async def change_password(services, principal: Principal, current: str, new: str,
                          client_address: str | None = None) -> None:
    """Every other session of the user ends: whoever else knew the old password is signed out. A wrong
    current password is a failed login for that account and address (the same limits and `429`: a
    stolen access token is no licence to guess), and both hashings go through the pool with the
    caller's per-address share, as a sign-in's do."""
    store = services.store
    user = await current_user(services, principal)
    async with services.login_limits.attempt(user["email"], client_address) as attempt:
        matched = await services.hasher.verify(current, user["passwordHash"], client=client_address)
        if matched:
            attempt.forgive()
    if not matched:
        metrics.auth_failures_total.labels("bad_credentials").inc()
        raise Unauthorized("The current password is wrong.", code="invalid_credentials")
    password_hash = await services.hasher.hash(new, client=client_address)
    await store.set_password(user["_id"], password_hash, services.clock())
    await sessions.end_other_sessions(services, principal)
    await audit.record(services, principal, "password.changed", principal.user_id)


@guarded("auth.me")
async def current_user(services, principal: Principal) -> dict:
    user = await services.store.find_user(to_object_id(principal.user_id))
    if user is None:
        raise Unauthorized("This account no longer exists.", code="unknown_user")
    return user


# -- invites -------------------------------------------------------------------------------------------
def invite_status(invite: dict, now) -> str:
    if invite.get("revokedAt") is not None:
        return "revoked"
    if invite.get("usedAt") is not None:
        return "used"
    return "expired" if invite["expiresAt"] <= now else "active"


def invite_query(status: str | None, now) -> dict:
    """The store's query for the invites in `status` (the same rule as `invite_status`)."""
    return {None: {}, "revoked": {"revokedAt": {"$ne": None}},
            "used": {"revokedAt": None, "usedAt": {"$ne": None}},
            "expired": {"revokedAt": None, "usedAt": None, "expiresAt": {"$lte": now}},
            "active": {"revokedAt": None, "usedAt": None, "expiresAt": {"$gt": now}}}[status]


@guarded("invites.list")
async def page_invites(services, admin: Principal, params: dict) -> tuple[list[dict], int]:
    now = services.clock()
    items, total = await services.store.page_invites(invite_query(params.get("status"), now),
                                                     params["limit"], params["offset"])
    return [{**invite, "status": invite_status(invite, now)} for invite in items], total


@guarded("invites.revoke")
async def revoke_invite(services, admin: Principal, invite_id: str) -> None:
    """An unused invite can no longer be redeemed (`invite_revoked`); a used one cannot be revoked."""
    store = services.store
    invite = await store.find_invite(to_object_id(invite_id))
    if invite is None:
        raise NotFound("Invite not found.")
    if invite.get("usedAt") is None and invite.get("revokedAt") is None:
        invite = await store.revoke_invite(invite["_id"], services.clock()) or await store.find_invite(invite["_id"])
        if invite.get("revokedAt") is not None:
            await audit.record(services, admin, "invite.revoked", invite_id, email=invite["email"],
                               role=invite["role"])
    if invite.get("usedAt") is not None:
        raise Conflict("This invite has already been used; disable the account instead.", code="invite_used")


@guarded("invites.create")
async def create_invite(services, principal: Principal, body: dict) -> tuple[dict, str]:
    """A doctor or admin invite; returns the stored invite and its token (shown once, stored hashed)."""
    store = services.store
    doctor_id = None
    if body["role"] == "doctor":
        doctor_id = await _linked_doctor(services, body)
    elif body["doctorId"] is not None:
        raise ApiError(details={"doctorId": ["Only a doctor invite is linked to a doctor profile."]},
                       code="validation_error")
    if await store.user_email_taken(body["email"]):
        raise Conflict("An account with this email already exists; an account with no history can be deleted "
                       "(DELETE /api/admin/users/{id}) to free it.", code="email_taken")
    now = services.clock()
    active_key = f"{body['role']}:{body['email']}"
    await store.release_expired_invites(active_key, now)
    token = new_invite_token()
    invite = {"email": body["email"], "role": body["role"], "tokenHash": hash_secret(token),
              "activeKey": active_key, "expiresAt": now + timedelta(hours=body["expiresInHours"]),
              "usedAt": None, "createdBy": to_object_id(principal.user_id), "createdAt": now}
    if doctor_id is not None:
        invite["doctorId"] = doctor_id
    try:
        invite = await store.insert_invite(invite)
    except DuplicateKeyError:
        raise Conflict("An active invite for this email and role already exists.", code="invite_exists") from None
    await audit.record(services, principal, "invite.created", str(invite["_id"]), email=invite["email"],
                       role=invite["role"], doctorId=str(doctor_id) if doctor_id else None)
    return invite, token


async def _linked_doctor(services, body: dict):
    store = services.store
    if body["doctorId"] is not None:
        doctor = await store.find_doctor(body["doctorId"])
        if doctor is None:
            raise ApiError(details={"doctorId": ["No doctor profile has this id."]}, code="validation_error")
        return doctor["_id"]
    doctor = await store.find_doctor_by_email(body["email"])
    if doctor is None:
        raise ApiError("A doctor invite needs a doctorId or a doctor profile with the same email.",
                       code="validation_error",
                       details={"doctorId": ["Give doctorId, or create the doctor profile first."]})
    return doctor["_id"]


@guarded("auth.register_invite")
async def redeem_invite(services, body: dict, client_address: str | None = None) -> SignedIn:
    """Turns an invite into an account with the invite's role."""
    store = services.store
    token_hash = hash_secret(body["token"])
    invite = await store.find_invite_by_hash(token_hash)
    _check_usable(invite, services.clock())
    if await store.user_email_taken(invite["email"]):
        raise Conflict(EMAIL_TAKEN, code="email_taken")
    password_hash = await services.hasher.hash(body["password"], client=client_address)
    claimed = await store.claim_invite(token_hash, services.clock())
    if claimed is None:
        _check_usable(await store.find_invite_by_hash(token_hash), services.clock())
        raise ApiError("This invite has already been used.", code="invite_used")
    doctor_id = claimed.get("doctorId") if claimed["role"] == "doctor" else None
    if claimed["role"] == "doctor" and (doctor_id is None or await store.find_doctor(doctor_id) is None):
        await store.release_invite(claimed)
        raise NotFound("The doctor profile this invite was for no longer exists.", code="doctor_not_found")
    try:
        user = await store.insert_user(new_user(services.clock(), body["name"], claimed["email"], password_hash, claimed["role"],
                                                doctor_id))
    except DuplicateKeyError:
        await store.release_invite(claimed)
        raise Conflict(EMAIL_TAKEN, code="email_taken") from None
    await store.mark_invite_used_by(claimed["_id"], user["_id"])
    log.info("invite redeemed", extra={"inviteId": str(claimed["_id"]), "role": claimed["role"]})
    signed_in = await sessions.open_session(services, user)
    newcomer = Principal(str(user["_id"]), user["role"], str(doctor_id) if doctor_id else None)
    await audit.record(services, newcomer, "invite.redeemed", str(claimed["_id"]), role=claimed["role"])
    return signed_in


def _check_usable(invite: dict | None, now) -> None:
    if invite is None:
        metrics.auth_failures_total.labels("invite_invalid").inc()
        raise ApiError("This invite is not valid.", code="invite_invalid")
    if invite.get("revokedAt") is not None:
        metrics.auth_failures_total.labels("invite_invalid").inc()
        raise ApiError("This invite has been revoked.", code="invite_revoked")
    if invite.get("usedAt") is not None:
        metrics.auth_failures_total.labels("invite_used").inc()
        raise ApiError("This invite has already been used.", code="invite_used")
    if invite["expiresAt"] <= now:
        metrics.auth_failures_total.labels("invite_expired").inc()
        raise ApiError("This invite has expired.", code="invite_expired")


# -- the first admin -------------------------------------------------------------------------------------
async def seed_admin(services, email: str, password: str, name: str) -> str:
    """Returns "created" or "exists"; raises ValueError if the email belongs to a non-admin.

    Idempotent: an existing admin with that email is left as it is; an existing non-admin account
    with that email is refused rather than silently promoted."""
    store = services.store
    email = normalise_email(email)
    existing = await store.find_user_by_email(email)
    if existing is not None:
        if existing["role"] != "admin":
            raise ValueError(f"{email} already belongs to a {existing['role']} account")
        return "exists"
    password_hash = await services.hasher.hash(password)
    try:
        user = await store.insert_user(new_user(services.clock(), name, email, password_hash, "admin"))
    except DuplicateKeyError:
        return "exists"
    await audit.record(services, None, "admin.seeded", str(user["_id"]), email=email)
    return "created"
