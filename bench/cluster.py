"""Cluster benchmark (not a test): three ``vdx node`` processes against one, on this machine.

A cluster as the tests run it (``harness.cluster``: one ``vdx api``, three ``vdx node``
processes, a throwaway nats-server with JetStream and a throwaway PostgreSQL database), with the
nodes' media set as the capacity benchmark sets a node's. Three figures, each a ratio or a
difference within one run (the machine is shared: never compare across runs):

- **Efficiency**: each node as loaded as a node alone: one room of SIP callers (``sip_load``,
  real video) on one node with the other two drained, against one room on each of three nodes;
  and, as context, the three rooms on one node. Participants per core = participants x seconds /
  CPU seconds of the nodes carrying the rooms, over windows in which every call receives its
  pictures at the full rate. Three / one, within each round.
- **Joins**: a WebRTC bot (connect, join, offer/answer, first decoded picture) and a SIP caller
  (INVITE to 200 OK) straight to the room's node and through another node (the ``redirect``
  message, the 302), interleaved; via / direct for the bot, via - direct for SIP.
- **Failover**: SIGKILL the node of a room with someone in it; from the kill to a WebSocket join
  through a survivor (following the redirect) getting ``joined``.

    python -m bench.cluster                  # full run, rewrites its BENCHMARKS.md section
    python -m bench.cluster --quick          # a smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from bench.capacity_plan import FPS
from bench.clips import SIZES, make_clip
from bench.cluster_efficiency import (
    ALL_ON_ONE,
    CONFIGS,
    Load,
    describe,
    node_cpu,
    order,
    phase,
    ratios,
    take_rooms_on,
)
from bench.cluster_report import assemble, publish
from bench.cluster_routing import failover, join_times
from bench.join import FPS as RESIDENT_FPS
from bench.join import resident_clip
from bench.served_node import create_pg_database, log
from bench.sip_peer import SipPeer
from harness.cluster import Cluster
from vdx.legs.webrtc import restrict_host_addresses
from vdx.settings import Settings
from vdx.store.migrate import upgrade

# Each node on RTP ports of its own, apart from the other benchmarks'.
RTP_PORTS = ("34000-34999", "35000-35999", "36000-36999")
ROUND_S = 39.0  # what one round of three efficiency phases takes on a quiet machine
FAILOVER_S = 10.0  # what one failover takes on a quiet machine: the kill, the takeover, the node back


def node_env(quick: bool) -> dict[str, str]:
    """The nodes' media as the capacity benchmark sets a node's (its load generator places calls
    faster than admission allows and more than the participant cap), warnings only."""
    return {
        "VDX_MEDIA_FPS": str(FPS),
        "VDX_MEDIA_SIZE_CAP": "320x180" if quick else "",
        "VDX_SIP_MAX_INVITES_PER_SECOND": "1000",
        "VDX_NODE_MAX_PARTICIPANTS": "0",
        "VDX_LOG_LEVEL": "WARNING",
    }


def prepare(tmp: Path, database_url: str, quick: bool) -> Cluster:
    cluster = Cluster(tmp, database_url)
    cluster.api.env["VDX_LOG_LEVEL"] = "WARNING"
    for node, ports in zip(cluster.nodes.values(), RTP_PORTS, strict=True):
        node.env.update(node_env(quick) | {"VDX_RTP_PORTS": ports})
        node.env.pop("VDX_NODE_POLL_INTERVAL", None)  # the default, as deployed
    return cluster


async def idle_cpu(cluster: Cluster, seconds: float) -> dict[str, float]:
    """Each node's CPU, % of a core, with no room live: what a node costs by being there."""
    c0, t0 = node_cpu(cluster), time.monotonic()
    await asyncio.sleep(seconds)
    c1, wall = node_cpu(cluster), time.monotonic() - t0
    return {i: 100 * (c1[i] - c) / wall for i, c in c0.items()}


