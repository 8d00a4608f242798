"""Which node gets a room: a pure rule, the same on every node, so nodes that race to place a
room (or to take over a dead node's rooms) mostly agree before the compare-and-set decides.

The room goes to the live, non-draining node with the most spare capacity. Spare counts the load
in use and, for rooms placed on a node with nobody in them yet, a nominal reservation, so a
burst of bookings spreads instead of piling onto the node that looked emptiest. Ties go by a
hash of alias and node id: deterministic, yet different rooms prefer different nodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from vdx.conference.capacity import units

# A room placed but not live yet reserves this many participants of its quality.
NOMINAL_PARTICIPANTS = 2
_EPSILON = 1e-9


@dataclass(frozen=True)
class Candidate:
    id: str
    capacity: float  # HD units; 0 = not known yet
    load: float = 0.0  # HD units in use
    reserved: float = 0.0  # nominal units of rooms placed there with nobody in them yet


def reservation(quality: str) -> float:
    """The nominal units a room of ``quality`` holds on its node before anyone joins."""
    return NOMINAL_PARTICIPANTS * units(quality)


def idle_reservation(placed_qualities: Sequence[str], live_rooms: int) -> float:
    """The reservation of a node's placed rooms that are not live: the live ones are in its load
    already. Which rooms are live is not known here, so each counts its share of the total."""
    if not placed_qualities:
        return 0.0
    idle = max(len(placed_qualities) - live_rooms, 0)
    return sum(reservation(q) for q in placed_qualities) * idle / len(placed_qualities)


def _tie(alias: str, node_id: str) -> str:
    return hashlib.sha256(f"{alias.lower()}/{node_id}".encode()).hexdigest()


def _spares(candidates: Sequence[Candidate]) -> dict[str, float]:
    """Spare units per node; a node whose capacity is not known yet counts with the mean of the
    known ones (none known: zero, so the least loaded wins)."""
    known = [c.capacity for c in candidates if c.capacity > 0]
    default = sum(known) / len(known) if known else 0.0
    return {c.id: (c.capacity if c.capacity > 0 else default) - c.load - c.reserved for c in candidates}


def choose(alias: str, candidates: Sequence[Candidate]) -> str | None:
    """The node that gets the room ``alias``; None when there is no candidate."""
    if not candidates:
        return None
    spares = _spares(candidates)
    best = max(spares.values())
    tied = [c.id for c in candidates if spares[c.id] >= best - _EPSILON]
    return min(tied, key=lambda node_id: _tie(alias, node_id))


def assign(rooms: Iterable[tuple[str, str]], candidates: Sequence[Candidate]) -> dict[str, str]:
    """Place several rooms (alias, quality) one after another, each counting the reservations of
    those placed before it (a dead node's rooms spread over the survivors)."""
    pool = {c.id: c for c in candidates}
    out: dict[str, str] = {}
    for alias, quality in sorted(rooms):
        node_id = choose(alias, list(pool.values()))
        if node_id is None:
            break
        out[alias] = node_id
        chosen = pool[node_id]
        pool[node_id] = replace(chosen, reserved=chosen.reserved + reservation(quality))
    return out
