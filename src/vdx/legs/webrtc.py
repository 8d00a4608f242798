"""The WebRTC leg: an aiortc peer connection seen as the MCU's inner interface.

aiortc does the signalling side (SDP, ICE, the DTLS handshake and its SRTP keys) and RTCP
(receiver and sender reports, NACK retransmission, keyframe requests). The media plane is the SIP
legs' (``legs.intake``, ``legs.packetising``): aiortc's own per-packet path costs far more, so the
leg takes its RTP over at the packet through ``legs.aiortc_hooks`` and aiortc's decoder threads
are ended as soon as they start. Out, a picture is cut into payloads once for all subscribers and
sent at once; the mix is encoded here in the negotiated codec (the common mix once per codec).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription

from vdx.legs import aiortc_hooks
from vdx.legs.aiortc_hooks import FastRtpIn, Inbound, RtpOut
from vdx.legs.audio_codecs import AUDIO_RATES, AudioEncoder
from vdx.legs.intake import MediaIntake
from vdx.legs.link_feedback import LinkReport
from vdx.legs.packetising import Packetiser
from vdx.legs.pcm import Pcm
from vdx.legs.turn_credentials import turn_credential
from vdx.sip.sdp import Codec


class BadOffer(ValueError):
    """The far end's SDP cannot be used (not SDP, no audio/video, no common codec)."""


@dataclass(frozen=True)
class IceOptions:
    """ICE servers: STUN (``VDX_STUN_SERVERS``) and TURN (``VDX_TURN_SERVERS``) with credentials
    made from ``VDX_TURN_SECRET`` for each holder, valid ``VDX_TURN_TTL`` seconds."""

    stun: tuple[str, ...] = ()
    turn: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl_s: int = 3600
    node_uses_turn: bool = False  # the node's own legs gather relay candidates too

    def servers_for(self, holder: str) -> list[dict[str, Any]]:
        """``RTCConfiguration.iceServers`` for a participant's browser, a fresh TURN credential in it."""
        servers: list[dict[str, Any]] = [{"urls": u} for u in self.stun]
        if self.turn and self.turn_secret:
            cred = turn_credential(self.turn_secret, self.turn_ttl_s, holder)
            servers.append({"urls": list(self.turn), "username": cred.username, "credential": cred.password})
        return servers

    def configuration(self) -> RTCConfiguration:
        """The node's own legs: STUN, and TURN only with ``node_uses_turn`` (a node behind NAT
        without forwarded ports; a reachable node needs no relay of its own)."""
        servers = [RTCIceServer(urls=u) for u in self.stun]
        if self.node_uses_turn and self.turn and self.turn_secret:
            cred = turn_credential(self.turn_secret, self.turn_ttl_s, "vdx-node")
            servers += [
                RTCIceServer(urls=u, username=cred.username, credential=cred.password) for u in self.turn
            ]
        return RTCConfiguration(iceServers=servers)


def restrict_host_addresses(addresses: list[str]) -> None:
    """Offer host candidates only on ``addresses`` (``VDX_ICE_HOST_ADDRESSES``), e.g. 127.0.0.1
    for a node that must stay on loopback. aioice otherwise offers every interface but loopback.
    Process-wide, as the node owns its process."""
    aiortc_hooks.replace_host_addresses(addresses)


