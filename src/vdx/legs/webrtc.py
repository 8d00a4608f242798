"""The WebRTC leg: an aiortc peer connection seen as the MCU's inner interface (like ``legs.sip``).

aiortc does the signalling side (SDP, ICE, the DTLS handshake and its SRTP keys) and RTCP
(receiver and sender reports, NACK retransmission, keyframe requests). The media plane runs on the
SIP legs' path, because aiortc's costs twice the codec floor in Python per packet (BENCHMARKS.md):
per received packet a STUN parse attempt, a queue and a task wake-up, a REMB after every packet
while its estimator sees overuse, frames handed to a decoder thread per track and back one task
each; per sent packet a task wake-up, the picture cut again per sender and a chain of coroutines.
aiortc 1.16 has no public API for encoded media, so the leg hooks aiortc and aioice objects of
its own peer connection, on the instance (never the classes: other peer connections in the
process, e.g. test bots, keep aiortc's path):

In: :class:`FastRtpIn` takes SRTP packets at the ICE socket once DTLS is up (unprotected, parsed
and routed with the DTLS transport's own session, extension map and router);
:class:`Inbound` (each receiver's ``_handle_rtp_packet``) keeps aiortc's receiver statistics,
NACK and RTX handling and its bandwidth estimator (REMB throttled as libwebrtc throttles it), then
the SIP leg's jitter buffer, depacketiser and decode worker (the node's thread pool, bounded
backlog) for video, and the SIP leg's audio decoders on the loop. aiortc's own decoder threads
are ended as soon as ``RTCRtpReceiver.receive`` starts them.

Out: :class:`RtpOut` (each sender's ``_run_rtp``) sends at once where the view fans a picture
out (cut into payloads once for all subscribers, ``legs.sip.cut_picture``) or the mixer hands
over this participant's audio, encoded here in the negotiated codec (``legs.audio_codecs``; the
common mix encoded once per codec), keeping aiortc's NACK history and sender-report counters.
Keyframe requests (PLI/FIR) from the far end go to the view's encoder: aiortc only sets a private
flag in ``RTCRtpSender._handle_rtcp_packet`` -> ``self._send_keyframe()``, honoured on its own
encode path; we wrap that method on the sender instance.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import aioice.ice
import av
import pylibsrtp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
    clock,
)
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    HeaderExtensions,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)
from aiortc.sdp import SessionDescription
from aiortc.utils import random32

from vdx.legs.audio_codecs import AUDIO_RATES, AudioDecoder, AudioEncoder
from vdx.legs.pcm import Pcm
from vdx.legs.sip import PLI_INTERVAL, DecodeWorker, VideoIntake, VideoReceiver, cut_picture, vp8_payloads
from vdx.sip.rtp import JitterBuffer
from vdx.sip.sdp import Codec

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


_HEADER = struct.Struct("!BBHII")


class RtpOut:
    """A sender's RTP, sent at once where the view or the mixer hands the payloads over (as SIP
    legs send: ``legs.sip.VideoSender``), not through aiortc's send task, which would take an
    ``av.Packet`` from the track, cut it again for this sender, wake per packet and build each
    packet through a chain of coroutines. ``RTCRtpSender._run_rtp`` is replaced on the instance
    (aiortc has no public way to give a sender payloads): it now only marks the sender started
    and stopped. What aiortc's other sender code reads is kept up: the NACK history
    (``_retransmit``), the counters of its sender reports and ``getStats``, the started/exited
    events ``stop()`` waits for. Headers carry aiortc's extensions (mid, abs-send-time),
    serialised by aiortc once per picture."""

    def __init__(self, sender: RTCRtpSender, on_ready: Callable[[], None] = lambda: None) -> None:
        self.sender = sender
        self.on_ready = on_ready
        self.codec: RTCRtpCodecParameters | None = None  # while the sender runs
        self.seq = random_sequence_number()
        self.origin = random32()
        self._tasks: set[asyncio.Task[None]] = set()
        sender._run_rtp = self._run  # type: ignore[method-assign]

    async def _run(self, codec: RTCRtpCodecParameters) -> None:
        s = self.sender
        self.codec = codec
        s._RTCRtpSender__rtp_started.set()  # type: ignore[attr-defined]
        self.on_ready()
        try:
            await asyncio.get_running_loop().create_future()  # until stop() cancels
        except asyncio.CancelledError:
            pass
        finally:
            self.codec = None
            if s.track is not None:
                s.track.stop()
            s._RTCRtpSender__rtp_exited.set()  # type: ignore[attr-defined]

    def send(self, payloads: list[bytes], timestamp: int) -> bool:
        """One picture's (or 20 ms of audio's) payloads, RTP time ``timestamp`` (the codec's
        clock, before this sender's offset): whether they went (the sender runs, DTLS is up)."""
        codec, s = self.codec, self.sender
        dtls = s.transport
        srtp = dtls._tx_srtp
        if codec is None or srtp is None or dtls.state != "connected":
            return False
        if not s._enabled:
            return True  # a disabled sender drops, as aiortc's does
        pt, ssrc = codec.payloadType or 0, s._ssrc
        ts = (self.origin + timestamp) & 0xFFFFFFFF
        ntp = clock.current_ntp_time()
        extensions = HeaderExtensions()
        extensions.abs_send_time = (ntp >> 14) & 0x00FFFFFF
        extensions.mid = s._RTCRtpSender__mid  # type: ignore[attr-defined]
        template = RtpPacket(payload_type=pt, timestamp=ts, ssrc=ssrc)
        template.extensions = extensions
        head = template.serialize(s._RTCRtpSender__rtp_header_extensions_map)  # type: ignore[attr-defined]
        first, rest = head[0], head[12:]
        history = s._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
        transmit = self._transmitter(dtls)
        last = len(payloads) - 1
        octets = sent = 0
        for i, payload in enumerate(payloads):
            seq = self.seq
            packet = RtpPacket(
                payload_type=pt, marker=int(i == last), sequence_number=seq, timestamp=ts, ssrc=ssrc
            )
            packet.payload, packet.extensions = payload, extensions
            history[seq % RTP_HISTORY_SIZE] = packet
            try:
                data = srtp.protect(
                    _HEADER.pack(first, (0x80 if i == last else 0) | pt, seq, ts, ssrc) + rest + payload
                )
                transmit(data)
            except (pylibsrtp.Error, OSError, RuntimeError):  # the connection is going away
                return False
            self.seq = (seq + 1) & 0xFFFF
            octets += len(payload)
            sent += len(data)
        s._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
        s._RTCRtpSender__rtp_timestamp = ts  # type: ignore[attr-defined]
        s._RTCRtpSender__octet_count += octets  # type: ignore[attr-defined]
        s._RTCRtpSender__packet_count += len(payloads)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__tx_bytes += sent  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__tx_packets += len(payloads)  # type: ignore[attr-defined]
        return True

    def _transmitter(self, dtls: Any) -> Callable[[bytes], None]:
        """The nominated pair's socket (host and server-reflexive candidates), or aiortc's path
        as a task (relayed candidates: aioice may wait for a TURN channel binding)."""
        pair = getattr(dtls.transport._connection, "_nominated", {}).get(1)
        protocol = pair.protocol if pair is not None else None
        if pair is not None and type(protocol) is aioice.ice.StunProtocol and protocol.transport is not None:
            udp, addr = protocol.transport, pair.remote_addr
            return lambda data: udp.sendto(data, addr)
        return lambda data: self._spawn(dtls.transport._send(data))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class PacketTrack(MediaStreamTrack):
    """Video out: a view's encoded pictures, cut into RTP payloads once for every subscriber
    (``legs.sip.cut_picture``) and sent at once (``out``, set when the offer is answered).
    After joining a view, or when the sender could not send, it waits for a keyframe (a decoder
    can start only there) and asks the view for one. ``packetisation``: "VP8" or "H264" (mode 1,
    as aiortc's)."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.packetisation = "VP8"
        self.out: RtpOut | None = None
        self._need_keyframe = True
        self._last_ts: int | None = None  # 90 kHz time of the last picture sent
        self._picture_id = random.getrandbits(15)
        self.on_keyframe_needed: Callable[[], None] = lambda: None
        self.packets_out = 0

    def push(self, packet: av.Packet) -> None:
        pts, tb = packet.pts, packet.time_base
        if pts is None or tb is None or self.out is None:
            return
        ts, pieces = cut_picture(self.packetisation, packet, pts, tb)
        if self._last_ts is not None and ts <= self._last_ts:
            # A new view's frame in the same time slot as the old view's last one: one RTP
            # timestamp must not carry two pictures, so wait for the next keyframe.
            if packet.is_keyframe:
                self.on_keyframe_needed()
            return
        if self._need_keyframe and not packet.is_keyframe:
            return
        if self.packetisation == "VP8":
            pieces = vp8_payloads(pieces, self._picture_id)
        if not self.out.send(pieces, ts):
            self._need_keyframe = True  # not connected yet: start at a keyframe once it is
            return
        if self.packetisation == "VP8":
            self._picture_id = (self._picture_id + 1) % (1 << 15)
        self._need_keyframe = False
        self._last_ts = ts
        self.packets_out += 1

    def restart(self) -> None:
        """A new view: start again at its next keyframe."""
        self._need_keyframe = True

    def ready(self) -> None:
        """The sender runs: a keyframe to start with."""
        self._need_keyframe = True
        self.on_keyframe_needed()

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


# REMB as libwebrtc's RembThrottler sends it: at most every 200 ms, unless the estimate falls by
# more than 3 %. aiortc sends one after every packet while its detector sees overuse.
REMB_INTERVAL_MS = 200
REMB_DROP = 0.97
# Packets a jitter buffer holds behind a gap before it gives up on it: video waits for NACKed
# retransmissions (about 0.5 s at 360p), audio (no NACK) little longer than a packet or two.
JITTER_PACKETS = {"video": 64, "audio": 4}


class Inbound:
    """One aiortc receiver's RTP (audio or video), taken over from aiortc at the packet (see the
    module docstring): ordered packets of the negotiated codecs go to ``on_packet``."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        on_packet: Callable[[RTCRtpCodecParameters, RtpPacket], None],
    ) -> None:
        self.receiver = receiver
        self.kind = kind
        self.on_packet = on_packet
        self.codecs: dict[int, RTCRtpCodecParameters] = {}
        self.rtx_pts: set[int] = set()
        self.rtx_ssrcs: dict[int, int] = {}  # RTX SSRC -> the SSRC it repairs
        # aiortc's per-SSRC statistics, from which its RTCP task sends receiver reports and
        # getStats() reports inbound-rtp (private: no public way to feed them).
        self.streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        self.jitter: dict[int, JitterBuffer[RtpPacket]] = {}
        self.nack = NackGenerator() if kind == "video" else None
        self.estimator = RemoteBitrateEstimator() if kind == "video" else None
        self.remb_sent: tuple[int, int] | None = None  # (arrival ms, bitrate) of the last REMB
        self.media_ssrc = 0  # the far end's SSRC of this kind (for PLI), once a packet came
        self._tasks: set[asyncio.Task[None]] = set()  # RTCP being sent
        self._receive = receiver.receive
        receiver.receive = self.receive  # type: ignore[method-assign]
        receiver._handle_rtp_packet = self.handle  # type: ignore[method-assign]

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        """aiortc's ``receive`` (start), noting the codecs and RTX SSRCs as aiortc does."""
        for codec in parameters.codecs:
            if codec.payloadType is not None:
                self.codecs[codec.payloadType] = codec
                if is_rtx(codec):
                    self.rtx_pts.add(codec.payloadType)
        for encoding in parameters.encodings:
            if encoding.rtx:
                self.rtx_ssrcs[encoding.rtx.ssrc] = encoding.ssrc
        await self._receive(parameters)
        # aiortc's ``receive`` starts a decoder thread that nothing feeds now: end it (its own
        # way, as ``stop()`` would; it ends the unused remote track too).
        self.receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]

    async def handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """The receiver's ``_handle_rtp_packet``: packets aiortc's DTLS transport routes here
        (until :class:`FastRtpIn` takes the socket, and for relayed candidates)."""
        self.handle_now(packet, arrival_time_ms)

    def handle_now(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """What ``RTCRtpReceiver._handle_rtp_packet`` does up to its jitter buffer (statistics,
        bandwidth estimate, RTX, NACK; the RTCP it sends goes out as a task), then our jitter
        buffer and the leg."""
        pt = packet.payload_type
        codec = self.codecs.get(pt)
        if codec is None:
            return
        stats = self.streams.get(packet.ssrc)
        if stats is None:
            stats = self.streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        if self.estimator is not None:
            sent_at = packet.extensions.abs_send_time
            if sent_at is not None:
                remb = self.estimator.add(
                    arrival_time_ms=arrival_time_ms,
                    abs_send_time=sent_at,
                    payload_size=len(packet.payload) + packet.padding_size,
                    ssrc=packet.ssrc,
                )
                if remb is not None:
                    self._remb(remb[0], remb[1], arrival_time_ms)
        if pt in self.rtx_pts:
            original = self.rtx_ssrcs.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if (
                original is None
                or len(packet.payload) < 2
                or not isinstance(apt, int)
                or apt not in self.codecs
            ):
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original)
            codec = self.codecs[apt]
        if self.nack is not None and self.nack.add(packet):
            self._spawn(self.receiver._send_rtcp_nack(packet.ssrc, sorted(self.nack.missing)))
        self.media_ssrc = packet.ssrc
        jb = self.jitter.get(packet.ssrc)
        if jb is None:
            jb = self.jitter[packet.ssrc] = JitterBuffer(capacity=JITTER_PACKETS[self.kind])
        on_packet = self.on_packet
        for p in jb.add(packet):
            on_packet(codec if p.payload_type == pt else self.codecs.get(p.payload_type, codec), p)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _remb(self, bitrate: int, ssrcs: list[int], now_ms: int) -> None:
        last = self.remb_sent
        if last is not None and now_ms - last[0] < REMB_INTERVAL_MS and bitrate >= REMB_DROP * last[1]:
            return
        rtcp_ssrc = self.receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        if rtcp_ssrc is None:
            return
        self.remb_sent = (now_ms, bitrate)
        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
        )
        self._spawn(self.receiver._send_rtcp(remb))

    def request_keyframe(self) -> bool:
        """A PLI to the far end (once its SSRC is known): whether one went."""
        if not self.media_ssrc:
            return False
        self._spawn(self.receiver._send_rtcp_pli(self.media_ssrc))
        return True


