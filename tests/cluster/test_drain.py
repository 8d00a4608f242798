"""``vdx node drain ID``: the node keeps its call, gets no new room, and gives its idle rooms away."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from harness.waiting import until
from tests.cluster.conftest import Cluster, join_on

pytestmark = [pytest.mark.cluster, pytest.mark.pg]


async def test_a_drained_node_keeps_its_call_and_gets_no_new_room(cluster: Cluster) -> None:
    booked = [await cluster.book() for _ in range(4)]
    sis = await asyncio.gather(*(cluster.provisioned(uuid) for uuid, _ in booked))
    hosts = {si["uriWithDomain"]: cluster.host_of(si) for si in sis}
    live_alias, drained = next(iter(hosts.items()))
    async with websockets.connect(cluster.ws_url(drained, live_alias)) as ws:
        assert (await join_on(ws, name="Patient"))["type"] == "joined"

        out = await asyncio.to_thread(cluster.api.cli, "node", "drain", drained, check=True)
        assert f"node {drained} drains" in out.stdout
        await until(lambda: _draining(cluster, drained), 15, f"{drained} to announce it drains")

        # its rooms with nobody in them go to the others; the one with a call stays
        async def only_the_call_left() -> bool:
            return (await cluster.view(drained))["hosted"] == [live_alias]

        await until(only_the_call_left, 15, f"{drained} to keep only {live_alias}")
        for alias, host in hosts.items():
            if host == drained and alias != live_alias:
                uuid = next(si["uuid"] for si in sis if si["uriWithDomain"] == alias)
                await cluster.provisioned(uuid, 15, away_from=drained)

        # new meetings go elsewhere
        later = [await cluster.book() for _ in range(4)]
        for uuid, _ in later:
            assert cluster.host_of(await cluster.provisioned(uuid)) != drained

        # `vdx nodes` shows it
        listing = (await asyncio.to_thread(cluster.api.cli, "nodes", check=True)).stdout
        row = next(line for line in listing.splitlines() if line.startswith(drained))
        assert "draining" in row and cluster.nodes[drained].base_url in row

        # the call goes on: the room answers on the same socket
        await ws.send('{"type": "ping"}')
        while (msg := await asyncio.wait_for(ws.recv(), 10)) and '"pong"' not in str(msg):
            pass
        assert (await cluster.view(drained, live_alias))["route"]["where"] == "here"

    out = await asyncio.to_thread(cluster.api.cli, "node", "drain", drained, "--cancel", check=True)
    assert "takes new rooms again" in out.stdout
    await until(lambda: _draining(cluster, drained, False), 15, f"{drained} to take rooms again")


async def _draining(cluster: Cluster, node_id: str, draining: bool = True) -> bool:
    return bool((await cluster.view(node_id))["draining"] is draining)
