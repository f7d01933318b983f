"""The numbers the contract promises clients, each spelled once: what the server accepts and how it
says goodbye. The validators, the handlers, the socket and the API descriptions all read them here,
so a limit can never be enforced at one value and documented at another."""

from __future__ import annotations

# -- HTTP ----------------------------------------------------------------------------------------------
MAX_BODY_BYTES = 64 * 1024          # a bigger JSON body → 413
HARD_BODY_BYTES = 1024 * 1024       # Tornado's own stop; the API refuses past MAX_BODY_BYTES first

# -- passwords -----------------------------------------------------------------------------------------
MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 72             # bcrypt ignores every byte past 72: longer would be a silent lie

# -- WebSocket -------------------------------------------------------------------------------------------
MAX_FRAME_BYTES = 4096              # a bigger client frame → close 1009
MAX_SUBSCRIPTIONS = 32              # rooms one socket may be in at once
PING_INTERVAL_SECONDS = 20          # the server pings; a peer silent this long after a ping is dropped
PING_TIMEOUT_SECONDS = 20

# Close codes, with what each tells a client to do (the AsyncAPI description lists them from here).
GOING_AWAY_CLOSE_CODE = 1001        # the server is shutting down: reconnect (to another node)
FRAME_TOO_BIG_CLOSE_CODE = 1009
SLOW_READER_CLOSE_CODE = 1013       # "try again later": one-off events piled up past the outbox's bound
SESSION_ENDED_CLOSE_CODE = 4001     # "authenticate again": the token expired or its session ended
ACCOUNT_DISABLED_CLOSE_CODE = 4003

CLOSE_CODES = {
    GOING_AWAY_CLOSE_CODE: "The server is shutting down: reconnect (to another node).",
    FRAME_TOO_BIG_CLOSE_CODE: f"A client frame was larger than {MAX_FRAME_BYTES} bytes.",
    SLOW_READER_CLOSE_CODE: "The client stopped reading and too many one-off events piled up.",
    SESSION_ENDED_CLOSE_CODE: "The token expired or its session ended: reconnect with a fresh token.",
    ACCOUNT_DISABLED_CLOSE_CODE: "The account was disabled.",
}
