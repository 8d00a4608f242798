"""MCU capacity benchmark (not a test): how many SIP participants a node carries per core.

A real node (``python -m vdx serve``, two of them: shared views and ``VDX_MEDIA_SHARED_VIEWS=false``)
hosts rooms booked through the booking API; ``sip_load`` places N SIP calls into rooms of 4, 9
and 16 (the last room may be partly filled), each replaying a pre-encoded camera-like clip at
30 fps with Opus, and reads what comes back. A load point passes when, in every measurement
window, every participant receives at least 27 pictures a second (90 % of 30) with under 1 %
packet loss on video and audio. The node's CPU (all threads, /proc) gives CPU per participant,
participants per core and Pexip-style HD units per core (HD 1, Full HD 2, SD 0.5, audio 1/16).

The search fits the time budget: a probe at a small N (one room, or two rooms of 4) gives CPU per
participant (node + load generator, which share the machine); the largest N the machine's cores
carry is extrapolated from it (90 % of all cores) and confirmed by a run at that N; then the
search bisects between the largest N that passed and the smallest that failed (a quarter up or
down while one side is unknown), at most ``--steps`` runs, while the budget allows. VP8, 720p and
WebRTC-leg cells are probed only (their capacity extrapolated); audio-only rooms are searched
like the main grid.

The floor, in the same run (this process, before any room runs): the pure PyAV cost of decoding
the streams and composing and encoding the views they need, and Opus both ways (``floor.py``).
MCU / floor is the node's CPU over the floor of the work it did in the windows (its own counters
of pictures decoded and encoded and audio packets decoded).

    PYTHONPATH=src /work/venv/bin/python bench/capacity.py            # full run, rewrites BENCHMARKS.md
    PYTHONPATH=src /work/venv/bin/python bench/capacity.py --quick --json /tmp/c.json   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import report
from bench.clips import HD_UNITS, QUALITY, SIZES, Clip, make_clip, opus_packets
from bench.floor import FloorCosts, audio_floor, floor_costs
from bench.served_node import Room, Served, book_meeting, conference_status, log, self_cpu
from bench.sip_load import Call, CallFailed, SipLoad
from bench.webrtc_load import Bot, WebRtcLoad
from vdx.legs.webrtc import restrict_host_addresses

HEADING = "## MCU capacity (`bench/capacity.py`)"
LAYOUTS = {
    2: "four_mains_zero_pips",
    4: "four_mains_zero_pips",
    9: "nine_mains_zero_pips",
    16: "sixteen_mains_zero_pips",
}
FPS = 30
FPS_OK = 0.9 * FPS  # "~30 fps": at least 27 pictures a second for every participant
LOSS_OK = 0.01
AUDIO_PPS = 50  # 20 ms packets
UTILISATION = 0.9  # the share of all cores the extrapolation aims at
MAX_CALLS = 240  # bounded: RTP ports and the load generator's own CPU
TARGETS = {"shared_360p": 20.0, "own_360p": 8.0, "mcu_over_floor": 1.5}


@dataclass(frozen=True)
class Cell:
    codec: str  # "VP8" | "H264" | "audio"
    size: str  # "360p" ... or "audio"
    room: int
    mode: str  # "shared" | "own" (views)
    search: bool
    leg: str = "sip"  # "sip" (sip_load) | "webrtc" (aiortc bots, webrtc_load)

    @property
    def key(self) -> str:
        if self.codec == "audio":
            return f"audio-only rooms of {self.room}"
        return f"{self.codec} {self.size} rooms of {self.room} {self.mode}" + (
            " WebRTC" if self.leg == "webrtc" else ""
        )

    @property
    def audio_only(self) -> bool:
        return self.codec == "audio"

    @property
    def probe_n(self) -> int:
        return self.room if self.room >= 8 or self.room < 4 else 2 * self.room


def plan(args: argparse.Namespace) -> list[Cell]:
    if args.quick:
        return [
            Cell("VP8", "180p", 2, "shared", False),
            Cell("VP8", "180p", 2, "own", False),
            Cell("audio", "audio", 2, "shared", False),
            Cell("VP8", "180p", 2, "shared", False, leg="webrtc"),
        ]
    cells = [Cell(args.codec, "360p", room, mode, True) for room in args.rooms for mode in ("shared", "own")]
    cells.append(Cell("audio", "audio", 16, "shared", True))
    # What a WebRTC leg (ICE, DTLS-SRTP, aiortc's RTP stack) costs beside a SIP leg: the same room.
    cells.append(Cell("VP8", "360p", 9, "shared", False, leg="webrtc"))
    for codec, size in (("VP8", "360p"), (args.codec, "720p"), ("VP8", "720p")):
        if codec != args.codec or size != "360p":
            cells += [Cell(codec, size, 9, mode, False) for mode in ("shared", "own")]
    if args.only:
        cells = [c for c in cells if any(o.lower() in c.key.lower() for o in args.only)]
    return cells


# --- one load point ----------------------------------------------------------------------------


@dataclass
class Rooms:
    """Rooms booked so far, reused across load points (a room empties between points)."""

    booked: dict[tuple[str, int], list[Room]] = field(default_factory=dict)

    async def take(
        self, node: Served, http: httpx.AsyncClient, quality: str, room: int, count: int
    ) -> list[Room]:
        """Its calls retry while the node has not learnt a room yet: no wait for it here."""
        have = self.booked.setdefault((quality, room), [])
        while len(have) < count:
            have.append(
                await book_meeting(node, http, quality, LAYOUTS[room], max_participants=room, known=False)
            )
        return have[:count]


def receiving(c: Call | Bot, cell: Cell) -> bool:
    if isinstance(c, Bot):
        return c.received.pictures > 0
    return (c.audio.packets if cell.audio_only else c.video.pictures) > 0


async def place_all(calls: list[Call], concurrency: int = 16) -> list[str]:
    gate = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(c: Call) -> None:
        async with gate:
            try:
                await c.place(deadline_s=60)
            except CallFailed as exc:
                errors.append(f"call {c.serial}: {exc}")

    await asyncio.gather(*(one(c) for c in calls))
    return errors


def room_counters(status: dict[str, Any] | None) -> tuple[int, int, int, int, int]:
    """(video pictures decoded, audio packets decoded, view pictures encoded, views, present)."""
    if status is None:
        return 0, 0, 0, 0, 0
    media = [p.get("media") or {} for p in status["participants"]]
    return (
        sum(m.get("videoFramesDecoded", 0) for m in media),
        sum(m.get("audioFramesDecoded", 0) for m in media),
        sum(v["framesEncoded"] for v in status["views"]),
        len(status["views"]),
        sum(1 for p in status["participants"] if p.get("state") == "conference"),
    )


async def all_counters(node: Served, http: httpx.AsyncClient, aliases: list[str]) -> tuple[float, list[int]]:
    """Counters summed over rooms, and the moment they stand for (the middle of the calls)."""
    t0 = time.monotonic()
    totals = [0, 0, 0, 0, 0]
    for alias in aliases:
        for i, v in enumerate(room_counters(await conference_status(node, http, alias))):
            totals[i] += v
    return (t0 + time.monotonic()) / 2, totals


async def measure(
    node: Served,
    http: httpx.AsyncClient,
    rooms: Rooms,
    cell: Cell,
    n: int,
    clip: Clip | None,
    speech: list[bytes],
    hush: list[bytes],
    costs: FloorCosts,
    args: argparse.Namespace,
    phase: str,
) -> dict[str, Any]:
    """N calls into rooms of ``cell.room``; the node's CPU and what every call receives over
    ``args.windows`` windows."""
    started = time.monotonic()
    per_room = [min(cell.room, n - i) for i in range(0, n, cell.room)]
    quality = "sd" if cell.audio_only else QUALITY[cell.size]
    booked = await rooms.take(node, http, quality, cell.room, len(per_room))
    load: SipLoad | WebRtcLoad
    if cell.leg == "webrtc":
        load = WebRtcLoad(node.base_url)
    else:
        load = SipLoad(("127.0.0.1", node.sip_port), FPS, speech, hush)
        await load.start()
    calls = [
        load.call(room.alias, room.host_pin, clip, talks=k == 0)
        for room, count in zip(booked, per_room, strict=True)
        for k in range(count)
    ]
    result: dict[str, Any] = {
        "cell": cell.key,
        "n": n,
        "rooms": len(per_room),
        "phase": phase,
        "passed": False,
    }
    try:
        errors = await (load.place_all() if isinstance(load, WebRtcLoad) else place_all(calls))
        result["setup_s"] = time.monotonic() - started
        if errors:
            result["reason"] = f"{len(errors)} calls failed: {errors[:3]}"
            return result
        deadline = time.monotonic() + 15
        while not all(receiving(c, cell) for c in calls):
            if time.monotonic() > deadline:
                result["reason"] = "not every call receives media"
                return result
            await asyncio.sleep(0.1)
        await asyncio.sleep(args.warm)
        aliases = [room.alias for room in booked]
        m0, k0 = await all_counters(node, http, aliases)
        windows = []
        cpu_start, t_start = node.cpu_seconds(), time.monotonic()
        for _ in range(args.windows):
            s0, c0, d0 = load.snapshot(), node.cpu_seconds(), self_cpu()
            await asyncio.sleep(args.window)
            s1, c1, d1 = load.snapshot(), node.cpu_seconds(), self_cpu()
            wall = s1.at - s0.at
            rates = load.rates(s0, s1)
            fps = [r.fps for r in rates]
            loss = [max(r.video_loss, r.audio_loss) for r in rates]
            audio_pps = [r.audio_pps for r in rates]
            ok_media = min(audio_pps) >= 0.9 * AUDIO_PPS if cell.audio_only else min(fps) >= FPS_OK
            windows.append(
                {
                    "node_cpu_pct": 100 * (c1 - c0) / wall,
                    "driver_cpu_pct": 100 * (d1 - d0) / wall,
                    "fps_min": min(fps),
                    "fps_median": statistics.median(fps),
                    "audio_pps_min": min(audio_pps),
                    "loss_max_pct": 100 * max(loss),
                    "loss_mean_pct": 100 * statistics.fmean(loss),
                    "passed": ok_media and max(loss) < LOSS_OK,
                }
            )
        cpu_all, t_all = node.cpu_seconds() - cpu_start, time.monotonic() - t_start
        m1, k1 = await all_counters(node, http, aliases)
    finally:
        await load.hang_up_all()
        late = load.late_ticks
        load.close()
    span = m1 - m0
    decoded, audio, encoded = ((k1[i] - k0[i]) * t_all / span for i in range(3))
    views, present = k1[3], k1[4]
    work = costs.work(decoded, encoded, audio)
    expected_views = len(per_room) if cell.mode == "shared" else n
    floor = costs.per_second(
        0 if cell.audio_only else n, 0 if cell.audio_only else expected_views, FPS, audio=n
    )
    samples = [s for c in calls for s in c.samples]
    ratio_full = cpu_all * 1e3 / work["full"] if work["full"] else None
    size = None if clip is None else (clip.width, clip.height)
    result.update(
        {
            "windows": windows,
            "summary": {k: report.summarise([w[k] for w in windows]) for k in windows[0] if k != "passed"},
            "views": views,
            "expected_views": 0 if cell.audio_only else expected_views,
            "present": present,
            "view_fps": encoded / max(views, 1) / t_all,
            "input_fps": decoded / n / t_all,
            "ratio_full": ratio_full,
            # What the node would need with every stream and view at the full frame rate: its
            # CPU per unit of work times the floor of the full rate. On a machine so busy that
            # the node is starved and drops pictures this estimates the need; where the node
            # kept up it equals the measured figure.
            "full_rate_cpu_pct": ratio_full * floor["full"] / 10 if ratio_full is not None else None,
            "ratio_codec": cpu_all * 1e3 / work["codec"] if work["codec"] else None,
            "floor_full_pct": floor["full"] / 10,
            "floor_codec_pct": floor["codec"] / 10,
            "samples_ok": cell.audio_only or (bool(samples) and all(s == size for s in samples)),
            "sample_errors": sum(c.sample_errors for c in calls),
            "keyframe_requests": sum(getattr(c, "keyframe_requests", 0) for c in calls),
            "driver_late_ticks": late,
            "duration_s": time.monotonic() - started,
        }
    )
    reason = ""
    if present != n:
        reason = f"{present} of {n} participants in the rooms"
    elif not cell.audio_only and views != expected_views:
        reason = f"{views} views, {expected_views} expected"
    elif not result["samples_ok"]:
        reason = f"decoded samples are not {size[0]}x{size[1]} pictures" if size else "no samples"
    elif not all(w["passed"] for w in windows):
        worst = min(windows, key=lambda w: w["fps_min"])
        reason = f"worst participant {worst['fps_min']:.1f} fps, loss up to {max(w['loss_max_pct'] for w in windows):.2f} %"
    result["passed"] = not reason
    result["reason"] = reason
    await asyncio.sleep(0.5)  # the node lets the calls go
    return result


# --- the search ---------------------------------------------------------------------------------


class Budget:
    """The soft time budget: what is left, and what a load point of N calls is likely to take
    (the measuring time plus a set-up cost per call, learnt from the points so far)."""

    def __init__(self, seconds: float, measuring_s: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.fixed = measuring_s + 2.0
        self.per_call = 0.15

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def estimate(self, n: int) -> float:
        return self.fixed + self.per_call * n

    def learn(self, point: dict[str, Any]) -> None:
        if "duration_s" in point:
            seen = max(0.02, (point["duration_s"] - self.fixed) / max(point["n"], 1))
            self.per_call = 0.5 * self.per_call + 0.5 * seen

    def allows(self, n: int, reserve: float) -> bool:
        return self.left() - reserve > self.estimate(n)


async def search(
    run_point: Any, cell: Cell, budget: Budget, reserve: float, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Probe, extrapolate, confirm, then bisect between the largest N that passed and the
    smallest that failed (a quarter up or down while one side is unknown); at most
    ``args.steps`` runs after the probe, and none the budget cannot fit."""
    n0 = min(cell.probe_n, MAX_CALLS)
    points = [await run_point(cell, n0, "probe")]
    probe = points[0]
    if not cell.search or "summary" not in probe:
        return points
    cores = os.cpu_count() or 1
    per = (probe["summary"]["node_cpu_pct"]["median"] + probe["summary"]["driver_cpu_pct"]["median"]) / n0
    target = int(UTILISATION * cores * 100 / per) if per > 0 else MAX_CALLS
    n = max(n0 + 1, min(target, MAX_CALLS)) if probe["passed"] else max(1, n0 // 2)
    passed = {n0} if probe["passed"] else set()
    failed = set() if probe["passed"] else {n0}
    for _ in range(args.steps):
        if n in passed or n in failed or not budget.allows(n, reserve):
            break
        p = await run_point(cell, n, "confirm" if len(points) == 1 else "step")
        points.append(p)
        (passed if p["passed"] else failed).add(n)
        if p["passed"]:
            higher = [f for f in failed if f > n]
            up = min(MAX_CALLS, math.ceil(n * 1.25))
            n = (n + min(higher)) // 2 if higher else up
        else:
            # Bisect down to the largest N that passed (the extrapolation assumes every core
            # works; a node bound by one thread fails well below it), or a quarter down.
            lower = [q for q in passed if q < n]
            n = (n + max(lower)) // 2 if lower else max(1, int(n * 0.75))
    return points


def cell_result(cell: Cell, points: list[dict[str, Any]]) -> dict[str, Any]:
    """The cell's figures from its points: the largest N that passed (and the smallest above
    it that failed), CPU per participant at that N (or at the probe, when only probed)."""
    measured = [p for p in points if "summary" in p]
    passing = [p for p in measured if p["passed"]]
    best = max(passing, key=lambda p: p["n"]) if passing else None
    failing_above = sorted(p["n"] for p in points if not p["passed"] and (best is None or p["n"] > best["n"]))
    basis = best or (measured[0] if measured else None)
    out: dict[str, Any] = {
        "codec": cell.codec,
        "size": cell.size,
        "room": cell.room,
        "mode": cell.mode,
        "searched": cell.search,
        "leg": cell.leg,
        "largest_n": best["n"] if best else None,
        "first_failing_n": failing_above[0] if failing_above else None,
        "points": points,
    }
    if basis is None:
        return out
    n = basis["n"]
    node = basis["summary"]["node_cpu_pct"]
    per = {k: node[k] / n for k in ("min", "median", "max")}
    units = HD_UNITS["audio" if cell.audio_only else cell.size]
    full = (basis["full_rate_cpu_pct"] or 0.0) / n
    if basis["passed"]:
        # fewer participants per core at the highest CPU: min comes from max and back
        per_core = {
            k: 100 / per[j] if per[j] else 0.0
            for k, j in (("min", "max"), ("median", "median"), ("max", "min"))
        }
    else:
        # No point passed: a starved node's CPU says little, so the estimate is the CPU the
        # work at the full frame rate would take (its cost per unit of work times that work).
        per_core = {k: 100 / full if full else 0.0 for k in ("min", "median", "max")}
    out.update(
        {
            "basis_n": n,
            "basis_passed": basis["passed"],
            "per_participant_pct": per,
            "participants_per_core": per_core,
            "estimated": not basis["passed"],
            "hd_units_per_participant": units,
            "floor_per_participant_pct": basis["floor_full_pct"] / n,
            "ratio_full": basis["ratio_full"],
            "ratio_codec": basis["ratio_codec"],
            "driver_per_participant_pct": basis["summary"]["driver_cpu_pct"]["median"] / n,
            "full_rate_per_participant_pct": full,
        }
    )
    out["hd_units_per_core"] = {k: v * units for k, v in out["participants_per_core"].items()}
    return out


# --- the run ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    budget = Budget(args.budget, args.warm + args.windows * args.window)
    cells = plan(args)
    restrict_host_addresses(["127.0.0.1"])  # the bots' ICE candidates, as the node's
    sizes = {c.size for c in cells if not c.audio_only}
    codecs = {c.codec for c in cells if not c.audio_only}
    clips: dict[tuple[str, str], Clip] = {}
    for codec in sorted(codecs):
        for size in sorted(sizes):
            if any(c.codec == codec and c.size == size for c in cells):
                w, h = SIZES[size]
                clips[codec, size] = make_clip(codec, w, h, FPS)
                log(
                    f"clip {codec} {size}: {len(clips[codec, size].video)} pictures, {clips[codec, size].kbps:.0f} kbps"
                )
    speech, hush = opus_packets(440.0, 6000), opus_packets(150.0, 40)
    # The floor first, in this process, while no room runs.
    floors: dict[str, FloorCosts] = {}
    measured: dict[tuple[str, str, int], FloorCosts] = {}
    for cell in cells:
        shape = (cell.codec, cell.size, cell.room)
        if shape not in measured:
            if cell.audio_only:
                measured[shape] = audio_floor(speech)
            else:
                measured[shape] = floor_costs(clips[cell.codec, cell.size], cell.room, LAYOUTS[cell.room])
        floors[cell.key] = measured[shape]
    log(f"floor measured [{time.monotonic() - started:.0f}s]")
    host = report.machine(load_at="start")
    results: dict[str, list[dict[str, Any]]] = {c.key: [] for c in cells}
    idle: list[float] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vdx-bench-capacity-") as tmp:
        nodes: dict[str, Served] = {}
        for mode, ports in (("shared", "30000-31999"), ("own", "32000-33999")):
            if not any(c.mode == mode for c in cells):
                continue
            data_dir = Path(tmp) / mode
            data_dir.mkdir()
            env = {
                "VDX_MEDIA_FPS": str(FPS),
                "VDX_MEDIA_SHARED_VIEWS": "true" if mode == "shared" else "false",
                "VDX_MEDIA_SIZE_CAP": "320x180" if args.quick else "",
                "VDX_RTP_PORTS": ports,
                # The load generator places calls faster than a real node's admission allows and
                # more than its default participant cap: both are knobs, not the MCU's cost.
                "VDX_SIP_MAX_INVITES_PER_SECOND": "1000",
                "VDX_NODE_MAX_PARTICIPANTS": "0",
            }
            node = Served(data_dir, env)
            node.prepare(like=nodes.get("shared"))
            nodes[mode] = node
        try:
            for n in nodes.values():
                n.spawn()
            for n in nodes.values():
                n.wait_ready()
            log(f"nodes up [{time.monotonic() - started:.0f}s]")
            for n in nodes.values():
                c0, t0 = n.cpu_seconds(), time.monotonic()
                await asyncio.sleep(args.idle)
                idle.append(100 * (n.cpu_seconds() - c0) / (time.monotonic() - t0))
            rooms = {mode: Rooms() for mode in nodes}
            clients = {mode: httpx.AsyncClient(base_url=nodes[mode].base_url, timeout=60) for mode in nodes}
            try:

                async def run_point(cell: Cell, n: int, phase: str) -> dict[str, Any]:
                    clip = None if cell.audio_only else clips[cell.codec, cell.size]
                    try:
                        p = await measure(
                            nodes[cell.mode],
                            clients[cell.mode],
                            rooms[cell.mode],
                            cell,
                            n,
                            clip,
                            speech,
                            hush,
                            floors[cell.key],
                            args,
                            phase,
                        )
                    except Exception as exc:  # a node that stopped answering on a loaded machine
                        p = {"cell": cell.key, "n": n, "phase": phase, "passed": False, "reason": repr(exc)}
                    budget.learn(p)
                    s = p.get("summary")
                    log(
                        f"{cell.key:<34} N={n:<3} {phase:<7} "
                        + (
                            f"node {s['node_cpu_pct']['median']:5.0f}% ({s['node_cpu_pct']['median'] / n:4.1f}%/participant) "
                            f"worst fps {s['fps_min']['min']:4.1f} loss {s['loss_max_pct']['max']:.2f}% "
                            f"driver {s['driver_cpu_pct']['median']:3.0f}% "
                            if s
                            else ""
                        )
                        + ("PASS" if p["passed"] else f"FAIL {p.get('reason', '')}")
                        + f" [{time.monotonic() - started:.0f}s]"
                    )
                    results[cell.key].append(p)
                    if args.json:
                        report.write_json(
                            args.json, assemble(cells, results, idle, failures, started, host, args, False)
                        )
                    return p

                for i, cell in enumerate(cells):
                    # The cells in order, each at least probed while time is left; a search
                    # steps further only while the probes of the cells still to come fit.
                    reserve = sum(budget.estimate(c.probe_n) for c in cells[i + 1 :])
                    if not args.quick and not budget.allows(cell.probe_n, 0):
                        failures.append(f"{cell.key}: skipped, out of time budget")
                        continue
                    await search(run_point, cell, budget, reserve, args)
            finally:
                for c in clients.values():
                    await c.aclose()
        finally:
            for n in nodes.values():
                n.stop()
    return assemble(cells, results, idle, failures, started, host, args, True)


def assemble(
    cells: list[Cell],
    results: dict[str, list[dict[str, Any]]],
    idle: list[float],
    failures: list[str],
    started: float,
    host: dict[str, Any],
    args: argparse.Namespace,
    complete: bool,
) -> dict[str, Any]:
    out_cells = [cell_result(c, results[c.key]) for c in cells if results[c.key]]
    goals = targets(out_cells)
    return {
        "machine": host,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command(args),
        "fps": FPS,
        "fps_ok": FPS_OK,
        "loss_ok_pct": 100 * LOSS_OK,
        "window_s": args.window,
        "windows": args.windows,
        "budget_s": args.budget,
        "duration_s": time.monotonic() - started,
        "idle_node_cpu_pct": report.summarise(idle or [0.0]),
        "complete": complete,
        "failures": failures,
        "cells": out_cells,
        "targets": goals,
        "headline": headline(out_cells, goals),
    }


def targets(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 7's targets against the best searched 360p cell of each mode, and MCU / floor."""
    out: dict[str, Any] = {}
    for mode in ("shared", "own"):
        got = [
            c["participants_per_core"]["median"]
            for c in cells
            if c["mode"] == mode
            and c["size"] == "360p"
            and c.get("leg", "sip") == "sip"
            and "participants_per_core" in c
            and c.get("basis_passed")
        ]
        best = max(got) if got else None
        goal = TARGETS[f"{mode}_360p"]
        out[f"{mode}_360p_per_core"] = {
            "target": goal,
            "best": best,
            "met": best is not None and best >= goal,
        }
    ratios = [c["ratio_full"] for c in cells if c.get("ratio_full") and c["codec"] != "audio"]
    worst = max(ratios) if ratios else None
    out["mcu_over_floor"] = {
        "target": TARGETS["mcu_over_floor"],
        "worst": worst,
        "median": statistics.median(ratios) if ratios else None,
        "met": worst is not None and worst <= TARGETS["mcu_over_floor"],
    }
    return out


def headline(cells: list[dict[str, Any]], goals: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures ``bench/run_all.py`` puts in BENCHMARKS.md's summary (its headline convention):
    participants per core of the best 360p cell of each mode (where a load point passed), HD
    units per core, audio-only per core, and MCU / floor (median and range over video cells)."""

    def row(
        figure: str, stats: dict[str, float] | None, unit: str, target: str | None, met: bool | None
    ) -> dict[str, Any]:
        return {
            "figure": figure,
            "value": None if stats is None else round(stats["median"], 2),
            "min": None if stats is None else round(stats["min"], 2),
            "max": None if stats is None else round(stats["max"], 2),
            "unit": unit,
            "target": target,
            "met": met,
        }

    rows = []
    for mode, label in (("shared", "shared views"), ("own", "a view per participant")):
        passed = [
            c
            for c in cells
            if c["mode"] == mode and c["size"] == "360p" and c["leg"] == "sip" and c.get("basis_passed")
        ]
        best = max(passed, key=lambda c: c["participants_per_core"]["median"]) if passed else None
        where = f" (rooms of {best['room']}, {best['codec']})" if best else ""
        goal = goals[f"{mode}_360p_per_core"]
        rows.append(
            row(
                f"SIP participants per core, 360p, {label}{where}",
                best["participants_per_core"] if best else None,
                "per core",
                f">= {goal['target']:g}",
                goal["met"] if best else None,
            )
        )
        if best:
            rows.append(
                row(
                    f"HD units per core, 360p, {label}{where}",
                    best["hd_units_per_core"],
                    "HD/core",
                    None,
                    None,
                )
            )
    audio = next((c for c in cells if c["codec"] == "audio" and "participants_per_core" in c), None)
    if audio is not None:
        rows.append(
            row(
                f"audio-only participants per core (rooms of {audio['room']}"
                + (", estimated)" if audio.get("estimated") else ")"),
                audio["participants_per_core"],
                "per core",
                None,
                None,
            )
        )
    ratios = [c["ratio_full"] for c in cells if c.get("ratio_full") and c["codec"] != "audio"]
    rows.append(
        row(
            "MCU cost / PyAV floor, video cells (median, min-max over cells)",
            report.summarise(ratios) if ratios else None,
            "x",
            f"<= {goals['mcu_over_floor']['target']:g}",
            goals["mcu_over_floor"]["met"] if ratios else None,
        )
    )
    return rows


def rederive(result: dict[str, Any]) -> dict[str, Any]:
    """Cells and targets computed again from an earlier run's load points (the raw data)."""
    cells = []
    for c in result["cells"]:
        cell = Cell(c["codec"], c["size"], c["room"], c["mode"], c["searched"], c.get("leg", "sip"))
        cells.append(cell_result(cell, c["points"]))
    goals = targets(cells)
    return {**result, "cells": cells, "targets": goals, "headline": headline(cells, goals)}


def command(args: argparse.Namespace) -> str:
    parts = ["PYTHONPATH=src /work/venv/bin/python bench/capacity.py"]
    if args.quick:
        parts.append("--quick")
    parts += ["--budget", f"{args.budget:g}"]
    if args.only:
        parts += ["--only", *(f'"{o}"' for o in args.only)]
    return " ".join(parts)


# --- reporting ----------------------------------------------------------------------------------


def markdown(result: dict[str, Any], plots: list[str]) -> str:
    m = result["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_avg_at_start"])
    lines = [
        HEADING,
        "",
        f"Run {result['date'][:16].replace('T', ' ')} UTC on {m['host']} ({m['cpus']} vCPU, {m['cpu_model']}), "
        f"Python {m['python']}, PyAV {m['av']}; {result['duration_s']:.0f} s "
        f"(budget {result['budget_s']:g} s{'' if result['complete'] else ', cut short'}).",
        "",
        f"Command: `{result['command']}`",
        "",
        "What it measures: two `vdx serve` processes (shared views, and `VDX_MEDIA_SHARED_VIEWS=false`: "
        "a view and an encoder per participant) host rooms booked through the booking API. "
        "`bench/sip_load.py`, one asyncio process, places N SIP calls (UDP, RTP/AVP, PIN by RFC 4733) "
        f"into rooms of the given size (layouts of 4, 9 and 16 tiles; the last room may be partly filled), each "
        f"replaying a camera-like clip encoded once ({result['fps']} fps, the node's own encoder settings) "
        "with Opus (one caller per room talks), and counts what comes back without decoding it: "
        "complete pictures by RTP marker and sequence, loss by sequence numbers; the first three pictures "
        "of every call are decoded to check their size. A load point **passes** when in each of "
        f"{result['windows']} windows of {result['window_s']:g} s every participant receives at least "
        f"{result['fps_ok']:g} pictures a second with under {result['loss_ok_pct']:g} % loss (video and audio). "
        "Node CPU: the node process, all threads (/proc). HD units per core: participants per core times "
        "Pexip's units (HD 720p = 1, SD 360p = 0.5, audio-only = 1/16).",
        "",
        "How N is found within the budget: a **probe** at one room (two rooms of 4) gives CPU per "
        "participant of node and load generator together (they share the machine); the largest N that "
        f"{int(UTILISATION * 100)} % of all cores carry is extrapolated from it and **confirmed** by a run at that "
        "N; then bisection between the largest N that passed and the smallest that failed (a quarter "
        "up or down while one side is unknown), at most three runs after the probe, while the budget lasts. *Largest N* is the largest that passed (the smallest that "
        "failed above it in brackets); CPU per participant and participants per core are taken at that N "
        "(min-max over its windows). Cells marked *probe* were measured at one N only and their "
        "capacity is extrapolated from CPU. **Floor**: the pure PyAV cost, measured in the same run "
        "before any room, of decoding every stream, composing and encoding the views they need and "
        "Opus both ways; **MCU / floor**: the node's CPU over the floor of the work it did in the "
        "windows (its own counters). The floor's own participants per core (in brackets) bound what "
        "any MCU doing this work with these codecs could reach on this CPU.",
        "",
        f"Noise: {m['cpus']} vCPU shared with the load generator (its CPU is the *driver* column) and, during "
        f"development runs, other jobs (load average {load} at the start). An idle node used "
        f"{report.fmt_range(result['idle_node_cpu_pct'], 1)} % of a core (included below).",
        "",
        "| cell | views | largest N (failed) | node CPU per participant % | at full rate % | participants per core "
        "| HD units per core | floor per participant % (per core) | MCU / floor (full / codec) | driver % per participant | method |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        name = "audio-only" if c["codec"] == "audio" else f"{c['codec']} {c['size']}"
        if c.get("leg") == "webrtc":
            name += ", WebRTC legs"
        views = "-" if c["codec"] == "audio" else ("shared" if c["mode"] == "shared" else "own")
        largest = "-" if c["largest_n"] is None else str(c["largest_n"])
        if c["first_failing_n"] is not None:
            largest += f" ({c['first_failing_n']})"
        if "per_participant_pct" not in c:
            lines.append(
                f"| {name}, rooms of {c['room']} | {views} | {largest} | - | - | - | - | - | - | - | failed |"
            )
            continue
        method = "searched" if c["searched"] else "probe"
        if not c["basis_passed"]:
            method += f"; no N passed (N={c['basis_n']}): per core estimated from the full-rate CPU"
        approx = "~" if c.get("estimated") else ""
        ratio = "-" if c["ratio_full"] is None else f"{c['ratio_full']:.2f} / {c['ratio_codec']:.2f}"
        lines.append(
            f"| {name}, rooms of {c['room']} | {views} | {largest} | {report.fmt_range(c['per_participant_pct'], 2)} "
            f"| {c['full_rate_per_participant_pct']:.2f} | {approx}{report.fmt_range(c['participants_per_core'], 1)} "
            f"| {approx}{report.fmt_range(c['hd_units_per_core'], 1)} "
            f"| {c['floor_per_participant_pct']:.2f} ({100 / c['floor_per_participant_pct']:.1f}) | {ratio} | {c['driver_per_participant_pct']:.2f} | {method} |"
        )
    t = result["targets"]
    lines += ["", "**Against issue 7's targets** (this run):", ""]
    for mode, label in (("shared", "shared views at 360p"), ("own", "a view per participant at 360p")):
        x = t[f"{mode}_360p_per_core"]
        best = "none passed" if x["best"] is None else f"{x['best']:.1f}"
        lines.append(
            f"- {label}: at least {x['target']:g} participants per core; best {best}: **{'met' if x['met'] else 'missed'}**."
        )
    r = t["mcu_over_floor"]
    if r["worst"] is not None:
        lines.append(
            f"- MCU at most {r['target']:g} x the floor: median {r['median']:.2f}, worst {r['worst']:.2f}: "
            f"**{'met' if r['met'] else 'missed'}**."
        )
    lines += [
        "",
        "Every load point (node CPU % and worst participant's fps: median over windows; loss: worst):",
        "",
    ]
    lines += [
        "| cell | N | rooms | phase | node CPU % | driver CPU % | worst fps | loss % | passed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        for p in c["points"]:
            s = p.get("summary")
            if s is None:
                lines.append(
                    f"| {p['cell']} | {p['n']} | - | {p['phase']} | - | - | - | - | no: {p.get('reason', '')} |"
                )
                continue
            lines.append(
                f"| {p['cell']} | {p['n']} | {p['rooms']} | {p['phase']} | {s['node_cpu_pct']['median']:.0f} "
                f"| {s['driver_cpu_pct']['median']:.0f} | {s['fps_min']['median']:.1f} | {s['loss_max_pct']['max']:.2f} "
                f"| {'yes' if p['passed'] else 'no: ' + p['reason']} |"
            )
    lines.append("")
    return report.section_end(lines, "Not measured", result["failures"], "MCU capacity", plots)


def plot(result: dict[str, Any], cpu_png: Path, media_png: Path) -> None:
    plt = report.pyplot()

    cores = result["machine"]["cpus"] or 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), squeeze=False)
    for ax, mode in zip(axes[0], ("shared", "own"), strict=True):
        for c in result["cells"]:
            if c["mode"] != mode:
                continue
            pts = sorted((p for p in c["points"] if "summary" in p), key=lambda p: p["n"])
            if not pts:
                continue
            n = [p["n"] for p in pts]
            med = [p["summary"]["node_cpu_pct"]["median"] for p in pts]
            lo = [p["summary"]["node_cpu_pct"]["median"] - p["summary"]["node_cpu_pct"]["min"] for p in pts]
            hi = [p["summary"]["node_cpu_pct"]["max"] - p["summary"]["node_cpu_pct"]["median"] for p in pts]
            label = (
                "audio-only" if c["codec"] == "audio" else f"{c['codec']} {c['size']} rooms of {c['room']}"
            )
            line = ax.errorbar(n, med, yerr=[lo, hi], marker="o", capsize=3, label=label)
            ax.plot(n, [p["floor_full_pct"] for p in pts], linestyle=":", color=line[0].get_color())
            for p in pts:
                if not p["passed"]:
                    ax.plot(p["n"], p["summary"]["node_cpu_pct"]["median"], "x", color="red", markersize=9)
        ax.axhline(100 * cores, color="grey", lw=0.8)
        ax.set_xlabel("participants N")
        ax.set_ylabel("node CPU, % of one core")
        ax.set_title(
            f"{'shared views' if mode == 'shared' else 'a view per participant'} (dotted: PyAV floor; x: failed)",
            fontsize=9,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"vdx MCU capacity, {result['date'][:10]}, {cores} vCPU; median, bars min-max over windows",
        fontsize=10,
    )
    report.save_figure(fig, cpu_png, dpi=100)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), squeeze=False)
    for c in result["cells"]:
        pts = sorted((p for p in c["points"] if "summary" in p), key=lambda p: p["n"])
        if not pts or c["codec"] == "audio":
            continue
        label = f"{c['codec']} {c['size']} {c['room']} {c['mode']}"
        n = [p["n"] for p in pts]
        axes[0][0].plot(n, [p["summary"]["fps_min"]["min"] for p in pts], marker="o", label=label)
        axes[0][1].plot(n, [p["summary"]["loss_max_pct"]["max"] for p in pts], marker="o", label=label)
    axes[0][0].axhline(result["fps_ok"], color="red", lw=0.8)
    axes[0][1].axhline(result["loss_ok_pct"], color="red", lw=0.8)
    axes[0][0].set_ylabel("worst participant's received fps (min over windows)")
    axes[0][1].set_ylabel("worst participant's loss % (max over windows)")
    for ax in axes[0]:
        ax.set_xlabel("participants N")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    report.save_figure(fig, media_png, dpi=100)


