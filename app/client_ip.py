"""The client's address: the socket peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the audit trail and the operator's commands need none of litestar
    from litestar.types import Scope


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def trusted_networks(spec: tuple[str, ...]) -> tuple[Network, ...]:
    """The proxies whose X-Forwarded-For is believed (EVENTGATE_TRUSTED_PROXIES, CIDRs)."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(scope: Scope, trusted: tuple[str, ...]) -> str:
    """The address requests are counted under: from the socket, unless the socket is a
    trusted proxy; then the right-most X-Forwarded-For entry that is not one."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    networks = trusted_networks(trusted)
    if not networks or not _trusted(peer, networks):
        return peer
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
    ]
    hops = [hop.strip() for line in forwarded for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
