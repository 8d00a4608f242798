"""A SIP leg keeps to the bit rate its far end asks for (TMMBR, RFC 5104 §4.2.1): it answers with a
TMMBN naming the request and hands the limit to the conference, which sends that receiver a layer
within it. The far end is a UDP socket of this test on loopback."""

from __future__ import annotations

import av
import pytest

from harness.waiting import until
from vdx.conference.compositor import solid_frame
from vdx.conference.views import VideoEncoder
from vdx.legs.link_feedback import LinkReport
from vdx.legs.sip import SipLeg
from vdx.sip import rtcp
from vdx.sip.rtp import RtpPacket

from .test_sip_retransmission import FarEnd, endpoint, far  # noqa: F401  (far: the fixture)

pytestmark = pytest.mark.interop


def keyframe() -> av.Packet:
    encoder = VideoEncoder("H264", 160, 90, 15)
    (packet,) = encoder.encode(solid_frame(160, 90, (81, 90, 240)), 0, keyframe=True)
    return packet


async def test_a_tmmbr_is_answered_and_becomes_the_receivers_ceiling(far: FarEnd) -> None:  # noqa: F811
    ep = await endpoint(far, "video")
    reports: list[LinkReport] = []
    leg = SipLeg(None, ep, lambda _f: None, lambda _p: None, lambda: None, on_link=reports.append)
    try:
        leg.video_out.push(keyframe())
        got = await far.receive(3)  # the leg's first keyframe request (RTCP) and our picture
        ours = next(RtpPacket.parse(d).ssrc for d in got if not 192 <= d[1] <= 223)
        # one entry for another stream (not ours to keep) and one for ours
        entries = [(ours ^ 1, 1, 0), (ours, 200_000, 40)]
        request = rtcp.build_compound([rtcp.ReceiverReport(7), rtcp.Tmmbr(7, entries)])
        far.sock.sendto(request, ("127.0.0.1", ep.port))

        await until(lambda: any(r.ceiling_bps is not None for r in reports), 5, "the limit handed on")
        assert [r.ceiling_bps for r in reports if r.ceiling_bps is not None] == [200_000]

        def tmmbn() -> rtcp.Tmmbn | None:
            for data in far.drain():
                if 192 <= data[1] <= 223:  # RTCP on the muxed port
                    for m in rtcp.parse(data):
                        if isinstance(m, rtcp.Tmmbn):
                            return m
            return None

        answer = await until(tmmbn, 5, "a TMMBN")
        assert answer.sender_ssrc == ours and answer.entries == [(7, 200_000, 40)]

    finally:
        await leg.close()
        ep.close()
