"""Where the server may send a request a user asked for: the guard against server-side request forgery.

A push endpoint comes from a browser and a webhook URL from an admin, so both are untrusted: without
this, "notify me" would be a way to make the server call its own metadata service, the Redis next door
or an intranet page. The rule (the API contract's): `https://` only, to a host whose every address is
public (not loopback, private, link-local, shared, multicast, reserved or unspecified; an IPv4-mapped
IPv6 address is judged as the IPv4 address it maps), unless the host (or host:port) is listed in
`NOTIFY_ALLOW_HOSTS`, which also allows `http://` for it.

It is checked when a URL is registered (`check_url`), and again by the resolver of every connection
(`GuardedResolver`), which is the resolver the HTTP client connects with: the addresses checked are
the addresses used, so a name that resolves to a public address at registration and to 127.0.0.1 at
send time (DNS rebinding) is refused at send time. Name resolution runs in the default executor
(`loop.getaddrinfo`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from tornado.netutil import Resolver

from core.errors import ValidationFailed

MAX_URL_LENGTH = 2048


class UrlNotAllowed(ValidationFailed):
    """A URL the server will not send to (`400 url_not_allowed`)."""

    code = "url_not_allowed"

    def __init__(self, reason: str, field: str = "url"):
        super().__init__(f"This address is not allowed: {reason}", code="url_not_allowed",
                         details={field: [reason]})
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str     # lower case; an IPv6 address without brackets
    port: int
    allowed: bool  # listed in NOTIFY_ALLOW_HOSTS: its addresses are not checked


@dataclass(frozen=True)
class AllowList:
    """`NOTIFY_ALLOW_HOSTS`: `host` (any port) or `host:port` entries."""

    entries: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entries) -> "AllowList":
        return cls(frozenset(e.lower() for e in entries))

    def allows(self, host: str, port: int) -> bool:
        shown = f"[{host}]" if ":" in host else host
        return shown in self.entries or f"{shown}:{port}" in self.entries


def parse_target(url: str, allow: AllowList) -> Target:
    """The syntax half, without the network: scheme, host, port, no credentials in the URL."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowed(f"give an https:// URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("not a valid URL") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if scheme not in ("https", "http") or not host:
        raise UrlNotAllowed("only https:// URLs with a host name are accepted")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("credentials in the URL are not accepted")
    if any(ch.isspace() for ch in url):
        raise UrlNotAllowed("not a valid URL")
    port = port or (443 if scheme == "https" else 80)
    allowed = allow.allows(host, port)
    if scheme == "http" and not allowed:
        raise UrlNotAllowed("plain http:// is not accepted; use https://")
    return Target(scheme, host, port, allowed)


def is_public(address: str) -> bool:
    """Whether the server may connect to this address: global unicast only."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
        elif ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 → the embedded IPv4 address
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast and not ip.is_unspecified and not ip.is_reserved


async def resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    """The host's addresses, resolved in the executor (getaddrinfo blocks)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UrlNotAllowed("the host name does not resolve") from None
    return [(family, address) for family, _, _, _, address in infos]


def refuse_private(host: str, addresses: list[tuple[int, tuple]]) -> None:
    if not addresses:
        raise UrlNotAllowed("the host name does not resolve")
    for _, address in addresses:
        if not is_public(address[0]):
            raise UrlNotAllowed("the host is, or resolves to, a loopback, private, link-local or "
                                "otherwise non-public address")


async def check_url(url: str, allow: AllowList, field: str = "url") -> Target:
    """The whole check, at registration: syntax, then every address the host resolves to."""
    try:
        target = parse_target(url, allow)
        if not target.allowed:
            refuse_private(target.host, await resolve(target.host, target.port))
    except UrlNotAllowed as refused:
        raise UrlNotAllowed(refused.reason, field) from None
    return target


class GuardedResolver(Resolver):
    """The resolver the notification HTTP client connects with: it answers only public addresses
    (or anything for an allowed host), so the check and the connection use the same addresses."""

    def initialize(self, allow: AllowList) -> None:  # Tornado's Configurable calls this
        self.allow = allow

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC):
        host = host.strip("[]").rstrip(".").lower()
        addresses = await resolve(host, port)
        if family != socket.AF_UNSPEC:
            addresses = [a for a in addresses if a[0] == family]
        if not self.allow.allows(host, port):
            refuse_private(host, addresses)
        return addresses
