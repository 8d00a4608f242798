"""RTP/RTCP endpoints of a SIP leg: bound UDP ports from ``VDX_RTP_PORTS``, SDES-SRTP, packet
counting, jitter buffering, DTMF detection, keyframe-request parsing and retransmission of the
video packets the far end reports lost (generic NACK, RFC 4585 section 6.2.1).

This is the media seam the MCU attaches to: :class:`RtpEndpoint` hands ordered RTP packets to
``on_rtp`` and keyframe requests to ``on_keyframe_request``; ``send_rtp``/``send_rtcp`` go to the far
end (symmetric RTP: once a packet arrives, replies go to where it came from, which keeps room
systems behind NAT reachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import pylibsrtp

from . import rtcp
from .dtmf import DtmfDetector
from .rtp import JitterBuffer, RtpError, RtpPacket, is_rtcp
from .sdp import NegotiatedStream

log = logging.getLogger("vdx.sip.media")

# Video packets kept for retransmission: a few hundred milliseconds of HD, longer than any NACK
# worth answering takes to arrive (a later one is for a picture already replaced).
HISTORY = 512
# At most this many packets are resent per NACK, and each at most once per interval: a NACK
# cannot make this node send much more than it sent (RFC 4585 section 3.1).
MAX_RESENT_PER_NACK = 64
RESEND_INTERVAL_S = 0.05

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


def parse_port_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    lo, hi = int(low), int(high or low)
    if not 1024 <= lo <= hi <= 65535:
        raise ValueError(f"bad RTP port range {text!r}")
    return lo, hi


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, receive: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.receive = receive
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            self.receive(data, (str(addr[0]), int(addr[1])))
        except Exception:
            log.exception("error handling a media packet")


@dataclass
class EndpointStats:
    rtp_packets: int = 0
    rtp_bytes: int = 0
    bad_packets: int = 0
    by_payload_type: dict[int, int] = field(default_factory=dict)
    keyframe_requests: int = 0
    # What the far end lost of ours: the cumulative count in its latest report block (RFC 3550 6.4)
    remote_packets_lost: int = 0
    nacks: int = 0  # NACK messages the far end sent
    retransmitted: int = 0  # packets sent again for them


class RtpEndpoint:
    """One m-line's RTP + RTCP sockets (RTCP on port+1, or muxed when negotiated)."""

    def __init__(self, host: str, rtp: _Socket, rtcp_sock: _Socket, port: int) -> None:
        self.host = host
        self.port = port
        self._rtp = rtp
        self._rtcp = rtcp_sock
        self.stream: NegotiatedStream | None = None
        self._dtmf_pt: int | None = None  # the stream's telephone-event type, read per packet
        self.stats = EndpointStats()
        self.remote_rtp: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self._latched = False
        self._jitter: dict[int, JitterBuffer[RtpPacket]] = {}
        self._dtmf = DtmfDetector()
        self._srtp_in: pylibsrtp.Session | None = None
        self._srtp_out: pylibsrtp.Session | None = None
        # seq % HISTORY -> (seq, the packet as sent, when last resent): resent byte for byte, so
        # an SRTP packet keeps its index and needs no second protection
        self._history: list[tuple[int, bytes, float] | None] = [None] * HISTORY
        self.on_rtp: Callable[[RtpPacket], None] | None = None
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_keyframe_request: Callable[[], None] | None = None
        self.on_rtcp: Callable[[rtcp.RtcpMessage], None] | None = None
        # When the far end last showed life (a valid RTP or RTCP packet; monotonic clock).
        self.last_received = time.monotonic()
        rtp.receive = self._on_rtp_datagram
        rtcp_sock.receive = self._on_rtcp_datagram

    def configure(self, stream: NegotiatedStream) -> None:
        """Apply a (re-)negotiation: remote address, payload types, SRTP keys."""
        self.stream = stream
        self._dtmf_pt = stream.dtmf_pt
        if stream.remote_address and stream.remote_port and not self._latched:
            self.remote_rtp = (stream.remote_address, stream.remote_port)
            rport = (
                stream.remote_port if stream.rtcp_mux else stream.remote_rtcp_port or stream.remote_port + 1
            )
            self.remote_rtcp = (stream.remote_address, rport)
        if stream.srtp_suite and stream.srtp_remote_key and stream.srtp_local_key:
            profile = _PROFILES[stream.srtp_suite]
            self._srtp_in = pylibsrtp.Session(
                pylibsrtp.Policy(
                    stream.srtp_remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
                )
            )
            self._srtp_out = pylibsrtp.Session(
                pylibsrtp.Policy(
                    stream.srtp_local_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
                )
            )
        else:
            self._srtp_in = self._srtp_out = None

    def _on_rtp_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if is_rtcp(data):
            self._on_rtcp_datagram(data, addr)
            return
        if self._srtp_in is not None:
            try:
                data = self._srtp_in.unprotect(data)
            except pylibsrtp.Error:
                self.stats.bad_packets += 1
                return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.stats.bad_packets += 1
            return
        if not self._latched:
            self._latch(addr)
        self.last_received = time.monotonic()
        self.stats.rtp_packets += 1
        self.stats.rtp_bytes += len(data)
        pt = packet.payload_type
        self.stats.by_payload_type[pt] = self.stats.by_payload_type.get(pt, 0) + 1
        dtmf_pt = self._dtmf_pt
        if pt == dtmf_pt:
            self._on_telephone_event(packet)
        # Telephone-events share the voice's SSRC and sequence numbers, so they pass the jitter
        # buffer too (and are dropped when released): leaving them out would make gaps that
        # stall the voice behind them.
        jb = self._jitter.get(packet.ssrc)
        if jb is None:
            jb = self._jitter[packet.ssrc] = JitterBuffer[RtpPacket]()
        for p in jb.add(packet):
            if p.payload_type != dtmf_pt and self.on_rtp is not None:
                self.on_rtp(p)

    def _latch(self, addr: tuple[str, int]) -> None:
        """Symmetric RTP: replies go where the first packet came from (room systems behind NAT)."""
        self._latched = True
        self.remote_rtp = addr
        if self.stream is not None and self.stream.rtcp_mux:
            self.remote_rtcp = addr

    def _on_telephone_event(self, packet: RtpPacket) -> None:
        digit = self._dtmf.feed(packet.timestamp, packet.payload)
        if digit is not None and self.on_dtmf is not None:
            self.on_dtmf(digit)

    def _on_rtcp_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._srtp_in is not None:
            try:
                data = self._srtp_in.unprotect_rtcp(data)
            except pylibsrtp.Error:
                self.stats.bad_packets += 1
                return
        try:
            messages = rtcp.parse(data)
        except rtcp.RtcpError:
            self.stats.bad_packets += 1
            return
        self.remote_rtcp = addr
        self.last_received = time.monotonic()
        for m in messages:
            if isinstance(m, rtcp.SenderReport | rtcp.ReceiverReport) and m.reports:
                self.stats.remote_packets_lost = sum(max(0, b.packets_lost) for b in m.reports)
            if isinstance(m, rtcp.Nack):
                self._resend(m.lost)
            if isinstance(m, rtcp.Pli | rtcp.Fir):
                self.keyframe_requested()
            if self.on_rtcp is not None:
                self.on_rtcp(m)

    def keyframe_requested(self) -> None:
        """The far end wants a fresh picture (PLI, FIR, or a SIP INFO picture_fast_update)."""
        self.stats.keyframe_requests += 1
        if self.on_keyframe_request is not None:
            self.on_keyframe_request()

    @property
    def packets_lost(self) -> int:
        """Sequence numbers the jitter buffers gave up on: what we lost of theirs."""
        return sum(jb.lost for jb in self._jitter.values())

    def send_rtp(self, packet: RtpPacket) -> None:
        if self.remote_rtp is None or self._rtp.transport is None or self._rtp.transport.is_closing():
            return  # not yet latched, or the call has ended (the mixer may still push a chunk)
        if self.stream is not None and self.stream.direction in ("recvonly", "inactive"):
            return  # on hold: RFC 3264 §8.4
        data = packet.serialise()
        if self._srtp_out is not None:
            data = self._srtp_out.protect(data)
        self._rtp.transport.sendto(data, self.remote_rtp)
        if self.stream is not None and self.stream.kind == "video":
            seq = packet.sequence_number & 0xFFFF
            self._history[seq % HISTORY] = (seq, data, -RESEND_INTERVAL_S)

    def forget_sent(self) -> None:
        """Resend nothing sent so far (a layer the receiver's link could not carry)."""
        self._history = [None] * HISTORY

    def _resend(self, lost: list[int]) -> None:
        """Send again the packets a NACK names that are still kept (video only; audio is not
        worth a round trip)."""
        self.stats.nacks += 1
        transport = self._rtp.transport
        if self.remote_rtp is None or transport is None or transport.is_closing():
            return
        now = time.monotonic()
        for seq in lost[:MAX_RESENT_PER_NACK]:
            kept = self._history[seq % HISTORY]
            if kept is None or kept[0] != seq or now - kept[2] < RESEND_INTERVAL_S:
                continue
            transport.sendto(kept[1], self.remote_rtp)
            self._history[seq % HISTORY] = (seq, kept[1], now)
            self.stats.retransmitted += 1

    def send_rtcp(self, messages: list[rtcp.RtcpMessage]) -> None:
        if self.remote_rtcp is None:
            return
        data = rtcp.build_compound(messages)
        if self._srtp_out is not None:
            data = self._srtp_out.protect_rtcp(data)
        sock = self._rtp if self.stream is not None and self.stream.rtcp_mux else self._rtcp
        if sock.transport is not None and not sock.transport.is_closing():
            sock.transport.sendto(data, self.remote_rtcp)

    def close(self) -> None:
        for s in (self._rtp, self._rtcp):
            if s.transport is not None:
                s.transport.close()


