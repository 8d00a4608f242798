"""The SIP leg: a SIP call's RTP endpoints (``vdx.sip.media``) seen as the MCU's inner interface.

In: each endpoint's ordered RTP goes to the leg's :class:`~vdx.legs.intake.MediaIntake`, with the
payload types of the call's SDP. Out: the view's pictures, packetised for the negotiated codec
(H.264 mode 1 or mode 0, VP8), and the participant's mix-minus encoded to the negotiated audio
codec on each mixer tick, as plain RTP on the endpoints. Keyframes both ways: a PLI/FIR from the
room system goes to the shared view encoder (which rate-limits); we send a PLI (and a FIR where
the far end asked for it) when our decoder needs one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import av
import numpy as np

from vdx.legs.audio_codecs import AUDIO_RATES, AudioEncoder, Chunker
from vdx.legs.intake import MediaIntake
from vdx.legs.link_feedback import LinkReport, SendRate
from vdx.legs.packetising import Packetiser
from vdx.legs.pcm import CHUNK_SAMPLES, SAMPLE_RATE, Pcm, silence
from vdx.sip import rtcp
from vdx.sip.media import RtpEndpoint
from vdx.sip.rtp import RtpPacket
from vdx.sip.sdp import Codec, H264Params, NegotiatedStream, fmtp_params

log = logging.getLogger("vdx.legs.sip")


def main_codec(stream: NegotiatedStream | None) -> Codec | None:
    """The codec we send on a stream: the offerer's first that is not telephone-event."""
    if stream is None:
        return None
    for c in stream.codecs:
        if c.name.lower() != "telephone-event":
            return c
    return None


def view_codec(codec: Codec | None) -> str | None:
    """The MCU view codec for a negotiated video codec."""
    if codec is None:
        return None
    name = codec.name.upper()
    if name == "VP8":
        return "VP8"
    if name == "H264":
        h = H264Params.from_fmtp(codec.remote_fmtp or codec.fmtp)
        return "H264" if h is not None and h.packetization_mode == 1 else "H264M0"
    return None


