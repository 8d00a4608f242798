"""A WebRTC leg's receive path (``legs.aiortc_hooks.Inbound``) on a real aiortc receiver: packets come
out in order, RTX repairs are unwrapped into the gap, REMBs are throttled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpReceiver
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RtpPacket, wrap_rtx

from vdx.legs.aiortc_hooks import REMB_INTERVAL_MS, Inbound

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=98, parameters={"apt": 97})
MEDIA_SSRC, RTX_SSRC = 1111, 2222


@pytest.fixture
async def receiver() -> AsyncIterator[RTCRtpReceiver]:
    dtls = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
    rx = RTCRtpReceiver("video", dtls)
    rx._track = RemoteStreamTrack(kind="video")  # what RTCPeerConnection gives its receivers
    yield rx
    await rx.stop()


async def started(rx: RTCRtpReceiver, got: list[tuple[int, bytes]]) -> Inbound:
    inbound = Inbound(rx, "video", lambda p: got.append((p.sequence_number, p.payload)))
    await rx.receive(
        RTCRtpReceiveParameters(
            codecs=[VP8, RTX],
            encodings=[
                RTCRtpDecodingParameters(
                    ssrc=MEDIA_SSRC, payloadType=97, rtx=RTCRtpRtxParameters(ssrc=RTX_SSRC)
                )
            ],
        )
    )
    return inbound


def media(seq: int, ts: int = 0) -> RtpPacket:
    return RtpPacket(
        payload_type=97, sequence_number=seq, timestamp=ts, ssrc=MEDIA_SSRC, payload=bytes([seq & 0xFF])
    )


async def test_packets_come_out_in_order_and_rtx_fills_the_gap(receiver: RTCRtpReceiver) -> None:
    got: list[tuple[int, bytes]] = []
    inbound = await started(receiver, got)
    for seq in (10, 12, 11, 14):  # 11 late, 13 lost
        inbound.handle_now(media(seq), 0)
    assert [s for s, _ in got] == [10, 11, 12]
    # The sender repairs 13 on its RTX stream (RFC 4588): unwrapped into the gap, 14 follows.
    inbound.handle_now(wrap_rtx(media(13), payload_type=98, sequence_number=500, ssrc=RTX_SSRC), 0)
    assert got[3:] == [(13, bytes([13])), (14, bytes([14]))]
    inbound.handle_now(media(12), 0)  # a duplicate is dropped
    assert len(got) == 5


async def test_remb_is_throttled_unless_the_estimate_falls(receiver: RTCRtpReceiver) -> None:
    inbound = await started(receiver, [])
    sent: list[int] = []

    async def send_rtcp(packet: object) -> None:
        sent.append(1)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]
    receiver._set_rtcp_ssrc(4242)
    inbound._remb(1_000_000, [MEDIA_SSRC], 0)
    inbound._remb(1_000_000, [MEDIA_SSRC], 50)  # too soon, not lower: not sent
    inbound._remb(900_000, [MEDIA_SSRC], 60)  # 10 % lower: at once
    inbound._remb(950_000, [MEDIA_SSRC], 70)  # higher, too soon: not sent
    inbound._remb(950_000, [MEDIA_SSRC], 60 + REMB_INTERVAL_MS)  # the interval has passed
    await asyncio.sleep(0)  # the RTCP tasks run
    assert len(sent) == 3
    assert inbound.remb_sent == (60 + REMB_INTERVAL_MS, 950_000)
