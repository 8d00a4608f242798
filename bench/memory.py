"""Memory benchmark (not a test): what an idle node holds, and what each participant adds.

A real node (``python -m vdx serve``, bench/served_node.py) is started and left idle; its resident
memory is read from /proc/PID/status (VmRSS) and, beside it, what the process alone holds (USS:
private pages, /proc/PID/smaps_rollup). Then, in a meeting booked through the API, plain SIP/RTP
participants (bench/sip_peer.py: cheap for the load generator, the node's SIP leg decodes and
encodes like any other) join in steps of 0, 2, 4 and 8: first audio-only (PCMU), then with video
(VP8 at 640x360, 20 fps, pre-encoded, beside the PCMU), each series in a new meeting. After
each step the node settles and its memory is read. The growth per participant is the slope of a
least-squares line through (participants, RSS) of one series. The series are repeated; memory the
node keeps after a series ends (Python's and glibc's allocators keep freed memory) is reported
as the retained figure.

    python -m bench.memory           # full run, rewrites its BENCHMARKS.md section
    python -m bench.memory --quick   # writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

from bench import report
from bench.served_node import NO_PINS, Served, book_meeting, log, prepared_node
from bench.sip_peer import SipPeer, encode_clip
from vdx.legs.pcm import CHUNK_SAMPLES, SAMPLE_RATE, Pcm

FPS = 20
KINDS = ("audio", "video")
TARGETS_MB = {"idle": 250.0, "video": 25.0}
HEADING = "## Memory (`bench/memory.py`)"


def camera_clip(width: int, height: int, seconds: float = 2.0) -> list[bytes]:
    """A moving gradient with a little noise: a picture the decoder must really work on."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(int(seconds * FPS)):
        y = (
            128 + 90 * np.sin((xx + 6 * i) / 40.0) * np.cos(yy / 30.0) + rng.normal(0, 3, (height, width))
        ).clip(16, 235)
        rgb = np.stack([y, y * 0.8 + 20, 255 - y], axis=-1).astype(np.uint8)
        frames.append(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p"))
    return encode_clip("VP8", frames, FPS)


def voice(n: int) -> Pcm:
    t = (np.arange(CHUNK_SAMPLES) + n * CHUNK_SAMPLES) / SAMPLE_RATE
    return (3000 * np.sin(2 * np.pi * (300 + 10 * (n % 7)) * t)).astype(np.int16)


async def sample(node: Served, count: int, spacing: float) -> dict[str, float]:
    """Median of a few readings (RSS moves a little as buffers come and go)."""
    readings = []
    for i in range(count):
        if i:
            await asyncio.sleep(spacing)
        readings.append(node.memory())
    out: dict[str, float] = {}
    for key in ("rss", "uss", "pss", "hwm"):
        values = [getattr(m, key) for m in readings if getattr(m, key) is not None]
        if values:
            out[key] = float(np.median(values))
    return out


async def series(
    node: Served,
    http: httpx.AsyncClient,
    kind: str,
    steps: list[int],
    clip: list[bytes],
    settle: float,
) -> dict[str, Any]:
    room = await book_meeting(
        node, http, quality="sd", layout="nine_mains_zero_pips", max_participants=max(steps) + 2
    )
    peers: list[SipPeer] = []
    tasks: list[asyncio.Task[Any]] = []
    points: list[dict[str, float]] = []
    try:
        for n in steps:
            while len(peers) < n:
                peer = await SipPeer(node.sip_port, room.number, "VP8" if kind == "video" else None).open()
                await peer.call()
                peers.append(peer)
                tasks.append(asyncio.get_running_loop().create_task(peer.send_audio(voice, 3600)))
                if kind == "video":
                    tasks.append(asyncio.get_running_loop().create_task(peer.send_video(clip, FPS, 3600)))
            await asyncio.sleep(settle)
            mem = await sample(node, 3, 0.15)
            receiving = sum(
                1
                for p in peers
                if (p.received.video_packets if kind == "video" else p.received.audio_packets) > 0
            )
            points.append({"participants": n, "receiving": receiving, **mem})
            log(f"{kind:<5} {n:2d} participants: RSS {mem['rss']:6.1f} MB, USS {mem.get('uss', 0):6.1f} MB")
    finally:
        for t in tasks:
            t.cancel()
        for peer in peers:
            with contextlib.suppress(Exception):
                await peer.hangup()
            peer.close()
    return {"kind": kind, "points": points, "fit": fit_points(points)}


def fit_points(points: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per participant, two ways: *all-in* = (memory at the largest step - at none) / its
    participants, which carries the meeting's own cost (its views, encoders, mixer) on the
    participants; *marginal* = slope of a least-squares line through the steps with someone in
    the meeting, what one more participant costs once the meeting runs."""
    fit: dict[str, dict[str, float]] = {}
    for key in ("rss", "uss"):
        if any(key not in p for p in points) or len(points) < 2:
            continue
        n = [p["participants"] for p in points]
        y = [p[key] for p in points]
        entry = {"all_in_mb": (y[-1] - y[0]) / n[-1] if n[-1] > 0 else 0.0}
        busy = [(a, b) for a, b in zip(n, y, strict=True) if a > 0]
        if len(busy) >= 2:
            entry["marginal_mb"] = float(np.polyfit([a for a, _ in busy], [b for _, b in busy], 1)[0])
        fit[key] = entry
    return fit


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh node process for each repeat: every series is measured cold (freed memory that
    allocators keep from an earlier series would hide growth)."""
    started = time.monotonic()
    clip_size = (320, 180) if args.quick else (640, 360)
    clip = camera_clip(*clip_size)
    runs: list[dict[str, Any]] = []
    idles: list[dict[str, float]] = []
    afters: list[dict[str, float]] = []
    startups: list[float] = []
    failures: list[str] = []
    with prepared_node("memory", {**NO_PINS, "VDX_MEDIA_FPS": str(FPS)}) as node:
        for rep in range(args.repeats):
            if rep >= args.min_repeats and time.monotonic() - started > 0.6 * args.budget:
                log(f"budget: stopping after {rep} repeats")
                break
            startups.append(node.start())
            log(f"repeat {rep + 1}: node up in {startups[-1]:.1f} s")
            try:
                await asyncio.sleep(args.idle_wait)  # start-up work (provisioner's first sync) done
                idles.append(await sample(node, 5, 0.2))
                log(f"idle: RSS {idles[-1]['rss']:.1f} MB, USS {idles[-1].get('uss', 0):.1f} MB")
                async with httpx.AsyncClient(base_url=node.base_url, timeout=30) as http:
                    for kind in args.kinds:
                        try:
                            one = await series(node, http, kind, args.steps, clip, args.settle)
                            runs.append({"repeat": rep + 1, **one})
                        except Exception as exc:
                            failures.append(f"{kind} repeat {rep + 1}: {exc!r}")
                            log(f"{kind} repeat {rep + 1}: FAILED {exc!r}")
                await asyncio.sleep(args.settle)
                afters.append(await sample(node, 3, 0.15))
            finally:
                node.stop()
    result = assemble(idles, afters, runs, failures, started, startups, args)
    result["clip_size"] = list(clip_size)
    return result


def assemble(
    idles: list[dict[str, float]],
    afters: list[dict[str, float]],
    runs: list[dict[str, Any]],
    failures: list[str],
    started: float,
    startups: list[float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key in ("rss", "uss"):
        values = [i[key] for i in idles if key in i]
        if values:
            summary[f"idle_{key}_mb"] = report.summarise(values)
        values = [a[key] for a in afters if key in a]
        if values:
            summary[f"after_{key}_mb"] = report.summarise(values)
    for kind in args.kinds:
        mine = [r for r in runs if r["kind"] == kind]
        for key in ("rss", "uss"):
            for way in ("all_in", "marginal"):
                values = [r["fit"][key][f"{way}_mb"] for r in mine if f"{way}_mb" in r["fit"].get(key, {})]
                if values:
                    summary[f"{kind}_{key}_{way}_mb"] = report.summarise(values)
    headline = [
        report.headline_row(
            "Idle node RSS (bench/memory.py)", summary.get("idle_rss_mb"), "MB", TARGETS_MB["idle"]
        ),
        report.headline_row(
            "RSS more per video participant, all-in (bench/memory.py)",
            summary.get("video_rss_all_in_mb"),
            "MB",
            TARGETS_MB["video"],
        ),
        report.headline_row(
            "RSS more per audio-only participant, all-in (bench/memory.py)",
            summary.get("audio_rss_all_in_mb"),
            "MB",
        ),
    ]
    return {
        "headline": headline,
        **report.run_info(
            "memory",
            args,
            started,
            "--repeats",
            str(args.repeats),
            "--steps",
            *map(str, args.steps),
            "--budget",
            f"{args.budget:g}",
        ),
        "fps": FPS,
        "steps": args.steps,
        "node_startup_s": report.summarise(startups) if startups else None,
        "idle": idles,
        "after": afters,
        "failures": failures,
        "runs": runs,
        "summary": summary,
    }


def markdown(result: dict[str, Any], plot_refs: list[str]) -> str:
    s = result["summary"]

    def cell(key: str) -> str:
        return report.fmt_range(s[key], 1) if key in s else "-"

    idle = s.get("idle_rss_mb")
    lines = [
        *report.section_head(HEADING, result),
        "What it measures: a real `vdx serve` process (SQLite, in-process bus, SIP on), a fresh one for "
        "each repeat; its resident memory (VmRSS, /proc/PID/status) and what it alone holds (USS: "
        "private pages, /proc/PID/smaps_rollup). *Idle*: started and settled, no meeting (median of 5 "
        "readings). *Per participant*: plain SIP/RTP participants join a meeting booked through the API "
        f"(`nine_mains_zero_pips`, 640x360 view, {result['fps']} fps) in steps of "
        f"{', '.join(map(str, result['steps']))}: first audio-only (PCMU), then, in a new meeting, with "
        f"video (VP8 {result['clip_size'][0]}x{result['clip_size'][1]} at {result['fps']} fps beside the "
        "PCMU). *All-in* = (memory at the largest step - with nobody) / participants: the meeting's own "
        "cost (views, encoders) carried by its participants; *marginal* = slope of a least-squares line "
        "through the steps with someone in, what one more costs once the meeting runs. Median (min-max) "
        f"over {len(result['idle'])} repeats.",
        "",
        "| figure | RSS MB | USS MB | target | met |",
        "|---|---|---|---|---|",
    ]
    if idle is not None:
        met = "yes" if idle["median"] < TARGETS_MB["idle"] else "**no**"
        lines.append(
            f"| idle node | {cell('idle_rss_mb')} | {cell('idle_uss_mb')} | < {TARGETS_MB['idle']:.0f} MB RSS | {met} |"
        )
    for kind, label in (("video", "video"), ("audio", "audio-only")):
        for way in ("all_in", "marginal"):
            key = f"{kind}_rss_{way}_mb"
            if key not in s:
                continue
            target = TARGETS_MB.get(kind)
            met = ("yes" if s[key]["median"] < target else "**no**") if target else "-"
            lines.append(
                f"| more per {label} participant, {way.replace('_', '-')} | {cell(key)} | "
                f"{cell(f'{kind}_uss_{way}_mb')} | {f'< {target:.0f} MB' if target else '-'} | {met} |"
            )
    lines += [
        f"| after the meetings ended (allocators keep freed memory) | {cell('after_rss_mb')} | "
        f"{cell('after_uss_mb')} | - | - |",
        "",
    ]
    if result["node_startup_s"]:
        lines += [f"The node started in {report.fmt_range(result['node_startup_s'], 1)} s.", ""]
    return report.section_end(
        lines, "Series that failed (left out above)", result["failures"], "Memory per participant", plot_refs
    )


def plot(result: dict[str, Any], path: Path) -> None:
    plt = report.pyplot()

    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"video": "tab:blue", "audio": "tab:green"}
    for r in result["runs"]:
        x = [p["participants"] for p in r["points"]]
        y = [p["rss"] for p in r["points"]]
        first = r["repeat"] == 1
        ax.plot(
            x,
            y,
            marker="o",
            color=colours[r["kind"]],
            alpha=0.7,
            label=f"{'video' if r['kind'] == 'video' else 'audio-only'} (each series)" if first else None,
        )
    if "idle_rss_mb" in result["summary"]:
        ax.axhline(result["summary"]["idle_rss_mb"]["median"], color="grey", ls="--", lw=1, label="idle node")
    ax.set_xlabel("participants in the meeting")
    ax.set_ylabel("node RSS (MB)")
    ax.set_xticks(result["steps"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"vdx node memory, {result['date'][:10]}", fontsize=10)
    report.save_figure(fig, path)


def publish(result: dict[str, Any], md: Path | None, png: Path | None) -> None:
    pngs = [png] if png else []
    report.render(result, HEADING, markdown, plot, md, pngs, drawable=bool(result["runs"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a seconds-long smoke run: steps 0 and 1")
    ap.add_argument("--repeats", type=int, default=None, help="series of each kind (default 3)")
    ap.add_argument("--steps", nargs="+", type=int, default=None, help="participants (default 0 2 4 8)")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    ap.add_argument("--settle", type=float, default=None, help="seconds after each step before reading")
    ap.add_argument("--budget", type=float, default=60.0, help="soft time budget in seconds")
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (none with --quick)")
    report.output_args(ap, "memory")
    args = ap.parse_args()
    if args.from_json:
        report.republish(args, publish)
        return
    if sorted(set(args.steps or [0])) != (args.steps or [0]) or (args.steps or [0])[0] < 0:
        ap.error("--steps: increasing participant counts from 0 up, e.g. 0 2 4 8")
    if args.quick:
        args.repeats = args.repeats or 1
        args.steps = args.steps or [0, 1]
        args.settle = args.settle if args.settle is not None else 0.5
        args.idle_wait = 0.5
        args.min_repeats = 1
    else:
        args.repeats = args.repeats or 3
        args.steps = args.steps or [0, 2, 4, 8]
        args.settle = args.settle if args.settle is not None else 1.2
        args.idle_wait = 2.0
        args.min_repeats = min(2, args.repeats)
        report.default_outputs(args, "memory")
    report.conclude(args, asyncio.run(run(args)), publish)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
