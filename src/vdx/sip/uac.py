"""What a dial-out needs besides the transactions: the address dialled, how its attempt ended,
and the digest answer to a challenge (RFC 3261 §22, RFC 8760 / RFC 7616).

The UAC itself is :meth:`vdx.sip.server.SipServer.dial`: one user agent answers and calls, so an
outgoing call, once answered, is the same :class:`~vdx.sip.call.SipCall` an incoming one is.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from .message import NameAddr, SipParseError, SipRequest, SipResponse, SipUri, split_list

TRANSPORTS = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}
MAX_REDIRECTS = 5  # 3xx hops followed before the dial fails (a redirect loop ends)


class BadDestination(ValueError):
    """An address that cannot be dialled, with the reason a person can act on."""


class DialState(enum.StrEnum):
    """How far a dial-out got; the last five end it."""

    CALLING = "calling"
    RINGING = "ringing"
    CONNECTED = "connected"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Credentials:
    """The user name and password answering a digest challenge (401/407)."""

    username: str
    password: str


@dataclass(frozen=True)
class OutgoingCall:
    """One dial-out: ``target`` a parsed SIP URI, ``alias`` the room (the From user), ``secure``
    asks for SDES-SRTP, ``context`` comes back as the answered call's ``SipCall.context``; with
    ``proxy`` the INVITE is sent there with a Route to it (RFC 3261 §8.1.2)."""

    target: SipUri
    alias: str
    display_name: str  # the From display name: who calls (the room)
    peer_name: str  # the dialled party, as the room shows them
    secure: bool = False
    credentials: Credentials | None = None
    ring_timeout: float = 30.0
    context: Any = None
    proxy: SipUri | None = None  # an outbound proxy (a trunk's): every INVITE goes there, routed on
    from_domain: str | None = None  # the From host; default: the node's SIP domain


def parse_destination(text: str) -> SipUri:
    """A SIP address to dial: ``sip:`` or ``sips:``, a host, an optional port, ``transport`` udp,
    tcp or tls (never plain text for ``sips:``). :class:`BadDestination` otherwise."""
    text = (text or "").strip()
    if not text or len(text) > 512 or any(c.isspace() or ord(c) < 32 for c in text) or "<" in text:
        raise BadDestination("destination must be a SIP URI such as sip:user@host")
    try:
        uri = SipUri.parse(text)
    except SipParseError as e:
        raise BadDestination(f"destination is not a SIP URI: {e}") from None
    if uri.scheme not in ("sip", "sips"):
        raise BadDestination("destination must be a sip: or sips: URI")
    if not uri.host or any(c in uri.host for c in "@/\\?#"):
        raise BadDestination("destination has no valid host")
    transport = (uri.params.get("transport") or "").lower()
    if transport and transport not in TRANSPORTS:
        raise BadDestination("transport must be udp, tcp or tls")
    if uri.scheme == "sips" and transport in ("udp", "tcp"):
        raise BadDestination("a sips: address is reached over TLS only")
    return uri


def transport_of(uri: SipUri) -> str:
    """UDP, TCP or TLS: ``transport=``, else TLS for ``sips:`` and UDP for ``sip:`` (RFC 3263 §4.1
    without NAPTR/SRV: the address names its host and port)."""
    transport = (uri.params.get("transport") or "").lower()
    if uri.scheme == "sips":
        return "TLS"
    return TRANSPORTS.get(transport, "UDP")


def port_of(uri: SipUri) -> int:
    return uri.port or (5061 if transport_of(uri) == "TLS" else 5060)


def wants_encryption(uri: SipUri) -> bool:
    """``sips:`` and ``transport=tls`` ask for a secure call: its media is SDES-SRTP too."""
    return transport_of(uri) == "TLS"


def outcome_of(status: int) -> DialState:
    """The dial's end for a final non-2xx (RFC 3261 §21): busy everywhere or here is busy, a
    timeout or unavailability is no answer, anything else failed."""
    if status in (486, 600, 603):
        return DialState.BUSY
    if status in (408, 480, 487):
        return DialState.NO_ANSWER
    return DialState.FAILED


def redirect_target(contacts: list[str]) -> SipUri | None:
    """The first dialable Contact of a 3xx (highest q first, RFC 3261 §8.1.3.4)."""
    ranked: list[tuple[float, int, SipUri]] = []
    for i, value in enumerate(v for header in contacts for v in split_list(header)):
        try:
            addr = NameAddr.parse(value)
            uri = parse_destination(addr.uri)
            q = float(addr.params.get("q") or 1.0)
        except (SipParseError, BadDestination, ValueError):
            continue
        ranked.append((-q, i, uri))
    return min(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else None


def digest_authorization(
    challenge: str, method: str, uri: str, credentials: Credentials, nc: int = 1, cnonce: str | None = None
) -> str:
    """The Authorization / Proxy-Authorization value answering one ``Digest`` challenge (RFC 3261
    §22.4 with RFC 7616's qop=auth and SHA-256). :class:`ValueError` for a scheme or algorithm we
    cannot answer."""
    scheme, _, rest = challenge.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"authentication scheme {scheme!r} is not Digest")
    params = _challenge_params(rest)
    realm = params.get("realm", "")
    nonce = params.get("nonce", "")
    algorithm = params.get("algorithm", "MD5")
    hashes = {"md5": hashlib.md5, "sha-256": hashlib.sha256}
    h = hashes.get(algorithm.lower())
    if h is None or not nonce:
        raise ValueError(f"digest algorithm {algorithm!r} is not supported")

    def hx(text: str) -> str:
        return h(text.encode()).hexdigest()

    ha1 = hx(f"{credentials.username}:{realm}:{credentials.password}")
    ha2 = hx(f"{method}:{uri}")
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    fields = [
        f'username="{credentials.username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
    ]
    if "auth" in qops:
        cnonce = cnonce or secrets.token_hex(8)
        count = f"{nc:08x}"
        response = hx(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
        fields += [f'response="{response}"', "qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:
        fields.append(f'response="{hx(f"{ha1}:{nonce}:{ha2}")}"')
    fields.append(f"algorithm={algorithm}")
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


def answer_challenge(
    response: SipResponse, request: SipRequest, credentials: Credentials
) -> tuple[str, str] | None:
    """The header answering a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) digest
    challenge to ``request``; None when there is none we can answer."""
    asked, answer = (
        ("WWW-Authenticate", "Authorization")
        if response.status == 401
        else ("Proxy-Authenticate", "Proxy-Authorization")
    )
    for challenge in response.get_all(asked):
        try:
            return answer, digest_authorization(challenge, request.method, request.uri, credentials)
        except ValueError:
            continue
    return None


def _challenge_params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in split_list(text):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name.strip().lower()] = value.strip().strip('"')
    return out
