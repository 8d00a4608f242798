"""Faults: NATS away at start or during a meeting, and a paused node."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from harness.served import ServedProcess
from harness.waiting import until
from tests.cluster.conftest import Cluster, join, join_on

pytestmark = [pytest.mark.cluster, pytest.mark.pg]


async def _cluster_status(cluster: Cluster, node_id: str) -> str:
    return str((await cluster.health(node_id))["components"].get("cluster", {}).get("status"))


async def test_without_nats_nodes_keep_their_rooms_and_catch_up_when_it_returns(cluster: Cluster) -> None:
    uuid, alias = await cluster.book()
    host = cluster.host_of(await cluster.provisioned(uuid))
    other = next(i for i in cluster.nodes if i != host)
    async with websockets.connect(cluster.ws_url(host, alias)) as ws:
        assert (await join_on(ws, name="Doctor"))["type"] == "joined"
        cluster.nats.stop()

        async def says_so() -> bool:
            return all([await _cluster_status(cluster, i) == "DOWN" for i in cluster.nodes])

        await until(says_so, 15, "every node's health to show the cluster DOWN")

        async def heartbeat_lapsed() -> bool:  # the host has not been heard of for a TTL: still so
            age = (await cluster.view(other))["heartbeatAges"].get(host)
            return age is not None and age > cluster.settings.node_heartbeat_ttl

        await until(heartbeat_lapsed, 15, f"{other} to have heard nothing of {host} for a TTL")
        health = await cluster.health(host)
        assert health["status"] == "DEGRADED"
        assert "keeps its 1 hosted rooms, places nothing new" in health["components"]["cluster"]["error"]
        # the meeting goes on: the host lets the next caller in, others send them there
        assert (await join(cluster.ws_url(host, alias), name="Nurse"))["type"] == "joined"
        assert (await cluster.view(other, alias))["route"] == {"where": "elsewhere", "node": host}

        # a node started while NATS is away starts all the same, and says so
        cluster.nodes[other].stop()
        await asyncio.to_thread(cluster.start, other)
        assert await _cluster_status(cluster, other) == "DOWN"

        cluster.nats.start()
        await until(lambda: _all_up(cluster), 30, "every node to catch up with NATS")
        await ws.send('{"type": "ping"}')
        while '"pong"' not in str(await asyncio.wait_for(ws.recv(), 10)):
            pass
    assert cluster.host_of(await cluster.scheduling_info(uuid)) == host
    # placing works again
    uuid2, _ = await cluster.book()
    await cluster.provisioned(uuid2, 30)
    for node_id in cluster.nodes:
        assert cluster.log(node_id).count("cluster: NATS unreachable") <= 2  # once per outage


async def _all_up(cluster: Cluster) -> bool:
    return all([await _cluster_status(cluster, i) == "UP" for i in cluster.nodes])


async def test_a_paused_node_ends_its_copy_of_a_room_that_moved(cluster: Cluster) -> None:
    uuid, alias = await cluster.book()
    host = cluster.host_of(await cluster.provisioned(uuid))
    async with websockets.connect(cluster.ws_url(host, alias)) as ws:
        assert (await join_on(ws, name="Patient"))["type"] == "joined"
        cluster.pause(host)
        si = await cluster.provisioned(uuid, 20, away_from=host)
        new_host = cluster.host_of(si)
        cluster.resume(host)
        # the paused node's copy ends: its participant is told the room moved
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if msg.get("type") == "bye":
                assert msg["reason"] == "moved"
                break

    async def routes_away() -> dict[str, object] | None:
        route = (await cluster.view(host, alias))["route"]
        return route if route["where"] in ("moving", "elsewhere") and route["node"] != host else None

    await until(routes_away, 15, f"{host} to stop taking callers for {alias}")
    await until(
        lambda: _routes_to(cluster, host, alias, new_host), 15, f"{host} to send {alias}'s callers on"
    )
    assert alias not in (await cluster.view(host))["hosted"]
    assert (await join(cluster.ws_url(new_host, alias)))["type"] == "joined"

    # Paused again, long enough for another process to start under its id: when it resumes it
    # finds its id taken, says so, and sends no caller in until the other one is gone.
    cluster.pause(host)
    await until(lambda: _silent(cluster, new_host, host), 20, f"{new_host} to hear nothing of {host}")
    twin = ServedProcess(cluster.data_dir, ["node"], settings=cluster.settings, log_dir=cluster.tmp)
    twin.env.update({k: v for k, v in cluster.nodes[host].env.items() if k.startswith("VDX_")})
    twin.env.update({"VDX_HTTP_PORT": str(twin.port), "VDX_SIP_ENABLED": "false"})
    try:
        await asyncio.to_thread(twin.start, 240)
        cluster.resume(host)

        async def contested() -> dict[str, object] | None:
            view = await cluster.view(host, alias)
            return view if view["conflict"] else None

        view = await until(contested, 15, f"{host} to find its id taken")
        assert "announces node id" in str(view["conflict"]) and view["route"]["where"] == "moving"
        health = await cluster.health(host)
        assert health["components"]["cluster"]["status"] == "DOWN"
    finally:
        twin.stop()  # a clean stop gives the id back

    async def uncontested() -> bool:
        view = await cluster.view(host, alias)
        return view["conflict"] is None and view["route"] == {"where": "elsewhere", "node": new_host}

    await until(uncontested, 15, f"{host} to announce itself again")


async def _silent(cluster: Cluster, node_id: str, of: str) -> bool:
    age = (await cluster.view(node_id))["heartbeatAges"].get(of)
    return age is None or age > cluster.settings.node_heartbeat_ttl


async def _routes_to(cluster: Cluster, node_id: str, alias: str, host: str) -> bool:
    return bool((await cluster.view(node_id, alias))["route"] == {"where": "elsewhere", "node": host})
