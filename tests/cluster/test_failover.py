"""A node that dies: its rooms come back on the survivors, and it does not take them back; a
second process with a node's id is refused."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import websockets

from harness.served import ServedProcess
from harness.waiting import until
from tests.cluster.conftest import Cluster, join, join_on

pytestmark = [pytest.mark.cluster, pytest.mark.pg]

FAILOVER_S = 15.0  # the promise: a dead node's rooms are joinable elsewhere within this


async def test_a_killed_nodes_room_comes_back_elsewhere_and_stays_there(cluster: Cluster) -> None:
    uuid, alias = await cluster.book()
    host = cluster.host_of(await cluster.provisioned(uuid))
    async with websockets.connect(cluster.ws_url(host, alias)) as ws:
        assert (await join_on(ws))["type"] == "joined"
        cluster.kill(host)
        # re-provisioned (reported through the provisioner contract) by a survivor ...
        si = await cluster.provisioned(uuid, FAILOVER_S, away_from=host)
        await asyncio.wait_for(_closed(ws), 10)  # the dead node's socket is gone
    new_host = cluster.host_of(si)
    assert new_host in cluster.nodes and new_host != host
    # ... which lets callers in, and which every survivor names
    assert (await join(cluster.ws_url(new_host, alias)))["type"] == "joined"
    for node_id in cluster.running():
        assert (await cluster.view(node_id, alias))["route"]["node"] in (None, new_host)

    # The dead node comes back: it does not take the room back.
    await asyncio.to_thread(cluster.start, host)
    await until(lambda: _sees(cluster, host, alias, new_host), 15, f"{host} to route {alias} to {new_host}")
    assert alias not in (await cluster.view(host))["hosted"]
    assert cluster.host_of(await cluster.scheduling_info(uuid)) == new_host

    # A second process under a running node's id refuses to start, saying why.
    twin = ServedProcess(cluster.data_dir, ["node"], settings=cluster.settings, log_dir=cluster.tmp)
    twin.env.update({k: v for k, v in cluster.nodes[host].env.items() if k.startswith("VDX_")})
    twin.env.update({"VDX_HTTP_PORT": str(twin.port), "VDX_SIP_ENABLED": "false"})
    twin.spawn()
    assert twin.proc is not None
    code = await asyncio.to_thread(twin.proc.wait, 60)
    assert code != 0
    assert f"node id {host!r} is in use by another running node" in twin.log_tail(5000)
    assert (await cluster.health(host))["components"]["cluster"]["status"] == "UP"


async def _sees(cluster: Cluster, node_id: str, alias: str, host: str) -> bool:
    view = await cluster.view(node_id, alias)
    return view.get("route") == {"where": "elsewhere", "node": host}


async def _closed(ws: websockets.ClientConnection) -> None:
    """Read what was sent before the end until the connection is closed."""
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            await ws.recv()