# The NTP epoch (1900) in Unix time: aiortc's clock.current_ms() counts from it.
NTP_OFFSET_S = 2208988800


class FastRtpIn:
    """SRTP media from the far end, taken at the ICE socket once DTLS is up. aiortc would try
    each datagram as STUN (an exception per RTP packet), queue it for its DTLS transport's task,
    wake that task and route the packet through three coroutines; here it is unprotected with
    the DTLS transport's own SRTP session, parsed and routed by aiortc's own code (its
    header-extension map and router) and handed to its :class:`Inbound` at once. Everything else
    (STUN, DTLS, RTCP, packets for a receiver not ours) takes aiortc's path. Hooks
    ``datagram_received`` of aioice's host and server-reflexive socket protocols (instance
    attributes: neither library has a public hook); relayed (TURN) candidates keep aiortc's
    path."""

    def __init__(self, dtls: Any, protocol: Any, inbound: dict[RTCRtpReceiver, Inbound]) -> None:
        self.dtls = dtls
        self.inbound = inbound
        self.packets = 0
        self._original = protocol.datagram_received
        protocol.datagram_received = self.datagram_received

    @classmethod
    def take(cls, dtls: Any, inbound: dict[RTCRtpReceiver, Inbound]) -> list[FastRtpIn]:
        connection = getattr(dtls.transport, "_connection", None)
        protocols = getattr(connection, "_protocols", [])
        return [cls(dtls, p, inbound) for p in protocols if type(p) is aioice.ice.StunProtocol]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        srtp = self.dtls._rx_srtp
        # SRTP (RFC 7983: first byte 128-191) but not SRTCP (RFC 5761: payload types 64-95).
        if srtp is None or len(data) < 12 or not 127 < data[0] < 192 or 192 <= data[1] <= 223:
            self._original(data, addr)
            return
        arrival_ms = int((time.time() + NTP_OFFSET_S) * 1000)  # aiortc's clock.current_ms()
        dtls = self.dtls  # its transport statistics, as its receive loop keeps them
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        try:
            packet = RtpPacket.parse(srtp.unprotect(data), dtls._rtp_header_extensions_map)
        except (pylibsrtp.Error, ValueError):
            return  # as aiortc does: a packet that does not authenticate or parse is dropped
        self.packets += 1
        inbound = self.inbound.get(dtls._rtp_router.route_rtp(packet))
        if inbound is not None:
            inbound.handle_now(packet, arrival_ms)


