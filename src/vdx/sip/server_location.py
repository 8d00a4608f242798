"""Locating the SIP server of an address (RFC 3263 §4), the rules without the DNS queries.

An address names its server directly (an IP literal, or an explicit port: §4.2 skips NAPTR and
SRV) or through its domain: NAPTR records pick the transports and their SRV names, else the SRV
names are those of the transports the URI allows; SRV records are ordered by priority and, within
one, by RFC 2782's weighted random selection; no SRV at all leaves the domain's own A/AAAA
addresses on the default port. :mod:`.locator` asks DNS and feeds these rules.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .message import SipUri

# NAPTR service -> transport (RFC 3263 §4.1); the SRV prefix of each transport.
NAPTR_SERVICES = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}
SRV_PREFIXES = {"TLS": "_sips._tcp", "TCP": "_sip._tcp", "UDP": "_sip._udp"}
TRANSPORT_PARAMS = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


@dataclass(frozen=True)
class Srv:
    """One SRV record (RFC 2782): ``target`` "." means no such service at this domain."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Naptr:
    """One NAPTR record (RFC 3403) as SIP uses it: flag "s", a service, an SRV name to query."""

    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True)
class Target:
    """One place to send the INVITE: ``transport`` over to ``address`` (an IP) at ``port``;
    ``host`` the name it was found under (the SRV target, or the address itself)."""

    transport: str
    host: str
    address: str
    port: int

    def __str__(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        named = "" if self.host == self.address else f"{self.host} "
        return f"{named}{address}:{self.port}/{self.transport}"


@dataclass(frozen=True)
class Direct:
    """The URI names its server: ``host`` (a name or an IP literal) on ``port``, no NAPTR/SRV."""

    transport: str
    host: str
    port: int


@dataclass(frozen=True)
class ByDomain:
    """The server is found under ``domain``: NAPTR when ``naptr`` (no transport was forced), else
    SRV for ``transports`` in that order; ``fallback`` the transport of plain A/AAAA."""

    domain: str
    transports: tuple[str, ...]
    naptr: bool
    fallback: str


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def forced_transport(uri: SipUri) -> str | None:
    """The transport ``transport=`` demands (on a ``sips:`` URI always TLS), else None."""
    named = TRANSPORT_PARAMS.get((uri.params.get("transport") or "").lower())
    if uri.scheme == "sips":
        return "TLS" if named is not None else None
    return named


def allowed_transports(uri: SipUri) -> tuple[str, ...]:
    """The transports a server of ``uri`` may be reached over, most secure first: only TLS for
    ``sips:``, only the forced one with ``transport=``."""
    forced = forced_transport(uri)
    if uri.scheme == "sips":
        return ("TLS",)
    if forced is not None:
        return (forced,)
    return ("TLS", "TCP", "UDP")


def plan(uri: SipUri) -> Direct | ByDomain:
    """How to find the server of ``uri`` (RFC 3263 §4.1, §4.2)."""
    forced = forced_transport(uri)
    fallback = "TLS" if uri.scheme == "sips" else (forced or "UDP")
    if is_ip(uri.host):
        return Direct(fallback, uri.host, uri.port or DEFAULT_PORTS[fallback])
    host = uri.host.rstrip(".").lower()
    if uri.port is not None:
        return Direct(fallback, host, uri.port or DEFAULT_PORTS[fallback])
    return ByDomain(host, allowed_transports(uri), forced is None, fallback)


def srv_name(transport: str, domain: str) -> str:
    return f"{SRV_PREFIXES[transport]}.{domain}"


def naptr_choices(records: Iterable[Naptr], allowed: Sequence[str]) -> list[tuple[str, str]]:
    """(transport, SRV name) of the NAPTR records SIP can follow (§4.1): flag "s", a service of a
    transport in ``allowed``, a replacement; by order then preference, each SRV name once."""
    usable = [
        r
        for r in records
        if r.flags.lower() == "s"
        and NAPTR_SERVICES.get(r.service.upper()) in allowed
        and r.replacement.rstrip(".")
    ]
    out: list[tuple[str, str]] = []
    for r in sorted(usable, key=lambda r: (r.order, r.preference)):
        choice = (NAPTR_SERVICES[r.service.upper()], r.replacement.rstrip(".").lower())
        if choice not in out:
            out.append(choice)
    return out


def order_srv(records: Iterable[Srv], rng: random.Random | None = None) -> list[Srv]:
    """SRV records in the order to try them (RFC 2782): lowest priority first; within one
    priority, each next record drawn at random in proportion to its weight (weight 0 records
    first in the running sum, so they are chosen only when the draw is 0 or they alone remain).
    A "." target (no service) is dropped; a record repeated counts once."""
    rng = rng or random.Random()
    unique = list(dict.fromkeys(r for r in records if r.target.rstrip(".")))
    out: list[Srv] = []
    for priority in sorted({r.priority for r in unique}):
        group = [r for r in unique if r.priority == priority]
        group.sort(key=lambda r: r.weight != 0)  # zero weights at the beginning (stable otherwise)
        while group:
            total = sum(r.weight for r in group)
            draw = rng.randint(0, total)
            running = 0
            for i, r in enumerate(group):
                running += r.weight
                if running >= draw:
                    out.append(group.pop(i))
                    break
    return out


def describe_tried(failures: Sequence[tuple[Target, str]]) -> str:
    """What a person reads when every target failed: each target and why, in the order tried."""
    return "; ".join(f"{target} {why}" for target, why in failures)
