"""One HTTP attempt to a push service or a webhook receiver, as the contract bounds it.

- Connects only where `url_guard` allows, with the addresses it checked (`GuardedResolver`);
- never follows a redirect (a 3xx is an answer like any other non-2xx: retried, then failed);
- gives up after `CONNECT_SECONDS` to connect and `ANSWER_SECONDS` in all (a `2xx` within 10 s delivers);
- keeps at most `KEPT_ANSWER_BYTES` of the answer and reads no more than `MAX_ANSWER_BYTES`, so a
  receiver that streams forever costs a bounded buffer;
- runs on Tornado's own non-blocking client with its own connection cap: a slow or dead receiver
  holds one of the worker's slots until its timeout, never the event loop, the actors or the others.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError, SimpleAsyncHTTPClient

from infra.notify.records import KEPT_ANSWER_BYTES
from infra.notify.url_guard import AllowList, GuardedResolver, UrlNotAllowed, parse_target

CONNECT_SECONDS = 5.0
ANSWER_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024
MAX_CONNECTIONS = 128


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no HTTP answer (refused address, timeout, connection error)
    text: str | None         # the first KEPT_ANSWER_BYTES of the body, or what went wrong
    refused: bool = False    # the guard refused the address: retrying will not help until DNS changes

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    def __init__(self, allow: AllowList, max_connections: int = MAX_CONNECTIONS):
        self.allow = allow
        self.client = SimpleAsyncHTTPClient(force_instance=True, resolver=GuardedResolver(allow=allow),
                                            max_clients=max_connections, max_body_size=MAX_ANSWER_BYTES)

    def close(self) -> None:
        self.client.close()

    async def post(self, url: str, headers: dict, body: bytes) -> Answer:
        try:
            parse_target(url, self.allow)
        except UrlNotAllowed as refused:
            return Answer(None, refused.reason, refused=True)
        kept = bytearray()

        def keep(chunk: bytes) -> None:
            if len(kept) < KEPT_ANSWER_BYTES:
                kept.extend(chunk[: KEPT_ANSWER_BYTES - len(kept)])

        request = HTTPRequest(url, method="POST", headers=headers, body=body, follow_redirects=False,
                              connect_timeout=CONNECT_SECONDS, request_timeout=ANSWER_SECONDS,
                              streaming_callback=keep, decompress_response=False,
                              user_agent="MedPharma-Queue-Notifications")
        try:
            response = await self.client.fetch(request, raise_error=False)
        except UrlNotAllowed as refused:
            return Answer(None, refused.reason, refused=True)
        except HTTPTimeoutError:
            return Answer(None, f"no answer within {ANSWER_SECONDS:g} s")
        except HTTPStreamClosedError:
            return Answer(None, "the connection was closed before an answer")
        except HTTPClientError as exc:  # e.g. an answer over MAX_ANSWER_BYTES
            return Answer(exc.code if exc.code != 599 else None, exc.message or "bad answer")
        except ssl.SSLError as exc:
            return Answer(None, f"TLS: {exc.reason or type(exc).__name__}")
        except (OSError, asyncio.TimeoutError) as exc:
            return Answer(None, f"connection failed ({type(exc).__name__})")
        except ValueError as exc:  # a malformed URL or header the client refused
            return Answer(None, f"request refused ({exc})", refused=True)
        return Answer(response.code, kept.decode("utf-8", "replace"))
