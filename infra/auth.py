"""Passwords (bcrypt, off the event loop) and access tokens (JWT HS256, algorithm pinned).

A bcrypt hash at cost 12 takes about a quarter of a second of CPU; run on the event loop it would
freeze every WebSocket for that long, so both hashing and checking go to a small thread pool. That
pool is bounded (`HashingPool`): its wait queue holds at most `MAX_HASHING_WAITING` jobs; past that
a request answers `503` (code `busy`, `Retry-After`) at once instead of queueing behind work it can
never catch up with. One client address holds at most `MAX_HASHING_PER_CLIENT` hashings at a time;
past that it is answered `429` after the limits' usual pause. So a flood of logins costs its sender,
not the honest sign-in that arrives next.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

import bcrypt
import jwt

from core import metrics
from core.access import ROLES, Principal
from core.errors import Busy, RateLimited
from core.limits import MAX_PASSWORD_BYTES
from core.values import canonical_id
from infra.ratelimit import REFUSAL_PAUSE_SECONDS

ALGORITHM = "HS256"

# bcrypt releases the GIL, so two threads use both cores; more would only queue inside the pool.
HASHING_WORKERS = 2
MAX_HASHING_WAITING = 32
MAX_HASHING_PER_CLIENT = 8  # running or waiting; a clinic's desks behind one address still fit
BUSY_RETRY_AFTER_SECONDS = 1


class TokenError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "bad_token" or "expired_token", a metrics label


class HashingPool:
    """At most `workers` hashings run; at most `max_waiting` wait (then `503 busy`); at most
    `per_client` of them, running or waiting, come from one address (then `429`). A freed worker goes to the waiting clients in turn, not
    first come first served, so an honest sign-in waits behind one hashing per busy client rather
    than behind a sprayer's whole backlog."""

    def __init__(self, workers: int = HASHING_WORKERS, max_waiting: int = MAX_HASHING_WAITING,
                 per_client: int = MAX_HASHING_PER_CLIENT):
        self.max_waiting = max_waiting
        self.per_client = per_client
        # The pool's own threads: two apps in one process (tests, benches) never share a queue.
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        self.refusal_pause = REFUSAL_PAUSE_SECONDS
        self._free = workers
        self._turns: OrderedDict[str, deque[asyncio.Future]] = OrderedDict()  # client → its waiters, in turn order
        self._by_client: Counter[str] = Counter()

    @property
    def waiting(self) -> int:
        return sum(len(waiters) for waiters in self._turns.values())

    async def run(self, client: str | None, function: Callable[..., Any], *args: Any) -> Any:
        key = client or ""  # the server's own hashings (the seed admin) share one turn
        if self.waiting >= self.max_waiting:
            metrics.requests_refused_total.labels("hashing_busy").inc()
            raise Busy("The server is busy checking passwords; try again in a moment.",
                       headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})
        if client is not None and self._by_client[key] >= self.per_client:
            metrics.requests_refused_total.labels("hashing_per_client").inc()
            await asyncio.sleep(self.refusal_pause)
            raise RateLimited("Too many sign-ins in progress from your address; try again in a moment.",
                              headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})
        self._by_client[key] += 1
        try:
            await self._worker(key)
            try:
                return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
            finally:
                self._hand_on()
        finally:
            self._by_client[key] -= 1
            if not self._by_client[key]:
                del self._by_client[key]

    async def _worker(self, key: str) -> None:
        if self._free > 0 and not self._turns:
            self._free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._turns.setdefault(key, deque()).append(turn)
        metrics.password_hashing_waiting.set(self.waiting)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._hand_on()  # handed a worker just as it was cancelled: pass it on
            else:
                waiters = self._turns.get(key)
                if waiters is not None and turn in waiters:
                    waiters.remove(turn)
                    if not waiters:
                        del self._turns[key]
                metrics.password_hashing_waiting.set(self.waiting)
            raise

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _hand_on(self) -> None:
        """A worker is free: the client whose turn it is gets it, then goes to the back."""
        while self._turns:
            key, waiters = next(iter(self._turns.items()))
            turn = waiters.popleft()
            if waiters:
                self._turns.move_to_end(key)
            else:
                del self._turns[key]
            if not turn.done():
                turn.set_result(None)
                metrics.password_hashing_waiting.set(self.waiting)
                return
        self._free += 1
        metrics.password_hashing_waiting.set(self.waiting)


