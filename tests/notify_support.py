"""What the notification tests play: a push service and a webhook receiver on loopback, and a browser's
push subscription (its own P-256 key pair and auth secret, so a test can decrypt what arrives).

`Receiver` is a small Tornado app on a free port that records every request and answers from a
script per path (a list of statuses, the last one repeated; an optional delay). The server under test
is started with `NOTIFY_ALLOW_HOSTS` naming it, as the contract's exception for such hosts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from dataclasses import dataclass, field

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    """Records what arrives; `script[path]` = statuses to answer in turn (the last one repeats)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    delay: float = 0.0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    server: HTTPServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int = 1, timeout: float = 20.0) -> list[Received]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.at(path)) < count:
            if loop.time() >= deadline:
                raise AssertionError(f"{path}: {len(self.at(path))} of {count} requests arrived")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
        return self.at(path)

    def start(self) -> "Receiver":
        receiver = self

        class Record(web.RequestHandler):
            async def post(self, path: str) -> None:
                full = "/" + path
                receiver.received.append(Received(full, {k.lower(): v for k, v in self.request.headers.items()},
                                                  self.request.body))
                receiver.arrived.set()
                if receiver.delay:
                    await asyncio.sleep(receiver.delay)
                statuses = receiver.script.get(full, [201])
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                self.set_status(status)
                if 300 <= status < 400:
                    self.set_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.finish("x" * 5000 if status >= 500 else "ok")

        sockets = bind_sockets(self.port, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.server = HTTPServer(web.Application([(r"/(.*)", Record)]))
        self.server.add_sockets(sockets)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@dataclass
class BrowserSubscription:
    """What a browser holds for one push subscription: the keys the payload is encrypted for."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def make(cls, endpoint: str) -> "BrowserSubscription":
        return cls(endpoint, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def to_json(self) -> dict:
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": b64url(public),
                                                                            "auth": b64url(self.auth)}}

    def decrypt(self, received: Received) -> dict:
        assert received.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(received.body, private_key=self.private_key, auth_secret=self.auth,
                                 version="aes128gcm")
        return json.loads(plain)


def vapid_claims(received: Received, public_key_b64: str) -> dict:
    """Verifies the `Authorization: vapid t=<JWT>, k=<key>` header against the server's public key
    (ES256, RFC 8292) and returns the JWT's claims."""
    scheme, _, params = received.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(item.strip().split("=", 1) for item in params.split(","))
    assert parts["k"] == public_key_b64
    point = b64url_decode(public_key_b64)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    return jwt.decode(parts["t"], public, algorithms=["ES256"], options={"verify_aud": False})
