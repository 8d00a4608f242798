"""Devices: the names a browser may wait under on the point-to-point page, for routing rules whose
destination is ``browser:NAME`` (``vdx.booking.routing``). Pure rules: a device's name, its secret
(made here, shown once, kept only as a salted scrypt hash) and the check of a secret against it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vdx.booking.routing import NAME, RoutingError
from vdx.booking.timefmt import format_ts

SECRET_BYTES = 24  # 192 bits, as 32 URL-safe characters
MAX_SECRET = 200  # longer input is refused before hashing (scrypt on megabytes is a cheap attack)
# scrypt at n=2**14, r=8: 16 MiB and some tens of ms per check, on sign-in only (RFC 7914 §2)
_N, _R, _P = 2**14, 8, 1
SCHEME = "scrypt"


@dataclass(frozen=True)
class Device:
    name: str
    created_time: datetime | None = None


def check_name(name: str) -> str:
    """A device's name as a rule's ``browser:NAME`` names it (``RoutingError`` otherwise)."""
    if not NAME.match(name):
        raise RoutingError("name", "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash``: what the database keeps instead of the secret."""
    salt = secrets.token_bytes(16)
    return "$".join((SCHEME, str(_N), str(_R), str(_P), _b64(salt), _b64(_scrypt(secret, salt, _N, _R, _P))))


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` is the one ``stored`` was made from (in constant time); a stored value
    this code did not make, or an over-long secret, is never a match."""
    if not secret or len(secret) > MAX_SECRET:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        made = _scrypt(secret, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(made, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def device_json(d: Device) -> dict[str, Any]:
    """As the API lists it: never the secret or its hash."""
    return {"name": d.name, "createdTime": format_ts(d.created_time) if d.created_time else None}
