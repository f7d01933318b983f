"""Passwords (bcrypt, off the event loop) and access tokens (JWT HS256, algorithm pinned).

A bcrypt hash at cost 12 takes about a quarter of a second of CPU; run on the event loop it would
freeze every WebSocket for that long, so both hashing and checking go to a small thread pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import jwt

from core.access import ROLES, Principal
from core.values import canonical_id

ALGORITHM = "HS256"
MAX_PASSWORD_BYTES = 72  # bcrypt's limit; longer passwords are refused at registration

# bcrypt releases the GIL, so two threads use both cores; more would only queue inside the pool.
_password_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")


class TokenError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "bad_token" or "expired_token", a metrics label


class PasswordHasher:
    def __init__(self, rounds: int):
        self.rounds = rounds
        # Checked against when the email is unknown, so a miss costs what a hit costs.
        self._decoy = bcrypt.hashpw(b"decoy-password", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(
            _password_pool, lambda: bcrypt.hashpw(password.encode(), bcrypt.gensalt(self.rounds)))
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """True only for the right password; an unknown account or an over-long password costs the
        same bcrypt check as a real one, so timing does not tell which emails exist."""
        loop = asyncio.get_running_loop()
        candidate = password.encode()
        usable = hashed is not None and len(candidate) <= MAX_PASSWORD_BYTES
        target = hashed.encode() if usable else self._decoy
        if not usable:
            candidate = candidate[:MAX_PASSWORD_BYTES]
        matched = await loop.run_in_executor(_password_pool, bcrypt.checkpw, candidate, target)
        return matched and usable


class TokenIssuer:
    def __init__(self, secret: str, expires_seconds: int):
        self._secret = secret
        self.expires_seconds = expires_seconds

    def issue(self, user: dict, session_id: str) -> str:
        now = int(time.time())
        claims = {"sub": str(user["_id"]), "role": user["role"], "sid": session_id, "iat": now,
                  "exp": now + self.expires_seconds}
        if user.get("doctorId") is not None:
            claims["doctorId"] = str(user["doctorId"])
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["sub", "role", "iat", "exp"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("expired_token") from None
        except jwt.PyJWTError:
            raise TokenError("bad_token") from None
        role, subject = claims.get("role"), canonical_id(claims.get("sub"))
        if role not in ROLES or subject is None:
            raise TokenError("bad_token")
        return Principal(subject, role, canonical_id(claims.get("doctorId")), float(claims["exp"]),
                         canonical_id(claims.get("sid")))


def new_refresh_token() -> str:
    """256 random bits, URL-safe; only its SHA-256 is stored."""
    return secrets.token_urlsafe(32)


def new_invite_token() -> str:
    """256 random bits, URL-safe; only its SHA-256 is stored."""
    return secrets.token_urlsafe(32)


def hash_secret(token: str) -> str:
    """What the store keeps of an invite or refresh token: its SHA-256, enough to find it again."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_room_token() -> str:
    return secrets.token_urlsafe(18).replace("_", "x").replace("-", "y")
