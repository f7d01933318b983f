"""The first admin: from `python -m server seed-admin`, or at start from SEED_ADMIN_*.

Idempotent: an existing admin with that email is left as it is; an existing non-admin account with
that email is refused rather than silently promoted.
"""

from __future__ import annotations

from server.store import DuplicateKeyError, utcnow


async def seed_admin(services, email: str, password: str, name: str) -> str:
    """Returns "created" or "exists"; raises ValueError if the email belongs to a non-admin."""
    store = services.store
    email = email.strip().lower()
    existing = await store.find_user_by_email(email)
    if existing is not None:
        if existing["role"] != "admin":
            raise ValueError(f"{email} already belongs to a {existing['role']} account")
        return "exists"
    now = utcnow()
    password_hash = await services.hasher.hash(password)
    try:
        await store.insert_user({"name": name, "email": email, "passwordHash": password_hash, "role": "admin",
                                 "createdAt": now, "updatedAt": now})
    except DuplicateKeyError:
        return "exists"
    return "created"
