"""RTP packets (RFC 3550 §5.1) and the reordering jitter buffer."""

from __future__ import annotations

import contextlib

import pytest
from aiortc.rtp import RtpPacket as AiortcRtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from vdx.sip.rtp import JitterBuffer, RtpError, RtpPacket, is_rtcp, seq_lt


def packet(seq: int, ts: int = 0, payload: bytes = b"x") -> RtpPacket:
    return RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, ssrc=0x1234, payload=payload)


def test_round_trip_with_csrc_extension_padding() -> None:
    p = RtpPacket(
        payload_type=97,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0xDEADBEEF,
        payload=b"\x65\x88payload",
        marker=True,
        csrc=[1, 2],
        extension_profile=0xBEDE,
        extension=b"\x10\xff\x00\x00",
        padding=4,
    )
    data = p.serialise()
    assert RtpPacket.parse(data) == p
    # Cross-check against aiortc's independent implementation.
    theirs = AiortcRtpPacket.parse(data)
    assert (theirs.payload_type, theirs.sequence_number, theirs.timestamp, theirs.ssrc) == (
        97,
        65535,
        0xFFFFFFFF,
        0xDEADBEEF,
    )
    assert theirs.marker == 1 and theirs.csrc == [1, 2] and theirs.payload == p.payload


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x60\x00",
        b"\x00" * 12,  # version 0
        b"\x8f" + b"\x00" * 11,  # 15 CSRCs announced, none present
        b"\x90" + b"\x00" * 11 + b"\xbe\xde\x00\x05",  # extension longer than the packet
        b"\xa0" + b"\x00" * 11 + b"\x00",  # padding count 0
        b"\xa0" + b"\x00" * 11 + b"\x40",  # padding beyond the payload
    ],
)
def test_bad_packets_raise_rtp_error(data: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(data)


def test_rtcp_demultiplexing_rfc5761() -> None:
    assert is_rtcp(b"\x80\xc8" + b"\x00" * 6)  # SR (200)
    assert is_rtcp(b"\x81\xce" + b"\x00" * 6)  # PSFB (206)
    assert not is_rtcp(packet(1).serialise())
    assert not is_rtcp(RtpPacket(0, 1, 1, 1, marker=True).serialise())


def test_sequence_comparison_wraps() -> None:
    assert seq_lt(65535, 0) and seq_lt(1, 2) and not seq_lt(2, 1) and not seq_lt(0, 65535)


def test_jitter_buffer_reorders_across_wraparound() -> None:
    jb = JitterBuffer(capacity=8)
    out: list[int] = []
    for seq in (65534, 0, 65535, 2, 1):
        out += [p.sequence_number for p in jb.add(packet(seq))]
    assert out == [65534, 65535, 0, 1, 2]
    assert jb.lost == 0 and len(jb) == 0


def test_jitter_buffer_drops_duplicates_and_late_packets() -> None:
    jb = JitterBuffer()
    assert [p.sequence_number for p in jb.add(packet(10))] == [10]
    assert jb.add(packet(10)) == [] and jb.add(packet(9)) == []
    assert jb.duplicates == 2


def test_jitter_buffer_skips_a_lost_packet_when_full() -> None:
    jb = JitterBuffer(capacity=4)
    jb.add(packet(100))
    released: list[int] = []
    for seq in range(102, 108):  # 101 never arrives
        released += [p.sequence_number for p in jb.add(packet(seq))]
    assert released == [102, 103, 104, 105, 106, 107]
    assert jb.lost == 1


def test_flush_releases_in_order() -> None:
    jb = JitterBuffer()
    jb.add(packet(1))
    for seq in (5, 3, 4):
        jb.add(packet(seq))
    assert [p.sequence_number for p in jb.flush()] == [3, 4, 5]


@settings(max_examples=200, deadline=None)
@given(st.permutations(list(range(40))), st.integers(0, 65535))
def test_any_arrival_order_within_capacity_comes_out_sorted(order: list[int], base: int) -> None:
    jb = JitterBuffer(capacity=64)
    out: list[int] = [p.sequence_number for p in jb.add(packet(base))]
    for i in order:
        out += [p.sequence_number for p in jb.add(packet((base + 1 + i) & 0xFFFF))]
    assert out == [(base + i) & 0xFFFF for i in range(41)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_only_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        RtpPacket.parse(data)
