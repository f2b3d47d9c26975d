"""The guard for HTTP requests to user-given URLs (server-side request forgery).

A webhook's URL, and anything later that calls a URL a user wrote, goes through one
:class:`UrlGuard`:

* the URL itself must be ``http``/``https`` without credentials, with a port in 1–65535 and a
  host that is a name, a dotted-quad IPv4 address or an IPv6 address (numbers in decimal,
  octal or hex forms such as ``2130706433`` or ``0x7f.1`` are refused: parsers disagree on
  them);
* the host is resolved **once** per connection and every address it answers is checked:
  loopback, private, link-local, multicast and other non-public addresses are refused unless
  their network is allow-listed, the unspecified address (``0.0.0.0``, ``::``) always;
  IPv4-mapped IPv6 addresses are judged (and connected to) as the IPv4 address they carry,
  6to4 and NAT64 addresses by theirs too;
* the connection goes to an address that was checked, never to a second answer, while the
  ``Host`` header, TLS server name (SNI) and certificate verification keep the host name.

This module decides what may be reached; :mod:`activities.pinned_http` makes the connections
(see there how the address is pinned). :meth:`UrlGuard.client` gives a client that does both.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import httpcore
import httpx

from activities.pinned_http import GuardedTransport
from definitions.errors import ConfigurationError, InvalidAddressError

__all__ = ["IPAddress", "Resolver", "UrlGuard", "system_resolver"]

IPAddress = IPv4Address | IPv6Address

Resolver = Callable[[str], Awaitable[Sequence[str]]]
"""Resolves a host name to its addresses, as text (raises ``OSError`` when it cannot)."""

_NUMBER = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)
_CREDENTIALS = re.compile(r"(?<=//)[^/?#]*@")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")


async def system_resolver(host: str) -> list[str]:
    """The operating system's answer for ``host`` (``getaddrinfo``), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _shown(url: str) -> str:
    """A URL fit for an error message: credentials masked, length bounded."""
    masked = _CREDENTIALS.sub("***@", url, count=1)
    return masked if len(masked) <= 200 else masked[:200] + "…"


def _host_problem(host: str) -> str | None:
    """Why a URL's host (as httpx parsed it) cannot be used, or None."""
    if not host:
        return "no host"
    if ":" in host:  # httpx already validated IPv6 literals
        return None
    last = host.removesuffix(".").rsplit(".", 1)[-1]
    if _NUMBER.fullmatch(last):
        try:
            if str(IPv4Address(host)) == host:
                return None
        except ValueError:
            pass
        return (
            f"host {host!r} is a number but not a dotted-quad IPv4 address (a.b.c.d); "
            "decimal, octal and hex forms are refused"
        )
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"host {host!r} is not a valid host name"
    return None


def _unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped IPv6 address carries; other addresses as they are."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a 6to4 or NAT64 address leads to."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: IPAddress) -> str | None:
    """What makes an address non-public (loopback, private…), or None for a public one."""
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    if isinstance(address, IPv6Address):
        if address in _IPV4_COMPATIBLE:
            return "IPv4-compatible IPv6 (deprecated)"
        embedded = _embedded_ipv4(address)
        inner = _kind(embedded) if embedded is not None else None
        if inner is not None:
            return f"leads to {embedded}, {inner}"
    return None


class UrlGuard:
    """Decides which URLs and addresses may be connected to, and connects only to those.

    Args:
        allow_private: networks (CIDR) that may be reached though not public, e.g.
            ``["10.0.0.0/8"]``.
        setting: where ``allow_private`` is configured, named in refusals.
        resolver: how host names are resolved (the system's ``getaddrinfo`` by default).
        network: the httpcore backend that opens sockets to checked addresses (httpcore's
            AnyIO backend by default).

    Raises:
        ConfigurationError: an ``allow_private`` entry is not a network.

    """

    def __init__(
        self,
        allow_private: Iterable[str] = (),
        *,
        setting: str = "allow_private",
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allowed: list[IPv4Network | IPv6Network] = []
        for entry in allow_private:
            try:
                self.allowed.append(ip_network(entry, strict=False))
            except ValueError as exc:
                raise ConfigurationError(f"{setting}: {entry!r} is not a network: {exc}") from None
        self.setting = setting
        self.resolver = resolver
        self.network = network or httpcore.AnyIOBackend()

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The URL parsed as the client will parse it, if its form may be used.

        Raises:
            InvalidAddressError: the scheme, credentials, host or port is refused.

        """
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise InvalidAddressError(f"invalid URL {_shown(str(url))!r}: {exc}") from None
        problem = None
        if parsed.scheme not in ("http", "https"):
            problem = f"scheme {parsed.scheme!r} is not http or https"
        elif parsed.userinfo:
            problem = "credentials in the URL (user:password@) are refused; send them in a header"
        elif parsed.port is not None and not 1 <= parsed.port <= 65535:
            problem = f"port {parsed.port} is out of range (1-65535)"
        else:
            problem = _host_problem(parsed.host)
        if problem:
            raise InvalidAddressError(f"invalid URL {_shown(str(url))!r}: {problem}")
        return parsed

    def refusal(self, address: IPAddress) -> str | None:
        """Why an address may not be connected to, or None if it may."""
        if address.is_unspecified:
            return "the unspecified address (it reaches this host); never allowed"
        if any(address in network for network in self.allowed):
            return None
        kind = _kind(address)
        if kind is None:
            return None
        return f"{kind}, not a public address; allow its network in {self.setting}"

    async def resolve(self, host: str) -> list[IPAddress]:
        """Resolve ``host`` once and check every answer: the addresses that may be used.

        IPv4-mapped IPv6 answers come back as the IPv4 address they carry.

        Raises:
            InvalidAddressError: the host's form is refused, or an answer is not allowed.
            OSError: the host cannot be resolved.

        """
        problem = _host_problem(host)
        if problem:
            raise InvalidAddressError(f"refused to connect: {problem}")
        try:
            answers, literal = [ip_address(host)], True
        except ValueError:
            answers, literal = [ip_address(text) for text in await self.resolver(host)], False
        if not answers:
            raise OSError(f"{host} has no address")
        usable = []
        for answer in answers:
            address = _unmapped(answer)
            reason = self.refusal(address)
            if reason is not None:
                mapped = "" if address == answer else f", that is {address}"
                where = f"{host}{mapped}" if literal else f"{host} ({answer}{mapped})"
                raise InvalidAddressError(f"refused to connect to {where}: {reason}")
            usable.append(address)
        return usable

    def client(
        self,
        *,
        timeout: float,
        verify: ssl.SSLContext | bool = True,
        follow_redirects: bool = False,
    ) -> httpx.AsyncClient:
        """An HTTP client whose every connection goes through this guard.

        Args:
            timeout: seconds for each of connecting (resolution included), writing and
                reading.
            verify: certificate verification (``True``: the system's CAs, or a context).
            follow_redirects: follow 3xx answers; each hop is checked like the first.

        """
        return httpx.AsyncClient(
            transport=GuardedTransport(self, verify=verify),
            timeout=timeout,
            follow_redirects=follow_redirects,
            trust_env=False,  # no proxy from the environment, no .netrc credentials
        )
