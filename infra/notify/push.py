"""Web Push: the server's VAPID key (RFC 8292) and one encrypted push message (RFC 8291 `aes128gcm`).

The cryptography is the libraries': `py_vapid` signs the VAPID JWT, `pywebpush.WebPusher.encode`
encrypts the payload for the subscription's keys (through `http_ece`). This module only chooses the
headers the contract asks for (`TTL`, `Urgency`) and keeps the signing cheap: a VAPID token is valid
for hours, so one is signed per push service origin and reused until close to its expiry.

Encryption (an ECDH key agreement per message) and signing are CPU work of a millisecond or so each:
`PushKeys.request` is a plain function the sender runs in the executor, never on the event loop.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from pywebpush import WebPusher

VAPID_TOKEN_SECONDS = 12 * 3600   # a push service accepts at most 24 h
VAPID_RESIGN_MARGIN = 3600        # a cached token is replaced once it has less than this left
MAX_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class PushRequest:
    url: str
    headers: dict
    body: bytes


class PushKeys:
    """The application server's VAPID key pair and its token cache."""

    def __init__(self, vapid: Vapid02, subject: str, generated: bool):
        self.vapid = vapid
        self.subject = subject
        self.generated = generated  # made for this process (embedded mode): subscriptions end with it
        raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        self.public_key = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        self._tokens: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()  # requests are built in executor threads

    @classmethod
    def from_setting(cls, private_key: str | None, subject: str) -> "PushKeys":
        """From `VAPID_PRIVATE_KEY` (PEM or base64url), or a new pair when it is unset."""
        if private_key is None:
            vapid = Vapid02()
            vapid.generate_keys()
            return cls(vapid, subject, generated=True)
        if private_key.lstrip().startswith("-----BEGIN"):
            return cls(Vapid02.from_pem(private_key.encode()), subject, generated=False)
        return cls(Vapid02.from_string(private_key), subject, generated=False)

    def authorization(self, endpoint: str) -> str:
        """`vapid t=<JWT>, k=<public key>` for the endpoint's origin, signed at most every few hours."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        with self._lock:
            cached = self._tokens.get(audience)
            if cached is not None and cached[0] - now > VAPID_RESIGN_MARGIN:
                return cached[1]
            expires = int(now) + VAPID_TOKEN_SECONDS
            header = self.vapid.sign({"aud": audience, "exp": expires, "sub": self.subject})["Authorization"]
            self._tokens[audience] = (expires, header)
            return header

    def request(self, subscription: dict, payload: dict, ttl_seconds: int, urgency: str) -> PushRequest:
        """The encrypted POST for one subscription (run in the executor)."""
        info = {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}
        body = WebPusher(info).encode(json.dumps(payload, separators=(",", ":")).encode(), "aes128gcm")["body"]
        headers = {"TTL": str(max(0, min(MAX_TTL_SECONDS, int(ttl_seconds)))), "Urgency": urgency,
                   "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "Authorization": self.authorization(subscription["endpoint"])}
        return PushRequest(subscription["endpoint"], headers, body)
