"""Placement across three real nodes: a burst of bookings spreads, each room hosted once."""

from __future__ import annotations

import asyncio

import pytest

from harness.waiting import until
from tests.cluster.conftest import Cluster, join

pytestmark = [pytest.mark.cluster, pytest.mark.pg]


async def test_a_burst_of_ten_meetings_spreads_and_each_is_hosted_once(cluster: Cluster) -> None:
    booked = [await cluster.book() for _ in range(10)]
    sis = await asyncio.gather(*(cluster.provisioned(uuid, 60) for uuid, _ in booked))
    hosts = {si["uriWithDomain"]: cluster.host_of(si) for si in sis}
    assert set(hosts.values()) <= set(cluster.nodes)
    assert len(set(hosts.values())) >= 2, hosts

    async def views_agree() -> dict[str, list[str]] | None:
        views = {i: (await cluster.view(i))["hosted"] for i in cluster.nodes}
        return views if sorted(a for h in views.values() for a in h) == sorted(hosts) else None

    # each node's own account: every room on exactly one node, the one the API was told
    views = await until(views_agree, 15, "the nodes' hosted rooms to cover the ten once")
    for node_id, hosted in views.items():
        assert {a for a, h in hosts.items() if h == node_id} == set(hosted)
    # a caller reaching any node learns the same host; the host itself lets them in
    alias, host = next(iter(hosts.items()))
    for node_id in cluster.nodes:
        route = (await cluster.view(node_id, alias))["route"]
        assert (
            route == {"where": "here", "node": None}
            if node_id == host
            else route
            == {
                "where": "elsewhere",
                "node": host,
            }
        )
    joined = await join(cluster.ws_url(host, alias))
    assert joined["type"] == "joined", joined
