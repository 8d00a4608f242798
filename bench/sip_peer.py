"""A scripted SIP participant for benchmarks: plain SIP over UDP and plain RTP, nothing else.

The cheapest, most controlled participant there is: an INVITE with an audio (PCMU) and
optionally a video (VP8 or H.264 packetization-mode 1) offer, ``a=rtcp-mux`` so one socket per
stream carries everything, an ACK, and a BYE at the end. Media it sends are prepared beforehand
(pre-encoded video pictures, PCM chunks) and paced by the clock; every RTP packet it receives is
stamped with its arrival time (``time.monotonic()``) and, when asked, decoded with the same
depacketizer and decoders the node uses (``vdx.legs.video_decoding``, ``vdx.legs.audio_codecs``),
so what it measures is decoded pictures and sound, not bytes.

Media can also run peer to peer (``connect_direct``), with the same code on both ends: the
loopback baseline for latency measurements. It can be dialled too (``answer``): a room's dial-out
reaches it at ``sip_port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from vdx.conference.views import VideoEncoder
from vdx.legs.audio_codecs import AudioDecoder, AudioEncoder
from vdx.legs.pcm import CHUNK_SAMPLES, Pcm
from vdx.legs.video_decoding import VideoReceiver
from vdx.sip.message import SipRequest, SipResponse, SipUri, parse_message
from vdx.sip.rtp import RtpError, RtpPacket, is_rtcp
from vdx.sip.sdp import Codec, SessionDescription

PCMU = Codec(kind="audio", pt=0, name="PCMU", clock_rate=8000)
VIDEO_PT = {"VP8": 100, "H264": 102}
H264_FMTP = "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1"


def video_codec(name: str) -> Codec:
    if name not in VIDEO_PT:
        raise ValueError(f"video codec {name!r}: VP8 or H264")
    return Codec(
        kind="video",
        pt=VIDEO_PT[name],
        name=name,
        clock_rate=90000,
        fmtp=H264_FMTP if name == "H264" else "",
        remote_fmtp=H264_FMTP if name == "H264" else "",
    )


def sip_request(
    method: str,
    target: str,
    *,
    port: int,
    call_id: str,
    cseq: int,
    tag: str,
    to_tag: str | None = None,
    user: str = "bench",
    display: str | None = None,
    user_agent: str = "vdx-bench",
    branch: str | None = None,
    body: str = "",
) -> bytes:
    """A request of a benchmark's SIP client on 127.0.0.1:``port`` (UDP) to ``target``
    (user@domain, the request URI and To); a body is SDP. ``branch``: a new transaction's unless
    given (an ACK of a non-2xx answer reuses the INVITE's)."""
    to = f"<sip:{target}>" + (f";tag={to_tag}" if to_tag else "")
    sender = (f'"{display}" ' if display else "") + f"<sip:{user}@127.0.0.1>;tag={tag}"
    head = (
        f"{method} sip:{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch or 'z9hG4bK' + secrets.token_hex(8)};rport\r\n"
        f"From: {sender}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\nUser-Agent: {user_agent}\r\n"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()


def encode_clip(codec: str, frames: Iterable[av.VideoFrame], fps: int) -> list[bytes]:
    """Pictures encoded once (the node's own encoder settings; the first is a keyframe): what a
    participant replays, so sending costs no encoding."""
    out: list[bytes] = []
    enc: VideoEncoder | None = None
    for i, frame in enumerate(frames):
        enc = enc or VideoEncoder(codec, frame.width, frame.height, fps)
        packets = enc.encode(frame, i, keyframe=i == 0)
        if len(packets) != 1:
            raise RuntimeError(f"{codec}: picture {i} encoded to {len(packets)} packets (want 1: no lag)")
        out.append(bytes(packets[0]))
    return out


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, receive: Callable[[bytes, float], None]) -> None:
        self.receive = receive
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.receive(data, time.monotonic())


async def _bind(receive: Callable[[bytes, float], None]) -> _Socket:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(lambda: _Socket(receive), local_addr=("127.0.0.1", 0))
    return proto


class RtpStream:
    """One m-line: a UDP socket (RTP and muxed RTCP), our outgoing sequence, and the far end."""

    def __init__(self, sock: _Socket, codec: Codec) -> None:
        self.sock = sock
        self.codec = codec
        self.remote: tuple[str, int] | None = None
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.packets_in = 0
        self.packets_out = 0
        self.first_packet_at: float | None = None
        self.first_sent_at: float | None = None

    @property
    def port(self) -> int:
        assert self.sock.transport is not None
        return int(self.sock.transport.get_extra_info("sockname")[1])

    def send(self, payload: bytes, timestamp: int, marker: bool) -> None:
        if self.remote is None or self.sock.transport is None:
            return
        packet = RtpPacket(self.codec.pt, self.seq, timestamp & 0xFFFFFFFF, self.ssrc, payload, marker)
        self.sock.transport.sendto(packet.serialise(), self.remote)
        if self.first_sent_at is None:
            self.first_sent_at = time.monotonic()
        self.seq = (self.seq + 1) & 0xFFFF
        self.packets_out += 1

    def close(self) -> None:
        if self.sock.transport is not None:
            self.sock.transport.close()


@dataclass
class CallTimes:
    """Monotonic times of one call's signalling."""

    invite: float = 0.0  # ours left (dialled: theirs arrived)
    provisional: float | None = None  # the first 1xx
    answered: float | None = None  # the 200 OK (dialled: the ACK of ours)
    status: int = 0
    redirects: int = 0  # 3xx answers followed on the way


@dataclass
class Received:
    """What came back, stamped with arrival times: decoded pictures (or just their mean luma)
    and decoded 48 kHz sound, chunk by chunk."""

    luma: list[tuple[float, float]] = field(default_factory=list)  # (arrival, mean Y of the picture)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    first_picture_at: float | None = None
    audio: list[tuple[float, Pcm]] = field(default_factory=list)  # (arrival, 20 ms at 48 kHz)
    video_packets: int = 0
    audio_packets: int = 0


def mean_luma(frame: av.VideoFrame) -> float:
    y = frame.to_ndarray(format="gray")
    return float(y.mean())


class SipPeer:
    """A SIP participant on 127.0.0.1. ``decode``: decode what comes back (pictures to mean luma,
    sound to PCM) rather than only counting packets."""

    def __init__(
        self,
        sip_port: int,
        number: str,
        video: str | None = "VP8",
        decode: bool = False,
        domain: str = "bench.vdx",
    ) -> None:
        self.server = ("127.0.0.1", sip_port)
        self.number = number
        self.domain = domain
        self.video_name = video
        self.decode = decode
        self.call_id = secrets.token_hex(8)
        self.tag = secrets.token_hex(4)
        self.to_tag: str | None = None
        self.cseq = 0
        self.times = CallTimes()
        self.received = Received()
        self.sip: _Socket | None = None
        self.audio: RtpStream | None = None
        self.video: RtpStream | None = None
        self._responses: asyncio.Queue[SipResponse] = asyncio.Queue()
        self._invites: asyncio.Queue[SipRequest] = asyncio.Queue()
        self._acked = asyncio.Event()
        self._video_rx: VideoReceiver | None = None
        self._audio_rx: AudioDecoder | None = None
        self.on_keyframe_request: Callable[[], None] = lambda: None
        self.ended = False

    # --- sockets ---------------------------------------------------------------------------
    async def open(self) -> SipPeer:
        self.sip = await _bind(self._on_sip)
        self.audio = RtpStream(await _bind(self._on_audio), PCMU)
        if self.video_name is not None:
            self.video = RtpStream(await _bind(self._on_video), video_codec(self.video_name))
            if self.decode:
                self._video_rx = VideoReceiver(self.video.codec)
        if self.decode:
            self._audio_rx = AudioDecoder(PCMU)
        return self

    def connect_direct(self, other: SipPeer) -> None:
        """Media straight to another peer, no node in between (the loopback baseline)."""
        assert self.audio and other.audio
        self.audio.remote = ("127.0.0.1", other.audio.port)
        if self.video and other.video:
            self.video.remote = ("127.0.0.1", other.video.port)

    def _on_audio(self, data: bytes, at: float) -> None:
        if is_rtcp(data):
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        if packet.payload_type != PCMU.pt:
            return
        rx = self.received
        rx.audio_packets += 1
        assert self.audio is not None
        if self.audio.first_packet_at is None:
            self.audio.first_packet_at = at
        if self._audio_rx is not None:
            for chunk in self._audio_rx.decode(packet.payload):
                rx.audio.append((at, chunk))

    def _on_video(self, data: bytes, at: float) -> None:
        if is_rtcp(data):
            # PSFB (206) FMT 1 = PLI, FMT 4 = FIR: the node wants a keyframe.
            if len(data) > 1 and data[1] == 206 and data[0] & 0x1F in (1, 4):
                self.on_keyframe_request()
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        assert self.video is not None
        if packet.payload_type != self.video.codec.pt:
            return
        rx = self.received
        rx.video_packets += 1
        if self.video.first_packet_at is None:
            self.video.first_packet_at = at
        if self._video_rx is not None:
            frames, _ = self._video_rx.feed(packet)
            for frame in frames:
                if rx.first_picture_at is None:
                    rx.first_picture_at = at
                rx.sizes.add((frame.width, frame.height))
                rx.luma.append((at, mean_luma(frame)))

    # --- SIP -------------------------------------------------------------------------------
    def _on_sip(self, data: bytes, at: float) -> None:
        try:
            msg = parse_message(data)
        except ValueError:
            return
        if isinstance(msg, SipResponse):
            if msg.cseq[1] == "INVITE" and msg.status < 200 and self.times.provisional is None:
                self.times.provisional = at
            if msg.cseq[1] == "INVITE" and 200 <= msg.status < 300:
                self.times.answered = at
            self._responses.put_nowait(msg)
        elif isinstance(msg, SipRequest):
            if msg.method == "BYE":
                self.ended = True
            if msg.method == "INVITE" and self.to_tag is None:
                self.times.invite = at
                self._invites.put_nowait(msg)
            elif msg.method == "ACK":
                self.times.answered = self.times.answered or at
                self._acked.set()
            else:
                self._reply_ok(msg)

    def _reply_ok(self, req: SipRequest) -> None:
        lines = ["SIP/2.0 200 OK"]
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            lines += [f"{name}: {v}" for v in req.get_all(name)]
        self._send(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())

    def _send(self, data: bytes) -> None:
        assert self.sip is not None and self.sip.transport is not None
        self.sip.transport.sendto(data, self.server)

    def _request(
        self, method: str, body: str = "", cseq: int | None = None, branch: str | None = None
    ) -> bytes:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        assert self.sip is not None and self.sip.transport is not None
        return sip_request(
            method,
            f"{self.number}@{self.domain}",
            port=self.sip.transport.get_extra_info("sockname")[1],
            call_id=self.call_id,
            cseq=cseq,
            tag=self.tag,
            to_tag=self.to_tag,
            branch=branch,
            body=body,
        )

    def offer(self) -> str:
        assert self.audio is not None
        sdp = (
            f"v=0\r\no=bench {random.getrandbits(31)} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
            f"t=0 0\r\nm=audio {self.audio.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\na=sendrecv\r\n"
        )
        if self.video is not None:
            c = self.video.codec
            sdp += (
                f"m=video {self.video.port} RTP/AVPF {c.pt}\r\na=rtpmap:{c.pt} {c.name}/90000\r\n"
                + (f"a=fmtp:{c.pt} {c.fmtp}\r\n" if c.fmtp else "")
                + f"a=rtcp-fb:{c.pt} nack pli\r\na=rtcp-fb:{c.pt} ccm fir\r\na=rtcp-mux\r\na=sendrecv\r\n"
            )
        return sdp

    async def call(self, deadline_s: float = 15.0, follow: int = 2) -> CallTimes:
        """INVITE, wait for the final answer, ACK it; media go to the ports the answer names.
        A 3xx is followed to its Contact (a cluster node that does not host the room sends the
        caller on), up to ``follow`` times, within the same ``times``. Raises on a refusal (the
        status is in ``times``)."""
        if self.sip is None:
            await self.open()
        body = self.offer()
        self.times = CallTimes(invite=time.monotonic())
        self._send(self._request("INVITE", body))
        deadline = time.monotonic() + deadline_s
        while True:
            resp = await asyncio.wait_for(self._responses.get(), max(0.01, deadline - time.monotonic()))
            if resp.cseq != (self.cseq, "INVITE") or resp.status < 200:
                continue
            self.times.status = resp.status
            self.to_tag = resp.to.tag
            if resp.status < 300:
                self._send(self._request("ACK", cseq=self.cseq))
                break
            # a non-2xx answer is acknowledged in the INVITE's own transaction (its branch)
            branch = resp.vias[0].branch if resp.vias else None
            self._send(self._request("ACK", cseq=self.cseq, branch=branch))
            contact = resp.get("Contact")
            if resp.status >= 400 or follow <= 0 or not contact:
                raise RuntimeError(f"call to {self.number} refused: {resp.status} {resp.reason}")
            target = SipUri.parse(contact.strip().split(">", 1)[0].lstrip("<"))
            follow -= 1
            self.times.redirects += 1
            self.server = (target.host, target.port or 5060)
            self.to_tag = None
            self._send(self._request("INVITE", body))
        answer = SessionDescription.parse(resp.body)
        for media in answer.media:
            addr = answer.address_for(media) or "127.0.0.1"
            stream = self.audio if media.kind == "audio" else self.video
            if stream is not None and media.port:
                stream.remote = (addr, media.port)
        return self.times

    @property
    def sip_port(self) -> int:
        assert self.sip is not None and self.sip.transport is not None
        port: int = self.sip.transport.get_extra_info("sockname")[1]
        return port

    async def answer(self, deadline_s: float = 15.0) -> CallTimes:
        """Be dialled: answer the next INVITE with 200 and our media (its offer names the node's
        ports), and wait for the ACK. ``times.invite`` is the INVITE's arrival, ``answered`` the
        ACK's; a BYE from us later ends the call (the dialog's tags swapped)."""
        invite = await asyncio.wait_for(self._invites.get(), deadline_s)
        via = invite.vias[0]
        self.server = (via.host, via.port or 5060)
        self.call_id = invite.call_id
        self.to_tag = invite.from_.tag
        lines = ["SIP/2.0 200 OK"]
        for name in ("Via", "From", "Call-ID", "CSeq"):
            lines += [f"{name}: {v}" for v in invite.get_all(name)]
        lines.append(f"To: {invite.get('To')};tag={self.tag}")
        lines.append(f"Contact: <sip:bench@127.0.0.1:{self.sip_port}>")
        body = self.offer().replace(" RTP/AVPF ", " RTP/AVP ")  # the offer's m-lines, in its order
        lines.append("Content-Type: application/sdp")
        self._send(("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
        offer = SessionDescription.parse(invite.body)
        for media in offer.media:
            stream = self.audio if media.kind == "audio" else self.video
            if stream is not None and media.port:
                stream.remote = (offer.address_for(media) or "127.0.0.1", media.port)
        await asyncio.wait_for(self._acked.wait(), deadline_s)
        return self.times

    async def hangup(self) -> None:
        if self.to_tag is not None and not self.ended and self.sip is not None:
            self._send(self._request("BYE"))
            with contextlib.suppress(TimeoutError):
                while True:
                    resp = await asyncio.wait_for(self._responses.get(), 2.0)
                    if resp.cseq[1] == "BYE":
                        break
        self.ended = True

    def close(self) -> None:
        for s in (self.audio, self.video):
            if s is not None:
                s.close()
        if self.sip is not None and self.sip.transport is not None:
            self.sip.transport.close()

    # --- sending media ---------------------------------------------------------------------
    async def send_video(
        self,
        pictures: list[bytes],
        fps: int,
        seconds: float,
        on_sent: Callable[[int, float], None] | None = None,
    ) -> None:
        """Replay pre-encoded pictures in a loop at ``fps`` for ``seconds``; ``on_sent(index in
        the clip, time the picture's last packet left)``. A keyframe request restarts the clip
        at its first picture (a keyframe)."""
        assert self.video is not None
        from aiortc.codecs.h264 import H264Encoder
        from aiortc.codecs.vpx import Vp8Encoder

        restart = False

        def wanted() -> None:
            nonlocal restart
            restart = True

        self.on_keyframe_request = wanted
        picture_id = random.getrandbits(15)
        ts0 = random.getrandbits(32)
        loop = asyncio.get_running_loop()
        start = loop.time()
        n, i = 0, 0
        while n < seconds * fps and not self.ended:
            if restart:
                i, restart = 0, False
            data = pictures[i]
            if self.video.codec.name == "VP8":
                payloads = Vp8Encoder._packetize(data, picture_id)
                picture_id = (picture_id + 1) % (1 << 15)
            else:
                payloads = H264Encoder._packetize([x for x in H264Encoder._split_bitstream(data) if x])
            ts = ts0 + n * (90000 // fps)
            for k, payload in enumerate(payloads):
                self.video.send(payload, ts, marker=k == len(payloads) - 1)
            if on_sent is not None:
                on_sent(i, time.monotonic())
            n += 1
            i = (i + 1) % len(pictures)
            await asyncio.sleep(max(0.0, start + n / fps - loop.time()))

    async def send_audio(
        self,
        chunk_at: Callable[[int], Pcm],
        seconds: float,
        on_sent: Callable[[int, float], None] | None = None,
    ) -> None:
        """Send 20 ms chunks (48 kHz mono, encoded to PCMU) for ``seconds``: chunk ``n`` is
        ``chunk_at(n)``; ``on_sent(n, time its packet left)``."""
        assert self.audio is not None
        enc = AudioEncoder(PCMU)
        ts0 = random.getrandbits(32)
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while n < seconds * 50 and not self.ended:
            for payload in enc.encode(chunk_at(n)):
                self.audio.send(payload, ts0 + n * 160, marker=n == 0)
            if on_sent is not None:
                on_sent(n, time.monotonic())
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))


def silence() -> Pcm:
    return np.zeros(CHUNK_SAMPLES, dtype=np.int16)
