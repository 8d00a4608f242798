"""An operator changes a cluster node's capacity and clinical reserve through its control entry
on NATS (``vdx capacity set --node``): the node applies it to its next joins, announces it,
keeps a drain, reads it again after a restart, and the change is audited."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from harness.waiting import until
from tests.cluster.conftest import Cluster, join
from vdx.booking.roles import ADMIN

pytestmark = [pytest.mark.cluster, pytest.mark.pg]


def vdx(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(cluster.api.env) | {"VDX_CLUSTER_NAME": cluster.name}
    return subprocess.run(
        [sys.executable, "-m", "vdx", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def metrics(cluster: Cluster, node_id: str) -> str:
    async with httpx.AsyncClient(base_url=cluster.nodes[node_id].base_url, timeout=10) as http:
        return (await http.get("/manage/metrics")).text


async def test_a_node_takes_capacity_and_reserve_from_its_control_entry(cluster: Cluster) -> None:
    uuid, alias = await cluster.book()
    host = cluster.host_of(await cluster.provisioned(uuid))
    assert (await join(cluster.ws_url(host, alias)))["type"] == "joined"  # a non-clinical meeting

    r = await asyncio.to_thread(
        vdx, cluster, "capacity", "set", "--node", host, "--capacity", "3", "--reserve", "1"
    )
    assert r.returncode == 0, r.stderr

    async def applied() -> bool:
        text = await metrics(cluster, host)
        return "vdx_node_capacity_units 3.0" in text and "vdx_node_clinical_reserve 1.0" in text

    await until(applied, 15, "the node to take the new limits")
    refused = await join(cluster.ws_url(host, alias))
    assert refused["type"] == "error" and refused["code"] == "capacity_clinical_reserve", refused
    r = await asyncio.to_thread(vdx, cluster, "capacity", "set", "--node", host, "--reserve", "2")
    assert r.returncode == 2 and "between 0 and 1" in r.stderr

    r = await asyncio.to_thread(vdx, cluster, "node", "drain", host)
    assert r.returncode == 0, r.stderr

    async def announced() -> bool:
        listed = await asyncio.to_thread(vdx, cluster, "nodes")
        return any(
            line.startswith(host) and "/3 " in line and "draining" in line
            for line in listed.stdout.splitlines()
        )

    await until(announced, 15, "the registry to show the capacity and the drain")
    cluster.kill(host)
    await asyncio.to_thread(cluster.start, host)
    await until(applied, 30, "the limits again after a restart (the drain kept them)")

    token = cluster.api.token(cluster.settings.node_organisation, "ops@vdx.test", ADMIN)
    async with httpx.AsyncClient(base_url=cluster.api.base_url, timeout=10) as http:
        trail = await http.get("/api/v2/audit", headers={"Authorization": f"Bearer {token}"})
    entries = [e for e in trail.json()["entries"] if e["resource"] == "node"]
    assert len(entries) == 1 and entries[0]["identifier"] == host
    assert entries[0]["user"].startswith("vdx capacity set (")
    assert entries[0]["data"]["after"] == {"capacity": 3.0, "clinicalReserve": 1.0, "measured": False}