def publish(result: dict[str, Any], md: Path | None, pngs: list[Path]) -> None:
    report.render(result, HEADING, markdown, plot, md, pngs, drawable=bool(result["cells"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="a smoke run: two calls at 320x180, no search, no files"
    )
    ap.add_argument("--budget", type=float, default=None, help="soft time budget in seconds (default 420)")
    ap.add_argument(
        "--codec", default="H264", choices=["VP8", "H264"], help="codec of the searched 360p grid"
    )
    ap.add_argument("--rooms", nargs="+", type=int, default=[4, 9, 16], choices=[4, 9, 16])
    ap.add_argument("--windows", type=int, default=None, help="measurement windows per load point")
    ap.add_argument("--window", type=float, default=None, help="seconds per window")
    ap.add_argument(
        "--warm", type=float, default=None, help="seconds between everyone receiving and the windows"
    )
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help='run only the cells whose name contains one of these (e.g. "shared WebRTC"); '
        "with no --json/--markdown of its own it writes neither",
    )
    ap.add_argument("--steps", type=int, default=3, help="runs after the probe per searched cell, at most")
    ap.add_argument("--idle", type=float, default=None, help="seconds an idle node is measured")
    ap.add_argument(
        "--json", type=Path, help="raw results (default bench/results/capacity.json; none with --quick)"
    )
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (default: it; none with --quick)")
    ap.add_argument("--from-json", type=Path, help="render the markdown and plots of an earlier run")
    args = ap.parse_args()
    pngs = [report.ROOT / "bench/results/capacity_cpu.png", report.ROOT / "bench/results/capacity_media.png"]
    if args.from_json:
        result = rederive(json.loads(args.from_json.read_text()))
        if args.json:
            report.write_json(args.json, result)
        publish(result, args.markdown or report.BENCHMARKS_MD, pngs)
        return
    if args.quick:
        args.budget = args.budget or 60.0
        args.windows = args.windows or 1
        args.window = args.window or 1.0
        args.warm = args.warm if args.warm is not None else 0.5
        args.idle = args.idle or 0.5
    else:
        args.budget = args.budget or 420.0
        args.windows = args.windows or 3
        args.window = args.window or 2.0
        args.warm = args.warm if args.warm is not None else 1.5
        args.idle = args.idle or 2.0
        if not args.only:  # a partial run does not overwrite the full run's results
            args.json = args.json or report.ROOT / "bench/results/capacity.json"
            args.markdown = args.markdown or report.BENCHMARKS_MD
    result = asyncio.run(run(args))
    if args.json:
        report.write_json(args.json, result)
    # --quick, --only: no plots; the section only where a file is named (bench/run_all.py --quick)
    publish(result, args.markdown, [] if args.quick or args.only else pngs)


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the node processes are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(KeyboardInterrupt):
        main()
