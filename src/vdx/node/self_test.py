"""The start-up self-test: this node's own decode, compose and encode work, timed for a few
seconds, gives its capacity in HD units when ``VDX_NODE_CAPACITY`` is unset.

It times what a room of nine HD (720p, H.264) participants sharing one view costs per
participant, as ``bench/floor.py`` does for the capacity benchmark: decode one incoming picture,
scale it to its tile, compose and encode the view picture (a ninth of it each), Opus both ways.
Each operation runs on one thread (as in the node's pool), timed by that thread's CPU clock, so
other work on the machine changes the figure less than a wall clock would. What the whole node
costs over this floor is the capacity benchmark's ratio for the same cell (``MCU_OVER_FLOOR``; how
close the self-test comes to the benchmark is in BENCHMARKS.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from vdx.conference.capacity import units
from vdx.conference.compositor import Compositor, ScaleCache, TileSource, copy_picture
from vdx.conference.layouts import tiles
from vdx.conference.views import VideoEncoder
from vdx.legs.audio_codecs import AudioDecoder, AudioEncoder
from vdx.legs.pcm import CHUNK_SAMPLES, SAMPLE_RATE
from vdx.legs.video_decoding import video_decoder
from vdx.sip.sdp import Codec

WIDTH, HEIGHT = 1280, 720  # one HD unit a participant
ROOM = 9
LAYOUT = "nine_mains_zero_pips"
AUDIO_PER_SECOND = 50  # 20 ms packets
# The node's CPU over the floor of the same work in this cell (BENCHMARKS.md, MCU capacity:
# "MCU / floor" of H264 720p, rooms of 9, shared).
MCU_OVER_FLOOR = 1.33


def camlike_frames(width: int, height: int, count: int, seed: int) -> Iterator[av.VideoFrame]:
    """A smooth random texture panning across the picture with sensor-like noise: harder to
    compress than a test pattern, like a camera."""
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


@dataclass(frozen=True)
class SelfTest:
    """Milliseconds of CPU per operation, and what they make of this node."""

    cores: int
    fps: int
    decode_ms: float
    scale_ms: float
    compose_ms: float
    encode_ms: float
    opus_ms: float  # decode and encode of 20 ms
    took_s: float

    @property
    def participant_ms(self) -> float:
        """CPU milliseconds per second of one HD participant in a room of ``ROOM`` (one view)."""
        video = self.fps * (self.decode_ms + self.scale_ms + (self.compose_ms + self.encode_ms) / ROOM)
        return video + AUDIO_PER_SECOND * self.opus_ms

    @property
    def capacity(self) -> float:
        """HD units this node carries: its cores' milliseconds over what a participant costs."""
        participants = self.cores * 1000 / (self.participant_ms * MCU_OVER_FLOOR)
        return round(participants * units("hd", True), 2)

    def describe(self) -> str:
        return (
            f"{self.capacity:.2f} HD units ({self.cores} cores, {self.fps} fps, "
            f"{self.participant_ms:.1f} ms of CPU a second per HD participant: decode {self.decode_ms:.2f}, "
            f"scale {self.scale_ms:.2f}, compose {self.compose_ms:.2f}, encode {self.encode_ms:.2f}, "
            f"Opus {self.opus_ms:.3f} ms; measured in {self.took_s:.1f} s)"
        )


def _cpu() -> float:
    return time.thread_time()


def _video(fps: int, count: int) -> tuple[float, float, float, float]:
    """(decode, scale, compose, encode) in ms per picture."""
    camera = VideoEncoder("H264", WIDTH, HEIGHT, fps)  # what participants send (not timed)
    packets: list[bytes] = []
    for i, frame in enumerate(camlike_frames(WIDTH, HEIGHT, count, seed=7)):
        packets += [bytes(p) for p in camera.encode(frame, i, keyframe=i == 0)]
    decoder = video_decoder("H264")
    decoded: list[av.VideoFrame] = []
    t0 = _cpu()
    for data in packets:
        decoded += decoder.decode(av.Packet(data))
    decode = (_cpu() - t0) / max(1, len(packets))
    if not decoded:
        raise RuntimeError("the self-test's H.264 pictures did not decode")
    layout = tiles(LAYOUT, WIDTH, HEIGHT)

    def stage(i: int) -> list[TileSource | None]:
        return [TileSource(decoded[(i + 7 * k) % len(decoded)], f"Caller {k}", f"p{k}") for k in range(ROOM)]

    # New pictures in every tile (each scaled), then the same again (from the cache, every tile
    # painted again): the difference is the scaling, the second pass what composing adds to it.
    compositor = Compositor(WIDTH, HEIGHT, ScaleCache())
    t0 = _cpu()
    for i in range(count):
        compositor.compose(layout, stage(i), True)
    both = (_cpu() - t0) / count
    last = stage(count - 1)
    t0 = _cpu()
    for _ in range(count):
        compositor.repaint()
        compositor.compose(layout, last, True)
    compose = (_cpu() - t0) / count
    scale = max(0.0, both - compose) / ROOM
    composed = [copy_picture(compositor.compose(layout, stage(i), True)) for i in range(count)]
    view = VideoEncoder("H264", WIDTH, HEIGHT, fps)
    t0 = _cpu()
    for i, frame in enumerate(composed):
        view.encode(frame, i, keyframe=i == 0)
    encode = (_cpu() - t0) / count
    return decode * 1e3, scale * 1e3, compose * 1e3, encode * 1e3


def _opus(chunks: int) -> float:
    """ms to encode and decode 20 ms of Opus (the legs' own codec settings)."""
    opus = Codec("audio", 111, "opus", 48000, 2)
    encoder, decoder = AudioEncoder(opus), AudioDecoder(opus)
    t = np.arange(chunks * CHUNK_SAMPLES) / SAMPLE_RATE
    pcm = (6000 * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16).reshape(chunks, CHUNK_SAMPLES)
    t0 = _cpu()
    payloads = [p for chunk in pcm for p in encoder.encode(chunk)]
    for p in payloads:
        decoder.decode(p)
    return (_cpu() - t0) / chunks * 1e3


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def measure(fps: int, seconds: float = 2.0) -> SelfTest:
    """Time ``seconds`` of the node's video at ``fps`` (a few seconds of CPU in all)."""
    started = time.monotonic()
    count = max(10, int(seconds * fps))
    decode, scale, compose, encode = _video(fps, count)
    opus = _opus(AUDIO_PER_SECOND)
    return SelfTest(cores(), fps, decode, scale, compose, encode, opus, time.monotonic() - started)


__all__ = ["SelfTest", "camlike_frames", "cores", "measure"]
