"""The WebRTC leg: an aiortc peer connection seen as the MCU's inner interface.

In: decoded frames (aiortc decodes for us), handed to callbacks. Out: a video track that yields
the view's pre-encoded ``av.Packet``s (aiortc's sender only packetizes them) and an audio track
that yields this participant's mix-minus as PCM (aiortc encodes it to Opus). Keyframe requests
(PLI/FIR) from the far end are observed on the sender and routed to the view's encoder: aiortc
1.16 only sets a private flag, honoured on its own encode path, in
``RTCRtpSender._handle_rtcp_packet`` -> ``self._send_keyframe()``; we wrap that method on the
sender instance.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aioice.ice
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription

from vdx.conference.audio_mixer import CHUNK_SAMPLES, SAMPLE_RATE, Pcm

log = logging.getLogger("vdx.legs.webrtc")


class BadOffer(ValueError):
    """The far end's SDP cannot be used (not SDP, no audio/video, no common codec)."""


@dataclass(frozen=True)
class IceOptions:
    """ICE servers (``VDX_STUN_SERVERS``, ``VDX_TURN_SERVERS``) and host addresses."""

    stun: tuple[str, ...] = ()
    turn: tuple[str, ...] = ()
    turn_username: str | None = None
    turn_password: str | None = None

    def configuration(self) -> RTCConfiguration:
        servers = [RTCIceServer(urls=u) for u in self.stun]
        servers += [
            RTCIceServer(urls=u, username=self.turn_username, credential=self.turn_password)
            for u in self.turn
        ]
        return RTCConfiguration(iceServers=servers)


def restrict_host_addresses(addresses: list[str]) -> None:
    """Offer host candidates only on ``addresses`` (``VDX_ICE_HOST_ADDRESSES``), e.g. 127.0.0.1
    for a node that must stay on loopback. aioice otherwise offers every interface but loopback.
    Process-wide, as the node owns its process."""
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses  # type: ignore[assignment]


class PacketTrack(MediaStreamTrack):
    """Video out: yields a view's encoded packets. After joining a view, or after falling behind
    and dropping packets, it waits for a keyframe (a decoder can start only there) and asks the
    view for one."""

    kind = "video"

    def __init__(self, max_queue: int = 30) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.Packet] = asyncio.Queue()
        self._max = max_queue
        self._need_keyframe = True
        self._last_time: Any = None  # media time of the last packet queued (a Fraction)
        self.on_keyframe_needed: Callable[[], None] = lambda: None
        self.packets_out = 0

    def push(self, packet: av.Packet) -> None:
        when = packet.pts * packet.time_base if packet.pts is not None and packet.time_base else None
        if when is not None and self._last_time is not None and when <= self._last_time:
            # A new view's frame in the same time slot as the old view's last one: one RTP
            # timestamp must not carry two pictures, so wait for the next keyframe.
            if packet.is_keyframe:
                self.on_keyframe_needed()
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                return
            self._need_keyframe = False
        if self._queue.qsize() >= self._max:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._need_keyframe = True
            self.on_keyframe_needed()
            return
        self._last_time = when
        self._queue.put_nowait(packet)

    def restart(self) -> None:
        """A new view: drop what is queued, start again at its next keyframe."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._need_keyframe = True

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        self.packets_out += 1
        return packet


class PcmTrack(MediaStreamTrack):
    """Audio out: 20 ms mono PCM chunks of this participant's mix, as 48 kHz audio frames."""

    kind = "audio"

    def __init__(self, max_queue: int = 10) -> None:
        super().__init__()
        self._queue: deque[Pcm] = deque(maxlen=max_queue)
        self._ready = asyncio.Event()
        self._pts = 0

    def push(self, pcm: Pcm) -> None:
        self._queue.append(pcm)
        self._ready.set()

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        pcm = self._queue.popleft()
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += pcm.shape[0]
        return frame