class PasswordHasher:
    def __init__(self, rounds: int, pool: HashingPool | None = None):
        self.rounds = rounds
        self.pool = pool or HashingPool()
        self._decoy: asyncio.Future | None = None

    def decoy(self) -> Awaitable[bytes]:
        """The hash checked against when the email is unknown, so a miss costs what a hit costs. Made
        once, in the pool's threads (a hash blocks for a quarter of a second at cost 12); the server
        asks for it at start so no sign-in waits for it."""
        if self._decoy is None:
            self._decoy = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(
                self.pool.executor, bcrypt.hashpw, b"decoy-password", bcrypt.gensalt(self.rounds)))
        return self._decoy

    def close(self) -> None:
        self.pool.close()

    async def hash(self, password: str, client: str | None = None) -> str:
        """`Busy` when the pool is full; `client` (the caller's address) bounds one sender's share."""
        hashed = await self.pool.run(client, lambda: bcrypt.hashpw(password.encode(), bcrypt.gensalt(self.rounds)))
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None, client: str | None = None) -> bool:
        """True only for the right password; an unknown account or an over-long password costs the
        same bcrypt check as a real one, so timing does not tell which emails exist."""
        candidate = password.encode()
        usable = hashed is not None and len(candidate) <= MAX_PASSWORD_BYTES
        target = hashed.encode() if usable else await self.decoy()
        if not usable:
            candidate = candidate[:MAX_PASSWORD_BYTES]
        matched = await self.pool.run(client, bcrypt.checkpw, candidate, target)
        return matched and usable


_REFRESH_TOKEN = re.compile(r"([0-9a-f]{24})\.(\d{1,9})\.([A-Za-z0-9_-]{43})")


class TokenIssuer:
    def __init__(self, secret: str, expires_seconds: int, clock: Callable[[], float] = time.time):
        self._secret = secret
        self.expires_seconds = expires_seconds
        self.clock = clock  # when a token is issued (`iat`); a test's clock issues one that ends when it says
        # A key of its own for refresh tokens (a leaked refresh key forges no access token).
        self._refresh_key = hmac.new(secret.encode(), b"medpharma-refresh-token", hashlib.sha256).digest()

    # -- refresh tokens ------------------------------------------------------------------------------
    # `<session id>.<generation>.<MAC>`, the MAC (HMAC-SHA256) over the session id, the generation and
    # a random value the session keeps in the store. Rotating bumps the session's generation, which
    # spends every token of a lower one at once: a spent token presented however many rotations later
    # is still recognised, with nothing but one number kept per session. Neither the store (no key)
    # nor the secret alone (no session value) is enough to make one.
    def refresh_token(self, session_id: str, generation: int, session_value: str) -> str:
        return f"{session_id}.{generation}.{self._refresh_mac(session_id, generation, session_value)}"

    def _refresh_mac(self, session_id: str, generation: int, session_value: str) -> str:
        digest = hmac.new(self._refresh_key, f"{session_id}.{generation}.{session_value}".encode(),
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    @staticmethod
    def read_refresh_token(token: str) -> tuple[str, int] | None:
        """(session id, generation) as the token claims them, or None if it is not shaped like one."""
        match = _REFRESH_TOKEN.fullmatch(token)
        return (match.group(1), int(match.group(2))) if match else None

    def refresh_token_is_authentic(self, token: str, session_value: str) -> bool:
        claimed = self.read_refresh_token(token)
        if claimed is None:
            return False
        return hmac.compare_digest(token.encode(), self.refresh_token(*claimed, session_value).encode())

    def issue(self, user: dict, session_id: str) -> str:
        now = int(self.clock())
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


def new_session_value() -> str:
    """256 random bits a session keeps in the store, bound into each of its refresh tokens."""
    return secrets.token_urlsafe(32)


def new_invite_token() -> str:
    """256 random bits, URL-safe; only its SHA-256 is stored."""
    return secrets.token_urlsafe(32)


def hash_secret(token: str) -> str:
    """What the store keeps of an invite token: its SHA-256, enough to find it again."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_room_token() -> str:
    return secrets.token_urlsafe(18).replace("_", "x").replace("-", "y")
