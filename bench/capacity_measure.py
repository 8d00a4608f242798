"""One load point of the capacity benchmark: N calls into booked rooms, then the node's CPU and
what every call receives over a few windows, and the work the node did (its own counters) for
the MCU / floor ratio."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import report
from bench.capacity_plan import AUDIO_PPS, FPS, FPS_OK, LAYERS, LOSS_OK, Cell, half_views, layered, views_for
from bench.clips import QUALITY, Clip
from bench.floor import FloorCosts
from bench.served_node import Room, Served, book_meeting, conference_status, self_cpu
from bench.sip_load import Call, SipLoad, place_all
from bench.webrtc_load import Bot, WebRtcLoad
from harness.waiting import until
from vdx.conference.views import bitrate_for


@dataclass
class Rooms:
    """Rooms booked so far, reused across load points (a room empties between points)."""

    booked: dict[tuple[str, int, str], list[Room]] = field(default_factory=dict)

    async def take(
        self, node: Served, http: httpx.AsyncClient, quality: str, room: int, layout: str, count: int
    ) -> list[Room]:
        """Its calls retry while the node has not learnt a room yet: no wait for it here."""
        have = self.booked.setdefault((quality, room, layout), [])
        while len(have) < count:
            have.append(await book_meeting(node, http, quality, layout, max_participants=room, known=False))
        return have[:count]


def receiving(c: Call | Bot, cell: Cell) -> bool:
    if isinstance(c, Bot):
        return c.received.pictures > 0
    return (c.audio.packets if cell.audio_only else c.video.pictures) > 0


def room_counters(status: dict[str, Any] | None) -> tuple[int, ...]:
    """(video pictures decoded, audio packets decoded, view pictures encoded at the room's full
    size, views, present, view pictures encoded smaller, views smaller)."""
    if status is None:
        return 0, 0, 0, 0, 0, 0, 0
    media = [p.get("media") or {} for p in status["participants"]]
    full = max((v["width"] for v in status["views"]), default=0)
    smaller = [v for v in status["views"] if v["width"] < full]
    return (
        sum(m.get("videoFramesDecoded", 0) for m in media),
        sum(m.get("audioFramesDecoded", 0) for m in media),
        sum(v["framesEncoded"] for v in status["views"] if v["width"] == full),
        len(status["views"]),
        sum(1 for p in status["participants"] if p.get("state") == "conference"),
        sum(v["framesEncoded"] for v in smaller),
        len(smaller),
    )


async def all_counters(node: Served, http: httpx.AsyncClient, aliases: list[str]) -> tuple[float, list[int]]:
    """Counters summed over rooms, and the moment they stand for (the middle of the calls)."""
    t0 = time.monotonic()
    totals = [0, 0, 0, 0, 0, 0, 0]
    for alias in aliases:
        for i, v in enumerate(room_counters(await conference_status(node, http, alias))):
            totals[i] += v
    return (t0 + time.monotonic()) / 2, totals


# The node's media operations (``vdx_media_*`` on /manage/metrics) and the floor's cost of each.
FLOOR_OF = {
    "video_decode": "decode",
    "video_scale": "scale",
    "video_compose": "compose",
    "video_encode": "encode",
    "audio_decode": "opus_decode",
    "audio_encode": "opus_encode",
}


async def media_cpu(http: httpx.AsyncClient) -> dict[str, tuple[float, float]]:
    """Operation -> (calls, CPU seconds) of the node process so far."""
    out: dict[str, list[float]] = {}
    r = await http.get("/manage/metrics")
    r.raise_for_status()
    for family in text_string_to_metric_families(r.text):
        if family.name in ("vdx_media_operations", "vdx_media_cpu_seconds"):
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    op = out.setdefault(sample.labels["operation"], [0.0, 0.0])
                    op[family.name == "vdx_media_cpu_seconds"] = sample.value
    return {k: (v[0], v[1]) for k, v in out.items()}


def by_operation(
    before: dict[str, tuple[float, float]],
    after: dict[str, tuple[float, float]],
    seconds: float,
    cpu_s: float,
    costs: FloorCosts,
) -> dict[str, Any]:
    """Per operation: calls a second, the node's CPU per call and the floor's (ms), and its share
    of the node's CPU; ``other_pct``: the node's CPU outside these operations, % of a core."""
    ops: dict[str, Any] = {}
    for op, floor_name in FLOOR_OF.items():
        calls = after[op][0] - before[op][0]
        cpu = after[op][1] - before[op][1]
        ops[op] = {
            "per_s": calls / seconds,
            "node_ms": 1e3 * cpu / calls if calls else None,
            "floor_ms": getattr(costs, floor_name),
            "paced_ms": getattr(costs.paced, floor_name) if costs.paced is not None else None,
            "share": cpu / cpu_s if cpu_s else 0.0,
        }
    inside = sum(after[op][1] - before[op][1] for op in FLOOR_OF)
    return {"operations": ops, "other_pct": 100 * (cpu_s - inside) / seconds}


def paced_work(
    costs: FloorCosts,
    half_costs: FloorCosts | None,
    decoded: float,
    encoded: float,
    encoded_half: float,
    audio: float,
) -> float | None:
    """Milliseconds of CPU the paced floor takes for the work the node did (all of it)."""
    if costs.paced is None:
        return None
    total = costs.paced.work(decoded, encoded, audio)["full"]
    if half_costs is not None:
        if half_costs.paced is None:
            return None
        total += half_costs.paced.work(decoded, encoded_half, 0)["full"]
    return total


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
    half_costs: FloorCosts | None = None,
) -> dict[str, Any]:
    """N calls into rooms of ``cell.room``; the node's CPU and what every call receives over
    ``args.windows`` windows. A cell with layers has every other caller ask for the half size,
    whose views ``half_costs`` adds to the floor."""
    started = time.monotonic()
    per_room = [min(cell.room, n - i) for i in range(0, n, cell.room)]
    quality = "sd" if cell.audio_only else QUALITY[cell.size]
    booked = await rooms.take(node, http, quality, cell.room, cell.layout, len(per_room))
    load: SipLoad | WebRtcLoad
    if cell.leg == "webrtc":
        load = WebRtcLoad(node.base_url)
    else:
        load = SipLoad(("127.0.0.1", node.sip_port), FPS, speech, hush)
        await load.start()
    ceiling = None
    if clip is not None and cell.mode == LAYERS:  # what the half size needs, and a little
        ceiling = bitrate_for((clip.width // 2) & ~1, (clip.height // 2) & ~1) + 20_000
    calls = [
        load.call(room.alias, room.host_pin, clip, talks=k == 0)
        if not layered(cell, k) or isinstance(load, WebRtcLoad)
        else load.call(room.alias, room.host_pin, clip, talks=k == 0, ceiling_bps=ceiling)
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
        try:
            await until(lambda: all(receiving(c, cell) for c in calls), 15, poll_s=0.1)
        except TimeoutError:
            result["reason"] = "not every call receives media"
            return result
        await asyncio.sleep(args.warm)
        aliases = [room.alias for room in booked]
        m0, k0 = await all_counters(node, http, aliases)
        windows = []
        ops_start = await media_cpu(http)
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
        operations = by_operation(ops_start, await media_cpu(http), t_all, cpu_all, costs)
        m1, k1 = await all_counters(node, http, aliases)
    finally:
        await load.hang_up_all()
        late = load.late_ticks
        load.close()
    span = m1 - m0
    decoded, audio, encoded, _, _, encoded_half = ((k1[i] - k0[i]) * t_all / span for i in range(6))
    views, present, views_half = k1[3], k1[4], k1[6]
    work = costs.work(decoded, encoded, audio)
    expected_views = views_for(cell, per_room)
    expected_half = half_views(cell, per_room)
    floor = costs.per_second(
        0 if cell.audio_only else n, 0 if cell.audio_only else expected_views - expected_half, FPS, audio=n
    )
    if half_costs is not None:  # the smaller views: their tiles scaled again, composed, encoded
        half_work = half_costs.work(decoded, encoded_half, 0)
        work = {k: work[k] + half_work[k] for k in work}
        half_floor = half_costs.per_second(n, expected_half, FPS, audio=0)
        floor = {k: floor[k] + half_floor[k] for k in floor}
    paced = paced_work(costs, half_costs, decoded, encoded, encoded_half, audio)
    samples = [s for c in calls for s in c.samples]
    ratio_full = cpu_all * 1e3 / work["full"] if work["full"] else None
    size = None if clip is None else (clip.width, clip.height)
    sizes = (
        []
        if clip is None
        else [size, ((clip.width // 2) & ~1, (clip.height // 2) & ~1)][: 2 if ceiling else 1]
    )
    result.update(
        {
            "windows": windows,
            "summary": {k: report.summarise([w[k] for w in windows]) for k in windows[0] if k != "passed"},
            "views": views,
            "expected_views": 0 if cell.audio_only else expected_views,
            "views_half": views_half,
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
            "ratio_paced": cpu_all * 1e3 / paced if paced else None,
            "floor_full_pct": floor["full"] / 10,
            "floor_codec_pct": floor["codec"] / 10,
            "by_operation": operations,
            "samples_ok": cell.audio_only or (bool(samples) and all(s in sizes for s in samples)),
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
    elif cell.mode == LAYERS and views_half != expected_half:
        reason = f"{views_half} views a size down, {expected_half} expected"
    elif not result["samples_ok"]:
        reason = f"decoded samples are not {size[0]}x{size[1]} pictures" if size else "no samples"
    elif not all(w["passed"] for w in windows):
        worst = min(windows, key=lambda w: w["fps_min"])
        reason = f"worst participant {worst['fps_min']:.1f} fps, loss up to {max(w['loss_max_pct'] for w in windows):.2f} %"
    result["passed"] = not reason
    result["reason"] = reason
    await asyncio.sleep(0.5)  # the node lets the calls go
    return result