@dataclass
class LegCounters:
    video_frames_in: int = 0
    audio_frames_in: int = 0
    keyframe_requests: int = 0
    keyframe_requests_out: int = 0
    decode_errors: int = 0
    dropped: int = 0
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


class WebRtcLeg(VideoIntake):
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
        executor: Executor | None = None,
    ) -> None:
        self.pc = RTCPeerConnection(ice.configuration())
        self.video_out = PacketTrack()
        self.audio_out = AudioTrack()
        self.video_codec: str | None = None
        self.size_cap: tuple[int, int] | None = None
        self.counters: LegCounters = LegCounters()
        self._on_video = on_video
        self._on_audio = on_audio
        self._on_keyframe_request = on_keyframe_request
        self._on_failed = on_failed
        self._inbound: dict[str, Inbound] = {}
        self._video_in: VideoReceiver | None = None
        self._audio_in: dict[int, AudioDecoder] = {}
        self._decoder = DecodeWorker(executor, self._decoded, self._decode_wants_keyframe)
        self._last_pli = -1e9
        self._want_keyframe_until = 0.0
        self._fast_in: list[FastRtpIn] = []
        self._closed = False
        self.video_out.on_keyframe_needed = on_keyframe_request

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected" and not self._fast_in:
                self._take_sockets()
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
            if transceiver.kind not in self._inbound:
                on_packet = self._video_rtp if transceiver.kind == "video" else self._audio_rtp
                self._inbound[transceiver.kind] = Inbound(transceiver.receiver, transceiver.kind, on_packet)
            if transceiver.kind == "video" and transceiver.sender.track is None:
                self.pc.addTrack(self.video_out)
                self._hook_keyframes(transceiver.sender)
                self.video_out.out = RtpOut(transceiver.sender, on_ready=self.video_out.ready)
            elif transceiver.kind == "audio" and transceiver.sender.track is None:
                self.pc.addTrack(self.audio_out)
                self.audio_out.out = RtpOut(transceiver.sender)
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
                self.video_out.packetisation = self.video_codec or "VP8"
            elif media.kind == "audio" and media.rtp.codecs:
                c = media.rtp.codecs[0]
                name = c.mimeType.split("/")[-1].lower()
                if name in AUDIO_RATES:
                    self.audio_out.codec = Codec(
                        "audio", c.payloadType or 0, name, c.clockRate, c.channels or 1
                    )
        self.request_keyframe(force=True)
        return local

    def _take_sockets(self) -> None:
        """Media from here on by :class:`FastRtpIn` (every DTLS transport: one when bundled)."""
        inbound = {i.receiver: i for i in self._inbound.values()}
        for dtls in {
            id(t.receiver.transport): t.receiver.transport for t in self.pc.getTransceivers()
        }.values():
            self._fast_in += FastRtpIn.take(dtls, inbound)

    def _hook_keyframes(self, sender: RTCRtpSender) -> None:
        original = sender._send_keyframe

        def send_keyframe() -> None:
            original()
            self.counters.keyframe_requests += 1
            self._on_keyframe_request()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

    # --- in (the SIP leg's path, see the module docstring) ------------------------------------
    def _drop(self) -> None:
        self.counters.dropped += 1

    def _video_rtp(self, codec: RTCRtpCodecParameters, packet: RtpPacket) -> None:
        if self._closed:
            return
        rx = self._video_in
        if rx is None or rx.codec.pt != packet.payload_type:
            name = codec.name.upper()
            if name not in ("VP8", "H264"):
                self._drop()
                return
            rx = self._video_in = VideoReceiver(Codec("video", packet.payload_type, name, codec.clockRate))
        for data, broken in rx.assemble(packet):
            self._decoder.submit(rx, data, broken)
        if self._want_keyframe_until and rx.keyframes == 0 and time.monotonic() < self._want_keyframe_until:
            self.request_keyframe()

    def _audio_rtp(self, codec: RTCRtpCodecParameters, packet: RtpPacket) -> None:
        if self._closed:
            return
        pt = packet.payload_type
        dec = self._audio_in.get(pt)
        if dec is None:
            name = codec.name.lower()
            if name not in AUDIO_RATES:
                self._drop()
                return
            dec = self._audio_in[pt] = AudioDecoder(
                Codec("audio", pt, name, codec.clockRate, codec.channels or 1)
            )
        try:
            chunks = dec.decode(packet.payload)
        except Exception:  # a corrupt packet: nothing a peer sends may raise out of here
            self._drop()
            return
        for chunk in chunks:
            self.counters.audio_frames_in += 1
            self._on_audio(chunk)

    def request_keyframe(self, force: bool = False) -> None:
        """A PLI to the far end, at most once per ``PLI_INTERVAL``; ``force`` also keeps asking
        until a keyframe arrives (a new participant)."""
        now = time.monotonic()
        if force:
            self._want_keyframe_until = now + 10.0
        inbound = self._inbound.get("video")
        if self._closed or inbound is None or now - self._last_pli < PLI_INTERVAL:
            return
        if not inbound.request_keyframe():
            return  # no packet yet: nobody to ask
        self._last_pli = now
        self.counters.keyframe_requests_out += 1

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
            "keyframeRequestsSent": self.counters.keyframe_requests_out,
            "decodeErrors": self.counters.decode_errors,
            "packetsDropped": self.counters.dropped + self._decoder.dropped,
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
        await self.pc.close()
