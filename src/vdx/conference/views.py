"""Views: one composed picture per distinct picture, encoded once, fanned out.

Nobody sees themselves: whoever is on stage gets a picture without their own tile, and everyone
who is not on stage shares the one picture of those who are. Everyone who sees the same picture
shares its encoder, so a room pays for a view per person on stage, not per participant. Composition and encoding run in the node's thread pool (PyAV releases
the GIL, so both cores work); the event loop only snapshots who is on stage and hands the encoded
``av.Packet``s to the subscribers (the participants' legs), which cut each picture into RTP
payloads once for all of them and send it without re-encoding. A keyframe request from any
subscriber forces a keyframe on the view, no more often than the configured interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import av

from vdx.conference.compositor import Canvases, TileSource
from vdx.conference.layouts import tiles
from vdx.legs.media_cpu import MEDIA_CPU, VIDEO_ENCODE, clock

log = logging.getLogger("vdx.views")

# "H264M0": H.264 for receivers that take packetization-mode 0 only (RFC 6184 §6.2: one NAL unit
# per RTP packet, no fragmentation), so the encoder cuts every picture into slices that fit a packet.
CODECS = ("VP8", "H264", "H264M0")
H264_MODE0_SLICE_BYTES = 1100

# All views count frames from one epoch, so a participant moved to another view (a layout change)
# keeps RTP timestamps that move forward: receivers drop frames that seem to go back in time.
EPOCH = time.monotonic()


@dataclass(frozen=True)
class ViewKey:
    layout: str
    width: int
    height: int
    codec: str  # "VP8" | "H264" | "H264M0"
    audience: str = "all"  # "all", or "hosts" for auditorium guests
    # The one receiver this picture leaves out (they are on stage for everyone else); None: the
    # picture of everyone on stage, shared by all who are not on it.
    without: str | None = None
    # A participant's own view (``VDX_MEDIA_VIEWS=personal``, which exists to measure what sharing
    # saves); None for shared views.
    owner: str | None = None


def bitrate_for(width: int, height: int) -> int:
    """Target bitrate: 600 kbps at 360p, growing less than the pixel count (fewer bits per pixel
    as pictures grow)."""
    return max(150_000, int(600_000 * (width * height / (640 * 360)) ** 0.65))


class VideoEncoder:
    """A libvpx (VP8) or libx264 (H.264 constrained baseline, ultrafast, zerolatency) encoder with
    keyframes on demand. Not thread-safe: one view calls it from one job at a time."""

    def __init__(self, codec: str, width: int, height: int, fps: int) -> None:
        if codec not in CODECS:
            raise ValueError(f"unsupported video codec {codec}")
        self.codec_name = codec
        self.fps = fps
        rate = bitrate_for(width, height)
        if codec == "VP8":
            ctx = av.CodecContext.create("libvpx", "w")
            ctx.options = {
                "deadline": "realtime",
                # A fixed speed (negative): a positive one lets libvpx slow itself down, for more
                # quality and CPU, until a picture takes half the frame interval, so a view's cost
                # would depend on how busy the node was. Speed 6 matches that quality for less CPU.
                "cpu-used": "-6",
                "lag-in-frames": "0",
                "static-thresh": "1",
                "undershoot-pct": "100",
                "overshoot-pct": "15",
                "bufsize": str(rate),
                "minrate": str(rate),
                "maxrate": str(rate),
                "partitions": "0",
            }
            ctx.qmin, ctx.qmax = 2, 56
        else:
            ctx = av.CodecContext.create("libx264", "w")
            # Level 3.1 (what browsers offer, 42e01f) carries 720p30; Full HD needs 4.0.
            level = "31" if width * height <= 1280 * 720 else "40"
            ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "level": level}
            if codec == "H264M0":
                ctx.options = {**ctx.options, "x264-params": f"slice-max-size={H264_MODE0_SLICE_BYTES}"}
            ctx.profile = "Constrained Baseline"
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.bit_rate = rate
        ctx.time_base = fractions.Fraction(1, fps)
        ctx.framerate = fractions.Fraction(fps, 1)
        ctx.gop_size = fps * 10  # a safety keyframe every 10 s; others on demand
        ctx.thread_count = 1
        self.ctx = ctx

    def encode(self, frame: av.VideoFrame, pts: int, keyframe: bool) -> list[av.Packet]:
        started = clock()
        try:
            return self._encode(frame, pts, keyframe)
        finally:
            MEDIA_CPU.add(VIDEO_ENCODE, clock() - started)

    def _encode(self, frame: av.VideoFrame, pts: int, keyframe: bool) -> list[av.Packet]:
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, self.fps)
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        packets = list(self.ctx.encode(frame))
        if self.codec_name.startswith("H264") and len(packets) > 1:
            # One access unit per RTP timestamp: join what x264 emits for one picture.
            first = packets[0]
            joined = av.Packet(b"".join(bytes(p) for p in packets))
            joined.pts, joined.time_base = first.pts, first.time_base
            joined.is_keyframe = any(p.is_keyframe for p in packets)
            packets = [joined]
        return packets


class Subscriber(Protocol):
    """The sending side of a participant's video (a leg's ``video_out``)."""

    def push(self, packet: av.Packet) -> None: ...


# Who is on a view's stage now: a source per tile (None = empty) and whether to draw names.
Stage = Callable[["ViewKey"], tuple[Sequence[TileSource | None], bool]]


class View:
    """One composed picture and its encoder; runs while it has subscribers."""

    def __init__(
        self,
        key: ViewKey,
        stage: Stage,
        executor: Executor,
        fps: int,
        keyframe_interval: float,
        canvases: Canvases,
    ) -> None:
        self.key = key
        self.tiles = tiles(key.layout, key.width, key.height)
        self._stage = stage
        self._executor = executor
        self.fps = fps
        self.keyframe_interval = keyframe_interval
        self.subscribers: set[Subscriber] = set()
        self._encoder: VideoEncoder | None = None
        self._canvases = canvases
        self._keyframe_wanted = True
        self._last_keyframe = -1e9
        self._task: asyncio.Task[None] | None = None
        self._hurry = False  # a newcomer waits for a keyframe
        # A newcomer's keyframe neither waits for nor counts against the rate limit, which is
        # there for PLI storms: its first one often goes before its transport is up, and the
        # keyframe its receiver then asks for must not wait out the limit.
        self._newcomer = False
        self._nap: asyncio.Future[None] | None = None  # the wait for the next tick
        self.frames_encoded = 0
        self.keyframes = 0

    def subscribe(self, sub: Subscriber) -> None:
        """A newcomer: its sender waits for a keyframe, so the view makes one now (within the
        rate limit) rather than at its next tick, or the one after if a frame is being encoded."""
        self.subscribers.add(sub)
        self.request_keyframe()
        self._hurry = self._newcomer = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"view {self.key}")
        elif self._nap is not None and not self._nap.done() and self._keyframe_due():
            self._nap.set_result(None)

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def request_keyframe(self) -> None:
        """A PLI/FIR from any subscriber, or a newcomer: the next frame after the rate limit is a
        keyframe."""
        self._keyframe_wanted = True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _work(
        self, sources: Sequence[TileSource | None], overlay: bool, pts: int, keyframe: bool
    ) -> list[av.Packet]:
        canvas = self._canvases.compositor(self.key.width, self.key.height)
        frame = canvas.compose(self.tiles, sources, overlay)
        if self._encoder is None:
            self._encoder = VideoEncoder(self.key.codec, self.key.width, self.key.height, self.fps)
        return self._encoder.encode(frame, pts, keyframe)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.fps
        last_pts = -1
        while True:
            pts = max(last_pts + 1, int((time.monotonic() - EPOCH) * self.fps))
            last_pts = pts
            keyframe = False
            self._hurry = False
            if self._keyframe_due():
                keyframe, self._keyframe_wanted = True, False
                if not self._newcomer:
                    self._last_keyframe = time.monotonic()
                self._newcomer = False
            sources, overlay = self._stage(self.key)
            try:
                packets = await loop.run_in_executor(
                    self._executor, self._work, sources, overlay, pts, keyframe
                )
            except Exception:
                log.exception("view %s: compose/encode failed", self.key)
                packets = []
            for packet in packets:
                self.frames_encoded += 1
                if packet.is_keyframe:
                    self.keyframes += 1
                for sub in list(self.subscribers):
                    sub.push(packet)
            # Pace by the clock; if the work overran the period, start the next frame at once; a
            # newcomer who came during the work gets its keyframe at once too.
            if not (self._hurry and self._keyframe_due()):
                await self._nap_until(EPOCH + (pts + 1) * period)

    def _keyframe_due(self) -> bool:
        return self._keyframe_wanted and (
            self._newcomer or time.monotonic() - self._last_keyframe >= self.keyframe_interval
        )

    async def _nap_until(self, at: float) -> None:
        """Sleep until ``at`` (monotonic), unless ``subscribe`` wakes the view for a newcomer."""
        loop = asyncio.get_running_loop()
        nap = self._nap = loop.create_future()
        handle = loop.call_later(max(0.0, at - time.monotonic()), _wake, nap)
        try:
            await nap
        finally:
            handle.cancel()
            self._nap = None


def _wake(nap: asyncio.Future[None]) -> None:
    if not nap.done():
        nap.set_result(None)
