"""The node registry (the ``{cluster}_nodes`` bucket): each node's announcement, rewritten every
heartbeat interval by compare-and-set, and every node's as this node last saw it.

A node is alive while its heartbeat keeps changing: the age is judged by when this node saw the
entry change (its own clock), not by the other node's clock, and not by the bucket's expiry
alone (NATS 2.9 writes no delete marker when an entry ages out).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from vdx.node.cluster.buckets import dumps, key_of, loads
from vdx.node.routing import NodeInfo

log = logging.getLogger("vdx.node.cluster")

_FIELDS = {f.name for f in dataclasses.fields(NodeInfo)}


class NodeIdTaken(RuntimeError):
    """Another running process announces this node id."""


def info_from(value: dict[str, Any] | None) -> NodeInfo | None:
    if not value or not isinstance(value.get("id"), str):
        return None
    try:
        return NodeInfo(**{k: v for k, v in value.items() if k in _FIELDS})
    except TypeError:
        return None


def info_bytes(info: NodeInfo) -> bytes:
    return dumps(dataclasses.asdict(info))


class Registry:
    def __init__(
        self,
        me: str,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.me = me
        self.ttl = ttl
        self.instance = secrets.token_hex(8)  # tells this process from another with the same id
        self.nodes: dict[str, NodeInfo] = {}
        self._seen: dict[str, float] = {}  # id -> clock() when its heartbeat was last seen to change
        self._revision = 0  # of this node's own entry
        self._clock = clock
        self._wall = wall

    # --- what the watch tells -------------------------------------------------------------------
    def seen(self, info: NodeInfo) -> None:
        old = self.nodes.get(info.id)
        if old is None or (old.heartbeat, old.instance) != (info.heartbeat, info.instance):
            # First sight: as old as its heartbeat says (bounded, so a skewed clock cannot make a
            # node immortal or dead for long); later, fresh whenever it changes.
            age = min(max(self._wall() - info.heartbeat, 0.0), 2 * self.ttl) if old is None else 0.0
            self._seen[info.id] = self._clock() - age
        self.nodes[info.id] = info

    def gone(self, node_id: str) -> None:
        self.nodes.pop(node_id, None)
        self._seen.pop(node_id, None)

    def replace_all(self, infos: list[NodeInfo]) -> None:
        """A fresh read of the bucket (after an outage): nodes not in it are gone."""
        for node_id in list(self.nodes):
            if node_id not in {i.id for i in infos}:
                self.gone(node_id)
        for info in infos:
            self.seen(info)

    def age(self, node_id: str) -> float | None:
        seen = self._seen.get(node_id)
        return None if seen is None else self._clock() - seen

    def alive(self, node_id: str) -> bool:
        age = self.age(node_id)
        return age is not None and age <= self.ttl

    def live_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes.values() if self.alive(n.id)]

    def others(self) -> tuple[float, float]:
        """HD units in use and capacity of the other live nodes, as they last announced them
        (a node whose capacity is not known yet counts neither)."""
        known = [n for n in self.live_nodes() if n.id != self.me and n.capacity > 0]
        return sum(n.load for n in known), sum(n.capacity for n in known)

    # --- this node's own entry ----------------------------------------------------------------------
    async def join(self, kv: KeyValue, info: NodeInfo, interval: float) -> None:
        """The first announcement. Raises NodeIdTaken when another process heart-beats under this
        id; an entry that stops changing for the TTL is a dead process's, and is taken over."""
        key = key_of(self.me)
        try:
            self._revision = await kv.create(key, info_bytes(info))
            return
        except KeyWrongLastSequenceError:
            pass
        first = await kv.get(key)
        other = info_from(loads(first.value))
        if other is not None and other.instance == self.instance:
            other = None  # this process's own entry (announcing again after an outage)
        deadline = self._clock() + self.ttl
        while other is not None and self._wall() - other.heartbeat <= self.ttl:
            if self._clock() > deadline:
                break  # its clock runs ahead: it did not beat for a whole TTL
            await asyncio.sleep(min(interval / 2, 0.25))
            try:
                now = await kv.get(key)
            except KeyNotFoundError:
                break  # aged out: nobody beats under this id
            if now.revision != first.revision:
                raise NodeIdTaken(
                    f"node id {self.me!r} is in use by another running node ({other.http_url}, "
                    "its heartbeat goes on): give this node its own VDX_NODE_ID, or stop the other"
                )
        try:
            self._revision = await kv.update(key, info_bytes(info), last=first.revision)
        except KeyWrongLastSequenceError:
            self._revision = await kv.create(key, info_bytes(info))  # aged out meanwhile

    async def beat(self, kv: KeyValue, info: NodeInfo) -> None:
        """Rewrite this node's entry if it is still ours. Raises NodeIdTaken when another
        process wrote it (it started with this id while this one could not beat)."""
        key = key_of(self.me)
        try:
            self._revision = await kv.update(key, info_bytes(info), last=self._revision)
            return
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            # Aged out while this node could not beat (paused, cut off): announce again.
            self._revision = await kv.create(key, info_bytes(info))
            return
        other = info_from(loads(entry.value))
        if other is not None and other.instance != self.instance:
            raise NodeIdTaken(
                f"another process ({other.http_url}) announces node id {self.me!r}: this one takes "
                "no rooms until it stops"
            )
        self._revision = await kv.update(key, info_bytes(info), last=entry.revision)

    async def leave(self, kv: KeyValue) -> None:
        """At a clean stop: the others take this node's rooms at once instead of after the TTL."""
        if self._revision:
            await kv.delete(key_of(self.me), last=self._revision)
