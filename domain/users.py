"""Admins managing accounts: the list, and stopping or restarting an account."""

from __future__ import annotations

import re

from core.access import Principal
from core.errors import Conflict, NotFound
from core.policy import guarded
from core.values import to_object_id
from domain import audit, sessions


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
    """Disabling revokes every session of the user at once (on every node) and refuses its logins."""
    if disabled and user_id == admin.user_id:
        raise Conflict("You cannot disable your own account.", code="cannot_disable_self")
    user = await services.store.set_user_disabled(to_object_id(user_id), disabled, services.clock())
    if user is None:
        raise NotFound("User not found.")
    await sessions.user_disabled(services, user_id, disabled)
    await audit.record(services, admin, "user.disabled" if disabled else "user.enabled", user_id)
    return user
