"""RTCP reports and feedback (RFC 3550 §6, RFC 4585 PLI/NACK, RFC 5104 FIR and TMMBR/TMMBN)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from aiortc.rtp import RtcpPacket as AiortcRtcpPacket
from aiortc.rtp import RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from vdx.sip import rtcp


def block(ssrc: int = 7) -> rtcp.ReportBlock:
    return rtcp.ReportBlock(ssrc, 25, -3, 70000, 12, 0x11223344, 65536)


def test_sender_and_receiver_reports_round_trip() -> None:
    sr = rtcp.SenderReport(0xAABBCCDD, 0x0102030405060708, 90000, 10, 12000, [block()])
    rr = rtcp.ReceiverReport(0x01020304, [block(8), block(9)])
    data = rtcp.build_compound([sr, rr])
    assert rtcp.parse(data) == [sr, rr]
    theirs = AiortcRtcpPacket.parse(data)  # an independent parser agrees
    assert isinstance(theirs[0], RtcpSrPacket) and theirs[0].ssrc == 0xAABBCCDD
    assert theirs[0].sender_info.packet_count == 10
    assert isinstance(theirs[1], RtcpRrPacket) and [r.ssrc for r in theirs[1].reports] == [8, 9]


def test_pli_and_fir_build_and_parse() -> None:
    pli = rtcp.Pli(sender_ssrc=1, media_ssrc=2)
    data = rtcp.build(pli)
    assert data[:2] == b"\x81\xce"  # V=2, FMT=1, PT=206 (PSFB)
    assert rtcp.parse(data) == [pli]
    theirs = AiortcRtcpPacket.parse(data)[0]
    assert isinstance(theirs, RtcpPsfbPacket) and theirs.fmt == 1 and theirs.media_ssrc == 2
    fir = rtcp.Fir(sender_ssrc=1, entries=[(0x55, 3), (0x66, 255)])
    data = rtcp.build(fir)
    assert data[0] & 0x1F == 4 and len(data) == 12 + 8 * 2  # RFC 5104 §4.3.1.1
    assert rtcp.parse(data) == [fir]


def test_nack_bitmask() -> None:
    nack = rtcp.Nack(1, 2, [100, 101, 103, 116, 200])
    parsed = rtcp.parse(rtcp.build(nack))
    assert parsed == [rtcp.Nack(1, 2, [100, 101, 103, 116, 200])]


def test_unknown_types_are_skipped_inside_a_compound() -> None:
    sdes = bytes([0x81, 202, 0, 2]) + b"\x00\x00\x00\x01" + b"\x01\x01a\x00"
    data = sdes + rtcp.build(rtcp.Pli(1, 2))
    assert rtcp.parse(data) == [rtcp.Pli(1, 2)]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\xc8\x00",
        b"\x80\xc8\x00\x09" + b"\x00" * 8,
        b"\x40\xc9\x00\x01\x00\x00\x00\x01",
        b"\x81\xc8\x00\x01\x00\x00\x00\x01",
    ],
)
def test_truncated_or_bad_rtcp_raises_rtcp_error(data: bytes) -> None:
    with pytest.raises(rtcp.RtcpError):
        rtcp.parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_only_rtcp_error(data: bytes) -> None:
    with contextlib.suppress(rtcp.RtcpError):
        rtcp.parse(data)


@given(st.integers(0, (1 << 17) - 1 << 40), st.integers(0, 511), st.integers(0, 2**32 - 1))
def test_tmmbr_and_tmmbn_keep_the_rate_to_their_mantissa(rate: int, overhead: int, ssrc: int) -> None:
    for kind in (rtcp.Tmmbr, rtcp.Tmmbn):
        (parsed,) = rtcp.parse(rtcp.build(kind(9, [(ssrc, rate, overhead)])))
        assert isinstance(parsed, kind) and parsed.sender_ssrc == 9
        ((got_ssrc, got_rate, got_overhead),) = parsed.entries
        assert (got_ssrc, got_overhead) == (ssrc, overhead)
        # 17 bits of mantissa: exact below 2^17, never above what was asked, within a part in 2^16
        assert got_rate <= rate and rate - got_rate < max(1, rate >> 16)
        if rate < 1 << 17:
            assert got_rate == rate


def test_a_tmmbr_word_as_rfc_5104_lays_it_out() -> None:
    # exponent 2, mantissa 50000, overhead 40: 200 kb/s
    word = 2 << 26 | 50000 << 9 | 40
    data = struct.pack("!BBHIIII", 0x80 | 3, 205, 4, 9, 0, 1234, word)  # RTPFB, FMT 3, 4 words
    assert rtcp.parse(data) == [rtcp.Tmmbr(9, [(1234, 200_000, 40)])]
