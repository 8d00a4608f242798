"""RTP packets (RFC 3550 §5.1) and a reordering jitter buffer for SIP legs (and WebRTC legs,
whose packets aiortc parses: :class:`JitterBuffer` takes any packet with the fields it reads).

The packet codec is ours rather than aiortc's ``RtpPacket`` because SIP legs see plain RTP from
any device, so parsing must reject bad input with :class:`RtpError` (never ``struct.error``) and
the header extension must round-trip untouched. H.264/VP8 payload (de)packetisation is aiortc's
(``aiortc.codecs.h264`` / ``vpx``), applied on top of :class:`JitterBuffer` output by the leg.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    pass


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: payload types 64-95 (with the marker bit) on a muxed port are RTCP."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def seq_lt(a: int, b: int) -> bool:
    """16-bit serial-number comparison (RFC 1982)."""
    return a != b and ((b - a) & 0xFFFF) < 0x8000


class RtpHeader(Protocol):
    """What the jitter buffer and the video depacketiser read of a packet: ours, or aiortc's
    ``aiortc.rtp.RtpPacket`` (a WebRTC leg's, parsed by aiortc's DTLS transport)."""

    @property
    def sequence_number(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def marker(self) -> int: ...

    @property
    def payload(self) -> bytes: ...


P = TypeVar("P", bound=RtpHeader)


@dataclass
class RtpPacket:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < 12:
            raise RtpError("RTP packet shorter than its header")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != RTP_VERSION:
            raise RtpError("not RTP version 2")
        if b0 & 0x3F == 0:  # no padding, extension or CSRCs: what nearly every sender sends
            return cls(b1 & 0x7F, seq, ts, ssrc, data[12:], bool(b1 & 0x80))
        cc = b0 & 0x0F
        pos = 12 + 4 * cc
        if len(data) < pos:
            raise RtpError("truncated CSRC list")
        csrc = list(struct.unpack_from(f"!{cc}I", data, 12))
        ext_profile: int | None = None
        ext = b""
        if b0 & 0x10:
            if len(data) < pos + 4:
                raise RtpError("truncated header extension")
            ext_profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise RtpError("truncated header extension")
            ext = data[pos : pos + 4 * words]
            pos += 4 * words
        end = len(data)
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or pos + padding > end:
                raise RtpError("bad padding")
            end -= padding
        return cls(
            payload_type=b1 & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=data[pos:end],
            marker=bool(b1 & 0x80),
            csrc=csrc,
            extension_profile=ext_profile,
            extension=ext,
            padding=padding,
        )

    def serialise(self) -> bytes:
        if not self.csrc and self.extension_profile is None and not self.padding:
            # The packets we send: a bare 12-byte header.
            return (
                _HEADER.pack(
                    RTP_VERSION << 6,
                    (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                    self.sequence_number & 0xFFFF,
                    self.timestamp & 0xFFFFFFFF,
                    self.ssrc,
                )
                + self.payload
            )
        if len(self.csrc) > 15 or len(self.extension) % 4:
            raise RtpError("too many CSRCs or unaligned extension")
        b0 = (RTP_VERSION << 6) | len(self.csrc)
        if self.extension_profile is not None:
            b0 |= 0x10
        if self.padding:
            b0 |= 0x20
        out = struct.pack(
            "!BBHII",
            b0,
            (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
            self.sequence_number & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc,
        )
        out += b"".join(struct.pack("!I", c) for c in self.csrc)
        if self.extension_profile is not None:
            out += struct.pack("!HH", self.extension_profile, len(self.extension) // 4) + self.extension
        out += self.payload
        if self.padding:
            out += bytes(self.padding - 1) + bytes([self.padding])
        return out


class JitterBuffer(Generic[P]):
    """Reorders packets of one SSRC and releases them in sequence.

    A packet is released when it is the next expected one, or when the buffer holds more than
    ``capacity`` packets (the gap is then declared lost and skipped). Duplicates and packets older
    than the release point are dropped. ``lost`` counts skipped sequence numbers (for RTCP RR and
    for deciding to send a PLI)."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._packets: dict[int, P] = {}
        self._next: int | None = None
        self.lost = 0
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._packets)

    def add(self, packet: P) -> list[P]:
        seq = packet.sequence_number
        if self._next is None:
            self._next = seq
        if seq == self._next and not self._packets:
            self._next = (seq + 1) & 0xFFFF  # in order with nothing held: the common case
            return [packet]
        if seq_lt(seq, self._next) or seq in self._packets:
            self.duplicates += 1
            return []
        self._packets[seq] = packet
        out = self._drain()
        while len(self._packets) > self.capacity:
            # Skip the gap up to the oldest held packet.
            oldest = min(self._packets, key=lambda s: (s - self._next) & 0xFFFF)  # type: ignore[operator]
            self.lost += (oldest - self._next) & 0xFFFF  # type: ignore[operator]
            self._next = oldest
            out += self._drain()
        return out

    def _drain(self) -> list[P]:
        out: list[P] = []
        assert self._next is not None
        while self._next in self._packets:
            out.append(self._packets.pop(self._next))
            self._next = (self._next + 1) & 0xFFFF
        return out

    def flush(self) -> list[P]:
        """Release everything held, in order (end of call, or a long pause)."""
        if self._next is None:
            return []
        nxt = self._next
        ordered = sorted(self._packets.values(), key=lambda p: (p.sequence_number - nxt) & 0xFFFF)
        self._packets.clear()
        if ordered:
            self._next = (ordered[-1].sequence_number + 1) & 0xFFFF
        return ordered
