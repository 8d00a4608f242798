"""Every hook of vdx into private parts of aiortc and aioice, written for the versions below.

aiortc has no public API for encoded media, so a WebRTC leg takes its RTP over at the packet, on
the objects of its own peer connection (never the classes: other peer connections in the process
keep aiortc's path). In: :class:`FastRtpIn` takes SRTP at the ICE socket once DTLS is up and hands
it to :class:`Inbound`, which does what ``RTCRtpReceiver._handle_rtp_packet`` does up to its
jitter buffer. Out: :class:`RtpOut` sends a picture's payloads at once instead of aiortc's send
task. The hooks read and write private attributes whose names and meaning change between
releases, so importing this module under other versions raises ImportError instead of misbehaving.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import struct
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any

import aioice.ice
import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender, clock
from aiortc.codecs import is_rtx
from aiortc.codecs.h264 import H264Encoder
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    HeaderExtensions,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
)
from aiortc.utils import random32

from vdx.legs.link_feedback import LinkReport, NackedShare, SendRate
from vdx.sip.rtp import JitterBuffer

# package -> [lowest, highest) release the hooks were written for.
SUPPORTED: dict[str, tuple[str, str]] = {"aiortc": ("1.16", "1.17"), "aioice": ("0.13", "0.14")}


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def check_version(package: str, installed: str, supported: tuple[str, str]) -> None:
    """Raise ImportError unless ``installed`` lies in ``supported`` ([lowest, highest)): the hooks
    below would silently break, or corrupt media, on a release they were not written for."""
    low, high = supported
    if not _release(low) <= _release(installed) < _release(high):
        raise ImportError(
            f"vdx.legs.aiortc_hooks was written for {package}>={low},<{high}, but {package} "
            f"{installed} is installed: install a supported {package}, or port the hooks "
            f"(vdx/legs/aiortc_hooks.py) to {installed} and update SUPPORTED"
        )


for _package, _supported in SUPPORTED.items():
    check_version(_package, importlib.metadata.version(_package), _supported)


def replace_host_addresses(addresses: list[str]) -> None:
    """Make aioice gather host candidates on ``addresses`` only: it has no setting for it, so its
    ``get_host_addresses`` is replaced, process-wide."""
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses  # type: ignore[assignment]


# aiortc's H.264 bitstream splitter and RFC 6184 mode 1 packetiser (STAP-A/FU-A), private
# methods of its encoder: the node packetises pictures encoded once for every subscriber.
h264_nal_units: Callable[[bytes], Iterator[bytes]] = H264Encoder._split_bitstream
h264_mode1_payloads: Callable[[Iterable[bytes]], list[bytes]] = H264Encoder._packetize


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` on each PLI/FIR the far end sends about ``sender``'s stream: aiortc only
    sets a flag for its own encoder (``RTCRtpSender._send_keyframe``), so that method is wrapped
    on the instance."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def on_feedback(sender: RTCRtpSender, out: RtpOut, callback: Callable[[LinkReport], None]) -> None:
    """Call ``callback`` with each receiver report block, REMB and NACK the far end sends about
    ``sender``'s stream (sent by ``out``): aiortc keeps only statistics of the first, hands the
    second to its own encoder and only resends for the third, so
    ``RTCRtpSender._handle_rtcp_packet`` is wrapped on the instance."""
    original = sender._handle_rtcp_packet
    sending_bps = out.rate.bps

    async def handle(packet: Any) -> None:
        await original(packet)
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if packet.media_ssrc == sender._ssrc:
                nacked = out.nacks.named(packet.lost, time.monotonic())
                callback(LinkReport(sending_bps(), nacked=nacked, renacked=out.nacks.count))
        elif isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for block in packet.reports:
                if block.ssrc == sender._ssrc:
                    callback(LinkReport(sending_bps(), fraction_lost=block.fraction_lost / 256))
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if sender._ssrc in ssrcs:
                callback(LinkReport(sending_bps(), estimate_bps=bitrate))

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


_HEADER = struct.Struct("!BBHII")


# A jump past libwebrtc's longest NACK list (1000) and twice aiortc's video jitter buffer (512):
# both start again at the next keyframe.
SEQUENCE_SKIP = 1100


class RtpOut:
    """A sender's RTP, sent at once when the view or the mixer hands payloads over, instead of
    aiortc's send task (which would cut each picture again per sender and wake per packet).
    ``RTCRtpSender._run_rtp`` is replaced on the instance and only marks the sender started and
    stopped; what aiortc's other sender code reads is kept up: the NACK history, the counters of
    its sender reports and ``getStats``, the events ``stop()`` waits for."""

    def __init__(self, sender: RTCRtpSender, on_ready: Callable[[], None] = lambda: None) -> None:
        self.sender = sender
        self.on_ready = on_ready
        self.codec: RTCRtpCodecParameters | None = None  # while the sender runs
        self.seq = random_sequence_number()
        self.origin = random32()
        self.rate = SendRate()  # what went out lately, beside the far end's feedback on it
        self.nacks = NackedShare()  # of what it sent: the far end's NACKs, as a share
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
        self.rate.add(sent)
        self.nacks.sent((self.seq - len(payloads)) & 0xFFFF, len(payloads), time.monotonic())
        s._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
        s._RTCRtpSender__rtp_timestamp = ts  # type: ignore[attr-defined]
        s._RTCRtpSender__octet_count += octets  # type: ignore[attr-defined]
        s._RTCRtpSender__packet_count += len(payloads)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__tx_bytes += sent  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__tx_packets += len(payloads)  # type: ignore[attr-defined]
        return True

    def skip(self) -> None:
        """Jump the sequence numbers past every hole the link left: libwebrtc then drops its
        NACK list and decodes from our next keyframe, and aiortc's in-order jitter buffer starts
        afresh instead of waiting for packets of a picture nobody needs any more; nor are they
        resent, and NACKs of them no longer count as loss."""
        self.nacks.forget()
        self.sender._RTCRtpSender__rtp_history.clear()  # type: ignore[attr-defined]
        self.seq = (self.seq + SEQUENCE_SKIP) & 0xFFFF

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


# REMB as libwebrtc's RembThrottler sends it: at most every 200 ms, unless the estimate falls by
# more than 3 %. aiortc sends one after every packet while its detector sees overuse.
REMB_INTERVAL_MS = 200
REMB_DROP = 0.97
# Packets a jitter buffer holds behind a gap before it gives up on it: video waits for NACKed
# retransmissions, audio (no NACK) hardly at all.
JITTER_PACKETS = {"video": 64, "audio": 4}


class Inbound:
    """One aiortc receiver's RTP (audio or video), taken over at the packet: aiortc's receiver
    statistics, NACK, RTX and bandwidth estimate (REMB throttled as libwebrtc throttles it) are
    kept up, and ordered packets of the negotiated codecs go to ``on_packet``."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        on_packet: Callable[[RtpPacket], None],
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
            repaired = self._unwrap_rtx(packet, codec)
            if repaired is None:
                return
            packet = repaired
        if self.nack is not None and self.nack.add(packet):
            self._spawn(self.receiver._send_rtcp_nack(packet.ssrc, sorted(self.nack.missing)))
        self.media_ssrc = packet.ssrc
        jb = self.jitter.get(packet.ssrc)
        if jb is None:
            jb = self.jitter[packet.ssrc] = JitterBuffer(capacity=JITTER_PACKETS[self.kind])
        on_packet = self.on_packet
        for p in jb.add(packet):
            on_packet(p)

    def _unwrap_rtx(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> RtpPacket | None:
        """An RTX packet (RFC 4588) as the packet it repairs, or None if it cannot be."""
        original = self.rtx_ssrcs.get(packet.ssrc)
        apt = codec.parameters.get("apt")
        if original is None or len(packet.payload) < 2 or not isinstance(apt, int) or apt not in self.codecs:
            return None
        return unwrap_rtx(packet, payload_type=apt, ssrc=original)

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
    """SRTP media from the far end, taken at the ICE socket once DTLS is up (``datagram_received``
    of aioice's host and server-reflexive protocols, on the instance), unprotected, parsed and
    routed with the DTLS transport's own session, extension map and router, and handed to its
    :class:`Inbound` at once: aiortc would try each datagram as STUN and wake a task per packet.
    Everything else (STUN, DTLS, RTCP, relayed candidates, other receivers) keeps aiortc's path."""

    def __init__(self, dtls: Any, protocol: Any, inbound: dict[RTCRtpReceiver, Inbound]) -> None:
        self.dtls = dtls
        self.inbound = inbound
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
        inbound = self.inbound.get(dtls._rtp_router.route_rtp(packet))
        if inbound is not None:
            inbound.handle_now(packet, arrival_ms)


def fast_rtp_in(pc: RTCPeerConnection, inbound: Iterable[Inbound]) -> list[FastRtpIn]:
    """Media of ``pc`` from here on by :class:`FastRtpIn` (on every DTLS transport: one when
    bundled), for the receivers of ``inbound``."""
    by_receiver = {i.receiver: i for i in inbound}
    transports = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}
    return [fast for dtls in transports.values() for fast in FastRtpIn.take(dtls, by_receiver)]