class PcmChunker:
    """Decoded audio frames of any layout and rate -> 20 ms mono 48 kHz int16 chunks."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.int16)

    def feed(self, frame: av.AudioFrame) -> list[Pcm]:
        parts = [self._pending]
        for out in self._resampler.resample(frame):
            parts.append(out.to_ndarray().reshape(-1).astype(np.int16))
        buf = np.concatenate(parts)
        n = len(buf) // CHUNK_SAMPLES
        chunks = [buf[i * CHUNK_SAMPLES : (i + 1) * CHUNK_SAMPLES] for i in range(n)]
        self._pending = buf[n * CHUNK_SAMPLES :]
        return chunks


@dataclass
class LegCounters:
    video_frames_in: int = 0
    audio_frames_in: int = 0
    keyframe_requests: int = 0
    video_width: int = 0  # of the last picture received (the dashboard shows it)
    video_height: int = 0


def _check_offer(sdp: str) -> None:
    if not isinstance(sdp, str) or not sdp.lstrip().startswith("v=0"):
        raise BadOffer("the offer is not SDP (it must start with v=0)")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:
        raise BadOffer(f"the offer SDP cannot be parsed: {exc}") from None
    if not any(m.kind in ("audio", "video") for m in parsed.media):
        raise BadOffer("the offer has no audio or video section")


class WebRtcLeg:
    """One participant's peer connection. The conference gives callbacks for decoded media and
    keyframe requests, and the outgoing tracks; ``answer()`` does the offer/answer exchange
    (non-trickle: the answer carries all our candidates)."""

    def __init__(
        self,
        ice: IceOptions,
        on_video: Callable[[av.VideoFrame], None],
        on_audio: Callable[[Pcm], None],
        on_keyframe_request: Callable[[], None],
        on_failed: Callable[[], None],
    ) -> None:
        self.pc = RTCPeerConnection(ice.configuration())
        self.video_out = PacketTrack()
        self.audio_out = PcmTrack()
        self.video_codec: str | None = None
        self.size_cap: tuple[int, int] | None = None
        self.counters = LegCounters()
        self._on_video = on_video
        self._on_audio = on_audio
        self._on_keyframe_request = on_keyframe_request
        self._on_failed = on_failed
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.video_out.on_keyframe_needed = on_keyframe_request

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            consume = self._consume_video if track.kind == "video" else self._consume_audio
            self._tasks.append(asyncio.get_running_loop().create_task(consume(track)))

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState in ("failed", "closed") and not self._closed:
                self._on_failed()

    async def answer(self, offer_sdp: str) -> str:
        if self.pc.remoteDescription is not None:
            raise BadOffer("this leg already has a session; renegotiation is not supported")
        _check_offer(offer_sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:
            raise BadOffer(f"the offer was refused: {exc}") from None
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video" and transceiver.sender.track is None:
                self.pc.addTrack(self.video_out)
                self._hook_keyframes(transceiver.sender)
            elif transceiver.kind == "audio" and transceiver.sender.track is None:
                self.pc.addTrack(self.audio_out)
        try:
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:
            raise BadOffer(f"no answer possible for this offer: {exc}") from None
        local = self.pc.localDescription.sdp
        for media in SessionDescription.parse(local).media:
            if media.kind == "video" and media.rtp.codecs:
                name = media.rtp.codecs[0].mimeType.split("/")[-1].upper()
                self.video_codec = name if name in ("VP8", "H264") else None
        return local

    def _hook_keyframes(self, sender: RTCRtpSender) -> None:
        original = sender._send_keyframe

        def send_keyframe() -> None:
            original()
            self.counters.keyframe_requests += 1
            self._on_keyframe_request()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

    async def _consume_video(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.counters.video_frames_in += 1
                if isinstance(frame, av.VideoFrame):
                    self.counters.video_width, self.counters.video_height = frame.width, frame.height
                self._on_video(frame)  # type: ignore[arg-type]
        except MediaStreamError:
            pass

    async def _consume_audio(self, track: MediaStreamTrack) -> None:
        chunker = PcmChunker()
        try:
            while True:
                frame = await track.recv()
                self.counters.audio_frames_in += 1
                for chunk in chunker.feed(frame):  # type: ignore[arg-type]
                    self._on_audio(chunk)
        except MediaStreamError:
            pass

    async def stats(self) -> dict[str, Any]:
        """Per-kind RTP counters from aiortc (loss both ways: what they lost of ours from their
        receiver reports), bytes received (per transport: aiortc counts no more finely), and our
        own frame counters."""
        out: dict[str, Any] = {
            "videoCodec": self.video_codec,
            "videoFramesDecoded": self.counters.video_frames_in,
            "videoWidth": self.counters.video_width,
            "videoHeight": self.counters.video_height,
            "audioFramesDecoded": self.counters.audio_frames_in,
            "videoPacketsSent": self.video_out.packets_out,
            "keyframeRequests": self.counters.keyframe_requests,
            "connectionState": self.pc.connectionState,
        }
        try:
            report = await self.pc.getStats()
        except Exception:
            return out
        received = 0
        for s in report.values():
            kind = getattr(s, "kind", None)
            if s.type == "inbound-rtp":
                out[f"{kind}PacketsReceived"] = s.packetsReceived
                out[f"{kind}PacketsLost"] = s.packetsLost
                out[f"{kind}Jitter"] = s.jitter
            elif s.type == "outbound-rtp":
                out[f"{kind}RtpPacketsSent"] = s.packetsSent
                out[f"{kind}BytesSent"] = s.bytesSent
            elif s.type == "remote-inbound-rtp":  # their receiver reports on what we send
                out[f"{kind}RemotePacketsLost"] = max(0, s.packetsLost)
            elif s.type == "transport":  # aiortc counts received bytes per transport only
                received += s.bytesReceived
        out["bytesReceived"] = received
        return out

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.video_out.stop()
        self.audio_out.stop()
        self.audio_out._ready.set()
        for t in self._tasks:
            t.cancel()
        await self.pc.close()
