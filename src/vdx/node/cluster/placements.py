"""Room placements (the ``{cluster}_rooms`` bucket): one entry per provisioned room naming the node
that hosts it. Placing is ``create`` (only the first of racing nodes succeeds); moving a room
(failover, drain) is ``update`` at the revision the mover saw, so one mover wins per room."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, replace
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from vdx.node.cluster.buckets import dumps, key_of, loads


@dataclass(frozen=True)
class Placement:
    alias: str  # the room's primary alias, lower case
    node: str  # the node that hosts it
    quality: str = "hd"  # its vmrQuality (what its participants cost)
    uuid: str = ""  # its scheduling info when placed (a node that never heard of it can fetch it)
    placed: float = 0.0  # epoch seconds
    why: str = "placed"  # placed, failover, drain
    revision: int = 0  # of its bucket entry

    def value(self) -> bytes:
        fields = dataclasses.asdict(self)
        fields.pop("revision")
        return dumps(fields)


def placement_from(value: dict[str, Any] | None, revision: int) -> Placement | None:
    if not value or not isinstance(value.get("alias"), str) or not isinstance(value.get("node"), str):
        return None
    return Placement(
        alias=value["alias"].lower(),
        node=value["node"],
        quality=str(value.get("quality") or "hd"),
        uuid=str(value.get("uuid") or ""),
        placed=float(value.get("placed") or 0.0),
        why=str(value.get("why") or "placed"),
        revision=revision,
    )


class Placements:
    """The bucket's entries as this node last saw them (kept by a watch), and the writes."""

    def __init__(self) -> None:
        self.by_alias: dict[str, Placement] = {}

    def get(self, alias: str) -> Placement | None:
        return self.by_alias.get(alias.lower())

    def on_node(self, node_id: str) -> list[Placement]:
        return [p for p in self.by_alias.values() if p.node == node_id]

    def seen(self, p: Placement) -> Placement | None:
        """Take a newer entry; returns the one it replaces (None: new). An older revision than
        the one known (a watch lagging behind this node's own write) is ignored."""
        old = self.by_alias.get(p.alias)
        if old is not None and old.revision >= p.revision:
            return old
        self.by_alias[p.alias] = p
        return old

    def gone(self, alias: str) -> Placement | None:
        return self.by_alias.pop(alias.lower(), None)

    async def claim(self, kv: KeyValue, p: Placement) -> Placement:
        """Place a room unless it is placed already: the placement that holds afterwards."""
        try:
            revision = await kv.create(key_of(p.alias), p.value())
        except KeyWrongLastSequenceError:
            return await self.read(kv, p.alias) or p
        placed = replace(p, revision=revision)
        self.seen(placed)
        return self.get(p.alias) or placed

    async def read(self, kv: KeyValue, alias: str) -> Placement | None:
        try:
            entry = await kv.get(key_of(alias))
        except KeyNotFoundError:
            self.gone(alias)
            return None
        p = placement_from(loads(entry.value), entry.revision or 0)
        if p is None:
            return None
        self.seen(p)
        # never older than what the watch delivered while the reply was on its way
        return self.get(alias) or p

    async def move(self, kv: KeyValue, p: Placement, node: str, why: str) -> Placement | None:
        """Move the room to ``node`` if its entry is still ``p``; None when another move won."""
        moved = replace(p, node=node, why=why, placed=time.time())
        try:
            revision = await kv.update(key_of(p.alias), moved.value(), last=p.revision)
        except KeyWrongLastSequenceError:
            await self.read(kv, p.alias)
            return None
        moved = replace(moved, revision=revision)
        self.seen(moved)
        return moved

    async def release(self, kv: KeyValue, p: Placement) -> None:
        """The room's life is over (deprovisioned): its entry goes, if it is still ``p``."""
        try:
            await kv.delete(key_of(p.alias), last=p.revision)
        except KeyWrongLastSequenceError:
            return
        self.gone(p.alias)
