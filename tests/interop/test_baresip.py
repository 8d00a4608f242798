"""baresip (a real SIP video softphone) dials a room: our SDP answer must be one it sends video to
(it sends none unless the answer echoes its H.264 packetization-mode), and the RTP arriving on the
bound ports must be decodable video.

Media handling beyond the leg's endpoint (decoding for the MCU) is the conference runtime's job;
here the test itself depacketises with aiortc and decodes with PyAV."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import av
import pytest
from aiortc.codecs import depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from harness.ports import free_port, free_sip_port
from vdx.sip.rtp import RtpPacket

from .conftest import SipUnderTest

pytestmark = pytest.mark.interop

CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
audio_player\t\taufile,{tmp}/heard.wav
audio_source\t\tausine,440
audio_alert\t\taufile,/dev/null
video_source\t\tfakevideo,nil
video_size\t\t640x360
video_bitrate\t\t500000
video_fps\t\t15
rtp_ports\t\t{rtp_low}-{rtp_high}
module_path\t\t/usr/lib/baresip/modules
module\t\t\topus.so
module\t\t\tausine.so
module\t\t\taufile.so
module\t\t\tfakevideo.so
module\t\t\t{video_module}
module\t\t\taccount.so
module_app\t\tmenu.so
"""


@pytest.mark.parametrize(
    ("video_module", "codec", "decoder"),
    [("avcodec.so", "H264", "h264"), ("vp8.so", "VP8", "vp8")],
    ids=["h264", "vp8"],
)
async def test_baresip_sends_decodable_video_to_the_answered_port(
    sip: SipUnderTest, video_module: str, codec: str, decoder: str
) -> None:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    conf = sip.tmp / f"baresip-{codec}"
    conf.mkdir()
    low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
    (conf / "config").write_text(
        CONFIG.format(
            sip_port=free_sip_port(),
            tmp=conf,
            rtp_low=low,
            rtp_high=low + 99,
            video_module=video_module,
        )
    )
    (conf / "accounts").write_text("<sip:roomsystem@127.0.0.1>;regint=0\n")
    log = conf / "baresip.log"
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            "baresip",
            "-f",
            str(conf),
            "-e",
            f"/dial sip:1000@127.0.0.1:{sip.server.port}",
            "-t",
            "20",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await _check_call(sip, codec, decoder, log)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def _check_call(sip: SipUnderTest, codec: str, decoder: str, log: Path) -> None:
    await sip.policy.wait_for(lambda: len(sip.policy.established) == 1, 15)
    call = sip.policy.established[0]
    negotiation = call.negotiation
    assert negotiation is not None
    video = negotiation.stream("video")
    assert video is not None and video.codecs[0].name == codec, _tail(log)
    endpoint = call.media.endpoint("video")
    assert endpoint is not None
    params = RTCRtpCodecParameters(mimeType=f"video/{codec}", clockRate=90000, payloadType=video.codecs[0].pt)
    ctx = av.CodecContext.create(decoder, "r")
    frames: list[tuple[int, int]] = []
    pending: list[bytes] = []

    def on_rtp(packet: RtpPacket) -> None:  # the seam the MCU will use
        pending.append(depayload(params, packet.payload))
        if packet.marker:  # end of a frame (RFC 6184 §5.1, RFC 7741 §4.1)
            for frame in ctx.decode(av.Packet(b"".join(pending))):
                frames.append((frame.width, frame.height))
            pending.clear()

    endpoint.on_rtp = on_rtp
    await sip.policy.wait_for(lambda: len(frames) >= 3, 15)
    assert frames[0] == (640, 360)
    audio = call.media.endpoint("audio")
    assert audio is not None and audio.stats.rtp_packets > 0  # Opus from ausine
    await call.hangup("test done")
    await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]
