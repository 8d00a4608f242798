"""A cheap SIP/RTP load generator: many SIP calls from one asyncio process into a node's rooms.

Each call is a plain room system as the node sees it: SIP over UDP (INVITE with an SDP offer,
the PIN typed as RFC 4733 telephone-events during the 183 early media, ACK, BYE), RTP/AVP with
rtcp-mux, Opus audio and one video codec (VP8 per RFC 7741, or H.264 packetization-mode 1 per
RFC 6184 at level 3.1). It is cheap because nothing is encoded or decoded while it runs:

- the video is a clip encoded once (``clips.make_clip``) and cut into RTP payloads once by the
  node's own packetiser (``vdx.legs.sip.VideoSender``); sending is a 12-byte header and a
  ``sendto`` per packet, paced by one timer for all calls (in a few phase groups, so the node
  does not get every call's picture in the same millisecond);
- a keyframe request (PLI or FIR) from the node restarts the clip at its keyframe;
- what comes back is counted, not decoded: a picture is complete when its marker packet arrives
  with no sequence gap since the previous marker; loss is read from sequence numbers. The first
  few pictures of each call are decoded (``vdx.legs.video_decoding.VideoReceiver``, the node's own
  depacketiser) to check they are real pictures of the room's size.

    load = SipLoad(("127.0.0.1", sip_port), fps=30)
    await load.start()
    calls = [load.call(alias, pin, clip, talks=i == 0) for i in range(n)]
    await asyncio.gather(*(c.place() for c in calls))
    ...  # load.snapshot() before and after a window; load.rates(before, after)
    await load.hang_up_all(); load.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import av

from bench.clips import Clip
from bench.sip_peer import sip_request
from vdx.legs.sip import VideoSender
from vdx.legs.video_decoding import VideoReceiver
from vdx.sip import rtcp
from vdx.sip.message import SipResponse, make_response, parse_message
from vdx.sip.rtp import RtpPacket
from vdx.sip.sdp import Codec, SessionDescription

OPUS_PT = 111
DTMF_PT = 110  # telephone-event/48000, beside Opus (RFC 4733 §7.1.1: the same clock)
VIDEO_PT = {"VP8": 96, "H264": 97}
SAMPLE_PICTURES = 3  # pictures decoded per call, to check they are real
KEYFRAME_ANSWER_S = 0.2  # least time between two keyframes sent in answer to PLI/FIR
TMMBR_AGAIN_S = 1.0  # a TMMBR not answered by a TMMBN within this is sent again
PHASES = 4  # calls are paced in this many groups, spread over one frame interval
_HEADER = struct.Struct("!BBHII")


class CallFailed(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status


def packetise(clip: Clip) -> list[list[bytes]]:
    """The clip's pictures as RTP payloads (per picture, in order; the last carries the
    marker), cut by the node's own packetiser."""
    out: list[list[bytes]] = []

    class Capture:
        def send_rtp(self, packet: RtpPacket) -> None:
            out[-1].append(packet.payload)

    codec = Codec("video", VIDEO_PT[clip.codec], clip.codec, 90000, fmtp="packetization-mode=1")
    sender = VideoSender(cast(Any, Capture()), codec, clip.codec)
    for i, data in enumerate(clip.video):
        packet = av.Packet(data)
        packet.pts, packet.time_base = i, fractions.Fraction(1, clip.fps)
        packet.is_keyframe = i == 0
        out.append([])
        sender.push(packet)
    if not out or not all(out):
        raise RuntimeError("the clip did not packetise")
    return out


@dataclass
class StreamStats:
    """What arrived on one RTP stream: packets, the highest extended sequence number (loss =
    1 - received / span), complete pictures (marker with no gap since the previous marker)."""

    packets: int = 0
    first: int | None = None
    highest: int = 0  # extended (with wrap-arounds)
    pictures: int = 0
    broken: bool = False

    def on_packet(self, seq: int, marker: bool) -> None:
        self.packets += 1
        if self.first is None:
            self.first = self.highest = seq
            self.broken = False
        else:
            delta = (seq - self.highest) & 0xFFFF
            if delta == 0 or delta >= 0x8000:
                return  # duplicate or late: it fills a gap already counted as broken
            if delta != 1:
                self.broken = True
            self.highest += delta
        if marker:
            if not self.broken:
                self.pictures += 1
            self.broken = False

    def snapshot(self) -> tuple[int, int, int]:
        return self.packets, self.highest, self.pictures


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, receive: Callable[[bytes], None]) -> None:
        self.receive = receive
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.receive(data)


