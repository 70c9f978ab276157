"""Which webhook destinations are allowed: http(s) URLs that reach public addresses only."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedDestination(ValueError):
    """The URL is malformed or leads to a loopback, private or otherwise non-public address."""


# NAT64's well-known prefix carries an IPv4 address in its last 32 bits (RFC 6052); the
# local-use prefix (RFC 8215) only ever leads to a private network.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
# SIIT's IPv4-translated addresses (RFC 2765) carry one in their last 32 bits too.
_SIIT = ipaddress.IPv6Network("::ffff:0:0:0/96")
# One DNS label of a host name, after IDNA encoding (underscores occur in real names).
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, IPv4-compatible, SIIT,
    NAT64, 6to4 or Teredo (the client address); None for a plain IPv6 address."""
    if address in _SIIT:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    as_int = int(address)
    if address in _NAT64 or (as_int >> 32 == 0 and as_int > 1):
        return ipaddress.IPv4Address(as_int & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses; an IPv6 address that embeds an IPv4
    address is judged by that address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return address.is_global and not address.is_multicast


def well_formed_url(url: str) -> tuple[str, int]:
    """The host and port of a well-formed http(s) URL; RefusedDestination otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedDestination(f"the URL is malformed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise RefusedDestination("the URL must start with http:// or https://")
    if not parts.hostname:
        raise RefusedDestination("the URL has no host")
    return ascii_host(parts.hostname), port or (443 if parts.scheme == "https" else 80)


def ascii_host(host: str) -> str:
    """The host as a resolver takes it: an IP literal as it is, a name IDNA-encoded with
    every label valid; RefusedDestination for a name that cannot be encoded."""
    if literal_address(host) is not None:
        return host
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise RefusedDestination("the URL's host is not a valid domain name") from None
    labels = encoded.removesuffix(".").split(".")
    if len(encoded) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise RefusedDestination("the URL's host is not a valid domain name")
    return encoded


def refuse_address(host: str, address: str) -> None:
    """RefusedDestination when `address` (what `host` resolved to) is not public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    if not is_public(ip):
        raise RefusedDestination(f"{host} resolves to the non-public address {ip}")


def literal_address(host: str) -> IPAddress | None:
    """The address when the host is an IP literal, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def check_destination(url: str, timeout: float = 3.0) -> None:
    """Refuse URLs whose host is, or resolves to, a non-public address.

    A name that does not resolve now is accepted: it is checked again at every send.
    """
    host, port = well_formed_url(url)
    if literal_address(host) is not None:
        refuse_address(host, host)
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except (OSError, TimeoutError):
        return
    for info in infos:
        refuse_address(host, str(info[4][0]))


def check_broker_url(url: str, schemes: dict[str, int], allowed: tuple[str, ...]) -> None:
    """RefusedDestination unless the broker URL has one of `schemes` (with its default port)
    and its host (or host:port) is among the operator's `allowed` brokers."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedDestination(f"the URL is malformed: {exc}") from exc
    if parts.scheme not in schemes:
        raise RefusedDestination(
            f"the URL must start with {' or '.join(f'{s}://' for s in schemes)}"
        )
    if not parts.hostname:
        raise RefusedDestination("the URL has no host")
    if not allowed:
        raise RefusedDestination(
            "broker destinations are disabled here (the operator lists the brokers tenants may"
            " publish to in EVENTGATE_BROKER_HOSTS)"
        )
    host = parts.hostname.lower()
    port = port or schemes[parts.scheme]
    wanted = {host, f"{host}:{port}", f"[{host}]:{port}"}
    if not wanted & {entry.lower() for entry in allowed}:
        raise RefusedDestination(
            f"{host}:{port} is not among the brokers this server may publish to"
        )


def without_password(url: str) -> str:
    """The URL as it may be shown: any password (and query, which may hold one) left out."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
