"""Added-latency benchmark (not a test): how much later the MCU delivers sound and pictures.

A real node (bench/served_node.py) hosts a meeting booked through the API (one main tile, no
PINs). Two plain SIP/RTP participants (bench/sip_peer.py, the most controlled there are: no jitter
buffer, no congestion control, every packet stamped on arrival) call it:

- the **sender** sends PCMU sound that is silent except for a 1 kHz burst of 200 ms every second,
  and a VP8 picture (320x180, 20 fps, pre-encoded) that is black except for a white flash of five
  frames every 1.5 s; the time each burst's first packet and each flash's first picture leave is
  noted;
- the **receiver** decodes what the node sends it (the mix, 8 kHz PCMU; the composed view, in
  which the sender fills the main tile) and finds the onsets: the first sample above a threshold
  (to the sample: the packet's arrival time minus the samples after the onset), the first picture
  whose mean brightness crosses the midpoint between dark and flash.

Latency of an onset = when it came back - when it left. The same two participants also run peer to
peer, no node between them (same packetizing, sockets and decoders), in the same run: that is the
**loopback baseline**, and **added by the MCU** = through the node - baseline (medians).

    python -m bench.latency          # full run, rewrites its BENCHMARKS.md section
    python -m bench.latency --quick  # writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import report
from bench.served_node import NO_PINS, Room, Served, book_meeting, log, prepared_node
from bench.sip_peer import SipPeer, encode_clip
from harness.waiting import until
from vdx.conference.compositor import solid_frame
from vdx.legs.pcm import CHUNK_SAMPLES, SAMPLE_RATE, Pcm

FPS = 20
CLIP = 30  # pictures per loop: 1.5 s
FLASH = (15, 20)  # white from picture 15 to 19
AUDIO_PERIOD = 50  # chunks: a burst every second
BURST = 10  # chunks: 200 ms
TONE_HZ = 1000.0
TARGETS_MS = {"audio": 60.0, "video": 100.0}
HEADING = "## Added latency (`bench/latency.py`)"
BLACK, WHITE = (16, 128, 128), (235, 128, 128)


def flash_clip(codec: str) -> list[bytes]:
    frames = [solid_frame(320, 180, WHITE if FLASH[0] <= i < FLASH[1] else BLACK) for i in range(CLIP)]
    return encode_clip(codec, frames, FPS)


def audio_chunk(n: int) -> Pcm:
    """Chunk ``n`` of the sender's sound: a burst starts on a chunk boundary, at full amplitude
    (a cosine), so its onset is its first sample."""
    if n % AUDIO_PERIOD >= BURST:
        return np.zeros(CHUNK_SAMPLES, dtype=np.int16)
    t = (np.arange(CHUNK_SAMPLES) + (n % AUDIO_PERIOD) * CHUNK_SAMPLES) / SAMPLE_RATE
    return (12000 * np.cos(2 * np.pi * TONE_HZ * t)).astype(np.int16)


@dataclass
class Sent:
    audio_onsets: list[float] = field(default_factory=list)
    video_onsets: list[float] = field(default_factory=list)

    def on_audio(self, n: int, at: float) -> None:
        # A packet leaves when its 20 ms are complete: its first sample (the onset) is 20 ms older.
        if n % AUDIO_PERIOD == 0:
            self.audio_onsets.append(at - CHUNK_SAMPLES / SAMPLE_RATE)

    def on_video(self, index: int, at: float) -> None:
        if index == FLASH[0]:
            self.video_onsets.append(at)


def audio_onsets(chunks: list[tuple[float, Pcm]], threshold: float = 3000.0) -> list[float]:
    """Times of the first loud sample after silence: arrival of its chunk minus the samples
    that follow it in the chunk (the chunk's last sample is the newest one)."""
    out: list[float] = []
    quiet = 0
    for at, pcm in chunks:
        loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
        if len(loud) and quiet >= 5:  # at least 100 ms of silence before
            out.append(at - (len(pcm) - int(loud[0])) / SAMPLE_RATE)
        quiet = 0 if len(loud) else quiet + 1
    return out


def video_onsets(luma: list[tuple[float, float]]) -> list[float]:
    """Arrival times of the first picture brighter than the dark-flash midpoint after a dark one."""
    if len(luma) < 4:
        return []
    values = np.array([v for _, v in luma])
    lo, hi = np.percentile(values, 10), np.percentile(values, 95)
    if hi - lo < 20:  # no flash seen at all
        return []
    mid = (lo + hi) / 2
    out: list[float] = []
    dark = False
    for at, v in luma:
        if v > mid and dark:
            out.append(at)
        dark = v <= mid
    return out


def match(
    sent: list[float], got: list[float], since: float, window_s: float = 0.8
) -> tuple[list[float], int]:
    """Latencies (ms) of each sent onset after ``since`` to the first onset received within
    ``window_s`` after it; and how many found nothing."""
    out: list[float] = []
    missed = 0
    for t in sent:
        if t < since:
            continue
        later = [g for g in got if t - 0.001 <= g <= t + window_s]
        if later:
            out.append(1e3 * (later[0] - t))
        else:
            missed += 1
    return out, missed


async def stream(sender: SipPeer, clip: list[bytes], seconds: float) -> Sent:
    sent = Sent()
    await asyncio.gather(
        sender.send_video(clip, FPS, seconds, sent.on_video),
        sender.send_audio(audio_chunk, seconds, sent.on_audio),
    )
    return sent


def measure(sent: Sent, receiver: SipPeer, since: float) -> dict[str, Any]:
    rx = receiver.received
    audio, audio_missed = match(sent.audio_onsets, audio_onsets(rx.audio), since)
    video, video_missed = match(sent.video_onsets, video_onsets(rx.luma), since)
    return {
        "audio_ms": audio,
        "video_ms": video,
        "audio_missed": audio_missed,
        "video_missed": video_missed,
        "pictures": len(rx.luma),
        "picture_sizes": sorted(rx.sizes),
    }


async def baseline(codec: str, clip: list[bytes], seconds: float) -> dict[str, Any]:
    """The same two participants peer to peer, no node: what the endpoints themselves add."""
    sender = await SipPeer(0, "direct", codec).open()
    receiver = await SipPeer(0, "direct", codec, decode=True).open()
    try:
        sender.connect_direct(receiver)
        t0 = time.monotonic()
        sent = await stream(sender, clip, seconds)
        await asyncio.sleep(0.2)
        return measure(sent, receiver, t0)
    finally:
        sender.close()
        receiver.close()


async def through_node(
    node: Served, room: Room, codec: str, clip: list[bytes], warm: float, seconds: float
) -> dict[str, Any]:
    sender = await SipPeer(node.sip_port, room.number, codec).open()
    receiver = await SipPeer(node.sip_port, room.number, codec, decode=True).open()
    try:
        await sender.call()
        task = asyncio.get_running_loop().create_task(stream(sender, clip, warm + seconds))
        await receiver.call()
        await until(
            lambda: receiver.received.first_picture_at, 10, "the receiver's first picture", poll_s=0.01
        )
        since = time.monotonic() + warm
        sent = await task
        await asyncio.sleep(0.3)
        return measure(sent, receiver, since)
    finally:
        for peer in (receiver, sender):
            with contextlib.suppress(Exception):
                await peer.hangup()
            peer.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    clip = flash_clip(args.codec)
    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    with prepared_node("latency", {**NO_PINS, "VDX_MEDIA_FPS": str(FPS)}) as node:
        log(f"node up in {node.start():.1f} s")
        async with httpx.AsyncClient(base_url=node.base_url, timeout=30) as http:
            for rep in range(args.repeats):
                if rep >= args.min_repeats and time.monotonic() - started > 0.75 * args.budget:
                    log(f"budget: stopping after {rep} repeats")
                    break
                try:
                    base = await baseline(args.codec, clip, args.baseline_seconds)
                    room = await book_meeting(node, http, quality=args.quality, layout="one_main_zero_pips")
                    mcu = await through_node(node, room, args.codec, clip, args.warm, args.seconds)
                except Exception as exc:
                    failures.append(f"repeat {rep + 1}: {exc!r}")
                    log(f"repeat {rep + 1}: FAILED {exc!r}")
                    continue
                runs.append({"baseline": base, "mcu": mcu})
                log(
                    f"repeat {rep + 1}: audio {med(mcu['audio_ms'])} ms (baseline {med(base['audio_ms'])}), "
                    f"video {med(mcu['video_ms'])} ms (baseline {med(base['video_ms'])}); "
                    f"missed {mcu['audio_missed']}/{mcu['video_missed']}, {mcu['pictures']} pictures"
                )
    return assemble(runs, failures, started, args)


def med(values: list[float]) -> str:
    return f"{float(np.median(values)):.1f}" if values else "-"


def assemble(
    runs: list[dict[str, Any]], failures: list[str], started: float, args: argparse.Namespace
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind in ("audio", "video"):
        key = f"{kind}_ms"
        mcu = [x for r in runs for x in r["mcu"][key]]
        base = [x for r in runs for x in r["baseline"][key]]
        per_run_added = [
            float(np.median(r["mcu"][key]) - np.median(r["baseline"][key]))
            for r in runs
            if r["mcu"][key] and r["baseline"][key]
        ]
        summary[kind] = {
            "through_node_ms": report.summarise(mcu) if mcu else None,
            "baseline_ms": report.summarise(base) if base else None,
            "added_ms": float(np.median(mcu) - np.median(base)) if mcu and base else None,
            "added_per_run_ms": report.summarise(per_run_added) if per_run_added else None,
            "onsets": len(mcu),
            "missed": sum(r["mcu"][f"{kind}_missed"] for r in runs),
            "target_ms": TARGETS_MS[kind],
        }
    headline = []
    for kind in ("audio", "video"):
        s = summary[kind]
        # The value is the added median over every onset; min and max are the runs' own medians.
        stats = None
        if s["added_ms"] is not None:
            per_run = s["added_per_run_ms"] or {"min": s["added_ms"], "max": s["added_ms"]}
            stats = {"median": s["added_ms"], "min": per_run["min"], "max": per_run["max"]}
        headline.append(
            report.headline_row(
                f"Latency the MCU adds, {kind} (bench/latency.py)", stats, "ms", TARGETS_MS[kind]
            )
        )
    return {
        "headline": headline,
        **report.run_info(
            "latency",
            args,
            started,
            "--repeats",
            str(args.repeats),
            "--seconds",
            f"{args.seconds:g}",
            "--budget",
            f"{args.budget:g}",
        ),
        "codec": args.codec,
        "quality": args.quality,
        "fps": FPS,
        "seconds_per_run": args.seconds,
        "failures": failures,
        "runs": runs,
        "summary": summary,
    }


def markdown(result: dict[str, Any], plot_refs: list[str]) -> str:
    lines = [
        *report.section_head(HEADING, result),
        "What it measures: a real `vdx serve` process hosts a meeting booked through the API "
        f"(`one_main_zero_pips`, vmrQuality `{result['quality']}`, {result['fps']} fps views). Two plain "
        "SIP/RTP participants (bench/sip_peer.py) call it: the sender sends PCMU silence with a 200 ms "
        f"1 kHz burst every second and a {result['codec']} picture (320x180, 20 fps) that is black with a "
        "white flash every 1.5 s; the receiver decodes the mix and the composed view and finds each "
        "onset (first loud sample, to the sample; first picture brighter than the dark/flash midpoint). "
        "Latency = arrival of the onset - departure of the sender's packet that carried it. The "
        "**baseline** is the same two participants peer to peer in the same run (same packetizing, "
        "sockets and decoders, no node); **added by the MCU** = median through the node - median "
        f"baseline. {len(result['runs'])} runs of {result['seconds_per_run']:g} s, each a new "
        "conference; figures over every onset: median (min-max).",
        "",
        "| media | through the node ms | loopback baseline ms | added by the MCU ms (per run: median (min-max)) "
        "| target ms | met | onsets (missed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("audio", "video"):
        s = result["summary"][kind]
        if s["through_node_ms"] is None:
            lines.append(f"| {kind} | no onsets found | | | < {s['target_ms']:.0f} | | 0 ({s['missed']}) |")
            continue
        added = s["added_ms"]
        per_run = s["added_per_run_ms"]
        met = "yes" if added is not None and added < s["target_ms"] else "**no**"
        lines.append(
            f"| {kind} | {report.fmt_range(s['through_node_ms'], 1)} | "
            f"{report.fmt_range(s['baseline_ms'], 1) if s['baseline_ms'] else '-'} | "
            f"**{added:.1f}** ({report.fmt_range(per_run, 1) if per_run else '-'}) | < {s['target_ms']:.0f} | {met} | "
            f"{s['onsets']} ({s['missed']}) |"
        )
    lines.append("")
    return report.section_end(
        lines, "Runs that failed (left out above)", result["failures"], "Added latency", plot_refs
    )


def plot(result: dict[str, Any], path: Path) -> None:
    plt = report.pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, kind in zip(axes, ("audio", "video"), strict=True):
        mcu = [x for r in result["runs"] for x in r["mcu"][f"{kind}_ms"]]
        base = [x for r in result["runs"] for x in r["baseline"][f"{kind}_ms"]]
        if mcu or base:
            ax.boxplot([base or [0.0], mcu or [0.0]])
            ax.set_xticks([1, 2], ["peer to peer", "through the node"])
        target = result["summary"][kind]["target_ms"]
        ax.axhline(target + (float(np.median(base)) if base else 0.0), color="red", lw=1, ls="--")
        ax.set_title(f"{kind}: onset latency ms (red: baseline + target)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"vdx added latency, {result['date'][:10]}", fontsize=10)
    report.save_figure(fig, path)


def publish(result: dict[str, Any], md: Path | None, png: Path | None) -> None:
    pngs = [png] if png else []
    report.render(result, HEADING, markdown, plot, md, pngs, drawable=bool(result["runs"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    ap.add_argument("--repeats", type=int, default=None, help="runs, each a new conference (default 3)")
    ap.add_argument("--seconds", type=float, default=None, help="measured seconds per run (default 12)")
    ap.add_argument("--budget", type=float, default=90.0, help="soft time budget in seconds")
    ap.add_argument("--codec", default="VP8", choices=["VP8", "H264"])
    ap.add_argument(
        "--quality", default="sd", choices=["sd", "hd", "full_hd"], help="the meeting's vmrQuality"
    )
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (none with --quick)")
    report.output_args(ap, "latency")
    args = ap.parse_args()
    if args.from_json:
        report.republish(args, publish)
        return
    if args.quick:
        args.repeats = args.repeats or 1
        args.seconds = args.seconds or 3.5
        args.baseline_seconds = 3.5
        args.warm = 0.5
        args.min_repeats = 1
    else:
        args.repeats = args.repeats or 3
        args.seconds = args.seconds or 12.0
        args.baseline_seconds = 4.0
        args.warm = 1.5
        args.min_repeats = min(2, args.repeats)
        report.default_outputs(args, "latency")
    report.conclude(args, asyncio.run(run(args)), publish)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
