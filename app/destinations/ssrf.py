"""Never send to an address the operator did not mean (SSRF).

A destination's host is resolved with the event loop's resolver; every address it resolves to
must be globally routable (no loopback, private, link-local, cloud metadata, shared,
unspecified, reserved or multicast). Checked when a destination is saved and again before
every send, since DNS changes; the connection itself goes through `GuardedResolver`, so the
address connected to is one that passed the check (no rebinding between check and connect).
Outside production, or with DESTINATIONS_ALLOW_PRIVATE_NETWORKS=true, anything goes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from app.destinations.errors import DestinationRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Metadata services some clouds put at addresses that are not otherwise special.
_METADATA = frozenset(
    {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
)


def forbidden_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in _METADATA or address.is_multicast or not address.is_global


def check_url_shape(url: str, *, allow_private: bool) -> tuple[str, int]:
    """(host, port) of a usable destination URL, or `DestinationRefused`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused("The destination URL must be http(s).")
    if parts.scheme == "http" and not allow_private:
        raise DestinationRefused("The destination URL must use https.")
    if parts.username or parts.password:
        raise DestinationRefused("Credentials in the destination URL are not accepted.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused("The destination URL has an invalid port.") from None
    host = parts.hostname
    if not host:
        raise DestinationRefused("The destination URL has no host.")
    return host, port


async def resolve_allowed(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses `host` resolves to, all of them allowed, or `DestinationRefused`."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise DestinationRefused(f"The destination host {host!r} does not resolve.") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not allow_private:
        bad = [str(a) for a in addresses if forbidden_address(a)]
        if bad:
            raise DestinationRefused(
                f"The destination resolves to a non-public address ({', '.join(sorted(set(bad)))})"
                "; set DESTINATIONS_ALLOW_PRIVATE_NETWORKS=true to allow it."
            )
    return [str(a) for a in addresses]


async def check_destination_url(url: str, *, allow_private: bool) -> None:
    host, port = check_url_shape(url, allow_private=allow_private)
    await resolve_allowed(host, port, allow_private=allow_private)


class GuardedResolver(ThreadedResolver):
    """aiohttp's resolver, minus every address the guard refuses."""

    def __init__(self, *, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        if self.allow_private:
            return results
        kept = [r for r in results if not forbidden_address(ipaddress.ip_address(r["host"]))]
        if not kept:
            raise OSError(f"{host} resolves only to non-public addresses")
        return kept
