"""RTCP (RFC 3550 §6) for SIP legs: sender/receiver reports, BYE, and the feedback messages room
systems use to ask for keyframes — PLI (RFC 4585 §6.3.1), FIR (RFC 5104 §4.3.1) — plus generic
NACK (RFC 4585 §6.2.1) and the bit rate limit a receiver asks for, TMMBR and its answer TMMBN
(RFC 5104 §4.2.1, §4.2.2). Parsing a compound packet never raises anything but :class:`RtcpError`;
unknown packet types inside a compound are skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SR, RR, BYE, RTPFB, PSFB = 200, 201, 203, 205, 206
FMT_NACK, FMT_PLI, FMT_FIR, FMT_TMMBR, FMT_TMMBN = 1, 1, 4, 3, 4


class RtcpError(ValueError):
    pass


@dataclass
class ReportBlock:
    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int
    delay_since_last_sr: int

    def serialise(self) -> bytes:
        lost = self.packets_lost & 0xFFFFFF
        return struct.pack(
            "!IIIIII",
            self.ssrc,
            (self.fraction_lost & 0xFF) << 24 | lost,
            self.highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        )

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, lost_word, hs, jit, lsr, dlsr = struct.unpack_from("!IIIIII", data, pos)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000  # signed 24-bit (duplicates can make it negative)
        return cls(ssrc, lost_word >> 24, lost, hs, jit, lsr, dlsr)


@dataclass
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass
class Bye:
    sources: list[int]


@dataclass
class Pli:
    """Picture Loss Indication: 'send me a keyframe' (RFC 4585)."""

    sender_ssrc: int
    media_ssrc: int


@dataclass
class Fir:
    """Full Intra Request (RFC 5104): one (ssrc, sequence number) entry per target."""

    sender_ssrc: int
    entries: list[tuple[int, int]]


@dataclass
class Nack:
    sender_ssrc: int
    media_ssrc: int
    lost: list[int]


@dataclass
class Tmmbr:
    """Temporary Maximum Media Stream Bit Rate Request (RFC 5104 §4.2.1): per media SSRC, the
    most bits per second (``bitrate``) the sender asks it to send, with its per-packet
    ``overhead`` in bytes. :class:`Tmmbn` (§4.2.2) answers with the set the sender keeps to."""

    sender_ssrc: int
    entries: list[tuple[int, int, int]]  # (media SSRC, bit rate, overhead)


@dataclass
class Tmmbn:
    sender_ssrc: int
    entries: list[tuple[int, int, int]]


RtcpMessage = SenderReport | ReceiverReport | Bye | Pli | Fir | Nack | Tmmbr | Tmmbn


def _header(fmt: int, pt: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise RtcpError("RTCP body not 32-bit aligned")
    return struct.pack("!BBH", 0x80 | (fmt & 0x1F), pt, len(body) // 4) + body


def build(message: RtcpMessage) -> bytes:
    if isinstance(message, SenderReport):
        body = struct.pack(
            "!IQIII",
            message.ssrc,
            message.ntp_timestamp,
            message.rtp_timestamp,
            message.packet_count,
            message.octet_count,
        )
        body += b"".join(r.serialise() for r in message.reports)
        return _header(len(message.reports), SR, body)
    if isinstance(message, ReceiverReport):
        body = struct.pack("!I", message.ssrc) + b"".join(r.serialise() for r in message.reports)
        return _header(len(message.reports), RR, body)
    if isinstance(message, Bye):
        return _header(len(message.sources), BYE, b"".join(struct.pack("!I", s) for s in message.sources))
    if isinstance(message, Pli):
        return _header(FMT_PLI, PSFB, struct.pack("!II", message.sender_ssrc, message.media_ssrc))
    if isinstance(message, Fir):
        body = struct.pack("!II", message.sender_ssrc, 0)  # media SSRC unused in FIR (RFC 5104 §4.3.1.2)
        body += b"".join(struct.pack("!IB3x", ssrc, seq & 0xFF) for ssrc, seq in message.entries)
        return _header(FMT_FIR, PSFB, body)
    if isinstance(message, Nack):
        body = struct.pack("!II", message.sender_ssrc, message.media_ssrc)
        for pid, blp in _nack_pairs(message.lost):
            body += struct.pack("!HH", pid, blp)
        return _header(FMT_NACK, RTPFB, body)
    if isinstance(message, Tmmbr | Tmmbn):
        body = struct.pack("!II", message.sender_ssrc, 0)  # media SSRC unused (RFC 5104 §4.2.1.2)
        body += b"".join(
            struct.pack("!II", ssrc, _tmmb_word(rate, overhead)) for ssrc, rate, overhead in message.entries
        )
        return _header(FMT_TMMBR if isinstance(message, Tmmbr) else FMT_TMMBN, RTPFB, body)
    raise RtcpError(f"cannot build {type(message).__name__}")


def _tmmb_word(bitrate: int, overhead: int) -> int:
    """MxTBR as a 6-bit exponent and 17-bit mantissa (the smallest exponent that fits), then the
    9-bit measured overhead."""
    if bitrate < 0 or not 0 <= overhead < 512:
        raise RtcpError("TMMBR bit rate must be >= 0 and overhead 0-511")
    exp = 0
    while bitrate >> exp >= 1 << 17:
        exp += 1
    if exp > 63:
        raise RtcpError("TMMBR bit rate too large")
    return exp << 26 | (bitrate >> exp) << 9 | overhead


def _nack_pairs(lost: list[int]) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    for seq in sorted(set(s & 0xFFFF for s in lost)):
        if pairs and 0 < (seq - pairs[-1][0]) & 0xFFFF <= 16:
            pid, blp = pairs[-1]
            pairs[-1] = (pid, blp | 1 << (((seq - pid) & 0xFFFF) - 1))
        else:
            pairs.append((seq, 0))
    return pairs


def build_compound(messages: list[RtcpMessage]) -> bytes:
    return b"".join(build(m) for m in messages)


def parse(data: bytes) -> list[RtcpMessage]:
    """Parse a compound RTCP packet. Unknown types (SDES, APP, XR...) are skipped."""
    out: list[RtcpMessage] = []
    pos = 0
    if len(data) < 4:
        raise RtcpError("RTCP packet too short")
    while pos < len(data):
        if len(data) - pos < 4:
            raise RtcpError("truncated RTCP header")
        b0, pt, words = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != 2:
            raise RtcpError("not RTCP version 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtcpError("RTCP length beyond packet")
        count = b0 & 0x1F
        body = data[pos + 4 : end]
        if b0 & 0x20 and body:
            pad = body[-1]
            if pad == 0 or pad > len(body):
                raise RtcpError("bad RTCP padding")
            body = body[:-pad]
        out.extend(_parse_one(pt, count, body))
        pos = end
    return out


def _parse_one(pt: int, count: int, body: bytes) -> list[RtcpMessage]:
    try:
        if pt == SR:
            ssrc, ntp, rtp_ts, pc, oc = struct.unpack_from("!IQIII", body)
            blocks = [ReportBlock.parse(body, 24 + 24 * i) for i in range(count)]
            return [SenderReport(ssrc, ntp, rtp_ts, pc, oc, blocks)]
        if pt == RR:
            (ssrc,) = struct.unpack_from("!I", body)
            return [ReceiverReport(ssrc, [ReportBlock.parse(body, 4 + 24 * i) for i in range(count)])]
        if pt == BYE:
            return [Bye(list(struct.unpack_from(f"!{count}I", body)))]
        if pt == PSFB and count == FMT_PLI:
            return [Pli(*struct.unpack_from("!II", body))]
        if pt == PSFB and count == FMT_FIR:
            (sender, _) = struct.unpack_from("!II", body)
            entries = []
            for off in range(8, len(body) - 7, 8):
                ssrc, seq = struct.unpack_from("!IB", body, off)
                entries.append((ssrc, seq))
            return [Fir(sender, entries)]
        if pt == RTPFB and count == FMT_NACK:
            sender, media = struct.unpack_from("!II", body)
            lost: list[int] = []
            for off in range(8, len(body) - 3, 4):
                pid, blp = struct.unpack_from("!HH", body, off)
                lost.append(pid)
                lost += [(pid + i + 1) & 0xFFFF for i in range(16) if blp >> i & 1]
            return [Nack(sender, media, lost)]
        if pt == RTPFB and count in (FMT_TMMBR, FMT_TMMBN):
            (sender, _) = struct.unpack_from("!II", body)
            tmmb = []
            for off in range(8, len(body) - 7, 8):
                ssrc, word = struct.unpack_from("!II", body, off)
                tmmb.append((ssrc, (word >> 9 & 0x1FFFF) << (word >> 26), word & 0x1FF))
            return [(Tmmbr if count == FMT_TMMBR else Tmmbn)(sender, tmmb)]
    except struct.error as e:
        raise RtcpError(f"truncated RTCP packet type {pt}") from e
    return []
