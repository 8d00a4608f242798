"""MCU benchmark (not a test): CPU of a real node per participant, beside the pure codec cost.

For rooms of 4 and 9 at 360p and 720p, VP8 and H.264, with shared views (the node's design: one
encoder per distinct view) and with a view per participant (``VDX_MEDIA_SHARED_VIEWS=false``), it
starts ``python -m vdx serve`` as a separate process, books a meeting through the booking API (the
node's provisioner learns the room), lets N aiortc bots join over the real WebSocket signalling
and measures the node process's CPU time (/proc/PID/stat, all threads) over a window.

The load generator is cheap so that it disturbs the node little on this shared 2-core machine:
bots replay a clip encoded once per (size, codec) as pre-encoded ``av.Packet``s (aiortc's sender
only packetizes them, media-probe.md 3) with Opus packets beside it, and they do not decode what
they receive: aiortc's ``decoder_worker`` is replaced in this process by one that counts frames and
bytes and decodes only the first few frames of each stream, to check they are real pictures of
the view's size. The driver's own CPU is reported too.

The floor, measured in the same run (in this process, while no room runs): the pure PyAV cost of
the same streams and the same work: decoding the clip with aiortc's decoder, composing the
layout (vdx's Compositor), encoding it (vdx's VideoEncoder, the node's settings), Opus decode
and encode (aiortc's codecs). The ratio MCU / floor is taken for the work the node did in the
window (its counters of frames decoded and encoded), so it holds when a busy machine makes the
node drop frames. Figures are ratios in one run, never asserted anywhere.

    /work/venv/bin/python bench/mcu.py            # full run (~10 min), writes BENCHMARKS.md
    /work/venv/bin/python bench/mcu.py --quick    # seconds: a smoke run (tiny room, no files)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import platform
import queue
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import aiortc.rtcrtpreceiver  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import get_decoder  # noqa: E402
from aiortc.codecs.opus import OpusEncoder  # noqa: E402
from aiortc.jitterbuffer import JitterFrame  # noqa: E402
from report import write_section  # noqa: E402

from vdx.api.tokens import mint_token  # noqa: E402
from vdx.conference.compositor import Compositor, TileSource  # noqa: E402
from vdx.conference.layouts import tiles  # noqa: E402
from vdx.conference.views import VideoEncoder  # noqa: E402
from vdx.legs.webrtc import restrict_host_addresses  # noqa: E402
from vdx.settings import Settings  # noqa: E402

SIZES = {"360p": (640, 360), "720p": (1280, 720)}
QUALITY = {"360p": "sd", "720p": "hd", "180p": "sd"}
MODES = ("shared", "own")  # shared views / a view (and an encoder) per participant
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIP_SECONDS = 4  # the bots' clip loops: one keyframe per loop
SAMPLE_DECODES = 3  # frames decoded per received stream, to check they are pictures


def layout_for(n: int) -> str:
    return "four_mains_zero_pips" if n <= 4 else "nine_mains_zero_pips"


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


# --- media the bots send ---------------------------------------------------------------------


def camlike_frames(width: int, height: int, count: int, seed: int) -> Iterator[av.VideoFrame]:
    """A smooth random texture panning 2 px a frame with sensor-like noise (media-probe.md 2's
    "camlike": harder to compress than a test pattern, like a camera)."""
    rng = np.random.default_rng(seed)
    pan = 2 * count
    coarse = rng.integers(16, 235, (height // 8 + 2, (width + pan) // 8 + 2)).astype(np.float32)
    texture = np.kron(coarse, np.ones((8, 8), dtype=np.float32))
    for _ in range(2):  # soften the blocks
        texture = (
            texture + np.roll(texture, 3, 0) + np.roll(texture, 3, 1) + np.roll(texture, 5, (0, 1))
        ) / 4
    chroma = np.kron(rng.integers(100, 156, (height // 16 + 1, (width + pan) // 16 + 1)), np.ones((8, 8)))
    for i in range(count):
        y = texture[:height, 2 * i : 2 * i + width] + rng.normal(0, 2, (height, width))
        frame = av.VideoFrame(width, height, "yuv420p")
        planes = (
            np.clip(y, 0, 255).astype(np.uint8),
            chroma[: height // 2, i : i + width // 2].astype(np.uint8),
            chroma[: height // 2, i + 1 : i + 1 + width // 2][::-1].astype(np.uint8),
        )
        for plane, data in zip(frame.planes, planes, strict=True):
            padded = np.zeros((data.shape[0], plane.line_size), dtype=np.uint8)
            padded[:, : data.shape[1]] = data
            plane.update(padded.tobytes())
        yield frame


@dataclass
class Clip:
    """One clip encoded once: what every bot of a cell sends, in a loop."""

    codec: str
    width: int
    height: int
    fps: int
    video: list[bytes]  # one encoded picture each; the first is a keyframe
    speech: list[bytes]  # Opus, 20 ms each: a tone (the one who talks)
    hush: list[bytes]  # Opus, 20 ms each: near silence (everyone else)


def make_clip(codec: str, width: int, height: int, fps: int) -> Clip:
    enc = VideoEncoder(codec, width, height, fps)
    video: list[bytes] = []
    for i, frame in enumerate(camlike_frames(width, height, CLIP_SECONDS * fps, seed=7)):
        video += [bytes(p) for p in enc.encode(frame, i, keyframe=i == 0)]
    video += [bytes(p) for p in enc.ctx.encode(None)]
    return Clip(codec, width, height, fps, video, opus_packets(440.0, 6000), opus_packets(150.0, 40))


def opus_packets(hz: float, amplitude: int, seconds: int = 1) -> list[bytes]:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.format, ctx.layout = 48000, "s16", "mono"
    ctx.bit_rate = 32000
    ctx.options = {"application": "voip", "frame_duration": "20"}
    out: list[bytes] = []
    for n in range(50 * seconds):
        t = (np.arange(960) + n * 960) / 48000
        pcm = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, n * 960, fractions.Fraction(1, 48000)
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


class PacketLoop(MediaStreamTrack):
    """Replays pre-encoded packets at their rate, with RTP-ready timestamps. A keyframe request
    (PLI/FIR) from the node restarts the video clip at its keyframe."""

    def __init__(self, kind: str, packets: list[bytes], per_second: int, clock: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._period = 1.0 / per_second
        self._step = clock // per_second
        self._time_base = fractions.Fraction(1, clock)
        self._start: float | None = None
        self._n = 0
        self._i = 0

    def restart(self) -> None:
        self._i = 0

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._n * self._period - time.monotonic()))
        packet = av.Packet(self._packets[self._i])
        packet.pts, packet.time_base = self._n * self._step, self._time_base
        self._n += 1
        self._i = (self._i + 1) % len(self._packets)
        return packet


# --- receiving without decoding ----------------------------------------------------------------


@dataclass
class Received:
    frames: int = 0
    bytes: int = 0
    sample_sizes: list[tuple[int, int]] = field(default_factory=list)
    sample_errors: int = 0


RECEIVED: dict[int, Received] = {}  # id(the track's queue) -> counters


def counting_worker(
    loop: asyncio.AbstractEventLoop, input_q: queue.Queue, output_q: asyncio.Queue, decode_error: Any
) -> None:
    """Stands in for aiortc's ``decoder_worker`` in the bots: count, and decode only a sample."""
    stats = RECEIVED.setdefault(id(output_q), Received())
    decoder = None
    while True:
        task = input_q.get()
        if task is None:
            break
        codec, encoded = task
        stats.frames += 1
        stats.bytes += len(encoded.data)
        if codec.mimeType.startswith("video/") and len(stats.sample_sizes) < SAMPLE_DECODES:
            decoder = decoder or get_decoder(codec)
            try:
                stats.sample_sizes += [(f.width, f.height) for f in decoder.decode(encoded)]
            except av.FFmpegError:
                stats.sample_errors += 1


