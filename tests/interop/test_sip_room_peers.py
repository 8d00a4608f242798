"""Real softphones in a room with a WebRTC bot (issue 5): baresip (H.264, VP8; TLS + SRTP) dials
the room, types the PIN by DTMF, and media flows both ways.

baresip plays a generated file (a red picture and a 300 Hz tone, ``avformat`` source) so the bot
can find its colour and tone. The other way, baresip records what it hears (``aufile`` player),
and the test decodes the video RTP the node sends to baresip's port (tapped at the node's
endpoint) to find the bot's colour."""

from __future__ import annotations

import asyncio
import fractions
import shutil
import socket
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.codecs import depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from harness.bot import GREEN, colour_close, colour_share
from harness.ports import free_port, free_sip_port
from harness.waiting import until
from vdx.conference.compositor import mean_yuv, solid_frame
from vdx.sip.rtp import RtpPacket

from .sipnode import SipNode, run_sip_node

pytestmark = pytest.mark.interop

ROOM = "7100@vdx.test"
RED_YUV = (81, 90, 240)

CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
sip_cafile\t\t{cafile}
snd_path\t\t{tmp}
audio_source\t\tausine,300
audio_alert\t\taufile,/dev/null
video_source\t\tavformat,{media}
video_size\t\t640x360
video_bitrate\t\t400000
video_fps\t\t15
rtp_ports\t\t{rtp_low}-{rtp_high}
cons_listen\t\t127.0.0.1:{cons_port}
module_path\t\t/usr/lib/baresip/modules
module\t\t\topus.so\nmodule\t\t\tausine.so
module\t\t\tavformat.so
module\t\t\tsndfile.so
module\t\t\t{video_module}
module\t\t\tsrtp.so
module\t\t\tcons.so
module\t\t\taccount.so
module_app\t\tmenu.so
"""


def make_media(
    video: Path,
    tone: Path,
    seconds: float = 4.0,
    colour: tuple[int, int, int] = RED_YUV,
    hz: float = 300.0,
) -> None:
    """A 640x360 picture of ``colour`` (red) at 15 fps and a ``hz`` (300 Hz) tone: baresip's camera
    and microphone (two files: baresip 1.0's avformat source crashes reading both from one)."""
    with av.open(str(video), "w", format="matroska") as out:
        v = out.add_stream("mpeg4", rate=15)
        v.width, v.height, v.pix_fmt = 640, 360, "yuv420p"
        for i in range(int(seconds * 15)):
            frame = solid_frame(640, 360, colour)
            frame.pts = i
            frame.time_base = fractions.Fraction(1, 15)
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    with av.open(str(tone), "w", format="wav") as out:
        a = out.add_stream("pcm_s16le", rate=48000)
        a.layout = "mono"
        for i in range(int(seconds * 50)):
            t = (np.arange(960) + i * 960) / 48000
            pcm = (9000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
            af = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            af.sample_rate = 48000
            af.pts = i * 960
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)


def tone_power(pcm: np.ndarray, rate: int, hz: float) -> float:
    x = pcm.astype(np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = (freqs > hz - 8) & (freqs < hz + 8)
    return float(spec[band].max() / (np.median(spec) + 1e-9))


def heard_wav(
    directory: Path, seconds: float = 1.0, pattern: str = "dump-*-dec.wav"
) -> tuple[np.ndarray, int]:
    """What a softphone decoded from the node: baresip's ``sndfile`` module writes
    ``dump-...-dec.wav`` (linphonec its ``record`` file) while the call runs (the header's sizes
    are filled in only at the end, so read raw)."""
    files = sorted(directory.glob(pattern))
    if not files:
        return np.zeros(0, dtype=np.int16), 8000
    raw = files[-1].read_bytes()
    fmt = raw.find(b"fmt ")
    data = raw.find(b"data")
    if fmt < 0 or data < 0:
        return np.zeros(0, dtype=np.int16), 8000
    channels, rate = struct.unpack_from("<HI", raw, fmt + 10)
    pcm = np.frombuffer(raw[data + 8 : data + 8 + (len(raw) - data - 8) // 2 * 2], dtype=np.int16)
    pcm = pcm[:: max(channels, 1)]
    return pcm[-int(rate * seconds) :], rate


class VideoTap:
    """Decodes the video RTP the node sends to the SIP peer (wrapping the endpoint's send)."""

    def __init__(self, endpoint: object, codec_name: str, pt: int) -> None:
        self.params = RTCRtpCodecParameters(mimeType=f"video/{codec_name}", clockRate=90000, payloadType=pt)
        self.ctx = av.CodecContext.create("h264" if codec_name == "H264" else "vp8", "r")
        self.pending: list[bytes] = []
        self.frame: av.VideoFrame | None = None
        self.frames = 0
        self.max_payload = 0
        original = endpoint.send_rtp  # type: ignore[attr-defined]

        def send_rtp(packet: RtpPacket) -> None:
            original(packet)
            self.max_payload = max(self.max_payload, len(packet.payload))
            self.pending.append(depayload(self.params, packet.payload))
            if packet.marker:
                try:
                    for f in self.ctx.decode(av.Packet(b"".join(self.pending))):
                        self.frame, self.frames = f, self.frames + 1
                except av.error.FFmpegError:
                    pass
                self.pending.clear()

        endpoint.send_rtp = send_rtp  # type: ignore[attr-defined]


async def run_baresip(
    node: SipNode, tmp: Path, video_module: str, *, tls: bool
) -> tuple[asyncio.subprocess.Process, Path, int]:
    conf = tmp / f"baresip-{video_module}"
    conf.mkdir()
    media = tmp / "camera.mkv"
    tone = tmp / "tone.wav"
    if not media.exists():
        make_media(media, tone)
    low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
    cons_port = free_sip_port()  # baresip's console listens on UDP and TCP both
    cafile = node.settings.data_dir / "sip-tls-cert.pem"
    (conf / "config").write_text(
        CONFIG.format(
            sip_port=free_sip_port(),
            tmp=conf,
            media=media,
            tone=tone,
            rtp_low=low,
            rtp_high=low + 99,
            video_module=video_module,
            cons_port=cons_port,
            cafile=cafile if cafile.exists() else "/etc/ssl/certs/ca-certificates.crt",
        )
    )
    account = "<sip:roomsystem@127.0.0.1>;regint=0"
    if tls:
        account += ";mediaenc=srtp-mand"
        target = f"sip:7100@127.0.0.1:{node.sip.tls_port};transport=tls"
    else:
        target = f"sip:7100@127.0.0.1:{node.sip.port}"
    (conf / "accounts").write_text(account + "\n")
    log = conf / "baresip.log"
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            "baresip",
            "-f",
            str(conf),
            "-e",
            f"/dial {target}",
            "-t",
            "28",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    return proc, conf, cons_port


def early_media_flowing(node: SipNode) -> bool:
    """A call waits for its PIN and the phone's early-media RTP has arrived: its DTMF can flow
    (digits typed before the phone opened its stream are lost)."""
    for call in node.sip.calls.values():
        ep = call.media.endpoint("audio")
        if call.pin_digits is not None and ep is not None and ep.stats.rtp_packets > 0:
            return True
    return False


def press(cons_port: int, keys: str) -> None:
    """Key presses on baresip's UDP console: digits in a call are sent as DTMF."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for k in keys:
            s.sendto(k.encode(), ("127.0.0.1", cons_port))


@pytest.mark.parametrize(
    ("video_module", "codec", "tls"),
    [("avcodec.so", "H264", False), ("vp8.so", "VP8", False), ("vp8.so", "VP8", True)],
    ids=["h264", "vp8", "vp8-tls-srtp"],
)
async def test_baresip_and_a_webrtc_bot_see_and_hear_each_other(
    settings_factory, tmp_path: Path, video_module: str, codec: str, tls: bool
) -> None:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    async with run_sip_node(settings_factory) as node:
        node.add_room(
            ROOM, host_pin="1234", guest_pin="5678", force_encryption=tls, enable_overlay_text=False
        )
        bot = node.bot(ROOM, "Bot", colour=GREEN, tone=700.0)
        await bot.connect()
        assert (await bot.join("1234"))["role"] == "host"
        await bot.start_media()
        proc, conf, cons_port = await run_baresip(node, tmp_path, video_module, tls=tls)
        log = conf / "baresip.log"
        try:
            # PIN entry: the call waits in 183 with the prompt; baresip types the guest PIN.
            await until(lambda: early_media_flowing(node), 15, "PIN entry with early media")
            press(cons_port, "5678#")
            conf_ = node.rooms.live_conference(ROOM)
            assert conf_ is not None
            sip_p = await until(
                lambda: next((p for p in conf_.participants.values() if p.protocol == "sip"), None),
                15,
                lambda: "the SIP participant: " + log.read_text(errors="replace")[-1500:],
            )
            # The guest PIN makes a guest, let in because a host (the bot) is present.
            assert sip_p.role.value == "guest" and sip_p.in_conference
            call = next(c for c, j in node.calls.joined.items() if j.participant is sip_p)
            video = call.negotiation.stream("video") if call.negotiation else None
            assert video is not None and video.codecs[0].name == codec
            if tls:
                assert call.incoming.secure and video.srtp_suite is not None
            ep = call.media.endpoint("video")
            assert ep is not None
            tap = VideoTap(ep, codec, video.codecs[0].pt)
            # baresip's camera (red) and tone (300 Hz) reach the bot through the MCU.
            await bot.until(lambda: bot.tone_power(300.0) > 50, 15, "baresip's 300 Hz at the bot")

            def sees_red() -> bool:
                stage = bot.last("stage")
                if not stage:
                    return False
                tiles = [t for t in stage["tiles"] if t["participantId"] == sip_p.id]
                return (
                    bool(tiles)
                    and colour_close(bot.tile_colour(tiles[0]), RED_YUV, 30)
                    and bot.colour_share(GREEN) < 0.002
                )

            await bot.until(sees_red, 15, "baresip's red picture at the bot, not the bot's own green")
            # The bot's picture (green) in what the node sends baresip, never baresip's own red
            # (nobody sees themselves), and the bot's tone in what baresip plays.
            await until(
                lambda: (
                    tap.frame is not None
                    and colour_share(tap.frame, RED_YUV, 30) < 0.002
                    and (
                        (
                            tap.frame is not None
                            and colour_close(
                                mean_yuv(tap.frame, 0, 0, tap.frame.width, tap.frame.height // 3), GREEN, 40
                            )
                        )
                        or (
                            tap.frame is not None
                            and any(
                                colour_close(
                                    mean_yuv(tap.frame, x, y, tap.frame.width // 4, tap.frame.height // 4),
                                    GREEN,
                                    30,
                                )
                                for x in (0, tap.frame.width // 4, tap.frame.width // 2)
                                for y in (0, tap.frame.height // 4, tap.frame.height // 2)
                            )
                        )
                    )
                ),
                15,
                "the bot's green in the video sent to baresip",
            )
            if node.calls.joined[call].leg.video_codec == "H264M0":
                assert tap.max_payload <= 1400  # single NAL unit mode: every NAL fits one packet

            def baresip_hears_bot() -> bool:
                pcm, rate = heard_wav(conf)
                return len(pcm) >= rate // 2 and tone_power(pcm, rate, 700.0) > 50

            await until(baresip_hears_bot, 15, "the bot's 700 Hz in what baresip plays")
            leg = node.calls.joined[call].leg
            await until(lambda: leg.counters.video_frames_in > 5, 10, "more of baresip's frames decoded")
            status = await conf_.status()
            media = next(p["media"] for p in status["participants"] if p["protocol"] == "sip")
            assert media["videoFramesDecoded"] > 5 and media["videoFramesSent"] > 5
            assert media["keyframeRequestsSent"] >= 1  # we asked baresip for a keyframe on joining
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
