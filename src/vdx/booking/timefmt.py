"""Timestamps as the VDX API writes and reads them (spec 1.0).

Out: ``yyyy-MM-dd'T'HH:mm:ssXXX`` without fractions; vdx runs in UTC, so the offset is ``Z``.
In: RFC 3339 with an offset; fractions are accepted and dropped; years beyond 9999 are their own
error (400/25), which Python's ``datetime`` cannot even represent, so it is checked on the text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_YEAR = re.compile(r"^\s*[+-]?(\d+)-")


class YearTooLong(ValueError):
    """A year with more than four digits (spec 1.0.1 code 25)."""


def format_ts(value: datetime) -> str:
    # isoformat, not strftime: glibc's %Y does not pad years below 1000 to four digits.
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def format_local(value: datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss`` in the server zone, as the portal link's ``__start-date__``."""
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 date-time with offset; returns aware UTC to the second."""
    m = _YEAR.match(text)
    if m and len(m.group(1)) > 4:
        raise YearTooLong(text)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an RFC 3339 date-time (yyyy-MM-ddTHH:mm:ss+hh:mm)") from exc
    if value.tzinfo is None:
        raise ValueError(f"'{text}' has no UTC offset (RFC 3339 needs Z or +hh:mm)")
    try:
        return value.astimezone(UTC).replace(microsecond=0)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+02:00 is before year 1 in UTC
        raise ValueError(f"'{text}' is out of range in UTC") from None