aiortc.rtcrtpreceiver.decoder_worker = counting_worker  # type: ignore[assignment]


class Bot:
    """A participant: real signalling and a real peer connection, pre-encoded media."""

    def __init__(self, url: str, name: str, clip: Clip, talks: bool) -> None:
        self.url, self.name, self.clip, self.talks = url, name, clip, talks
        self.ws: Any = None
        self.pc: RTCPeerConnection | None = None
        self.messages: list[dict[str, Any]] = []
        self.video_queue: int | None = None
        self._reader: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
                self._new.set()

    async def wait_for(self, kind: str, deadline_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + deadline_s
        while True:
            for m in self.messages:
                if m.get("type") in (kind, "error"):
                    return m
            if time.monotonic() > deadline or (self._reader is not None and self._reader.done()):
                raise RuntimeError(f"{self.name}: no '{kind}' ({self.messages[-2:]})")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), 0.1)

    async def join(self, pin: int, deadline_s: float = 30.0) -> None:
        """Join (retrying while the node has not learnt the room yet) and start media."""
        deadline = time.monotonic() + deadline_s
        while True:
            self.messages = []
            self.ws = await websockets.connect(self.url, max_size=2**22)
            self._reader = asyncio.get_running_loop().create_task(self._read())
            await self.ws.send(json.dumps({"type": "join", "displayName": self.name, "pin": str(pin)}))
            msg = await self.wait_for("joined", 15)
            if msg["type"] == "joined":
                break
            await self.ws.close()
            if msg.get("code") != "not_found" or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: join refused: {msg}")
            await asyncio.sleep(0.2)
        pc = self.pc = RTCPeerConnection()
        video = PacketLoop("video", self.clip.video, self.clip.fps, 90000)
        pc.addTrack(video)
        pc.addTrack(PacketLoop("audio", self.clip.speech if self.talks else self.clip.hush, 50, 48000))
        caps = RTCRtpSender.getCapabilities("video").codecs
        for t in pc.getTransceivers():
            if t.kind == "video":
                t.setCodecPreferences(
                    [c for c in caps if c.mimeType.lower() == f"video/{self.clip.codec.lower()}"]
                )
                original = t.sender._send_keyframe

                def keyframe(original: Any = original) -> None:
                    original()
                    video.restart()

                t.sender._send_keyframe = keyframe  # type: ignore[method-assign]

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self.video_queue = id(track._queue)  # type: ignore[attr-defined]

        await pc.setLocalDescription(await pc.createOffer())
        await self.ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
        answer = await self.wait_for("answer", 20)
        if answer["type"] != "answer":
            raise RuntimeError(f"{self.name}: offer refused: {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    @property
    def received(self) -> Received:
        return RECEIVED.get(self.video_queue or -1, Received())

    async def leave(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send(json.dumps({"type": "leave"}))
            await self.ws.close()
        if self.pc is not None:
            await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()


# --- the node ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """``python -m vdx serve`` in its own process; its CPU time read from /proc."""

    def __init__(self, data_dir: Path, shared_views: bool, fps: int, size_cap: str) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
        self.env.update(
            {
                "PYTHONPATH": str(ROOT / "src"),
                "VDX_DATA_DIR": str(data_dir),
                "VDX_HTTP_HOST": "127.0.0.1",
                "VDX_HTTP_PORT": str(self.port),
                "VDX_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
                "VDX_SIP_DOMAIN": "bench.vdx",
                "VDX_LOG_LEVEL": "WARNING",
                "VDX_ICE_HOST_ADDRESSES": "127.0.0.1",
                "VDX_MEDIA_FPS": str(fps),
                "VDX_MEDIA_SIZE_CAP": size_cap,
                "VDX_MEDIA_SHARED_VIEWS": "true" if shared_views else "false",
                "VDX_SIP_PORT": str(free_port()),
                "VDX_SIP_TLS_PORT": "0",
            }
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.settings = Settings(data_dir=data_dir)
        self.log = data_dir / f"node-{self.port}.log"

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "vdx", *args], env=self.env, capture_output=True, check=True)

    def start(self) -> None:
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vdx", "serve"],
                env=self.env,
                stdout=fh,
                stderr=fh,
            )
        deadline = time.monotonic() + 180  # a busy shared machine starts slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited:\n{self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/manage/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("node did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system time of the node process, all its threads."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def headers(self, *roles: str) -> dict[str, str]:
        token = mint_token(self.settings, org="bench", email="bench@bench.vdx", roles=list(roles), ttl=7200)
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def book_room(node: Node, http: httpx.AsyncClient, quality: str, layout: str) -> tuple[str, int]:
    """A meeting through the booking API; returns the room's alias and host PIN."""
    now = datetime.now(UTC).replace(microsecond=0)
    body = {
        "subject": "MCU benchmark",
        "startTime": now.isoformat(),
        "endTime": (now + timedelta(hours=2)).isoformat(),
        "uuid": str(uuid.uuid4()),
        "maxParticipants": 20,
        "hostView": layout,
        "vmrQuality": quality,
    }
    planner = node.headers("meeting-planner")
    r = await http.post("/api/v2/meetings", json=body, headers=planner)
    r.raise_for_status()
    si = (await http.get(f"/api/v2/scheduling-info/{body['uuid']}", headers=planner)).json()
    return si["uriWithDomain"], int(si["hostPin"])