class PortAllocator:
    """Binds RTP/RTCP port pairs (even, odd) inside the configured range."""

    def __init__(self, host: str, port_range: str) -> None:
        self.host = host
        self.low, self.high = parse_port_range(port_range)
        self._next = self.low + (self.low % 2)

    async def allocate(self) -> RtpEndpoint:
        loop = asyncio.get_running_loop()
        span = (self.high - self.low + 1) // 2
        for _ in range(max(span, 1)):
            port = self._next
            self._next += 2
            if self._next + 1 > self.high:
                self._next = self.low + (self.low % 2)
            rtp_t = rtcp_t = None
            try:
                rtp_t, rtp_p = await loop.create_datagram_endpoint(
                    lambda: _Socket(lambda d, a: None), local_addr=(self.host, port)
                )
                rtcp_t, rtcp_p = await loop.create_datagram_endpoint(
                    lambda: _Socket(lambda d, a: None), local_addr=(self.host, port + 1)
                )
            except OSError:
                for t in (rtp_t, rtcp_t):
                    if t is not None:
                        t.close()
                continue
            return RtpEndpoint(self.host, rtp_p, rtcp_p, port)
        raise OSError("no free RTP port pair in the configured range")


class MediaSession:
    """All endpoints of one call, keyed by m-line index."""

    def __init__(self, allocator: PortAllocator) -> None:
        self.allocator = allocator
        self.endpoints: dict[int, RtpEndpoint] = {}

    async def ports_for(self, count: int) -> dict[int, int]:
        for i in range(count):
            if i not in self.endpoints:
                self.endpoints[i] = await self.allocator.allocate()
        return {i: ep.port for i, ep in self.endpoints.items() if i < count}

    def apply(self, streams: list[NegotiatedStream]) -> None:
        for s in streams:
            ep = self.endpoints.get(s.index)
            if ep is not None:
                ep.configure(s)

    @property
    def last_received(self) -> float | None:
        """When any endpoint last received valid RTP or RTCP (monotonic clock); None without any."""
        return max((ep.last_received for ep in self.endpoints.values()), default=None)

    def endpoint(self, kind: str) -> RtpEndpoint | None:
        """The endpoint of the main stream of a kind (never the presentation stream)."""
        for ep in self.endpoints.values():
            if ep.stream is not None and ep.stream.kind == kind and ep.stream.content is None:
                return ep
        return None

    @property
    def content_endpoint(self) -> RtpEndpoint | None:
        """The endpoint of the presentation stream (``a=content:slides``), when one was accepted."""
        for ep in self.endpoints.values():
            if ep.stream is not None and ep.stream.content is not None:
                return ep
        return None

    def close(self) -> None:
        for ep in self.endpoints.values():
            with contextlib.suppress(Exception):
                ep.close()
        self.endpoints.clear()
