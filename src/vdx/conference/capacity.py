"""Capacity in HD units and the admission rule: pure, shared by every kind of leg and by the
cluster's placement of rooms.

A participant weighs what Pexip's licences count: full HD 2, HD (720p) 1, SD (up to 448p) 0.5,
audio-only 1/16, by its room's ``vmrQuality`` and whether it sends and receives video. A join is
admitted while the load after it stays within the capacity; a non-clinical join only while it
stays within ``(1 - reserve) x capacity``, so a share of the node is kept for clinical use (what
is clinical: ``vdx.booking.clinical``).
"""

from __future__ import annotations

import enum
import math

# HD units of one participant who sends and receives video, by vmrQuality.
VIDEO_UNITS: dict[str, float] = {"sd": 0.5, "hd": 1.0, "fullhd": 2.0}
AUDIO_UNITS = 1 / 16

# Float sums of halves and sixteenths are exact, but an operator's capacity may not be: a load
# equal to the limit within this margin is within it.
_EPSILON = 1e-9


def units(quality: str, video: bool = True) -> float:
    """HD units of one participant in a room of ``quality``; audio-only weighs the same anywhere.
    A quality this node does not know (another node's placement) counts as HD, VDX's default."""
    if not video:
        return AUDIO_UNITS
    return VIDEO_UNITS.get(quality, VIDEO_UNITS["hd"])


class Refusal(enum.StrEnum):
    """Why a join was refused for capacity (the signalling error code, the metric's label)."""

    CLINICAL_RESERVE = "capacity_clinical_reserve"  # only the clinical share is left
    FULL = "capacity_full"  # not even a clinical join fits


def check_limits(capacity: float, reserve: float) -> None:
    """ValueError unless ``capacity`` is a positive finite number and ``reserve`` a share 0..1."""
    if not (isinstance(capacity, int | float) and math.isfinite(capacity) and capacity > 0):
        raise ValueError(f"capacity must be a positive number of HD units, not {capacity!r}")
    if not (isinstance(reserve, int | float) and math.isfinite(reserve) and 0 <= reserve <= 1):
        raise ValueError(f"clinical reserve must be a share between 0 and 1, not {reserve!r}")


def decide(load: float, joining: float, capacity: float, reserve: float, clinical: bool) -> Refusal | None:
    """None when a join of ``joining`` units fits on a node carrying ``load`` units; else why not."""
    after = load + joining
    if after > capacity + _EPSILON:
        return Refusal.FULL
    if not clinical and after > (1 - reserve) * capacity + _EPSILON:
        return Refusal.CLINICAL_RESERVE
    return None
