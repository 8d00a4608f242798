"""Automatically dialled participants (as Pexip's ADP): addresses a meeting's room calls when its
conference starts, for example an interpreter's or a municipality's room system. A vdx extension
of the booking API, kept apart from every VDX field (``{API_CONTEXT}/node/v1/meetings/{uuid}/
auto-dial``): a client that does not use it sees the API exactly as before."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vdx.booking.routing import NAME, RoutingError, parse_sip_uri

ROLES = ("host", "guest")
MAX_ENTRIES = 10  # a room that calls more than this at once is not a meeting but a broadcast
MAX_NAME = 64


@dataclass(frozen=True)
class AutoDial:
    destination: str  # sip:user@host[:port][;transport=udp|tcp|tls], or sips:
    role: str = "guest"
    display_name: str | None = None
    trunk: str | None = None  # an outbound trunk's name; None: straight to the address


def check(entries: Iterable[AutoDial]) -> tuple[AutoDial, ...]:
    """The entries as stored, or ``RoutingError`` naming the field (``autoDial[i].field``)."""
    out = tuple(entries)
    if len(out) > MAX_ENTRIES:
        raise RoutingError("autoDial", f"at most {MAX_ENTRIES} addresses")
    for i, e in enumerate(out):
        where = f"autoDial[{i}]"
        try:
            parse_sip_uri(e.destination)
        except RoutingError as exc:
            raise RoutingError(f"{where}.destination", exc.message) from None
        if e.role not in ROLES:
            raise RoutingError(f"{where}.role", "host or guest")
        if e.display_name is not None and not 0 < len(e.display_name.strip()) <= MAX_NAME:
            raise RoutingError(f"{where}.displayName", f"1-{MAX_NAME} characters")
        if e.trunk is not None and not NAME.match(e.trunk):
            raise RoutingError(f"{where}.trunk", "not a trunk name")
    return out


def to_json(e: AutoDial) -> dict[str, Any]:
    return {"destination": e.destination, "role": e.role, "displayName": e.display_name, "trunk": e.trunk}


def from_json(d: Mapping[str, Any]) -> AutoDial:
    name, trunk = d.get("displayName"), d.get("trunk")
    return AutoDial(
        destination=str(d["destination"]),
        role=str(d.get("role") or "guest"),
        display_name=None if name is None else str(name),
        trunk=None if trunk is None else str(trunk),
    )
