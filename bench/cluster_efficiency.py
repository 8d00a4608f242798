"""Cluster efficiency, one phase at a time, each node as loaded as a node alone: rooms of SIP
callers sending real video (from ``sip_load``) on one node with the other two drained (``ONE``,
a node's share of the load), one room on each of three nodes (``THREE``, three times the work),
and, as context, the three nodes' whole load on one node (``ALL_ON_ONE``). Participants per core
= participants x wall seconds / CPU seconds of the node processes that carry the rooms (from
/proc), over windows in which every call receives the pictures at the expected rate (a starved
node must not look cheap)."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.capacity_plan import FPS_OK, LAYOUTS, LOSS_OK
from bench.clips import Clip
from bench.served_node import log, process_cpu, process_wakeups
from bench.sip_load import SipLoad, place_all
from harness.cluster import Cluster
from harness.waiting import until
from vdx.node.cluster.control import list_nodes, set_drain

ONE, THREE, ALL_ON_ONE = "one node", "three nodes", "one node, all rooms"
CONFIGS = (ONE, THREE, ALL_ON_ONE)


@dataclass
class Load:
    """What the three nodes carry: ``rooms`` rooms of ``per_room`` SIP callers sending ``clip``
    (one node alone carries its share, ``rooms`` / 3, or all of it in ``ALL_ON_ONE``)."""

    clip: Clip
    fps: int
    rooms: int
    per_room: int
    warm_s: float
    windows: int
    window_s: float

    @property
    def participants(self) -> int:
        return self.rooms * self.per_room


async def take_rooms_on(cluster: Cluster, active: list[str]) -> None:
    """Only ``active`` nodes take new rooms (the others drain), once the registry says so."""
    for node_id in cluster.nodes:
        await set_drain(cluster.settings, node_id, node_id not in active)

    async def seen() -> bool:
        nodes = {n.id: n for n in await list_nodes(cluster.settings)}
        return all(
            node_id in nodes and nodes[node_id].draining == (node_id not in active)
            for node_id in cluster.nodes
        )

    await until(seen, 20, f"the registry to show only {active} taking rooms", poll_s=0.2)


async def book_rooms(
    cluster: Cluster, load: Load, count: int, active: list[str]
) -> list[tuple[str, str, str]]:
    """(uuid, alias, host) of ``count`` new rooms spread evenly over ``active``: rooms placed
    beyond a node's share are booked again elsewhere (and deleted)."""
    share = -(-count // len(active))
    kept: list[tuple[str, str, str]] = []
    spare: list[str] = []
    for _ in range(3 * count):
        if len(kept) == count:
            break
        uuid, alias = await cluster.book(
            vmr_quality="sd",
            host_view=LAYOUTS[9],
            guest_view=LAYOUTS[9],
            max_participants=load.per_room + 2,
        )
        host = cluster.host_of(await cluster.provisioned(uuid, 30))
        if host in active and sum(1 for *_, h in kept if h == host) < share:
            kept.append((uuid, alias, host))
        else:
            spare.append(uuid)
    for uuid in spare:
        await cluster.end(uuid)
    if len(kept) < count:
        raise RuntimeError(f"could not spread {count} rooms over {active}: {kept}")
    return kept


def node_cpu(cluster: Cluster) -> dict[str, float]:
    return {i: process_cpu(n.proc.pid) for i, n in cluster.nodes.items() if n.proc is not None}


def node_wakeups(cluster: Cluster) -> dict[str, int]:
    return {i: process_wakeups(n.proc.pid) for i, n in cluster.nodes.items() if n.proc is not None}


async def measure_windows(
    cluster: Cluster, load: Load, sip: SipLoad, counted: list[str]
) -> list[dict[str, Any]]:
    windows = []
    for _ in range(load.windows):
        s0, c0, w0 = sip.snapshot(), node_cpu(cluster), node_wakeups(cluster)
        await asyncio.sleep(load.window_s)
        s1, c1, w1 = sip.snapshot(), node_cpu(cluster), node_wakeups(cluster)
        wall = s1.at - s0.at
        rates = sip.rates(s0, s1)
        cpu = {i: c1[i] - c0[i] for i in c1}
        counted_cpu = sum(cpu[i] for i in counted)
        fps = [r.fps for r in rates]
        loss = max(max(r.video_loss, r.audio_loss) for r in rates)
        windows.append(
            {
                "wall_s": wall,
                "cpu_s": counted_cpu,
                "node_cpu_pct": {i: 100 * c / wall for i, c in cpu.items()},
                "per_core": len(rates) * wall / counted_cpu if counted_cpu > 0 else None,
                # context switches per participant-second, of the counted nodes
                "wakeups": sum(w1[i] - w0[i] for i in counted) / (len(rates) * wall),
                "fps_min": min(fps),
                "fps_median": statistics.median(fps),
                "loss_max_pct": 100 * loss,
                "passed": min(fps) >= FPS_OK * load.fps / 30 and loss < LOSS_OK,
            }
        )
    return windows


async def phase(
    cluster: Cluster, load: Load, config: str, speech: list[bytes], hush: list[bytes]
) -> dict[str, Any]:
    """One phase: a node's share of ``load`` on one node (``ONE``), one room per node
    (``THREE``), or all of it on one node (``ALL_ON_ONE``)."""
    started = time.monotonic()
    nodes = list(cluster.nodes)
    active = nodes if config == THREE else nodes[:1]
    count = max(1, load.rooms // len(nodes)) if config == ONE else load.rooms
    await take_rooms_on(cluster, active)
    rooms = await book_rooms(cluster, load, count, active)
    sip = SipLoad(("127.0.0.1", cluster.sip_ports[active[0]]), load.fps, speech, hush)
    await sip.start()
    calls = [
        sip.call(alias, None, load.clip, talks=k == 0, server=("127.0.0.1", cluster.sip_ports[host]))
        for _, alias, host in rooms
        for k in range(load.per_room)
    ]
    result: dict[str, Any] = {
        "config": config,
        "participants": len(calls),
        "rooms": {alias: host for _, alias, host in rooms},
        "counted": active,
        "passed": False,
    }
    try:
        errors = await place_all(calls)
        if errors:
            result["reason"] = f"{len(errors)} calls failed: {errors[:3]}"
            return result
        await until(lambda: all(c.video.pictures > 0 for c in calls), 20, "every call to receive pictures")
        await asyncio.sleep(load.warm_s)
        result["windows"] = await measure_windows(cluster, load, sip, active)
    finally:
        await sip.hang_up_all()
        sip.close()
        result["duration_s"] = time.monotonic() - started
        await release(cluster, [uuid for uuid, *_ in rooms], [alias for _, alias, _ in rooms])
    summarise_phase(result, calls, load)
    return result


def summarise_phase(result: dict[str, Any], calls: list[Any], load: Load) -> None:
    windows = result["windows"]
    wall = sum(w["wall_s"] for w in windows)
    cpu = sum(w["cpu_s"] for w in windows)
    size = (load.clip.width, load.clip.height)
    samples = [s for c in calls for s in c.samples]
    result["per_core"] = result["participants"] * wall / cpu if cpu > 0 else None
    result["node_cpu_pct"] = {
        i: statistics.median(w["node_cpu_pct"][i] for w in windows) for i in windows[0]["node_cpu_pct"]
    }
    result["wakeups"] = statistics.median(w["wakeups"] for w in windows)
    result["fps_min"] = min(w["fps_min"] for w in windows)
    result["loss_max_pct"] = max(w["loss_max_pct"] for w in windows)
    reason = ""
    if not samples or any(s != size for s in samples):
        reason = f"decoded samples are not {size[0]}x{size[1]} pictures: {sorted(set(samples))[:3]}"
    elif not all(w["passed"] for w in windows):
        reason = f"worst call {result['fps_min']:.1f} fps, loss up to {result['loss_max_pct']:.2f} %"
    result["passed"] = not reason
    result["reason"] = reason


async def release(cluster: Cluster, uuids: list[str], aliases: list[str]) -> None:
    """Delete the phase's meetings and wait until no node hosts their rooms (an idle room would
    hold a reservation that skews where the next phase's rooms go)."""
    for uuid in uuids:
        await cluster.end(uuid)

    async def gone() -> bool:
        for node_id in cluster.running():
            hosted = set((await cluster.view(node_id)).get("hosted", []))
            if hosted & {a.lower() for a in aliases}:
                return False
        return True

    try:
        await until(gone, 20, "the phase's rooms to end", poll_s=0.3)
    except TimeoutError as exc:
        log(f"efficiency: {exc}")


def ratios(phases: list[dict[str, Any]], against: str = ONE) -> list[float]:
    """Three nodes / one node (``against``: alone with its share, or with all the rooms) per
    round: each three-node phase against that phase of its own round (rounds run in alternating
    order, so drift falls on both alike)."""
    out = []
    for r in sorted({p["round"] for p in phases}):
        of = {p["config"]: p for p in phases if p["round"] == r}
        one, three = of.get(against), of.get(THREE)
        if (
            one
            and three
            and one.get("passed")
            and three.get("passed")
            and one["per_core"]
            and three["per_core"]
        ):
            out.append(three["per_core"] / one["per_core"])
    return out


def order(rounds: int) -> list[tuple[int, str]]:
    """(round, configuration) of ``rounds`` rounds: one, three, all on one, then backwards."""
    out: list[tuple[int, str]] = []
    for r in range(rounds):
        out += [(r, c) for c in (CONFIGS if r % 2 == 0 else CONFIGS[::-1])]
    return out


def describe(p: dict[str, Any]) -> str:
    """A phase's log line."""
    per_core = p.get("per_core")
    return (
        f"{p['config']:<19} {p['participants']} participants, node CPU "
        + " ".join(f"{k} {v:.0f}%" for k, v in p.get("node_cpu_pct", {}).items())
        + (f", {per_core:.1f} per core" if per_core else "")
        + (f", {p['wakeups']:.0f} wake-ups per participant-second" if "wakeups" in p else "")
        + f", worst {p.get('fps_min', 0):.1f} fps: {'PASS' if p['passed'] else 'FAIL ' + p.get('reason', '')}"
    )