class _SipSocket(asyncio.DatagramProtocol):
    """One UDP socket for the signalling of every call; responses go to their call by Call-ID,
    requests from the node (BYE) are answered here."""

    def __init__(self, load: SipLoad) -> None:
        self.load = load
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            msg = parse_message(data)
        except Exception:
            return
        call = self.load.calls.get(msg.call_id)
        if isinstance(msg, SipResponse):
            if call is not None:
                call.responses.put_nowait(msg)
            return
        if msg.method.upper() != "ACK" and self.transport is not None:
            self.transport.sendto(make_response(msg, 200 if call is not None else 481).serialise(), addr)
        if call is not None and msg.method.upper() == "BYE":
            call.ended_by_node = True
            call.up = False


class Call:
    """One SIP call with pre-encoded media."""

    def __init__(
        self,
        load: SipLoad,
        alias: str,
        pin: int | None,
        clip: Clip | None,
        talks: bool,
        server: tuple[str, int],
        ceiling_bps: int | None = None,
    ) -> None:
        self.load = load
        self.ceiling_bps = ceiling_bps  # asked of the node by TMMBR (RFC 5104): a smaller layer
        self.ceiling_kept = False  # the node answered with a TMMBN
        self._tmmbr_at = -1e9
        self.server = server  # the node's SIP address this call signals to
        self.serial = len(load.placed) + 1
        self.alias = alias
        self.user, _, self.domain = alias.partition("@")
        self.pin = pin
        self.clip = clip  # None: an audio-only call (Opus from ``load.audio``)
        self.talks = talks
        self.up = False
        self.ended_by_node = False
        self.responses: asyncio.Queue[SipResponse] = asyncio.Queue()
        self.video = StreamStats()
        self.audio = StreamStats()
        self.keyframe_requests = 0
        self.keyframes_sent = 0
        self.samples: list[tuple[int, int]] = []
        self.sample_errors = 0
        self.status_history: list[int] = []
        self.setup_s = 0.0
        self._call_id = ""
        self._tag = secrets.token_hex(4)
        self._to_tag: str | None = None
        self._cseq = 0
        self._audio_sock = _Udp(self._on_audio)
        self._video_sock = _Udp(self._on_video)
        self._remote: dict[str, tuple[str, int]] = {}
        self._a = [secrets.randbits(16), secrets.randbits(32), secrets.randbits(32), 0]  # seq ts ssrc i
        self._v = [secrets.randbits(16), secrets.randbits(32), secrets.randbits(32), 0]
        self._last_keyframe = -1e9
        self._receiver: VideoReceiver | None = None
        if clip is not None:
            codec = Codec("video", VIDEO_PT[clip.codec], clip.codec, 90000)
            self._receiver = VideoReceiver(codec)

    # --- sockets ---------------------------------------------------------------------------
    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self._audio_sock, local_addr=("127.0.0.1", 0))
        if self.clip is not None:
            await loop.create_datagram_endpoint(lambda: self._video_sock, local_addr=("127.0.0.1", 0))

    @staticmethod
    def _port(sock: _Udp) -> int:
        assert sock.transport is not None
        return int(sock.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        self.up = False
        for s in (self._audio_sock, self._video_sock):
            if s.transport is not None:
                s.transport.close()

    # --- media in ---------------------------------------------------------------------------
    def _on_audio(self, data: bytes) -> None:
        if len(data) < 12 or 192 <= data[1] <= 223:
            return
        self.audio.on_packet((data[2] << 8) | data[3], bool(data[1] & 0x80))

    def _on_video(self, data: bytes) -> None:
        if len(data) < 12:
            return
        if 192 <= data[1] <= 223:
            self._on_rtcp(data)
            return
        self.video.on_packet((data[2] << 8) | data[3], bool(data[1] & 0x80))
        if self.ceiling_bps is not None and not self.ceiling_kept:
            self._ask_ceiling(int.from_bytes(data[8:12], "big"))
        rx = self._receiver
        if rx is not None and len(self.samples) < SAMPLE_PICTURES:
            try:
                frames, _ = rx.feed(RtpPacket.parse(data))
            except Exception:
                self.sample_errors += 1
                return
            self.samples += [(f.width, f.height) for f in frames]
            self.sample_errors = rx.errors
            if len(self.samples) >= SAMPLE_PICTURES:
                self._receiver = None  # enough: from here on, count only

    def _on_rtcp(self, data: bytes) -> None:
        try:
            messages = rtcp.parse(data)
        except rtcp.RtcpError:
            return
        if any(isinstance(m, rtcp.Tmmbn) for m in messages):
            self.ceiling_kept = True
        if any(isinstance(m, rtcp.Pli | rtcp.Fir) for m in messages):
            self.keyframe_requests += 1
            now = time.monotonic()
            if now - self._last_keyframe >= KEYFRAME_ANSWER_S:
                self._last_keyframe = now
                self._v[3] = 0  # the next picture sent is the clip's keyframe
                self.keyframes_sent += 1

    def _ask_ceiling(self, node_ssrc: int) -> None:
        """A TMMBR for the node's video stream, again until a TMMBN answers it."""
        dest, sock = self._remote.get("video"), self._video_sock.transport
        now = time.monotonic()
        if self.ceiling_bps is None or dest is None or sock is None or now - self._tmmbr_at < TMMBR_AGAIN_S:
            return
        self._tmmbr_at = now
        ours = self._v[2]
        entry = (node_ssrc, self.ceiling_bps, 40)
        sock.sendto(rtcp.build_compound([rtcp.ReceiverReport(ours), rtcp.Tmmbr(ours, [entry])]), dest)

    # --- media out --------------------------------------------------------------------------
    def send_video(self, pictures: list[list[bytes]], step: int) -> None:
        dest = self._remote.get("video")
        sock = self._video_sock.transport
        if not self.up or dest is None or sock is None:
            return
        seq, ts, ssrc, i = self._v
        payloads = pictures[i]
        last = len(payloads) - 1
        pt = VIDEO_PT[self.clip.codec] if self.clip is not None else 0
        for k, payload in enumerate(payloads):
            sock.sendto(_HEADER.pack(0x80, pt | (0x80 if k == last else 0), seq, ts, ssrc) + payload, dest)
            seq = (seq + 1) & 0xFFFF
        self._v = [seq, (ts + step) & 0xFFFFFFFF, ssrc, (i + 1) % len(pictures)]

    def send_audio(self) -> None:
        dest = self._remote.get("audio")
        sock = self._audio_sock.transport
        if not self.up or dest is None or sock is None:
            return
        packets = self.load.speech if self.talks else self.load.hush
        seq, ts, ssrc, i = self._a
        sock.sendto(_HEADER.pack(0x80, OPUS_PT, seq, ts, ssrc) + packets[i % len(packets)], dest)
        self._a = [(seq + 1) & 0xFFFF, (ts + 960) & 0xFFFFFFFF, ssrc, i + 1]

    async def _type_pin(self) -> None:
        """The PIN and '#' as RFC 4733 events on the audio stream (three packets per key, the
        last with the End bit), during the 183's early media."""
        dest = self._remote.get("audio")
        sock = self._audio_sock.transport
        if self.pin is None or dest is None or sock is None:
            return
        for digit in f"{self.pin}#":
            event = "0123456789*#".index(digit)
            seq, ts, ssrc, i = self._a
            for k in range(3):
                payload = struct.pack("!BBH", event, (0x80 if k == 2 else 0) | 10, 960 * (k + 1))
                sock.sendto(
                    _HEADER.pack(0x80, DTMF_PT | (0x80 if k == 0 else 0), seq, ts, ssrc) + payload, dest
                )
                seq = (seq + 1) & 0xFFFF
            self._a = [seq, (ts + 4800) & 0xFFFFFFFF, ssrc, i]
            await asyncio.sleep(0.03)

    # --- signalling -------------------------------------------------------------------------
    def _sdp(self) -> str:
        lines = [
            "v=0",
            f"o=load {secrets.randbelow(10**9)} 1 IN IP4 127.0.0.1",
            "s=vdx sip load",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            f"m=audio {self._port(self._audio_sock)} RTP/AVP {OPUS_PT} {DTMF_PT}",
            f"a=rtpmap:{OPUS_PT} opus/48000/2",
            f"a=rtpmap:{DTMF_PT} telephone-event/48000",
            f"a=fmtp:{DTMF_PT} 0-16",
            "a=rtcp-mux",
            "a=sendrecv",
        ]
        if self.clip is not None:
            pt = VIDEO_PT[self.clip.codec]
            lines += [f"m=video {self._port(self._video_sock)} RTP/AVP {pt}"]
            if self.clip.codec == "VP8":
                lines += [f"a=rtpmap:{pt} VP8/90000"]
            else:
                lines += [
                    f"a=rtpmap:{pt} H264/90000",
                    f"a=fmtp:{pt} profile-level-id=42e01f;packetization-mode=1",
                ]
            lines += [f"a=rtcp-fb:{pt} nack pli", f"a=rtcp-fb:{pt} ccm fir", "a=rtcp-mux", "a=sendrecv"]
            if self.ceiling_bps is not None:
                lines.insert(-2, f"a=rtcp-fb:{pt} ccm tmmbr")
        return "\r\n".join(lines) + "\r\n"

    def _request(
        self, method: str, body: str = "", cseq: int | None = None, branch: str | None = None
    ) -> bytes:
        if cseq is None:
            self._cseq += 1
            cseq = self._cseq
        return sip_request(
            method,
            self.alias,
            port=self.load.sip_port,
            call_id=self._call_id,
            cseq=cseq,
            tag=self._tag,
            to_tag=self._to_tag,
            user="load",
            display=f"Load {self.serial}",
            user_agent="vdx-sip-load",
            branch=branch,
            body=body,
        )

    def _learn_media(self, resp: SipResponse) -> None:
        if not resp.body.strip():
            return
        sdp = SessionDescription.parse(resp.body)
        for m in sdp.media:
            address = sdp.address_for(m)
            if m.port and address and m.kind in ("audio", "video"):
                self._remote[m.kind] = (address, m.port)

    async def place(self, deadline_s: float = 60.0) -> None:
        """INVITE until answered: retries while the node has not learnt the room (404), the room
        is still full (486) or the node asks to come back later (503 + Retry-After); any other
        refusal raises :class:`CallFailed`."""
        if self._audio_sock.transport is None:
            await self._bind()
        started = time.monotonic()
        deadline = started + deadline_s
        while True:
            if time.monotonic() > deadline:
                raise CallFailed(408, f"not answered within {deadline_s:.0f}s ({self.status_history[-3:]})")
            status, retry = await self._invite(deadline)
            self.status_history.append(status)
            if status == 200:
                self.setup_s = time.monotonic() - started
                return
            if status in (404, 408, 486, 503):  # 486: the last load point's callers still leaving
                await asyncio.sleep(min(retry or 0.3, 5.0))
                continue
            raise CallFailed(status, "refused")

    async def _invite(self, deadline: float) -> tuple[int, float | None]:
        self.load.calls.pop(self._call_id, None)
        self._call_id = secrets.token_hex(12)
        self._to_tag = None
        self._cseq = 0
        self.load.calls[self._call_id] = self
        invite = self._request("INVITE", self._sdp())
        cseq = self._cseq
        interval = 0.5
        provisional = False
        pin_task: asyncio.Task[None] | None = None
        self.load.send(invite, self.server)
        try:
            while True:
                try:
                    resp = await asyncio.wait_for(self.responses.get(), interval)
                except TimeoutError:
                    if time.monotonic() > deadline:
                        return 408, None
                    if not provisional:  # Timer A: retransmit until anything comes back
                        self.load.send(invite, self.server)
                        interval = min(interval * 2, 4.0)
                    continue
                if resp.cseq != (cseq, "INVITE"):
                    continue
                if resp.status < 200:
                    provisional = True
                    interval = 1.0
                    if resp.status == 183 and pin_task is None:
                        self._to_tag = resp.to.tag
                        self._learn_media(resp)
                        pin_task = asyncio.get_running_loop().create_task(self._type_pin())
                    continue
                self._to_tag = resp.to.tag
                if resp.status < 300:
                    self._learn_media(resp)
                    self.load.send(self._request("ACK", cseq=cseq), self.server)
                    self.up = True
                    return 200, None
                # A non-2xx final answer is acknowledged in its own transaction (same branch).
                via = resp.vias[0] if resp.vias else None
                ack = self._request("ACK", cseq=cseq, branch=via.branch if via is not None else None)
                self.load.send(ack, self.server)
                retry = resp.get("Retry-After")
                return resp.status, float(retry.split(";")[0]) if retry and retry.split(";")[
                    0
                ].strip().isdigit() else None
        finally:
            if pin_task is not None and not pin_task.done():
                pin_task.cancel()

    async def hang_up(self) -> None:
        if not self.up:
            return
        self.up = False
        bye = self._request("BYE")
        cseq = self._cseq
        for _ in range(3):
            self.load.send(bye, self.server)
            with contextlib.suppress(TimeoutError):
                while True:
                    resp = await asyncio.wait_for(self.responses.get(), 1.0)
                    if resp.cseq == (cseq, "BYE"):
                        return
        return


@dataclass
class Rates:
    """One call's window: pictures per second received, packet loss of video and audio."""

    fps: float
    video_loss: float
    audio_loss: float
    audio_pps: float


@dataclass
class Snapshot:
    at: float
    per_call: list[tuple[tuple[int, int, int], tuple[int, int, int]]] = field(default_factory=list)


class SipLoad:
    """Places calls and paces their media; one per benchmark cell (a clip, a frame rate)."""

    def __init__(self, server: tuple[str, int], fps: int, speech: list[bytes], hush: list[bytes]) -> None:
        self.server = server
        self.fps = fps
        self.speech = speech
        self.hush = hush
        self.calls: dict[str, Call] = {}  # by current Call-ID
        self.placed: list[Call] = []
        self.late_ticks = 0
        self._sip = _SipSocket(self)
        self._tasks: list[asyncio.Task[None]] = []
        self._pictures: dict[int, list[list[bytes]]] = {}

    @property
    def sip_port(self) -> int:
        assert self._sip.transport is not None
        return int(self._sip.transport.get_extra_info("sockname")[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self._sip, local_addr=("127.0.0.1", 0))
        self._tasks = [loop.create_task(self._pace_video()), loop.create_task(self._pace_audio())]

    def send(self, data: bytes, to: tuple[str, int] | None = None) -> None:
        if self._sip.transport is not None:
            self._sip.transport.sendto(data, to or self.server)

    def call(
        self,
        alias: str,
        pin: int | None,
        clip: Clip | None,
        talks: bool = False,
        server: tuple[str, int] | None = None,
        ceiling_bps: int | None = None,
    ) -> Call:
        """A call into ``alias``, dialled to ``server`` (default the load's: one node; in a
        cluster, the node that hosts the room); ``ceiling_bps``: the most video it asks for."""
        c = Call(self, alias, pin, clip, talks, server or self.server, ceiling_bps)
        if clip is not None and id(clip) not in self._pictures:
            self._pictures[id(clip)] = packetise(clip)
        self.placed.append(c)
        return c

    async def _pace(self, rate: float, tick: Callable[[int], None]) -> None:
        """Call ``tick(phase)`` ``rate`` times a second, skipping (and counting) ticks when this
        process falls more than a few behind rather than bursting."""
        loop = asyncio.get_running_loop()
        period = 1.0 / rate
        start = loop.time()
        n = 0
        while True:
            tick(n)
            n += 1
            behind = loop.time() - (start + n * period)
            if behind > 4 * period:
                skipped = int(behind / period)
                self.late_ticks += skipped
                n += skipped
            await asyncio.sleep(max(0.0, start + n * period - loop.time()))

    async def _pace_video(self) -> None:
        step = 90000 // self.fps

        def tick(n: int) -> None:
            phase = n % PHASES
            for i, c in enumerate(self.placed):
                if i % PHASES == phase and c.clip is not None:
                    c.send_video(self._pictures[id(c.clip)], step)

        await self._pace(self.fps * PHASES, tick)

    async def _pace_audio(self) -> None:
        def tick(n: int) -> None:
            phase = n % PHASES
            for i, c in enumerate(self.placed):
                if i % PHASES == phase:
                    c.send_audio()

        await self._pace(50 * PHASES, tick)

    def snapshot(self) -> Snapshot:
        return Snapshot(time.monotonic(), [(c.video.snapshot(), c.audio.snapshot()) for c in self.placed])

    def rates(self, before: Snapshot, after: Snapshot) -> list[Rates]:
        dt = max(after.at - before.at, 1e-6)
        out = []
        for (v0, a0), (v1, a1) in zip(before.per_call, after.per_call, strict=True):
            out.append(
                Rates(
                    fps=(v1[2] - v0[2]) / dt,
                    video_loss=window_loss(v0, v1),
                    audio_loss=window_loss(a0, a1),
                    audio_pps=(a1[0] - a0[0]) / dt,
                )
            )
        return out

    async def hang_up_all(self) -> None:
        await asyncio.gather(*(c.hang_up() for c in self.placed), return_exceptions=True)

    def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for c in self.placed:
            c.close()
        if self._sip.transport is not None:
            self._sip.transport.close()


async def place_all(calls: list[Call], concurrency: int = 16) -> list[str]:
    """Place every call, ``concurrency`` at a time; what failed, one line per call."""
    gate = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(c: Call) -> None:
        async with gate:
            try:
                await c.place(deadline_s=60)
            except CallFailed as exc:
                errors.append(f"call {c.serial}: {exc}")

    await asyncio.gather(*(one(c) for c in calls))
    return errors


def window_loss(before: tuple[int, int, int], after: tuple[int, int, int]) -> float:
    """Fraction of packets lost between two snapshots of (packets received, sequence span, ...)."""
    span = after[1] - before[1]
    got = after[0] - before[0]
    return max(0.0, 1.0 - got / span) if span > 0 else 0.0


__all__ = ["Call", "CallFailed", "Rates", "SipLoad", "packetise", "place_all", "window_loss"]