async def conference_status(node: Node, http: httpx.AsyncClient, alias: str) -> dict[str, Any]:
    r = await http.get(f"/api/node/v1/conferences/{alias}", headers=node.headers("meeting-admin"))
    r.raise_for_status()
    status: dict[str, Any] = r.json()
    return status


def counters(status: dict[str, Any]) -> tuple[int, int, int]:
    """(frames decoded from all participants, frames encoded by all views, views)."""
    decoded = sum((p.get("media") or {}).get("videoFramesDecoded", 0) for p in status["participants"])
    encoded = sum(v["framesEncoded"] for v in status["views"])
    return decoded, encoded, len(status["views"])


# --- the floor ---------------------------------------------------------------------------------


def floor_costs(clip: Clip, n: int, layout: str, overlay: bool) -> dict[str, float]:
    """Milliseconds of CPU (this process, all threads) per operation, with PyAV alone: decode one
    incoming picture, compose one view picture, encode it, decode and encode 20 ms of Opus."""
    codec = RTCRtpCodecParameters(
        mimeType=f"video/{clip.codec}", clockRate=90000, payloadType=96 if clip.codec == "VP8" else 102
    )
    decoder = get_decoder(codec)
    frames: list[av.VideoFrame] = []
    t0 = time.process_time()
    for i, data in enumerate(clip.video):
        frames += decoder.decode(JitterFrame(data=data, timestamp=i * 90000 // clip.fps))
    dec = (time.process_time() - t0) / len(clip.video)

    layout_tiles = tiles(layout, clip.width, clip.height)
    compositor = Compositor(clip.width, clip.height)
    count = min(len(frames), 2 * clip.fps)
    composed: list[av.VideoFrame] = []
    t0 = time.process_time()
    for i in range(count):
        sources = [TileSource(frames[(i + 7 * k) % len(frames)], f"Bot {k}") for k in range(n)]
        composed.append(compositor.compose(layout_tiles, sources, overlay))
    comp = (time.process_time() - t0) / count

    encoder = VideoEncoder(clip.codec, clip.width, clip.height, clip.fps)
    t0 = time.process_time()
    for i, frame in enumerate(composed):
        encoder.encode(frame, i, keyframe=i == 0)
    enc = (time.process_time() - t0) / count

    opus = get_decoder(
        RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    )
    t0 = time.process_time()
    for i, data in enumerate(clip.speech):
        opus.decode(JitterFrame(data=data, timestamp=i * 960))
    adec = (time.process_time() - t0) / len(clip.speech)
    opus_enc = OpusEncoder()
    pcm = (3000 * np.sin(np.arange(960) / 10)).astype(np.int16).reshape(1, -1)
    t0 = time.process_time()
    for i in range(len(clip.speech)):
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, fractions.Fraction(1, 48000)
        opus_enc.encode(frame)
    aenc = (time.process_time() - t0) / len(clip.speech)
    return {
        "decode": dec * 1e3,
        "compose": comp * 1e3,
        "encode": enc * 1e3,
        "opus_decode": adec * 1e3,
        "opus_encode": aenc * 1e3,
    }


# --- one cell -----------------------------------------------------------------------------------


@dataclass
class Cell:
    codec: str
    size: str
    n: int
    mode: str

    @property
    def key(self) -> str:
        return f"{self.codec} {self.size} n={self.n} {self.mode}"


async def run_cell(
    node: Node,
    http: httpx.AsyncClient,
    cell: Cell,
    clip: Clip,
    costs: dict[str, float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    layout = layout_for(cell.n)
    alias, pin = await book_room(node, http, QUALITY[cell.size], layout)
    url = f"{node.base.replace('http', 'ws', 1)}/ws/rooms/{alias}"
    bots = [Bot(url, f"Bot {i}", clip, talks=i == 0) for i in range(cell.n)]
    try:
        for b in bots:
            await b.join(pin)
        # Warm: every bot gets pictures, then the room settles.
        deadline = time.monotonic() + 30
        while not all(b.received.frames > 0 for b in bots):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cell.key}: not every bot receives video")
            await asyncio.sleep(0.1)
        await asyncio.sleep(args.warm)
        # The status calls cost the node CPU: they stay outside the CPU window, and the counters
        # they read are taken as of the middle of each call.
        a0 = time.monotonic()
        s0 = await conference_status(node, http, alias)
        m0 = (a0 + time.monotonic()) / 2
        r0 = [b.received.frames for b in bots]
        cpu0, self0, t0 = node.cpu_seconds(), _self_cpu(), time.monotonic()
        await asyncio.sleep(args.window)
        cpu1, self1, t1 = node.cpu_seconds(), _self_cpu(), time.monotonic()
        r1 = [b.received.frames for b in bots]
        a1 = time.monotonic()
        s1 = await conference_status(node, http, alias)
        m1 = (a1 + time.monotonic()) / 2
    finally:
        for b in bots:
            await b.leave()
    wall = t1 - t0
    (d0, e0, _), (d1, e1, views) = counters(s0), counters(s1)
    span = m1 - m0  # the counters' interval, a little longer than the CPU window
    decoded, encoded = (d1 - d0) * wall / span, (e1 - e0) * wall / span
    node_cpu = cpu1 - cpu0
    fps = clip.fps
    audio_ms = cell.n * wall * 50 * (costs["opus_decode"] + costs["opus_encode"])
    codec_work = decoded * costs["decode"] + encoded * costs["encode"] + audio_ms
    full_work = codec_work + encoded * costs["compose"]
    # The floor at full rate: every stream decoded at fps, every view composed and encoded at fps.
    per_s_codec = (
        cell.n * fps * costs["decode"]
        + views * fps * costs["encode"]
        + cell.n * 50 * (costs["opus_decode"] + costs["opus_encode"])
    )
    per_s_full = per_s_codec + views * fps * costs["compose"]
    samples = [s for b in bots for s in b.received.sample_sizes]
    # A window counts only if the room ran as meant: everyone still in (a starved node loses
    # participants to ICE consent timeouts), the expected views, at least half the frame rate.
    present = sum(1 for p in s1["participants"] if p.get("state") == "conference")
    expected_views = 1 if cell.mode == "shared" else cell.n
    reason = ""
    if present != cell.n:
        reason = f"{present} of {cell.n} participants left"
    elif views != expected_views:
        reason = f"{views} views, {expected_views} expected"
    elif encoded / max(views, 1) / wall < 0.5 * fps:
        reason = f"views at {encoded / max(views, 1) / wall:.1f} fps: node starved of CPU"
    valid = not reason
    ratio_full = node_cpu * 1e3 / full_work if full_work else None
    # At full rate: the node's cost per unit of work times the work of the full frame rate. On a
    # machine so busy that the node is starved of CPU (and drops frames), this is what it would
    # need; when it kept up, it equals the measured figure.
    at_full_rate = ratio_full * per_s_full / 10 if ratio_full is not None else 0.0
    return {
        "node_cpu_pct": 100 * node_cpu / wall,
        "per_participant_pct": 100 * node_cpu / wall / cell.n,
        "driver_cpu_pct": 100 * (self1 - self0) / wall,
        "views": views,
        "view_fps": encoded / max(views, 1) / wall,
        "input_fps": decoded / cell.n / wall,
        "received_fps": statistics.fmean(b - a for a, b in zip(r0, r1, strict=True)) / (t1 - t0),
        "floor_codec_pct": per_s_codec / 10,
        "floor_full_pct": per_s_full / 10,
        "ratio_codec": node_cpu * 1e3 / codec_work if codec_work else None,
        "ratio_full": ratio_full,
        "full_rate_cpu_pct": at_full_rate,
        "full_rate_per_participant_pct": at_full_rate / cell.n,
        "costs_ms": costs,
        "valid": valid,
        "invalid_reason": reason,
        "sample_sizes_ok": bool(samples) and all(s == (clip.width, clip.height) for s in samples),
        "sample_errors": sum(b.received.sample_errors for b in bots),
        "window_s": wall,
    }


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# --- the run ------------------------------------------------------------------------------------


def summarise(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    restrict_host_addresses(["127.0.0.1"])
    sizes = {"180p": (320, 180)} if args.quick else {s: SIZES[s] for s in args.sizes}
    cells = [
        Cell(codec, size, n, mode)
        for codec in args.codecs
        for size in sizes
        for n in args.rooms
        for mode in args.modes
    ]
    clips: dict[tuple[str, str], Clip] = {}
    for codec in args.codecs:
        for size, (w, h) in sizes.items():
            clips[codec, size] = make_clip(codec, w, h, args.fps)
            kbps = sum(len(p) for p in clips[codec, size].video) * 8 / CLIP_SECONDS / 1000
            log(f"clip {codec} {size}: {len(clips[codec, size].video)} pictures, {kbps:.0f} kbps")
    host = machine()
    results: dict[str, list[dict[str, Any]]] = {c.key: [] for c in cells}
    floors: dict[tuple[int, str, str, int], dict[str, float]] = {}
    idle: list[float] = []
    failures: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vdx-bench-mcu-") as tmp:
        data_dir = Path(tmp)
        first = True
        for rep in range(args.repeats):
            for mode in args.modes:
                node = Node(
                    data_dir,
                    shared_views=mode == "shared",
                    fps=args.fps,
                    size_cap="320x180" if args.quick else "",
                )
                if first:
                    node.cli("migrate")
                    node.cli("org", "add", "bench", "--name", "Benchmark")
                    first = False
                node.start()
                try:
                    # What the node costs with no room (provisioner polls, event loop): beside
                    # the figures, not subtracted from them.
                    cpu0, t0 = node.cpu_seconds(), time.monotonic()
                    await asyncio.sleep(args.idle)
                    idle.append(100 * (node.cpu_seconds() - cpu0) / (time.monotonic() - t0))
                    async with httpx.AsyncClient(base_url=node.base, timeout=30) as http:
                        for cell in [c for c in cells if c.mode == mode]:
                            clip = clips[cell.codec, cell.size]
                            fk = (rep, cell.codec, cell.size, cell.n)  # one floor per repeat for both modes
                            if fk not in floors:
                                floors[fk] = floor_costs(clip, cell.n, layout_for(cell.n), overlay=True)
                            costs = floors[fk]
                            try:
                                r = await run_cell(node, http, cell, clip, costs, args)
                            except Exception as exc:  # a join timing out on a loaded machine
                                failures.append(f"{cell.key}: {exc!r}")
                                log(f"repeat {rep + 1}/{args.repeats} {cell.key}: FAILED {exc!r}")
                                continue
                            results[cell.key].append(r)
                            if args.json:
                                partial = assemble(
                                    cells, results, sizes, idle, failures, started, host, args, False
                                )
                                args.json.parent.mkdir(parents=True, exist_ok=True)
                                args.json.write_text(json.dumps(partial, indent=2))
                            log(
                                f"repeat {rep + 1}/{args.repeats} {cell.key:<22} node {r['node_cpu_pct']:5.0f}% "
                                f"({r['per_participant_pct']:4.1f}%/participant), views {r['views']} at "
                                f"{r['view_fps']:4.1f} fps, floor {r['floor_full_pct']:5.0f}%, "
                                f"MCU/floor {r['ratio_full']:.2f}, driver {r['driver_cpu_pct']:.0f}% "
                                f"[{time.monotonic() - started:.0f}s]{'' if r['valid'] else ' INVALID: ' + r['invalid_reason']}"
                            )
                finally:
                    node.stop()
    return assemble(cells, results, sizes, idle, failures, started, host, args, complete=True)


def assemble(
    cells: list[Cell],
    results: dict[str, list[dict[str, Any]]],
    sizes: dict[str, tuple[int, int]],
    idle: list[float],
    failures: list[str],
    started: float,
    host: dict[str, Any],
    args: argparse.Namespace,
    complete: bool,
) -> dict[str, Any]:
    """The results so far (written after every cell, so a run cut short still leaves them)."""
    failures = list(failures)
    out_cells = []
    for cell in cells:
        every = results[cell.key]
        reps = [r for r in every if r["valid"]]
        failures += [f"{cell.key}: {r['invalid_reason']}" for r in every if not r["valid"]]
        if not reps:
            continue
        summary = {
            k: summarise([r[k] for r in reps])
            for k in (
                "node_cpu_pct",
                "per_participant_pct",
                "driver_cpu_pct",
                "view_fps",
                "input_fps",
                "received_fps",
                "floor_codec_pct",
                "floor_full_pct",
                "ratio_codec",
                "ratio_full",
                "full_rate_cpu_pct",
                "full_rate_per_participant_pct",
            )
        }
        out_cells.append(
            {
                "codec": cell.codec,
                "size": cell.size,
                "width": sizes[cell.size][0],
                "height": sizes[cell.size][1],
                "participants": cell.n,
                "mode": cell.mode,
                "layout": layout_for(cell.n),
                "repeats": reps,
                "invalid_repeats": [r for r in every if not r["valid"]],
                "summary": summary,
            }
        )
    return {
        "machine": host,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command(args),
        "fps": args.fps,
        "window_s": args.window,
        "repeats": args.repeats,
        "duration_s": time.monotonic() - started,
        "idle_node_cpu_pct": summarise(idle or [0.0]),
        "complete": complete,
        "failures": failures,
        "cells": out_cells,
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "av": av.__version__,
        "aiortc": aiortc.__version__,
        "load_avg_at_start": os.getloadavg(),
    }


def command(args: argparse.Namespace) -> str:
    parts = ["/work/venv/bin/python bench/mcu.py"]
    if args.quick:
        parts.append("--quick")
    parts += ["--repeats", str(args.repeats), "--window", str(args.window)]
    parts += ["--codecs", *args.codecs]
    return " ".join(parts)


# --- reporting ----------------------------------------------------------------------------------


def fmt(s: dict[str, float], digits: int = 1) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def markdown(result: dict[str, Any], plot: str | None) -> str:
    m = result["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_avg_at_start"])
    lines = [
        "## MCU (`bench/mcu.py`)",
        "",
        f"Run {result['date'][:16].replace('T', ' ')} UTC on {m['host']} ({m['cpus']} vCPU, {m['cpu_model']}), "
        f"Python {m['python']}, PyAV {m['av']}, aiortc {m['aiortc']}; {result['duration_s'] / 60:.1f} min.",
        "",
        f"Command: `{result['command']}`",
        "",
        "What it measures: a real `vdx serve` process hosts a room booked through the API; N aiortc bots "
        "join over the WebSocket signalling and send a camera-like clip (pre-encoded at the room's size, "
        f"{result['fps']} fps, plus Opus; one bot talks) and count what they receive without decoding it. "
        f"The node's CPU time (all threads, /proc) is taken over a {result['window_s']:g} s window. Layouts: "
        "`four_mains_zero_pips` for 4, `nine_mains_zero_pips` for 9 (names drawn). *shared*: the node's "
        "design, one view encoder for the room; *own*: `VDX_MEDIA_SHARED_VIEWS=false`, an encoder per "
        "participant. The **floor** is the pure PyAV cost of the same work measured in the same run "
        "(aiortc's decoders, vdx's compositor and encoder, Opus both ways): *codec* = decode every "
        "stream + encode every view + Opus; *full* = codec + composing. **MCU / floor** is the node's "
        "CPU over the floor for the frames it actually decoded and encoded in the window.",
        "",
        f"Noise: the machine is shared ({m['cpus']} vCPU) with other jobs running tests at the same "
        f"time (load average {load} at the start); the bots run on the same machine (their CPU is "
        f"the *driver* column). Each cell was measured {result['repeats']} times (interleaved"
        f"{'' if result.get('complete', True) else '; the run was cut short, see the JSON for how many'}): "
        "median (min-max). When the machine is that busy the node is starved of CPU and its views "
        "run below their frame rate (the *measured* column), so the CPU per participant is given "
        "*at full rate*: the node's CPU per unit of work (MCU / floor, for the frames it really "
        "decoded and encoded) times the floor of the full frame rate; where the node kept up it "
        "equals the measured figure. Participants per core = 100 / that. A node with no room used "
        f"{fmt(result['idle_node_cpu_pct'], 1)} % of a core (included in the figures below).",
        "",
        "| codec | size | N | views | measured: node CPU % / view fps (valid windows) | CPU per participant at full rate % "
        "| participants per core | floor per participant (codec / full) % | MCU / floor (full) "
        "| MCU / floor (codec) | driver % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        s = c["summary"]
        n = c["participants"]
        per = s["full_rate_per_participant_pct"]["median"]
        lines.append(
            f"| {c['codec']} | {c['size']} | {n} | {c['mode']} | {s['node_cpu_pct']['median']:.0f} / "
            f"{s['view_fps']['median']:.1f} ({len(c['repeats'])}x) | {fmt(s['full_rate_per_participant_pct'], 1)} | "
            f"{100 / per if per else 0:.1f} | {s['floor_codec_pct']['median'] / n:.1f} / "
            f"{s['floor_full_pct']['median'] / n:.1f} | {fmt(s['ratio_full'], 2)} | {fmt(s['ratio_codec'], 2)} | "
            f"{s['driver_cpu_pct']['median']:.0f} |"
        )
    lines.append("")
    if result["failures"]:
        lines += ["Measurements that failed (left out above): " + "; ".join(result["failures"]), ""]
    if plot:
        lines += [f"![MCU CPU per participant]({plot})", ""]
    return "\n".join(lines)


def write_markdown(path: Path, section: str) -> None:
    """Replace the MCU section of BENCHMARKS.md (or add it), keeping every other section."""
    write_section(path, "## MCU", section)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codecs = sorted({c["codec"] for c in result["cells"]}, reverse=True)
    fig, axes = plt.subplots(2, len(codecs), figsize=(6 * len(codecs), 7.5), squeeze=False)
    for col, codec in enumerate(codecs):
        cells = [c for c in result["cells"] if c["codec"] == codec]
        groups = sorted({(c["size"], c["participants"]) for c in cells}, key=lambda g: (g[0], g[1]))
        x = np.arange(len(groups))
        for row, (metric, label) in enumerate(
            [
                ("full_rate_per_participant_pct", "node CPU per participant at full rate (% of a core)"),
                ("ratio_full", "MCU / floor (full)"),
            ]
        ):
            ax = axes[row][col]
            for j, mode in enumerate(("shared", "own")):
                pick = [
                    next(
                        (c for c in cells if (c["size"], c["participants"]) == g and c["mode"] == mode), None
                    )
                    for g in groups
                ]
                med = [c["summary"][metric]["median"] if c else 0 for c in pick]
                lo = [c["summary"][metric]["median"] - c["summary"][metric]["min"] if c else 0 for c in pick]
                hi = [c["summary"][metric]["max"] - c["summary"][metric]["median"] if c else 0 for c in pick]
                ax.bar(
                    x + (j - 0.5) * 0.38,
                    med,
                    0.38,
                    yerr=[lo, hi],
                    capsize=3,
                    label="shared views" if mode == "shared" else "a view per participant",
                )
                if metric == "full_rate_per_participant_pct":
                    floor = [
                        c["summary"]["floor_full_pct"]["median"] / c["participants"] if c else 0 for c in pick
                    ]
                    ax.plot(
                        x + (j - 0.5) * 0.38,
                        floor,
                        linestyle="none",
                        marker="_",
                        markersize=28,
                        markeredgewidth=2.5,
                        color="black",
                        zorder=3,
                        label="PyAV floor (codec + compose)" if j == 0 else None,
                    )
            ax.set_xticks(x, [f"{s}\nN={n}" for s, n in groups])
            ax.set_title(f"{codec}: {label}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            if row == 1:
                ax.axhline(1.0, color="grey", lw=0.8)
            ax.legend(fontsize=8)
    fig.suptitle(
        f"vdx MCU, {result['date'][:10]}, {result['machine']['cpus']} vCPU shared; median, bars min-max",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a seconds-long smoke run: 2 bots at 320x180, VP8")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--window", type=float, default=None, help="seconds measured per cell")
    ap.add_argument(
        "--warm", type=float, default=None, help="seconds between everyone seeing video and the window"
    )
    ap.add_argument("--codecs", nargs="+", default=None, choices=["VP8", "H264"])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--rooms", nargs="+", type=int, default=None)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--idle", type=float, default=None, help="seconds an idle node is measured")
    ap.add_argument("--fps", type=int, default=20, help="bots' and views' frame rate (VDX_MEDIA_FPS)")
    ap.add_argument("--json", type=Path, help="results (default: bench/results/mcu.json; none with --quick)")
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (default: it; none with --quick)")
    ap.add_argument("--plot", type=Path, help="PNG (default: bench/results/mcu.png; none with --quick)")
    ap.add_argument("--from-json", type=Path, help="render the markdown and plot of an earlier run")
    args = ap.parse_args()
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        render(result, args.markdown or ROOT / "BENCHMARKS.md", args.plot or ROOT / "bench/results/mcu.png")
        return
    if args.quick:
        args.repeats = args.repeats or 1
        args.window = args.window or 1.5
        args.warm = args.warm if args.warm is not None else 0.3
        args.idle = args.idle or 0.5
        args.codecs = args.codecs or ["VP8"]
        args.rooms = args.rooms or [2]
    else:
        args.repeats = args.repeats or 3
        args.window = args.window or 4.0
        args.warm = args.warm if args.warm is not None else 1.5
        args.idle = args.idle or 2.0
        args.codecs = args.codecs or ["VP8", "H264"]
        args.rooms = args.rooms or [4, 9]
        args.json = args.json or ROOT / "bench/results/mcu.json"
        args.markdown = args.markdown or ROOT / "BENCHMARKS.md"
        args.plot = args.plot or ROOT / "bench/results/mcu.png"
    result = asyncio.run(run(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    if args.markdown or args.plot:
        render(result, args.markdown, args.plot)
    else:
        print(markdown(result, None))


def render(result: dict[str, Any], md: Path | None, png: Path | None) -> None:
    plot_ref = None
    if png and result["cells"]:  # no valid window at all: nothing to draw
        plot(result, png)
        plot_ref = os.path.relpath(png, (md or ROOT / "BENCHMARKS.md").parent)
    section = markdown(result, plot_ref)
    if md:
        write_markdown(md, section)
    print(section)


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the node process is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