def size_for_macroblocks(max_fs: int, max_mbps: int | None, fps: int) -> tuple[int, int]:
    """The largest 16:9 picture within ``max_fs`` macroblocks per frame (and ``max_mbps`` per
    second at ``fps``), e.g. level 3.1's 3600 -> 1280x720, level 3.0's 1620 -> 848x480 -> 832x468."""
    budget = max_fs
    if max_mbps:
        budget = min(budget, max_mbps // max(fps, 1))
    w = 1920
    while w > 64:
        h = w * 9 // 16
        if ((w + 15) // 16) * ((h + 15) // 16) <= budget:
            break
        w -= 16
    return w - w % 2, (w * 9 // 16) - (w * 9 // 16) % 2


def size_cap_for(codec: Codec | None, fps: int) -> tuple[int, int] | None:
    """What the far end's SDP allows us to send: H.264 level / max-fs / max-mbps (RFC 6184
    §8.1), VP8 max-fs (RFC 7741 §6.1)."""
    if codec is None:
        return None
    if codec.name.upper() == "H264":
        h = codec.send_limits
        if h is None:
            return None
        return size_for_macroblocks(h.max_frame_macroblocks, h.max_macroblocks_per_second, fps)
    if codec.name.upper() == "VP8":
        fs = fmtp_params(codec.remote_fmtp).get("max-fs", "")
        if fs.isdigit() and int(fs) > 0:
            return size_for_macroblocks(int(fs), None, fps)
    return None


# --- audio ----------------------------------------------------------------------------------


class AudioSender:
    """Sends 20 ms chunks as RTP on an endpoint: our SSRC, sequence and timestamp."""

    def __init__(self, endpoint: RtpEndpoint, codec: Codec) -> None:
        self.endpoint = endpoint
        self.codec = codec
        self.encoder = AudioEncoder(codec)
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.packets = 0
        self._first = True

    def push(self, pcm: Pcm) -> None:
        self.push_encoded(self.encoder.encode(pcm))

    def push_encoded(self, payloads: list[bytes]) -> None:
        """20 ms of audio already encoded in this sender's codec (by this sender's encoder, or
        the conference's encoder of the common mix)."""
        for payload in payloads:
            self.endpoint.send_rtp(
                RtpPacket(
                    payload_type=self.codec.pt,
                    sequence_number=self.seq,
                    timestamp=self.ts,
                    ssrc=self.ssrc,
                    payload=payload,
                    marker=self._first,
                )
            )
            self._first = False
            self.seq = (self.seq + 1) & 0xFFFF
            self.packets += 1
        self.ts = (self.ts + self.encoder.clock_step) & 0xFFFFFFFF


def wav_chunks(path: Path) -> list[Pcm]:
    """A WAV (or any audio file PyAV reads) as 48 kHz mono 20 ms chunks, the last padded."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunker = Chunker()
    chunks: list[Pcm] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks += chunker.feed(out.to_ndarray().reshape(-1).astype(np.int16))
    rest = chunker.pending
    if len(rest):
        chunks.append(np.concatenate([rest, np.zeros(CHUNK_SAMPLES - len(rest), dtype=np.int16)]))
    return chunks


async def play(
    sender: AudioSender, chunks: list[Pcm], until: Callable[[], bool], *, loop_pause_s: float = 1.5
) -> None:
    """Play chunks in real time on a sender, again and again until ``until()`` holds (a PIN
    prompt as early media, until the PIN is accepted or the call ends)."""
    loop = asyncio.get_running_loop()
    period = CHUNK_SAMPLES / SAMPLE_RATE
    pause = [silence()] * int(loop_pause_s / period)
    start = loop.time()
    n = 0
    while True:
        for chunk in [*chunks, *pause]:
            if until():
                return
            sender.push(chunk)
            n += 1
            await asyncio.sleep(max(0.0, start + n * period - loop.time()))


# --- video ---------------------------------------------------------------------------------


class VideoSender:
    """The view's encoded pictures -> RTP: from a keyframe on, one RTP timestamp per picture,
    marker on its last packet (``legs.packetising``)."""

    def __init__(self, endpoint: RtpEndpoint, codec: Codec, view_codec_name: str) -> None:
        self.endpoint = endpoint
        self.codec = codec
        self.packetiser = Packetiser(view_codec_name if view_codec_name in ("VP8", "H264M0") else "H264")
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts_offset = random.getrandbits(32)
        self.packets = 0
        self.frames = 0
        self.rate = SendRate()  # what went out lately, beside the far end's reports on it

    def restart(self, after_loss: bool = False) -> None:
        self.packetiser.need_keyframe = True
        if after_loss:
            self.endpoint.forget_sent()  # the larger layer's packets: nobody needs them resent

    def push(self, packet: av.Packet) -> None:
        picture = self.packetiser.payloads(packet)
        if picture is None:
            return
        ts, payloads = picture
        self.packetiser.sent(ts)
        rtp_ts = (ts + self.ts_offset) & 0xFFFFFFFF
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            self.endpoint.send_rtp(
                RtpPacket(
                    payload_type=self.codec.pt,
                    sequence_number=self.seq,
                    timestamp=rtp_ts,
                    ssrc=self.ssrc,
                    payload=payload,
                    marker=i == last,
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
            self.packets += 1
            self.rate.add(len(payload) + 12)
        self.frames += 1


class VideoOut:
    """The leg's stable video subscriber: forwards to the current sender (None while the call has
    no video), so a re-INVITE that changes the codec does not leave a stale subscription."""

    def __init__(self) -> None:
        self.sender: VideoSender | None = None

    def push(self, packet: av.Packet) -> None:
        if self.sender is not None:
            self.sender.push(packet)

    def restart(self, after_loss: bool = False) -> None:
        if self.sender is not None:
            self.sender.restart(after_loss)


class AudioOut:
    """The leg's mix-minus out (``conference.leg.AudioOut``): to the current sender."""

    def __init__(self) -> None:
        self.sender: AudioSender | None = None

    @property
    def codec_key(self) -> str | None:
        return self.sender.encoder.name if self.sender is not None else None

    def push(self, pcm: Pcm) -> None:
        if self.sender is not None:
            self.sender.push(pcm)

    def push_encoded(self, payloads: list[bytes]) -> None:
        if self.sender is not None:
            self.sender.push_encoded(payloads)

    def new_encoder(self) -> AudioEncoder:
        if self.sender is None:
            raise RuntimeError("no audio is sent on this leg")
        return AudioEncoder(self.sender.codec)


class SipLeg:
    """One SIP participant's media. Built from the call's negotiated endpoints; ``update()``
    after a re-INVITE re-reads them (codec change, hold). ``on_video`` is called in a worker
    thread of ``executor`` (with one) and must only store the frame; the other callbacks run on
    the event loop."""

    def __init__(
        self,
        audio: RtpEndpoint | None,
        video: RtpEndpoint | None,
        on_video: Callable[[av.VideoFrame], None],
        on_audio: Callable[[Pcm], None],
        on_keyframe_request: Callable[[], None],
        on_link: Callable[[LinkReport], None],
        fps: int = 20,
        executor: Executor | None = None,
    ) -> None:
        self._on_keyframe_request = on_keyframe_request
        self._on_link = on_link
        self.fps = fps
        self._intake = MediaIntake(
            on_video,
            on_audio,
            video_codec=lambda pt: self._codec(self.video_ep, pt),
            audio_codec=lambda pt: self._codec(self.audio_ep, pt),
            ask_keyframe=self._send_keyframe_request,
            executor=executor,
        )
        self.counters = self._intake.counters
        self.audio_ep = audio
        self.video_ep = video
        self.video_codec: str | None = None
        self.size_cap: tuple[int, int] | None = None
        self._video_out = VideoOut()
        self._audio_out = AudioOut()
        self._remote_video_ssrc = 0
        self.update(audio, video)

    @property
    def video_out(self) -> VideoOut:
        return self._video_out

    @property
    def audio_out(self) -> AudioOut:
        return self._audio_out

    def update(self, audio: RtpEndpoint | None, video: RtpEndpoint | None) -> None:
        self.audio_ep, self.video_ep = audio, video
        acodec = main_codec(audio.stream if audio else None)
        if audio is not None and acodec is not None and acodec.name.lower() in AUDIO_RATES:
            current = self._audio_out.sender
            if current is None or current.codec != acodec or current.endpoint is not audio:
                self._audio_out.sender = AudioSender(audio, acodec)
            audio.on_rtp = self._audio_rtp
        else:
            self._audio_out.sender = None
        self._intake.forget_audio()
        vcodec = main_codec(video.stream if video else None)
        name = view_codec(vcodec)
        if video is not None and vcodec is not None and name is not None:
            current_v = self._video_out.sender
            if current_v is None or current_v.codec != vcodec or current_v.endpoint is not video:
                sender = VideoSender(video, vcodec, name)
                sender.packetiser.on_keyframe_needed = self._on_keyframe_request
                self._video_out.sender = sender
            self.video_codec = name
            self.size_cap = size_cap_for(vcodec, self.fps)
            video.on_rtp = self._video_rtp
            video.on_keyframe_request = self._keyframe_requested
            video.on_rtcp = self._video_rtcp
            self._intake.forget_video()
            self.request_keyframe(force=True)
        else:
            self._video_out.sender = None
            self.video_codec = None
            self.size_cap = None

    # --- in ---------------------------------------------------------------------------------
    @staticmethod
    def _codec(ep: RtpEndpoint | None, pt: int) -> Codec | None:
        stream = ep.stream if ep is not None else None
        return next((c for c in stream.codecs if c.pt == pt), None) if stream is not None else None

    def _audio_rtp(self, packet: RtpPacket) -> None:
        if self.audio_ep is not None and self.audio_ep.stream is not None:
            self._intake.audio(packet)

    def _video_rtp(self, packet: RtpPacket) -> None:
        if self.video_ep is not None and self.video_ep.stream is not None:
            self._remote_video_ssrc = packet.ssrc
            self._intake.video(packet)

    def _video_rtcp(self, message: rtcp.RtcpMessage) -> None:
        """The far end on the video we send: a receiver report's loss, or a TMMBR's limit (answered
        with a TMMBN naming it, RFC 5104 §4.2.2), for the conference to adapt to."""
        sender, ep = self._video_out.sender, self.video_ep
        if sender is None or ep is None:
            return
        if isinstance(message, rtcp.SenderReport | rtcp.ReceiverReport):
            for block in message.reports:
                if block.ssrc == sender.ssrc:
                    self._on_link(LinkReport(sender.rate.bps(), fraction_lost=block.fraction_lost / 256))
        elif isinstance(message, rtcp.Tmmbr):
            for ssrc, bitrate, overhead in message.entries:
                if ssrc == sender.ssrc:
                    bounding = [(message.sender_ssrc, bitrate, overhead)]
                    ep.send_rtcp([rtcp.ReceiverReport(sender.ssrc), rtcp.Tmmbn(sender.ssrc, bounding)])
                    self._on_link(LinkReport(sender.rate.bps(), ceiling_bps=bitrate))

    def _keyframe_requested(self) -> None:
        self.counters.keyframe_requests_in += 1
        self._on_keyframe_request()

    def request_keyframe(self, force: bool = False) -> None:
        """Ask the room system for a keyframe (paced by the intake); ``force`` also keeps asking
        until one arrives (a new participant, a new stream)."""
        self._intake.request_keyframe(force)

    def _send_keyframe_request(self) -> bool | None:
        """A PLI, and a FIR for endpoints that honour only that (RFC 5104 §4.3.1)."""
        ep = self.video_ep
        if ep is None:
            return None
        sender_ssrc = self._video_out.sender.ssrc if self._video_out.sender is not None else 1
        media = self._remote_video_ssrc
        msgs: list[rtcp.RtcpMessage] = [rtcp.Pli(sender_ssrc, media)]
        fb = ep.stream.codecs[0].rtcp_fb if ep.stream and ep.stream.codecs else ()
        if "ccm fir" in fb:
            msgs.append(rtcp.Fir(sender_ssrc, [(media, int(time.monotonic()) & 0xFF)]))
        try:
            ep.send_rtcp([rtcp.ReceiverReport(sender_ssrc), *msgs])
        except Exception:
            log.debug("could not send a keyframe request", exc_info=True)
            return False
        return True

    # --- reporting, end ---------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"videoCodec": self.video_codec, **self._intake.stats()}
        if self._video_out.sender is not None:
            out["videoPacketsSent"] = self._video_out.sender.packets
            out["videoFramesSent"] = self._video_out.sender.frames
        if self._audio_out.sender is not None:
            out["audioPacketsSent"] = self._audio_out.sender.packets
        received = 0
        for kind, ep in (("audio", self.audio_ep), ("video", self.video_ep)):
            if ep is not None:
                out[f"{kind}PacketsReceived"] = ep.stats.rtp_packets
                out[f"{kind}PacketsLost"] = ep.packets_lost
                out[f"{kind}RemotePacketsLost"] = ep.stats.remote_packets_lost
                out[f"{kind}BadPackets"] = ep.stats.bad_packets
                received += ep.stats.rtp_bytes
        out["bytesReceived"] = received
        return out

    async def close(self) -> None:
        self._intake.closed = True
        self._audio_out.sender = None
        self._video_out.sender = None
        # Only its own callbacks: a newer leg on the same endpoint (a presentation stream that goes
        # from sending the presentation to receiving it) keeps its own.
        for ep in (self.audio_ep, self.video_ep):
            if ep is not None:
                if ep.on_rtp in (self._audio_rtp, self._video_rtp):
                    ep.on_rtp = None
                if ep.on_keyframe_request == self._keyframe_requested:
                    ep.on_keyframe_request = None
                if ep.on_rtcp == self._video_rtcp:
                    ep.on_rtcp = None
