"""Whether a request comes from a person at this very machine: the demo sign-in answers no one else.

A request counts only when all three hold:

- its peer is on the loopback interface (127.0.0.0/8 or ::1, also as an IPv4-mapped address);
- it carries no proxy header (``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``): a reverse proxy on
  this machine connects from loopback too, but the person behind it is elsewhere. (uvicorn
  already replaces the peer by ``X-Forwarded-For`` when the proxy is on 127.0.0.1; a proxy that
  names the client in another header, or sits on another trusted address, is caught here.)
- its ``Host`` names loopback (``localhost``, a 127.x address or ``[::1]``): a page of another site
  whose name a browser was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name.

A proxy that forwards without any of these headers and rewrites ``Host`` to a loopback name is
indistinguishable from a local browser; ``vdx serve --demo`` is not meant to sit behind one.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection

PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip")


def is_loopback_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _host_name(host_header: str) -> str:
    """``Host`` without its port: ``[::1]:8080`` -> ``::1``, ``localhost:8080`` -> ``localhost``."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def from_this_machine(connection: HTTPConnection) -> bool:
    client = connection.client
    if client is None or not is_loopback_address(client.host):
        return False
    if any(name in connection.headers for name in PROXY_HEADERS):
        return False
    host = _host_name(connection.headers.get("host", "").strip().lower())
    return host == "localhost" or is_loopback_address(host)
