"""Revoked sessions and disabled accounts, in memory on every node, so checking a token costs no store
round trip.

Filled at start from the store (sessions revoked recently enough that one of their access tokens could
still be valid, and every disabled account), then kept current by the bus: a revocation made on any
node reaches every node's copy, which also closes the sockets it ends (`4001` for an ended session,
`4003` for a disabled account). An entry is kept only as long as an access token issued before it can
live; after that the token's own expiry refuses it.
"""

from __future__ import annotations

import time
from typing import Callable

from core.bus_messages import AccountDisabled, SessionsRevoked


class Revocations:
    def __init__(self, access_lifetime_seconds: float, clock: Callable[[], float] = time.time):
        self.access_lifetime = access_lifetime_seconds
        self.clock = clock
        self._sessions: dict[str, float] = {}  # session id → revoked at (epoch seconds)
        self._disabled: set[str] = set()
        self.on_session_revoked: Callable[[str], None] = lambda session_id: None
        self.on_account_disabled: Callable[[str], None] = lambda user_id: None

    def load(self, session_ids_with_times: list[tuple[str, float]], disabled_user_ids: list[str]) -> None:
        self._sessions.update(session_ids_with_times)
        self._disabled.update(disabled_user_ids)

    def is_refused(self, user_id: str, session_id: str | None) -> str | None:
        """Why a token of this user and session may not be used any more, or None."""
        if user_id in self._disabled:
            return "account_disabled"
        if session_id is not None and session_id in self._sessions:
            return "session_revoked"
        return None

    def apply(self, message: SessionsRevoked | AccountDisabled) -> None:
        if isinstance(message, SessionsRevoked):
            now = self.clock()
            for session_id in message.session_ids:
                self._sessions[session_id] = now
                self.on_session_revoked(session_id)
            self._forget_old(now)
        elif message.disabled:
            self._disabled.add(message.user_id)
            self.on_account_disabled(message.user_id)
        else:
            self._disabled.discard(message.user_id)

    def _forget_old(self, now: float) -> None:
        horizon = now - self.access_lifetime
        for session_id in [s for s, at in self._sessions.items() if at < horizon]:
            del self._sessions[session_id]

    @property
    def size(self) -> int:
        return len(self._sessions) + len(self._disabled)
