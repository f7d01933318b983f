"""The audit log: who did what, to what, from where — append-only.

Workflows call `record()` after a change commits. The request it belongs to (its id and the client's
address) is carried in a context variable the HTTP edge sets, so workflows need not pass it along.
Entries never hold a password, a token or an invite token: callers pass only names of fields and
ids, and `record` refuses details whose keys name a secret.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass

from core.access import Principal
from core.audit import ACTIONS, SECRET_WORDS
from core.policy import guarded
from core.values import to_object_id

log = logging.getLogger("medpharma.audit")



@dataclass(frozen=True)
class RequestInfo:
    request_id: str | None = None
    ip: str | None = None


request_info: ContextVar[RequestInfo] = ContextVar("request_info", default=RequestInfo())


async def record(services, actor: Principal | None, action: str, target: str | None, **details) -> None:
    """Appends one entry. An unknown action, or a detail named like a secret (a password, a token),
    is a programming error and refused loudly, whatever Python's `-O` says: the log is append-only,
    so a secret written once could never be taken out."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    secret = sorted(key for key in details if any(word in key.lower() for word in SECRET_WORDS))
    if secret:
        raise ValueError(f"audit details must not hold secrets: {secret}")
    info = request_info.get()
    await services.store.insert_audit({
        "at": services.clock(), "actorId": to_object_id(actor.user_id) if actor else None,
        "actorRole": actor.role if actor else None, "action": action, "target": target,
        "details": details, "requestId": info.request_id, "ip": info.ip})


@guarded("audit.list")
async def page(services, admin: Principal, params: dict) -> tuple[list[dict], int]:
    query = {}
    if params.get("action"):
        query["action"] = params["action"]
    if params.get("actor") is not None:
        query["actorId"] = params["actor"]
    if params.get("target"):
        query["target"] = params["target"]
    return await services.store.page_audit(query, params["limit"], params["offset"])
