"""What operators do with the cluster from the command line: list the nodes (``vdx nodes``),
drain one (``vdx node drain ID``) and change one's capacity or clinical reserve (``vdx capacity
set --node ID``): fields of its entry in the ``{cluster}_node_control`` bucket, which its node
watches (and reads again when it starts, so a change outlives a restart)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

from vdx.node.cluster.buckets import Buckets, dumps, key_of, loads, open_buckets
from vdx.node.cluster.registry import info_from
from vdx.node.routing import NodeInfo
from vdx.settings import Settings


class ClusterUnreachable(RuntimeError):
    pass


async def _quiet(exc: Exception) -> None:
    """nats-py's own error reports: the caller says it once, readably."""


@asynccontextmanager
async def buckets(settings: Settings) -> AsyncIterator[Buckets]:
    if not settings.nats_url:
        raise ClusterUnreachable("no VDX_NATS_URL: nodes form a cluster only on NATS JetStream")
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                **settings.nats_connect_options, connect_timeout=2, max_reconnect_attempts=1, error_cb=_quiet
            ),
            5,
        )
    except Exception as exc:
        raise ClusterUnreachable(
            f"NATS at {settings.nats_where} is unreachable ({exc or type(exc).__name__})"
        ) from exc
    try:
        yield await open_buckets(nc.jetstream(timeout=5), settings)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def list_nodes(settings: Settings) -> list[NodeInfo]:
    """Every node announced in the registry, by id (dead ones age out with the TTL)."""
    async with buckets(settings) as b:
        out = []
        for key in await _keys(b.nodes):
            with contextlib.suppress(Exception):
                info = info_from(loads((await b.nodes.get(key)).value))
                if info is not None:
                    out.append(info)
        return sorted(out, key=lambda n: n.id)


async def _keys(kv: KeyValue) -> list[str]:
    try:
        return list(await kv.keys())
    except NoKeysError:
        return []


async def update_control(settings: Settings, node_id: str, **fields: object) -> dict[str, object]:
    """Set ``fields`` in the node's control entry, keeping the others (a drain keeps a capacity
    change, and the other way round); returns the entry as written."""
    async with buckets(settings) as b:
        key = key_of(node_id)
        try:
            entry = loads((await b.control.get(key)).value) or {}
        except KeyNotFoundError:
            entry = {}
        entry |= fields | {"at": time.time()}
        await b.control.put(key, dumps(entry))
        return entry


async def set_drain(settings: Settings, node_id: str, drain: bool) -> None:
    await update_control(settings, node_id, drain=drain)


def describe(nodes: list[NodeInfo], now: float) -> list[str]:
    """``vdx nodes`` as lines of a table."""
    rows = [("NODE", "HTTP", "SIP", "LOAD/CAPACITY (HD)", "ROOMS", "LIVE", "HEARTBEAT", "STATE")]
    for n in nodes:
        sip = " ".join(f"{t}:{a}" for t, a in sorted(n.sip.items())) or "-"
        capacity = f"{n.capacity:g}" if n.capacity else "?"
        rows.append(
            (
                n.id,
                n.http_url,
                sip,
                f"{n.load:g}/{capacity}",
                str(n.rooms),
                str(n.live),
                f"{max(now - n.heartbeat, 0):.1f}s ago",
                "draining" if n.draining else "active",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
