"""The view's encoded pictures as RTP payloads, the same for SIP and WebRTC legs.

A shared view sends the same picture to every subscriber in turn, so a picture is cut once per
kind of packetisation (``cut_picture``), not once per subscriber; a :class:`Packetiser` per
subscriber decides which pictures go (from a keyframe on, one per RTP timestamp) and puts its own
VP8 descriptor in front.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from fractions import Fraction

import av

from vdx.legs.aiortc_hooks import h264_mode1_payloads, h264_nal_units

VIDEO_CLOCK = 90000
VP8_PAYLOAD_MAX = 1300 - 4  # aiortc's packet size less our 4-byte payload descriptor

_VP8_DESCRIPTOR = struct.Struct("!BBH")


def _vp8_descriptor(first: bool, picture_id: int) -> bytes:
    """RFC 7741 §4.2: X=1, S on a picture's first packet, partition 0; I=1 with the 15-bit
    PictureID (M=1) always, so every packet's descriptor has the same length."""
    return _VP8_DESCRIPTOR.pack(0x90 if first else 0x80, 0x80, 0x8000 | picture_id)


# The last picture cut, per packetisation ("VP8", "H264", "H264M0"): (packet, ts, pieces).
_cuts: dict[str, tuple[av.Packet, int, list[bytes]]] = {}


def cut_picture(kind: str, packet: av.Packet, pts: int, tb: Fraction) -> tuple[int, list[bytes]]:
    """A view's picture as its RTP timestamp (90 kHz, before a sender's offset) and pieces: VP8
    data chunks (a descriptor goes in front of each, per receiver: ``vp8_payloads``), or H.264
    payloads (``kind`` "H264", mode 1: STAP-A/FU-A; "H264M0": one NAL unit each, RFC 6184
    §6.2). Cached for the last picture of each kind, as every subscriber asks for it in turn."""
    cached = _cuts.get(kind)
    if cached is not None and cached[0] is packet:
        return cached[1], cached[2]
    ts = pts * VIDEO_CLOCK * tb.numerator // tb.denominator
    data = bytes(packet)
    if kind == "VP8":
        pieces = [data[i : i + VP8_PAYLOAD_MAX] for i in range(0, len(data), VP8_PAYLOAD_MAX)]
    else:
        nals = [n for n in h264_nal_units(data) if n]
        pieces = nals if kind == "H264M0" else h264_mode1_payloads(nals)
    _cuts[kind] = (packet, ts, pieces)
    return ts, pieces


def vp8_payloads(pieces: list[bytes], picture_id: int) -> list[bytes]:
    """A VP8 picture's pieces with a receiver's descriptor in front of each."""
    return [_vp8_descriptor(i == 0, picture_id) + piece for i, piece in enumerate(pieces)]


class Packetiser:
    """One subscriber's pictures: from a keyframe on (after a start, a new view or a failed send,
    as a decoder can start only there), one picture per RTP timestamp. ``kind``: "VP8", "H264"
    (mode 1) or "H264M0"."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.picture_id = random.getrandbits(15)
        self.need_keyframe = True
        self.last_ts: int | None = None  # 90 kHz time of the last picture sent
        self.on_keyframe_needed: Callable[[], None] = lambda: None

    def payloads(self, packet: av.Packet) -> tuple[int, list[bytes]] | None:
        """The picture's 90 kHz timestamp and RTP payloads, or None if it must not go; after
        sending them, call :meth:`sent`."""
        pts, tb = packet.pts, packet.time_base
        if pts is None or tb is None:
            return None
        ts, pieces = cut_picture(self.kind, packet, pts, tb)
        if self.last_ts is not None and ts <= self.last_ts:
            # A new view's frame in the same time slot as the old view's last one: one RTP
            # timestamp must not carry two pictures, so wait for the next keyframe.
            if packet.is_keyframe:
                self.on_keyframe_needed()
            return None
        if self.need_keyframe and not packet.is_keyframe:
            return None
        return ts, vp8_payloads(pieces, self.picture_id) if self.kind == "VP8" else pieces

    def sent(self, ts: int) -> None:
        if self.kind == "VP8":
            self.picture_id = (self.picture_id + 1) % (1 << 15)
        self.need_keyframe = False
        self.last_ts = ts
