"""The DNS side of locating a SIP server (RFC 3263 §4): NAPTR, SRV and A/AAAA queries through
dnspython, fed to the rules of :mod:`.server_location`.

Name servers are the configured ones (``VDX_DNS_SERVERS``), else the system's (/etc/resolv.conf);
with the system's, addresses come from the system resolver too, so /etc/hosts still names hosts
as it did before DNS location. A name that cannot be located raises :class:`LocationFailed`
with the domain and why, never a DNS exception.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdata
import dns.resolver
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

from .message import SipUri
from .server_location import (
    DEFAULT_PORTS,
    ByDomain,
    Direct,
    Naptr,
    Srv,
    Target,
    is_ip,
    naptr_choices,
    order_srv,
    plan,
    srv_name,
)


class LocationFailed(Exception):
    """No server found for ``domain``: the message says why (no such domain, no records, DNS
    unreachable)."""

    def __init__(self, domain: str, message: str) -> None:
        super().__init__(message)
        self.domain = domain
        self.message = message


class _NoDomain(Exception):
    pass


class ServerLocator:
    """Where to send a request for a SIP URI: :meth:`locate` gives the targets in the order to
    try them. ``nameservers`` empty: the system's; ``lifetime`` bounds each query."""

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] = (),
        lifetime: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.nameservers = list(nameservers)
        self.lifetime = lifetime
        self.rng = rng or random.Random()
        self._resolver: dns.asyncresolver.Resolver | None = None

    def resolver(self, domain: str) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            try:
                if self.nameservers:
                    resolver = dns.asyncresolver.Resolver(configure=False)
                    resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in self.nameservers]
                else:
                    resolver = dns.asyncresolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise LocationFailed(domain, f"cannot look up {domain}: no DNS servers configured") from None
            resolver.lifetime = self.lifetime
            resolver.cache = dns.resolver.LRUCache(512)
            self._resolver = resolver
        return self._resolver

    async def locate(self, uri: SipUri) -> list[Target]:
        """The targets for ``uri``, each once; :class:`LocationFailed` when there are none."""
        how = plan(uri)
        domain = how.domain if isinstance(how, ByDomain) else how.host
        try:
            targets = await (self._direct(how) if isinstance(how, Direct) else self._by_domain(how))
        except _NoDomain:
            raise LocationFailed(domain, f"{domain}: no such domain") from None
        except dns.exception.Timeout:
            raise LocationFailed(domain, f"looking up {domain} timed out") from None
        except dns.resolver.NoNameservers:
            raise LocationFailed(domain, f"looking up {domain} failed: no DNS server answered") from None
        except dns.exception.DNSException as e:
            raise LocationFailed(domain, f"looking up {domain} failed: {e}") from None
        unique = list(dict.fromkeys(targets))
        if not unique:
            raise LocationFailed(domain, f"{domain}: no SIP server and no address found")
        return unique

    async def _direct(self, how: Direct) -> list[Target]:
        if is_ip(how.host):
            return [Target(how.transport, how.host, how.host, how.port)]
        return [Target(how.transport, how.host, a, how.port) for a in await self._addresses(how.host, True)]

    async def _by_domain(self, how: ByDomain) -> list[Target]:
        choices: list[tuple[str, str]] = []
        if how.naptr:
            records = await self._query(how.domain, "NAPTR", True)
            choices = naptr_choices(
                (
                    Naptr(
                        r.order, r.preference, r.flags.decode(), r.service.decode(), r.replacement.to_text()
                    )
                    for r in records
                    if isinstance(r, NAPTR)
                ),
                how.transports,
            )
        if not choices:
            choices = [(t, srv_name(t, how.domain)) for t in how.transports]
        found = await asyncio.gather(*(self._srv(name) for _, name in choices))
        if not any(found):  # no SRV at all (§4.2): the domain's own addresses, default port
            port = DEFAULT_PORTS[how.fallback]
            return [
                Target(how.fallback, how.domain, a, port) for a in await self._addresses(how.domain, True)
            ]
        targets: list[Target] = []
        for (transport, _), srvs in zip(choices, found, strict=True):
            for srv in order_srv(srvs, self.rng):
                host = srv.target.rstrip(".").lower()
                targets += [Target(transport, host, a, srv.port) for a in await self._addresses(host, False)]
        return targets

    async def _srv(self, name: str) -> list[Srv]:
        records = await self._query(name, "SRV", False)
        return [Srv(r.priority, r.weight, r.port, r.target.to_text()) for r in records if isinstance(r, SRV)]

    async def _query(self, name: str, rdtype: str, whole_domain: bool) -> list[dns.rdata.Rdata]:
        """The records of ``name``; none when it has none. NXDOMAIN of the dialled domain itself
        (``whole_domain``) ends the location: nothing lies under a name that does not exist."""
        try:
            answer = await self.resolver(name).resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            if whole_domain:
                raise _NoDomain from None
            return []
        except dns.resolver.NoAnswer:
            return []
        return list(answer)

    async def _addresses(self, host: str, whole_domain: bool) -> list[str]:
        """IPv4 then IPv6 addresses of ``host``; the system resolver's when no name servers
        were configured."""
        if not self.nameservers:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except socket.gaierror as e:
                if whole_domain and e.errno == socket.EAI_NONAME:
                    raise _NoDomain from None
                return []
            ordered = sorted(infos, key=lambda i: i[0] != socket.AF_INET)
            return list(dict.fromkeys(str(i[4][0]) for i in ordered))
        a, aaaa = await asyncio.gather(
            self._query(host, "A", whole_domain), self._query(host, "AAAA", whole_domain)
        )
        return [str(r.address) for r in (*a, *aaaa) if isinstance(r, A | AAAA)]
