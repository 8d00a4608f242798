"""Media the benchmarks' load generators send: a camera-like clip encoded once per (codec, size)
with vdx's own view encoder, and 20 ms Opus packets (a tone for the one who talks, near silence
for everyone else). Encoding once and replaying keeps the load generators cheap."""

from __future__ import annotations

import fractions
from dataclasses import dataclass

import av
import numpy as np

from vdx.conference.views import VideoEncoder
from vdx.node.self_test import camlike_frames

SIZES = {"180p": (320, 180), "360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
# Pexip's capacity unit (an HD 720p call), by picture size; the 180p smoke size counts as SD.
HD_UNITS = {"180p": 0.5, "360p": 0.5, "720p": 1.0, "1080p": 2.0, "audio": 1 / 16}
QUALITY = {"180p": "sd", "360p": "sd", "720p": "hd", "1080p": "fullhd"}


@dataclass
class Clip:
    """One clip encoded once: what every simulated participant of a cell sends, in a loop."""

    codec: str
    width: int
    height: int
    fps: int
    video: list[bytes]  # one encoded picture each; the first is a keyframe (the loop restarts there)
    speech: list[bytes]  # Opus, 20 ms each: a tone (the one who talks)
    hush: list[bytes]  # Opus, 20 ms each: near silence (everyone else)

    @property
    def kbps(self) -> float:
        return sum(len(p) for p in self.video) * 8 * self.fps / len(self.video) / 1000


def make_clip(codec: str, width: int, height: int, fps: int, seconds: float = 2.0) -> Clip:
    """Encode ``seconds`` of camera-like video with the node's own view encoder (the codec
    settings of a room's view, rate control included), one keyframe at the start."""
    enc = VideoEncoder(codec, width, height, fps)
    video: list[bytes] = []
    for i, frame in enumerate(camlike_frames(width, height, int(seconds * fps), seed=7)):
        video += [bytes(p) for p in enc.encode(frame, i, keyframe=i == 0)]
    video += [bytes(p) for p in enc.ctx.encode(None)]
    return Clip(codec, width, height, fps, video, opus_packets(440.0, 6000), opus_packets(150.0, 40))


def opus_packets(hz: float, amplitude: int, seconds: int = 1) -> list[bytes]:
    """20 ms Opus packets (48 kHz mono, 32 kbps, VoIP) of a sine tone."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.format, ctx.layout = 48000, "s16", "mono"
    ctx.bit_rate = 32000
    ctx.options = {"application": "voip", "frame_duration": "20"}
    out: list[bytes] = []
    for n in range(50 * seconds):
        frame = av.AudioFrame.from_ndarray(tone(hz, amplitude, n), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, n * 960, fractions.Fraction(1, 48000)
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out


def tone(hz: float, amplitude: int, n: int) -> np.ndarray:
    """The ``n``-th 20 ms chunk (48 kHz, int16, shape (1, 960)) of a sine tone."""
    t = (np.arange(960) + n * 960) / 48000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16).reshape(1, -1)
