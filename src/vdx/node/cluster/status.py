"""``GET /manage/cluster``: this node's view of the cluster, read-only (operators, tests): which
rooms it hosts, which nodes it sees alive, and, with ``?alias=``, where it sends a room's callers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from vdx.node.cluster.cluster import Cluster

router = APIRouter(prefix="/manage", tags=["Operations"])


@router.get("/cluster", summary="This node's view of the cluster")
async def cluster_view(request: Request, alias: str | None = None) -> JSONResponse:
    cluster: Cluster | None = getattr(request.app.state, "cluster", None)
    if cluster is None:
        return JSONResponse(
            {"cluster": False, "detail": "a node alone (no VDX_NATS_URL): it hosts every room"}
        )
    body: dict[str, Any] = {
        "cluster": True,
        "node": cluster.me,
        "draining": cluster.draining,
        "outage": cluster.outage,
        "conflict": cluster.conflict,
        "hosted": cluster.hosted(),
        "nodes": sorted(n.id for n in cluster.registry.live_nodes()),
        # seconds since this node saw each other node's heartbeat change
        "heartbeatAges": {
            node_id: round(age, 1)
            for node_id in sorted(cluster.registry.nodes)
            if (age := cluster.registry.age(node_id)) is not None
        },
    }
    if alias is not None:
        route = cluster.route(alias)
        body["route"] = {"where": route.where.value, "node": route.node.id if route.node else None}
    return JSONResponse(body)
