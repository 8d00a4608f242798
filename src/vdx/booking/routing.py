"""Gateway routing: where a call to an alias that is no room goes. Pure rules, shared by the API
that stores rules and outbound trunks and the node that applies them.

A rule has a priority (lower first; equal priorities in name order), a pattern the dialled alias
must match whole (a Python regular expression), a replacement that makes the destination from the
match (``\\1``, ``\\g<name>``), who may use it (the caller's SIP domains or IP networks; none
given: anyone), and where the call goes: a SIP address (through a named outbound trunk, or found
by DNS as RFC 3263 says) or, written ``browser:NAME``, a browser waiting on the point-to-point
page signed in as the device ``NAME`` (``vdx.booking.devices``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
# sip:[user@]host[:port][;transport=udp|tcp|tls]; the user part as RFC 3261 section 25.1 allows it,
# less ';' and '?', which the node's URI parser reads as the start of parameters and headers
SIP_URI = re.compile(
    r"^(?P<scheme>sips?):(?:(?P<user>[A-Za-z0-9\-_.!~*'()&=+$,/%]+)@)?"
    r"(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?"
    r"(?:;transport=(?P<transport>udp|tcp|tls))?$",
    re.IGNORECASE,
)
TARGETS = ("sip", "browser")
BROWSER = "browser:"  # a destination that is a waiting browser: browser:NAME
# What a browser destination's name may hold around its group references (\1, \g<x>).
_NAME_CHARS = re.compile(r"^[A-Za-z0-9._-]*$")
TRANSPORTS = ("udp", "tcp", "tls")
_GROUP_REF = re.compile(r"\\(\d+)|\\g<([^>]*)>")


class RoutingError(ValueError):
    """A rule or trunk that cannot be used: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Rule:
    name: str
    match: str  # the dialled alias, matched whole
    replace: str  # the destination: a SIP URI, or browser:NAME (a waiting browser)
    priority: int = 100
    target: str = "sip"  # sip | browser
    trunk: str | None = None  # an outbound trunk's name; None: DNS (RFC 3263)
    source_domains: tuple[str, ...] = ()  # the caller's From domain; none: any
    source_networks: tuple[str, ...] = ()  # the caller's address (CIDR); none: any
    enabled: bool = True


@dataclass(frozen=True)
class Trunk:
    name: str
    proxy: str  # host[:port] every call through the trunk is sent to
    transport: str = "udp"
    username: str | None = None  # digest credentials, when the proxy challenges
    password: str | None = field(default=None, repr=False)
    from_domain: str | None = None  # the From header's domain (default: the node's SIP domain)
    max_calls: int = 0  # concurrent calls through it; 0: no limit


@dataclass(frozen=True)
class Route:
    rule: Rule
    destination: str


@dataclass(frozen=True)
class Decision:
    """A call's fate under the rules: a ``route``, or none (``refused``: a rule's pattern matched
    but none admits this caller, which is 403 rather than 404)."""

    route: Route | None
    refused: bool = False


def parse_sip_uri(uri: str) -> re.Match[str]:
    m = SIP_URI.match(uri.strip())
    if m is None or (m["port"] is not None and not 0 < int(m["port"]) < 65536):
        raise RoutingError(
            "destination", f"{uri!r} is not a SIP URI (sip:user@host[:port][;transport=udp|tcp|tls])"
        )
    # the node's dialler refuses the same: a sips: address is reached over TLS only (RFC 3261 §26.2)
    if m["scheme"].lower() == "sips" and (m["transport"] or "tls").lower() != "tls":
        raise RoutingError("destination", f"{uri!r}: a sips: address is reached over TLS only")
    return m


def check_rule(rule: Rule) -> Rule:
    """The rule as stored: every field checked (``RoutingError`` otherwise), domains lower case,
    a browser destination written ``browser:NAME`` with target ``browser`` (either says it)."""
    _check_name("name", rule.name)
    if not 0 <= rule.priority <= 1000:
        raise RoutingError("priority", "from 0 (first) to 1000")
    if rule.target not in TARGETS:
        raise RoutingError("target", f"one of {', '.join(TARGETS)}")
    if rule.replace.lower().startswith(BROWSER):
        rule = replace(rule, target="browser", replace=BROWSER + rule.replace[len(BROWSER) :])
    elif rule.target == "browser":
        rule = replace(rule, replace=BROWSER + rule.replace)
    _check_replacement(rule)
    if rule.trunk is not None:
        if rule.target == "browser":
            raise RoutingError("trunk", "a browser destination takes no trunk")
        _check_name("trunk", rule.trunk)
    return replace(
        rule, source_domains=_domains(rule.source_domains), source_networks=_networks(rule.source_networks)
    )


def _check_name(what: str, name: str) -> None:
    if not NAME.match(name):
        raise RoutingError(what, "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")


def _check_replacement(rule: Rule) -> None:
    """The pattern compiles and the replacement names only groups it has."""
    try:
        pattern = re.compile(rule.match)
    except re.error as exc:
        raise RoutingError("match", f"does not compile: {exc}") from None
    for number, name in _GROUP_REF.findall(rule.replace):
        if number and int(number) > pattern.groups:
            raise RoutingError("replace", f"\\{number}: the pattern has {pattern.groups} groups")
        if name and name not in pattern.groupindex and not (name.isdigit() and int(name) <= pattern.groups):
            raise RoutingError("replace", f"\\g<{name}>: no such group in the pattern")
    # The pattern or nothing matches "" with every group unset: expanding the replacement on that
    # finds a bad escape or group now, not on a call (a verbose pattern's comment may eat the "|").
    with contextlib.suppress(re.error):
        probe = re.compile(rule.match + "|").fullmatch("")
        if probe is not None:
            try:
                probe.expand(rule.replace)
            except (re.error, IndexError) as exc:
                raise RoutingError("replace", str(exc)) from None
    if rule.target == "sip" and not rule.replace.lower().startswith(("sip:", "sips:")):
        raise RoutingError("replace", "a SIP destination starts with sip: or sips:")
    if rule.target == "browser":
        _check_browser(rule.replace[len(BROWSER) :])


