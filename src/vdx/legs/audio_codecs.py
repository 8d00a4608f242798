"""Audio codecs of legs: PCMU, PCMA, G.722 and Opus to and from the mixer's format (``legs.pcm``).

They run on the event loop for every leg and tick, so G.711 is a table lookup (tables made once by
FFmpeg's own ``pcm_mulaw``/``pcm_alaw``, so the bits are FFmpeg's) and rate conversion a small
windowed-sinc FIR in numpy: PyAV's per-frame resampler and G.711 contexts cost too much there.
G.722 and Opus stay PyAV (libavcodec, libopus).
"""

from __future__ import annotations

import fractions
from functools import cache
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt

from vdx.legs.media_cpu import AUDIO_DECODE, AUDIO_ENCODE, MEDIA_CPU, clock
from vdx.legs.pcm import CHUNK_SAMPLES, SAMPLE_RATE, Pcm
from vdx.sip.sdp import Codec

# name -> the rate the codec's samples run at (G.722: 16 kHz audio on an 8 kHz RTP clock,
# RFC 3551 §4.5.2).
AUDIO_RATES: dict[str, int] = {"pcmu": 8000, "pcma": 8000, "g722": 16000, "opus": 48000}


@cache
def _g711_tables(name: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    """(encode: int16 + 32768 -> byte, decode: byte -> int16), computed with FFmpeg's codec."""
    av_name = "pcm_mulaw" if name == "pcmu" else "pcm_alaw"
    enc = cast(Any, av.CodecContext.create(av_name, "w"))
    enc.sample_rate, enc.layout, enc.format = 8000, "mono", "s16"
    enc.time_base = fractions.Fraction(1, 8000)
    enc.open()
    every = np.arange(-32768, 32768, dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(every.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    encoded = np.frombuffer(b"".join(bytes(p) for p in enc.encode(frame)), dtype=np.uint8).copy()
    dec = cast(Any, av.CodecContext.create(av_name, "r"))
    dec.sample_rate, dec.layout = 8000, "mono"
    decoded = np.concatenate(
        [f.to_ndarray().reshape(-1) for f in dec.decode(av.Packet(bytes(range(256))))]
    ).astype(np.int16)
    return encoded, decoded


@cache
def _lowpass(factor: int, taps: int = 48) -> npt.NDArray[np.float64]:
    """A windowed-sinc low-pass at 0.9 x the lower rate's Nyquist frequency."""
    cutoff = 0.45 / factor  # of the high sample rate
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(2 * cutoff * n) * np.hamming(taps)
    return cast(npt.NDArray[np.float64], h / h.sum())


class Downsampler:
    """48 kHz -> 48/``factor`` kHz, keeping the filter's history across chunks."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self.h = _lowpass(factor)
        self.hist = np.zeros(len(self.h) - 1)

    def __call__(self, x: Pcm) -> Pcm:
        if self.factor == 1:
            return x
        buf = np.concatenate([self.hist, x.astype(np.float64)])
        self.hist = buf[-(len(self.h) - 1) :]
        y = np.convolve(buf, self.h, "valid")[:: self.factor]
        return cast(Pcm, np.clip(np.rint(y), -32768, 32767).astype(np.int16))


class Upsampler:
    """48/``factor`` kHz -> 48 kHz."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self.h = _lowpass(factor) * factor
        self.hist = np.zeros(len(self.h) - 1)

    def __call__(self, x: npt.NDArray[Any]) -> Pcm:
        if self.factor == 1:
            return cast(Pcm, x.astype(np.int16))
        z = np.zeros(len(x) * self.factor)
        z[:: self.factor] = x
        buf = np.concatenate([self.hist, z])
        self.hist = buf[-(len(self.h) - 1) :]
        y = np.convolve(buf, self.h, "valid")
        return cast(Pcm, np.clip(np.rint(y), -32768, 32767).astype(np.int16))


class Chunker:
    """48 kHz samples of any length -> 20 ms chunks."""

    def __init__(self) -> None:
        self.pending = np.zeros(0, dtype=np.int16)

    def feed(self, pcm: Pcm) -> list[Pcm]:
        if not len(self.pending) and len(pcm) == CHUNK_SAMPLES:
            return [pcm]  # the common case: one 20 ms packet
        buf = np.concatenate([self.pending, pcm])
        n = len(buf) // CHUNK_SAMPLES
        self.pending = buf[n * CHUNK_SAMPLES :]
        return [buf[i * CHUNK_SAMPLES : (i + 1) * CHUNK_SAMPLES] for i in range(n)]


class AudioEncoder:
    """48 kHz mono 20 ms chunks -> RTP payloads of one codec. Its output depends on the codec's
    name only (``name`` is the key under which listeners share an encoding of the common mix):
    Opus is mono at 32 kbps for SIP and WebRTC alike."""

    def __init__(self, codec: Codec) -> None:
        self.name = codec.name.lower()
        self.rate = AUDIO_RATES[self.name]
        self.clock_step = codec.clock_rate // 50  # RTP timestamp units per 20 ms
        self.down = Downsampler(SAMPLE_RATE // self.rate)
        self.ctx: Any = None
        if self.name in ("pcmu", "pcma"):
            self.table = _g711_tables(self.name)[0]
        else:
            ctx = cast(Any, av.CodecContext.create("libopus" if self.name == "opus" else "g722", "w"))
            ctx.sample_rate, ctx.layout, ctx.format = self.rate, "mono", "s16"
            ctx.time_base = fractions.Fraction(1, self.rate)
            if self.name == "opus":
                ctx.bit_rate = 32000
                # libopus complexity 5, not FFmpeg's default 10: a room encodes its common mix
                # and each voice's mix-minus every 20 ms, and 5 costs far less for little quality.
                ctx.options = {"compression_level": "5"}
            ctx.open()
            self.ctx = ctx
        self._pts = 0

    def encode(self, pcm: Pcm) -> list[bytes]:
        started = clock()
        x = self.down(pcm)
        if self.ctx is None:
            out = [self.table[x.astype(np.int32) + 32768].tobytes()]
        else:
            frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.rate
            frame.pts = self._pts
            self._pts += len(x)
            out = [bytes(p) for p in self.ctx.encode(frame)]
        MEDIA_CPU.add(AUDIO_ENCODE, clock() - started)
        return out


class AudioDecoder:
    """RTP payloads of one codec -> 48 kHz mono 20 ms chunks."""

    def __init__(self, codec: Codec) -> None:
        self.name = codec.name.lower()
        self.rate = AUDIO_RATES[self.name]
        self.up = Upsampler(SAMPLE_RATE // self.rate)
        self.chunker = Chunker()
        self.ctx: Any = None
        if self.name in ("pcmu", "pcma"):
            self.table = _g711_tables(self.name)[1]
        elif self.name == "opus":
            # libopus decodes straight to the mixer's format: mono (a stereo stream is downmixed
            # by the decoder) int16 at 48 kHz, so no sample conversion is left to numpy.
            ctx = cast(Any, av.CodecContext.create("libopus", "r"))
            ctx.sample_rate, ctx.layout = SAMPLE_RATE, "mono"
            self.ctx = ctx
        else:
            ctx = cast(Any, av.CodecContext.create(self.name, "r"))
            ctx.sample_rate, ctx.layout = self.rate, "mono"
            self.ctx = ctx

    def decode(self, payload: bytes) -> list[Pcm]:
        started = clock()
        try:
            return self._decode(payload)
        finally:
            MEDIA_CPU.add(AUDIO_DECODE, clock() - started)

    def _decode(self, payload: bytes) -> list[Pcm]:
        if self.ctx is None:
            samples: npt.NDArray[Any] = self.table[np.frombuffer(payload, dtype=np.uint8)]
            return self.chunker.feed(self.up(samples))
        out: list[Pcm] = []
        for frame in self.ctx.decode(av.Packet(payload)):
            if self.name == "opus":  # mono int16 48 kHz already (see __init__): no copy, no vstack
                out += self.chunker.feed(np.frombuffer(frame.planes[0], dtype=np.int16, count=frame.samples))
                continue
            arr = frame.to_ndarray()
            if arr.dtype.kind == "f":
                arr = arr * 32767.0
            if frame.format.is_planar:
                mono = arr.mean(axis=0)
            else:
                mono = arr.reshape(-1, len(frame.layout.channels)).mean(axis=1)
            out += self.chunker.feed(self.up(np.clip(mono, -32768, 32767)))
        return out
