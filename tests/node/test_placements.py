"""Room placements on a real JetStream bucket: what a node reads back is never older than what its
watch already delivered (a reply can be overtaken by the watch of a later move)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import nats
import pytest
from nats.js.kv import KeyValue

from vdx.node.cluster.placements import Placement, Placements

pytestmark = pytest.mark.nats


@pytest.fixture
async def rooms(nats_url: str) -> AsyncIterator[KeyValue]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    name = f"t{uuid.uuid4().hex[:12]}_rooms"
    kv = await js.create_key_value(bucket=name, history=1)
    try:
        yield kv
    finally:
        await js.delete_key_value(name)
        await nc.close()


async def test_a_read_overtaken_by_the_watch_gives_the_newer_placement(rooms: KeyValue) -> None:
    mine = Placements()
    placed = await Placements().claim(rooms, Placement("room@x", "node-a", uuid="u1"))
    # this node's watch delivered a later move before the reply to its read came back
    mine.seen(replace(placed, node="node-b", why="drain", revision=placed.revision + 1))
    holds = await mine.read(rooms, "room@x")
    assert holds is not None and holds.node == "node-b"
    assert mine.get("room@x") == holds


async def test_a_lost_create_gives_the_newest_placement_known(rooms: KeyValue) -> None:
    first, second = Placements(), Placements()
    placed = await first.claim(rooms, Placement("room@x", "node-a"))
    moved = await first.move(rooms, placed, "node-c", "drain")
    assert moved is not None

    second.seen(replace(moved, revision=moved.revision + 100))  # the watch is ahead of the reply
    holds = await second.claim(rooms, Placement("room@x", "node-b"))
    assert holds.node == "node-c" and holds.revision == moved.revision + 100
    assert (await Placements().claim(rooms, Placement("room@x", "node-b"))).node == "node-c"