def _check_browser(name: str) -> None:
    """A device's name, or one made of the match: its own characters those of a name."""
    literal = _GROUP_REF.sub("", name)
    if not name or not _NAME_CHARS.match(literal) or (literal == name and not NAME.match(name)):
        raise RoutingError(
            "replace",
            f"browser:{name} is not a device name (browser:NAME, NAME 1-100 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit)",
        )


def browser_name(destination: str) -> str | None:
    """The device a route's destination names (``browser:NAME``), or None: a SIP address, or a
    name the match made that is no device's name (no device can wait under it)."""
    if not destination.lower().startswith(BROWSER):
        return None
    name = destination[len(BROWSER) :]
    return name if NAME.match(name) else None


def _domains(domains: Iterable[str]) -> tuple[str, ...]:
    out = tuple(d.strip().lower() for d in domains)
    for d in out:
        if not DOMAIN.match(d):
            raise RoutingError("sourceDomains", f"{d!r} is not a domain name")
    return out


def _networks(networks: Iterable[str]) -> tuple[str, ...]:
    out = []
    for n in networks:
        try:
            out.append(str(ipaddress.ip_network(n.strip(), strict=False)))
        except ValueError:
            raise RoutingError("sourceNetworks", f"{n!r} is not an IP network (such as 10.0.0.0/8)") from None
    return tuple(out)


def check_trunk(trunk: Trunk) -> Trunk:
    _check_name("name", trunk.name)
    host, _, port = (
        trunk.proxy.strip().rpartition(":") if ":" in trunk.proxy else (trunk.proxy.strip(), "", "")
    )
    if not DOMAIN.match(host) and not _is_ip(host):
        raise RoutingError("proxy", f"{trunk.proxy!r} is not host[:port]")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise RoutingError("proxy", f"port {port!r} is not 1-65535")
    if trunk.transport not in TRANSPORTS:
        raise RoutingError("transport", f"one of {', '.join(TRANSPORTS)}")
    if (trunk.username is None) != (trunk.password is None):
        raise RoutingError("password", "give both username and password, or neither")
    if trunk.from_domain is not None and not DOMAIN.match(trunk.from_domain):
        raise RoutingError("fromDomain", f"{trunk.from_domain!r} is not a domain name")
    if trunk.max_calls < 0:
        raise RoutingError("maxCalls", "0 (no limit) or more")
    return trunk


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def in_order(rules: Iterable[Rule]) -> list[Rule]:
    return sorted(rules, key=lambda r: (r.priority, r.name))


def decide(rules: Sequence[Rule], alias: str, source_domain: str | None, source_ip: str | None) -> Decision:
    """The first enabled rule (in priority order) whose pattern matches ``alias`` whole and that
    admits the caller; its destination is the replacement applied to the match."""
    refused = False
    for rule in in_order(r for r in rules if r.enabled):
        m = re.fullmatch(rule.match, alias)
        if m is None:
            continue
        if not _admits(rule, source_domain, source_ip):
            refused = True
            continue
        return Decision(Route(rule, m.expand(rule.replace)))
    return Decision(None, refused)


def _admits(rule: Rule, domain: str | None, ip: str | None) -> bool:
    """A rule with sources admits a caller from one of its domains or one of its networks."""
    if not rule.source_domains and not rule.source_networks:
        return True
    if (domain or "").lower() in rule.source_domains:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n) for n in rule.source_networks)


# --- as the API writes them (``/node/v1/routing-rules``, ``/trunks``, ``/routing``) ---------------


def rule_json(r: Rule) -> dict[str, Any]:
    return {
        "name": r.name,
        "priority": r.priority,
        "match": r.match,
        "replace": r.replace,
        "target": r.target,
        "trunk": r.trunk,
        "sourceDomains": list(r.source_domains),
        "sourceNetworks": list(r.source_networks),
        "enabled": r.enabled,
    }


def trunk_json(t: Trunk, *, secrets: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": t.name,
        "proxy": t.proxy,
        "transport": t.transport,
        "username": t.username,
        "credentials": t.password is not None,
        "fromDomain": t.from_domain,
        "maxCalls": t.max_calls,
    }
    if secrets:
        out["password"] = t.password
    return out


def rule_from_json(r: Mapping[str, Any]) -> Rule:
    return Rule(
        name=str(r["name"]),
        match=str(r["match"]),
        replace=str(r["replace"]),
        priority=int(r.get("priority", 100)),
        target=str(r.get("target", "sip")),
        trunk=None if r.get("trunk") is None else str(r["trunk"]),
        source_domains=tuple(str(d) for d in r.get("sourceDomains") or ()),
        source_networks=tuple(str(n) for n in r.get("sourceNetworks") or ()),
        enabled=bool(r.get("enabled", True)),
    )


def trunk_from_json(t: Mapping[str, Any]) -> Trunk:
    return Trunk(
        name=str(t["name"]),
        proxy=str(t["proxy"]),
        transport=str(t.get("transport", "udp")),
        username=None if t.get("username") is None else str(t["username"]),
        password=None if t.get("password") is None else str(t["password"]),
        from_domain=None if t.get("fromDomain") is None else str(t["fromDomain"]),
        max_calls=int(t.get("maxCalls") or 0),
    )
