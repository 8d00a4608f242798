"""Meeting addresses (spec 2.4): numbers drawn from a template range, or a custom address."""

from __future__ import annotations

import random
import re

from vdx.booking.errors import vdx_error

# spec 2.4: at most 100 redraws while the number is taken in the domain, then 406/15.
MAX_URI_DRAWS = 100
_CUSTOM_URI = re.compile(r"[a-zA-Z0-9]+")

_rng = random.SystemRandom()


def draw_number(low: int, high: int, rng: random.Random | None = None) -> int:
    """A number in ``[low, high)`` (high exclusive); a range with ``low >= high`` is 406/14."""
    if low >= high:
        raise vdx_error("14")
    return (rng or _rng).randrange(low, high)


def uri_with_domain(prefix: str | None, number: int | str, domain: str | None) -> str:
    """``uriPrefix + number + "@" + uriDomain`` (a null prefix or domain counts as empty)."""
    return f"{prefix or ''}{number}@{domain or ''}"


def validate_custom_uri(value: str) -> str:
    """A custom ``uriWithoutDomain`` must match ``[a-zA-Z0-9]+`` (empty fails too), else 400/33."""
    if not _CUSTOM_URI.fullmatch(value):
        raise vdx_error("33")
    return value


def custom_uri_with_domain(custom: str, domain: str | None) -> str:
    """A custom address gets the domain but **not** the template prefix (spec 2.4)."""
    return f"{custom}@{domain or ''}"
