"""Where load may go: a target policy checked on the *resolved* address when a connection opens.

A name that resolves to a cloud metadata service or to the dashboard's own database is refused even
when the URL looked harmless, and a DNS answer that changes between check and connect cannot slip
past, because the check runs inside the resolver the connection uses.

Entries are CIDRs (``10.0.0.0/8``), host names (``db.internal``) or ``host:port`` pairs
(``127.0.0.1:5432``, ``[::1]:6379``). Deny wins over allow; an empty allow list allows everything
not denied. Link-local ranges (cloud metadata at 169.254.169.254 among them) are always denied
unless allowed explicitly by an exact entry.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

LINK_LOCAL = ("169.254.0.0/16", "fe80::/10")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetDenied(OSError):
    """The target's address is outside what this deployment may load."""


@dataclass(frozen=True, slots=True)
class _Entry:
    network: Network | None = None
    host: str | None = None
    port: int | None = None

    def matches(self, host: str, address: Address, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address in self.network
        return self.host is not None and self.host in (host.lower(), str(address))


def parse_entry(text: str) -> _Entry:
    """One policy entry; raises ValueError with a message a form can show."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty target policy entry")
    host, port = raw, None
    if raw.startswith("["):  # [v6]:port
        inner, _, rest = raw[1:].partition("]")
        host, port = inner, int(rest[1:]) if rest.startswith(":") else None
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port in target policy entry {raw!r}")
        port = int(port_text)
    try:
        return _Entry(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        if not host or "/" in host or " " in host:
            raise ValueError(f"not a CIDR, host or host:port: {raw!r}") from None
        return _Entry(host=host.lower(), port=port)


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    _allow: tuple[_Entry, ...] = field(init=False, repr=False, default=())
    _deny: tuple[_Entry, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_allow", tuple(parse_entry(e) for e in self.allow))
        object.__setattr__(self, "_deny", tuple(parse_entry(e) for e in (*LINK_LOCAL, *self.deny)))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TargetPolicy:
        data = data or {}
        return cls(allow=tuple(data.get("allow") or ()), deny=tuple(data.get("deny") or ()))

    def to_dict(self) -> dict[str, list[str]]:
        return {"allow": list(self.allow), "deny": list(self.deny)}

    def check(self, host: str, address: str, port: int) -> None:
        """Raises :class:`TargetDenied` naming the rule, or returns."""
        addr = ipaddress.ip_address(address.split("%")[0])
        exact_allow = [e for e in self._allow if e.network is None or e.network.num_addresses == 1]
        for entry in self._deny:
            if not entry.matches(host, addr, port):
                continue
            default = entry.network is not None and str(entry.network) in LINK_LOCAL
            if default and any(a.matches(host, addr, port) for a in exact_allow):
                continue  # a link-local target named exactly on the allow list
            raise TargetDenied(f"target {host}:{port} ({addr}) is denied by the target policy")
        if self._allow and not any(e.matches(host, addr, port) for e in self._allow):
            raise TargetDenied(f"target {host}:{port} ({addr}) is not on the target policy's allow list")


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver with the policy applied to every address it returns."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self.inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            self.policy.check(host, result["host"], result["port"] or port)
        return results

    async def close(self) -> None:
        await self.inner.close()
