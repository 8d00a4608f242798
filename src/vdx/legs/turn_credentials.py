"""Time-limited TURN credentials from a secret shared with the TURN server: the TURN REST API
scheme coturn implements (``use-auth-secret``, ``static-auth-secret``). The username is
``<expiry unix time>:<holder>``, the password base64(HMAC-SHA1(secret, username)); the TURN server
recomputes the password and refuses a username whose expiry has passed, so nothing is stored and a
credential handed out opens no new relay after it expires (an allocation made before lives on)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TurnCredential:
    username: str
    password: str
    expires: int  # unix time, the number in the username


def turn_credential(secret: str, ttl_s: int, holder: str, now: float | None = None) -> TurnCredential:
    """A credential for ``holder`` (a participant id: the TURN server logs the username, so it ties
    a relay to a participant without naming anyone), valid ``ttl_s`` seconds from ``now``."""
    expires = int(time.time() if now is None else now) + ttl_s
    username = f"{expires}:{holder}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires)
