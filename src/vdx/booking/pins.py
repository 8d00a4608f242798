"""PINs from template ranges (spec 2.5); explicit PINs are validated by the command (``Int32Pin``)."""

from __future__ import annotations

import random

from vdx.booking.errors import vdx_error

GUEST_PIN_ERROR = "16"
HOST_PIN_ERROR = "17"

_rng = random.SystemRandom()


def _draw(
    required: bool | None, low: int | None, high: int | None, code: str, rng: random.Random | None
) -> int | None:
    if not required:
        return None
    if low is None or high is None or low >= high:
        raise vdx_error(code)
    return (rng or _rng).randrange(low, high)


def host_pin(
    required: bool | None, low: int | None, high: int | None, rng: random.Random | None = None
) -> int | None:
    """A host PIN in ``[low, high)`` when required; required without a usable range is 406/17."""
    return _draw(required, low, high, HOST_PIN_ERROR, rng)


def guest_pin(
    required: bool | None, low: int | None, high: int | None, rng: random.Random | None = None
) -> int | None:
    """A guest PIN in ``[low, high)`` when required; required without a usable range is 406/16."""
    return _draw(required, low, high, GUEST_PIN_ERROR, rng)
