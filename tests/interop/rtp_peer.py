"""The media side of a scripted SIP caller: an RTP socket that sends a PCMU tone and RFC 4733
digits, and keeps what it receives (decoded PCMU) for tone checks; one for VP8 or H.264 video
both ways."""

from __future__ import annotations

import asyncio
import fractions
import random
import struct
from typing import Any

import av
import numpy as np
from aiortc.codecs import depayload
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from harness.bot import colour_share
from vdx.conference.compositor import mean_yuv, solid_frame
from vdx.legs.packetising import vp8_payloads
from vdx.sip.rtp import RtpError, RtpPacket, is_rtcp


def pcmu_encode(pcm: np.ndarray) -> bytes:
    frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    enc: Any = av.CodecContext.create("pcm_mulaw", "w")
    enc.sample_rate, enc.layout, enc.format = 8000, "mono", "s16"
    return b"".join(bytes(p) for p in enc.encode(frame))


class RtpPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[RtpPacket] = []
        self.remote: tuple[str, int] | None = None
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.ssrc = random.getrandbits(32)
        self._dec: Any = av.CodecContext.create("pcm_mulaw", "r")
        self._dec.sample_rate, self._dec.layout = 8000, "mono"
        self.pcm: list[np.ndarray] = []

    @classmethod
    async def open(cls) -> RtpPeer:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return proto

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        if packet.payload_type != 0:
            return
        self.received.append(packet)
        for f in self._dec.decode(av.Packet(packet.payload)):
            self.pcm.append(f.to_ndarray().reshape(-1))

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None and self.remote is not None
        self.transport.sendto(data, self.remote)

    def send(self, pt: int, payload: bytes, *, marker: bool = False, ts: int | None = None) -> None:
        packet = RtpPacket(pt, self.seq, self.ts if ts is None else ts, self.ssrc, payload, marker)
        self.seq = (self.seq + 1) & 0xFFFF
        self.send_raw(packet.serialise())

    async def tone(self, hz: float, seconds: float, amplitude: int = 8000) -> None:
        """PCMU tone in real time, 20 ms packets."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = int(seconds / 0.02)
        for i in range(n):
            t = (np.arange(160) + i * 160) / 8000
            self.send(0, pcmu_encode(amplitude * np.sin(2 * np.pi * hz * t)), marker=i == 0)
            self.ts = (self.ts + 160) & 0xFFFFFFFF
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))

    async def digits(self, text: str, pt: int = 101) -> None:
        """RFC 4733 events: three packets per digit (start, continuation, End)."""
        for d in text:
            event = "0123456789*#".index(d)
            ts = self.ts
            for k, end in ((1, False), (2, False), (3, True)):
                self.send(
                    pt, struct.pack("!BBH", event, (0x80 if end else 0) | 10, 160 * k), ts=ts, marker=k == 1
                )
                await asyncio.sleep(0.02)
            self.ts = (self.ts + 800) & 0xFFFFFFFF

    def heard(self, seconds: float = 1.0) -> np.ndarray:
        if not self.pcm:
            return np.zeros(0)
        x = np.concatenate(self.pcm)
        return x[-int(8000 * seconds) :].astype(np.float64)

    def tone_power(self, hz: float, seconds: float = 1.0) -> float:
        x = self.heard(seconds)
        if len(x) < 2000:
            return 0.0
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        freqs = np.fft.rfftfreq(len(x), 1 / 8000)
        band = (freqs > hz - 8) & (freqs < hz + 8)
        return float(spec[band].max() / (np.median(spec) + 1e-9))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class VideoPeer(asyncio.DatagramProtocol):
    """The video side of a scripted caller (a room system's main or presentation stream): decodes
    the VP8 or H.264 RTP it receives (the latest picture in ``frame``) and sends a picture of one
    colour, encoded with libvpx (RFC 7741) or libx264 (RFC 6184 mode 1, aiortc's packetiser)."""

    def __init__(self, pt: int = 100, codec: str = "VP8") -> None:
        self.pt = pt
        self.codec = codec
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self._params = RTCRtpCodecParameters(mimeType=f"video/{codec}", clockRate=90000, payloadType=pt)
        self._decoder: Any = av.CodecContext.create(codec.lower(), "r")
        self._pending: list[bytes] = []
        self.frame: av.VideoFrame | None = None
        self.frames = 0

    @classmethod
    async def open(cls, pt: int = 100, codec: str = "VP8") -> VideoPeer:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(lambda: cls(pt, codec), local_addr=("127.0.0.1", 0))
        return proto

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if is_rtcp(data):
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        if packet.payload_type != self.pt:
            return
        self._pending.append(depayload(self._params, packet.payload))
        if packet.marker:
            try:
                for f in self._decoder.decode(av.Packet(b"".join(self._pending))):
                    self.frame, self.frames = f, self.frames + 1
            except av.error.FFmpegError:
                pass  # a picture before the first keyframe
            self._pending.clear()

    def colour(self) -> tuple[float, float, float] | None:
        """The mean colour of the latest picture received; None before one."""
        f = self.frame
        return None if f is None else mean_yuv(f, 0, 0, f.width, f.height)

    def share(self, colour: tuple[int, int, int]) -> float:
        """The share of the latest picture's pixels of ``colour``; 0 before one."""
        return 0.0 if self.frame is None else colour_share(self.frame, colour)

    async def send_colour(self, colour: tuple[int, int, int], stop: asyncio.Event, fps: int = 15) -> None:
        """Send pictures of ``colour`` in real time (a keyframe each second) until ``stop`` is set."""
        assert self.transport is not None and self.remote is not None
        enc: Any = av.CodecContext.create("libvpx" if self.codec == "VP8" else "libx264", "w")
        if self.codec == "H264":
            enc.options = {"preset": "ultrafast", "tune": "zerolatency"}
            enc.profile = "Constrained Baseline"
        enc.width, enc.height, enc.pix_fmt = 320, 180, "yuv420p"
        enc.time_base = fractions.Fraction(1, fps)
        enc.gop_size = fps
        enc.bit_rate = 300_000
        loop = asyncio.get_running_loop()
        start, picture_id, n = loop.time(), random.getrandbits(15), 0
        while not stop.is_set():
            frame = solid_frame(320, 180, colour)
            frame.pts, frame.time_base = n, enc.time_base
            for packet in enc.encode(frame):
                data = bytes(packet)
                if self.codec == "H264":
                    payloads = H264Encoder._packetize(H264Encoder._split_bitstream(data))
                else:
                    pieces = [data[i : i + 1200] for i in range(0, len(data), 1200)]
                    payloads = vp8_payloads(pieces, picture_id)
                    picture_id = (picture_id + 1) % (1 << 15)
                for i, payload in enumerate(payloads):
                    rtp = RtpPacket(
                        self.pt, self.seq, n * 90000 // fps, self.ssrc, payload, i == len(payloads) - 1
                    )
                    self.seq = (self.seq + 1) & 0xFFFF
                    self.transport.sendto(rtp.serialise(), self.remote)
            n += 1
            await asyncio.sleep(max(0.0, start + n / fps - loop.time()))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
