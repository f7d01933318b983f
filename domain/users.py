"""Admins managing accounts: the list, stopping or restarting an account, and deleting one that has no
history (a squatted or mistaken registration), which frees its email."""

from __future__ import annotations

import re

from core.access import Principal
from core.errors import Conflict, NotFound
from core.policy import guarded
from core.values import to_object_id
from domain import audit, notifications, sessions

HAS_HISTORY = "This account has appointments or recorded actions; disable it instead."


@guarded("users.list")
async def page(services, admin: Principal, params: dict) -> tuple[list[dict], int]:
    query: dict = {}
    if params.get("role"):
        query["role"] = params["role"]
    if params.get("q"):
        pattern = {"$regex": re.escape(params["q"]), "$options": "i"}
        query["$or"] = [{"name": pattern}, {"email": pattern}]
    return await services.store.page_users(query, params["limit"], params["offset"])


@guarded("users.set_disabled")
async def set_disabled(services, admin: Principal, user_id: str, disabled: bool) -> dict:
    """Disabling revokes every session of the user at once (on every node), refuses its logins and
    forgets its devices' push subscriptions (a stopped account's phone hears nothing more; enabled
    again, the patient turns notifications on again in the waiting room)."""
    if disabled and user_id == admin.user_id:
        raise Conflict("You cannot disable your own account.", code="cannot_disable_self")
    user = await services.store.set_user_disabled(to_object_id(user_id), disabled, services.clock())
    if user is None:
        raise NotFound("User not found.")
    await sessions.user_disabled(services, user_id, disabled)
    if disabled:
        await notifications.forget_devices(services, to_object_id(user_id))
    await audit.record(services, admin, "user.disabled" if disabled else "user.enabled", user_id)
    return user


@guarded("users.delete")
async def delete(services, admin: Principal, user_id: str) -> None:
    """Only an account that never had an appointment nor did anything the audit log records: anything
    else is history to keep (disable it instead). Its sessions end at once, on every node. A booking
    landing between the check and the delete puts the account back (same id) and answers 409, as
    deleting a doctor does."""
    if user_id == admin.user_id:
        raise Conflict("You cannot delete your own account.", code="cannot_delete_self")
    store = services.store
    oid = to_object_id(user_id)
    user = await store.find_user(oid)
    if user is None:
        raise NotFound("User not found.")
    if await store.user_has_history(oid):
        raise Conflict(HAS_HISTORY, code="user_has_history")
    if not await store.delete_user(oid):
        raise NotFound("User not found.")
    if await store.user_has_history(oid):
        await store.insert_user(user)
        raise Conflict(HAS_HISTORY, code="user_has_history")
    await sessions.end_sessions(services, {"userId": oid}, "account_deleted")
    await notifications.forget_devices(services, oid)
    await audit.record(services, admin, "user.deleted", user_id, email=user["email"], role=user["role"])
