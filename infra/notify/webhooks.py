"""Webhooks in the Standard Webhooks format: the secret, and the three headers of each attempt.

Signing is the reference library's (`standardwebhooks`): `v1,<base64 HMAC-SHA256>` over
`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's decoded bytes. The `webhook-id` is
the delivery's id, the same on every retry (the receiver's de-duplication key); the timestamp is the
attempt's own wall-clock second, because receivers refuse a signature more than a few minutes old.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timezone

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes: shown to the admin once, kept to sign with."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(secret: str, message_id: str, body: bytes, at: datetime | None = None) -> dict:
    at = at or datetime.now(timezone.utc)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, at, body),
            "Content-Type": "application/json"}