async def measure_joins(cluster: Cluster, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    """Join times into a room with a SIP resident sending video (a live conference)."""
    uuid, alias = await cluster.book(vmr_quality="sd")
    host = cluster.host_of(await cluster.provisioned(uuid, 30))
    resident = await SipPeer(cluster.sip_ports[host], alias.split("@")[0], "VP8", domain="vdx.test").open()
    talk: asyncio.Task[None] | None = None
    try:
        await resident.call()
        talk = asyncio.get_running_loop().create_task(
            resident.send_video(resident_clip(), RESIDENT_FPS, 3600)
        )
        await asyncio.sleep(1.0)
        samples, failures = await join_times(cluster, alias, host, args.join_repeats, deadline)
    finally:
        if talk is not None:
            talk.cancel()
        with contextlib.suppress(Exception):
            await resident.hangup()
        resident.close()
        await cluster.end(uuid)
    return {"host": host, "samples": samples, "failures": failures}


async def measure_efficiency(
    cluster: Cluster, load: Load, args: argparse.Namespace, reserve_s: float, stop_at: float
) -> dict[str, Any]:
    phases: list[dict[str, Any]] = []
    failures: list[str] = []
    speech, hush = load.clip.speech, load.clip.hush
    try:
        for i, (round_, config) in enumerate(order(args.rounds)):
            # another round only while the failovers keep their time
            first = i % len(CONFIGS) == 0
            if round_ > 0 and first and time.monotonic() + ROUND_S + reserve_s > stop_at:
                log(f"efficiency: budget: stopping after {round_} rounds")
                break
            try:
                p = await phase(cluster, load, config, speech, hush)
            except Exception as exc:
                failures.append(f"{config} (phase {i + 1}): {exc!r}")
                log(f"efficiency: {config}: FAILED {exc!r}")
                continue
            p["round"] = round_
            phases.append(p)
            log(f"efficiency: {describe(p)}")
    finally:
        await take_rooms_on(cluster, list(cluster.nodes))  # the failovers need every node
    return {
        "phases": phases,
        "ratios": ratios(phases),
        "ratios_all_on_one": ratios(phases, ALL_ON_ONE),
        "failures": failures,
    }


async def measure_failovers(cluster: Cluster, args: argparse.Namespace, stop_at: float) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    for rep in range(args.failovers):
        if rep >= args.min_failovers and time.monotonic() + FAILOVER_S > stop_at:
            log(f"failover: budget: stopping after {rep}")
            break
        try:
            r = await failover(cluster, rep)
        except Exception as exc:
            failures.append(f"repeat {rep + 1}: {exc!r}")
            log(f"failover: repeat {rep + 1}: FAILED {exc!r}")
            r = None
        if r is not None:
            runs.append(r)
            log(
                f"failover: {r['killed']} killed: joinable through {r['entry']} on {r['new_host']} after "
                f"{r['joinable_s']:.1f} s (re-provisioned after {r['provisioned_s']:.1f} s)"
            )
        dead = [n for n in cluster.nodes if n not in cluster.running()]
        if rep + 1 < args.failovers and dead:  # the next repeat has three nodes again
            await asyncio.gather(*(asyncio.to_thread(cluster.start, n) for n in dead))
            await cluster.settled()
    return {"runs": runs, "failures": failures}


async def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    restrict_host_addresses(["127.0.0.1"])
    started = time.monotonic()
    stop_at = started + args.budget * 0.95
    w, h = SIZES[args.size]
    clip = make_clip(args.codec, w, h, FPS)
    load = Load(clip, FPS, args.rooms, args.per_room, args.warm, args.windows, args.window)
    result: dict[str, Any] = {
        "load": {
            "codec": args.codec,
            "size": args.size,
            "rooms": args.rooms,
            "per_room": args.per_room,
            "fps": FPS,
            "kbps": clip.kbps,
        }
    }
    with tempfile.TemporaryDirectory(prefix="vdx-bench-cluster-") as tmp:
        cluster = prepare(Path(tmp), database_url, args.quick)
        try:
            t0 = time.monotonic()
            await cluster.up()
            result["startup_s"] = time.monotonic() - t0
            result["nodes"] = list(cluster.nodes)
            log(f"cluster up in {result['startup_s']:.1f} s: api and {', '.join(cluster.nodes)}")
            result["idle_cpu_pct"] = await idle_cpu(cluster, args.idle)
            reserve = FAILOVER_S * args.min_failovers
            result["joins"] = await measure_joins(cluster, args, stop_at - reserve - ROUND_S)
            result["efficiency"] = await measure_efficiency(cluster, load, args, reserve, stop_at)
            result["failover"] = await measure_failovers(cluster, args, stop_at)
        except BaseException:
            print(cluster.logs_tail(), file=sys.stderr)
            raise
        finally:
            await cluster.down()
    return assemble(result, started, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: small rooms, one of each")
    ap.add_argument("--budget", type=float, default=150.0, help="soft time budget in seconds")
    ap.add_argument(
        "--rounds", type=int, default=None, help="efficiency rounds, three phases each (default 2)"
    )
    ap.add_argument("--rooms", type=int, default=3, help="rooms of the efficiency load (one per node)")
    ap.add_argument("--per-room", type=int, default=None, help="SIP callers per room (default 6)")
    ap.add_argument("--codec", default="H264", choices=["H264", "VP8"])
    ap.add_argument("--size", default=None, choices=list(SIZES), help="callers' video (default 360p)")
    ap.add_argument("--join-repeats", type=int, default=None, help="joins of each kind and way (default 9)")
    ap.add_argument("--failovers", type=int, default=None, help="node kills (default 3)")
    ap.add_argument(
        "--pg",
        default=os.environ.get("VDX_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"),
        help="PostgreSQL server (a database on it is created and dropped)",
    )
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (none with --quick)")
    report.output_args(ap, "cluster")
    args = ap.parse_args()
    if args.from_json:
        report.republish(args, publish)
        return
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 2)
    args.per_room = args.per_room or (2 if quick else 6)
    args.size = args.size or ("180p" if quick else "360p")
    args.join_repeats = args.join_repeats or (1 if quick else 9)
    args.failovers = args.failovers or (1 if quick else 3)
    args.min_failovers = 1 if quick else min(2, args.failovers)
    args.warm, args.windows, args.window, args.idle = (0.5, 1, 1.5, 1.0) if quick else (1.5, 3, 2.5, 3.0)
    if not quick:
        report.default_outputs(args, "cluster")
    url, drop = create_pg_database(args.pg)
    try:
        upgrade(Settings(database_url=url))
        report.conclude(args, asyncio.run(run(args, url)), publish)
    finally:
        drop()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    np.seterr(all="ignore")
    main()