class PacketTrack(MediaStreamTrack):
    """Video out: a view's encoded pictures, cut into RTP payloads once for every subscriber
    (``legs.packetising``) and sent at once (``out``, set when the offer is answered). After
    joining a view, or when the sender could not send, it waits for a keyframe and asks the view
    for one."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.packetiser = Packetiser("VP8")  # or "H264" (mode 1, as aiortc's), once answered
        self.out: RtpOut | None = None
        self.packets_out = 0

    def push(self, packet: av.Packet) -> None:
        if self.out is None:
            return
        picture = self.packetiser.payloads(packet)
        if picture is None:
            return
        ts, payloads = picture
        if not self.out.send(payloads, ts):
            self.packetiser.need_keyframe = True  # not connected yet: start at a keyframe once it is
            return
        self.packetiser.sent(ts)
        self.packets_out += 1

    def restart(self, after_loss: bool = False) -> None:
        """A new view: start again at its next keyframe; ``after_loss``, also at a new run of
        sequence numbers (:meth:`RtpOut.skip`)."""
        self.packetiser.need_keyframe = True
        if after_loss and self.out is not None:
            self.out.skip()

    def ready(self) -> None:
        """The sender runs: a keyframe to start with."""
        self.packetiser.need_keyframe = True
        self.packetiser.on_keyframe_needed()

    async def recv(self) -> av.Packet:  # type: ignore[override]
        """Unused: pictures go out through ``out`` (:class:`RtpOut`)."""
        raise MediaStreamError


class AudioTrack(MediaStreamTrack):
    """Audio out: this participant's mix as encoded 20 ms payloads of the negotiated codec
    (``codec``, known once the offer is answered; until then nothing is sent), sent at once
    (``out``)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.out: RtpOut | None = None
        self._ts = 0  # RTP time of the next payload (the codec's clock)
        self.codec: Codec | None = None
        self._encoder: AudioEncoder | None = None

    @property
    def codec_key(self) -> str | None:
        return self.codec.name.lower() if self.codec is not None else None

    def new_encoder(self) -> AudioEncoder:
        if self.codec is None:
            raise RuntimeError("no audio codec negotiated yet")
        return AudioEncoder(self.codec)

    def push(self, pcm: Pcm) -> None:
        if self.codec is None:
            return
        if self._encoder is None:
            self._encoder = self.new_encoder()
        self.push_encoded(self._encoder.encode(pcm))

    def push_encoded(self, payloads: list[bytes]) -> None:
        if self.out is None or self.codec is None:
            return
        step = self.codec.clock_rate // 50
        for payload in payloads:
            self.out.send([payload], self._ts)
            self._ts += step

    async def recv(self) -> av.Packet:  # type: ignore[override]
        """Unused: audio goes out through ``out`` (:class:`RtpOut`)."""
        raise MediaStreamError


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
    (non-trickle: the answer carries all our candidates). Video decodes in ``executor`` (the
    node's thread pool; None: at once, on the loop)."""

    def __init__(
        self,
        ice: IceOptions,
        on_video: Callable[[av.VideoFrame], None],
        on_audio: Callable[[Pcm], None],
        on_keyframe_request: Callable[[], None],
        on_failed: Callable[[], None],
        on_link: Callable[[LinkReport], None],
        executor: Executor | None = None,
    ) -> None:
        self.pc = RTCPeerConnection(ice.configuration())
        self.video_out = PacketTrack()
        self.audio_out = AudioTrack()
        self.video_codec: str | None = None
        self.size_cap: tuple[int, int] | None = None
        self._on_keyframe_request = on_keyframe_request
        self._on_failed = on_failed
        self._on_link = on_link
        self._inbound: dict[str, Inbound] = {}
        self._intake = MediaIntake(
            on_video,
            on_audio,
            video_codec=lambda pt: self._codec("video", pt),
            audio_codec=lambda pt: self._codec("audio", pt),
            ask_keyframe=self._send_keyframe_request,
            executor=executor,
        )
        self.counters = self._intake.counters
        self._fast_in: list[FastRtpIn] = []
        self.video_out.packetiser.on_keyframe_needed = on_keyframe_request

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected" and not self._fast_in:
                self._fast_in = aiortc_hooks.fast_rtp_in(self.pc, self._inbound.values())
            if self.pc.connectionState in ("failed", "closed") and not self._intake.closed:
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
            self._take_transceiver(transceiver)
        try:
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:
            raise BadOffer(f"no answer possible for this offer: {exc}") from None
        local = self.pc.localDescription.sdp
        self._use_answer(local)
        self.request_keyframe(force=True)
        return local

    def _take_transceiver(self, transceiver: RTCRtpTransceiver) -> None:
        """Our media path on a transceiver of the offer: its RTP in, our track and RTP out."""
        kind = transceiver.kind
        if kind not in self._inbound:
            on_packet = self._intake.video if kind == "video" else self._intake.audio
            self._inbound[kind] = Inbound(transceiver.receiver, kind, on_packet)
        if transceiver.sender.track is not None:
            return
        if kind == "video":
            self.pc.addTrack(self.video_out)
            aiortc_hooks.on_keyframe_request(transceiver.sender, self._keyframe_requested)
            out = self.video_out.out = RtpOut(transceiver.sender, on_ready=self.video_out.ready)
            aiortc_hooks.on_feedback(transceiver.sender, out, self._on_link)
        elif kind == "audio":
            self.pc.addTrack(self.audio_out)
            self.audio_out.out = RtpOut(transceiver.sender)

    def _use_answer(self, local_sdp: str) -> None:
        """What we send, as our answer chose it: its first codec of each kind."""
        for media in SessionDescription.parse(local_sdp).media:
            if not media.rtp.codecs:
                continue
            c = media.rtp.codecs[0]
            name = c.mimeType.split("/")[-1]
            if media.kind == "video":
                self.video_codec = name.upper() if name.upper() in ("VP8", "H264") else None
                self.video_out.packetiser.kind = self.video_codec or "VP8"
            elif media.kind == "audio" and name.lower() in AUDIO_RATES:
                self.audio_out.codec = Codec(
                    "audio", c.payloadType or 0, name.lower(), c.clockRate, c.channels or 1
                )

    # --- in -----------------------------------------------------------------------------------
    def _codec(self, kind: str, pt: int) -> Codec | None:
        inbound = self._inbound.get(kind)
        c = inbound.codecs.get(pt) if inbound is not None else None
        return Codec(kind, pt, c.name, c.clockRate, c.channels or 1) if c is not None else None

    def _keyframe_requested(self) -> None:
        self.counters.keyframe_requests_in += 1
        self._on_keyframe_request()

    def request_keyframe(self, force: bool = False) -> None:
        """Ask the far end for a keyframe (paced by the intake); ``force`` also keeps asking
        until one arrives (a new participant)."""
        self._intake.request_keyframe(force)

    def _send_keyframe_request(self) -> bool | None:
        """A PLI, once the far end's SSRC is known (aiortc sends it)."""
        inbound = self._inbound.get("video")
        return True if inbound is not None and inbound.request_keyframe() else None

    async def stats(self) -> dict[str, Any]:
        """Per-kind RTP counters from aiortc (loss both ways: what they lost of ours from their
        receiver reports), bytes received (per transport: aiortc counts no more finely), and our
        own frame counters."""
        out: dict[str, Any] = {
            "videoCodec": self.video_codec,
            **self._intake.stats(),
            "videoPacketsSent": self.video_out.packets_out,
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
        if self._intake.closed:
            return
        self._intake.closed = True
        self.video_out.stop()
        self.audio_out.stop()
        await self.pc.close()
