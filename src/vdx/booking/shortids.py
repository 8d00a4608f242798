"""Short ids (spec 2.6): the key of a meeting's short link."""

from __future__ import annotations

import hashlib
import re
import uuid

SHORT_ID_LENGTH = 12
# spec 2.6: a collision is retried 5 times, then 400/24.
SHORT_ID_RETRIES = 5
_SHORT_ID = re.compile(r"[0-9a-f]{12}")


def new_short_id(source: uuid.UUID | None = None) -> str:
    """First 12 lowercase hex characters of SHA-256 of a fresh random UUID string (``source``
    fixes the UUID, for tests and for legacy ids derived from a meeting uuid)."""
    return hashlib.sha256(str(source or uuid.uuid4()).encode()).hexdigest()[:SHORT_ID_LENGTH]


def is_short_id(value: str) -> bool:
    return _SHORT_ID.fullmatch(value) is not None


def short_link(base: str, short_id: str) -> str:
    """The meeting's short link: the configured base followed by its short id (spec 2.6)."""
    return f"{base}{short_id}"
