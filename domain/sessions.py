"""Sessions: every sign-in opens one; it can end (logout, password change, a disabled account, a
stolen refresh token) and its access tokens stop working at once, on every node.

A session is a document in the store holding a generation number and a random value; its refresh
token is bound to both (`infra.auth.TokenIssuer.refresh_token`). Refreshing spends that token and
issues the next generation's (rotation); a spent token — of any earlier generation, however many
rotations ago — presented again means a copy was stolen, so the whole session ends (reuse detection,
as OAuth 2.1 recommends), with no list of spent tokens to grow or to forget. Ends are published on the bus: each
node keeps the ended sessions and disabled accounts in memory (`infra.revocations`), so checking a
token never costs a store round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bson import ObjectId

from core import metrics
from core.access import Principal
from core.errors import Unauthorized
from core.policy import guarded
from core.values import to_object_id
from infra.auth import new_session_value
from core.bus_messages import AccountDisabled, SessionsRevoked

REFRESH_REFUSED = "The refresh token is not valid; sign in again."


@dataclass(frozen=True)
class SignedIn:
    token: str
    refresh_token: str
    user: dict


async def open_session(services, user: dict) -> SignedIn:
    now = services.clock()
    session_id = ObjectId()
    value = new_session_value()
    await services.store.insert_session({
        "_id": session_id, "userId": user["_id"], "createdAt": now, "lastUsedAt": now,
        "expiresAt": now + timedelta(seconds=services.settings.refresh_expires_seconds),
        "generation": 0, "tokenValue": value, "revokedAt": None})
    return SignedIn(services.tokens.issue(user, str(session_id)),
                    services.tokens.refresh_token(str(session_id), 0, value), user)


def _refused() -> Unauthorized:
    metrics.auth_failures_total.labels("bad_token").inc()
    return Unauthorized(REFRESH_REFUSED, code="invalid_refresh_token")


@guarded("auth.refresh")
async def refresh(services, refresh_token: str) -> SignedIn:
    """The next access token and refresh token; the one presented is spent."""
    store = services.store
    tokens = services.tokens
    claimed = tokens.read_refresh_token(refresh_token)
    if claimed is None:
        raise _refused()
    session_id, generation = claimed
    session = await store.find_session(to_object_id(session_id))
    if session is None or "tokenValue" not in session or \
            not tokens.refresh_token_is_authentic(refresh_token, session["tokenValue"]):
        raise _refused()  # not one the server made: nothing to revoke
    now = services.clock()
    rotated = None
    if session.get("revokedAt") is None and session["generation"] == generation and session["expiresAt"] > now:
        rotated = await store.rotate_session(session["_id"], generation, now)
    if rotated is None:
        if generation < (await store.find_session(session["_id"]) or session)["generation"]:
            # Spent: this token was rotated away, so someone else holds (or held) the newer one.
            await end_sessions(services, {"_id": session["_id"]}, "refresh_token_reused")
        raise _refused()
    user = await store.find_user(rotated["userId"])
    if user is None or user.get("disabled"):
        await end_sessions(services, {"_id": rotated["_id"]}, "account_disabled")
        raise _refused()
    return SignedIn(tokens.issue(user, session_id), tokens.refresh_token(session_id, rotated["generation"],
                                                                          rotated["tokenValue"]), user)


@guarded("auth.logout")
async def logout(services, principal: Principal) -> None:
    if principal.session_id is not None:
        await end_sessions(services, {"_id": to_object_id(principal.session_id)}, "logout")


async def end_other_sessions(services, principal: Principal) -> None:
    query: dict = {"userId": to_object_id(principal.user_id)}
    if principal.session_id is not None:
        query["_id"] = {"$ne": to_object_id(principal.session_id)}
    await end_sessions(services, query, "password_changed")


async def user_disabled(services, user_id: str, disabled: bool) -> None:
    """A disabled account's sessions all end and its sockets close with 4003, on every node."""
    await services.bus.publish(AccountDisabled(user_id, disabled))  # first: its sockets close with 4003
    if disabled:
        await end_sessions(services, {"userId": to_object_id(user_id)}, "account_disabled")


async def end_sessions(services, query: dict, reason: str) -> list[str]:
    session_ids = await services.store.revoke_sessions(query, services.clock(), reason)
    if session_ids:
        await services.bus.publish(SessionsRevoked(tuple(session_ids)))
    return session_ids


async def load_revocations(services) -> None:
    """At start: what every node must already refuse."""
    lifetime = services.settings.jwt_expires_seconds
    revoked = await services.store.revoked_since(services.clock() - timedelta(seconds=lifetime))
    disabled = await services.store.disabled_user_ids()
    services.revocations.load([(sid, at.timestamp()) for sid, at in revoked], [str(u) for u in disabled])
