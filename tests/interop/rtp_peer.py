"""The media side of a scripted SIP caller: an RTP socket that sends a PCMU tone and RFC 4733
digits, and keeps what it receives (decoded PCMU) for tone checks."""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Any

import av
import numpy as np

from vdx.sip.rtp import RtpError, RtpPacket


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
