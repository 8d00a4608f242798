"""WebRTC participants for the capacity benchmark: aiortc bots with real signalling and real
peer connections (ICE, DTLS-SRTP) that replay the pre-encoded clip, so a room of them shows what
a WebRTC leg costs the node beside a SIP leg.

Cheap like ``sip_load``: the bots send pre-encoded ``av.Packet``s (aiortc's sender only
packetizes them) with Opus packets beside them, and do not decode what they
receive: aiortc's ``decoder_worker`` is replaced in this process by one that counts pictures and
decodes only the first few of each stream, to check they are real pictures of the view's size.
A keyframe request (PLI/FIR) from the node restarts the clip at its keyframe. The bots throttle
REMB as browsers do (libwebrtc's RembThrottler), not after every packet as aiortc does while its
detector sees overuse: otherwise a loaded node would parse a REMB for nearly every packet it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import queue
import time
from dataclasses import dataclass, field
from typing import Any

import aiortc.rtcrtpreceiver
import av
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs import get_decoder
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from bench.clips import Clip
from bench.sip_load import Rates, window_loss

SAMPLE_PICTURES = 3  # pictures decoded per received stream, to check they are pictures


class PacketLoop(MediaStreamTrack):
    """Replays pre-encoded packets at their rate, with RTP-ready timestamps."""

    def __init__(self, kind: str, packets: list[bytes], per_second: int, clock: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._period = 1.0 / per_second
        self._step = clock // per_second
        self._time_base = fractions.Fraction(1, clock)
        self._start: float | None = None
        self._n = 0
        self._i = 0

    def restart(self) -> None:
        self._i = 0

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._n * self._period - time.monotonic()))
        packet = av.Packet(self._packets[self._i])
        packet.pts, packet.time_base = self._n * self._step, self._time_base
        self._n += 1
        self._i = (self._i + 1) % len(self._packets)
        return packet


@dataclass
class Received:
    pictures: int = 0
    bytes: int = 0
    samples: list[tuple[int, int]] = field(default_factory=list)
    sample_errors: int = 0


RECEIVED: dict[int, Received] = {}  # id(the track's queue) -> counters


def counting_worker(
    loop: asyncio.AbstractEventLoop, input_q: queue.Queue, output_q: asyncio.Queue, decode_error: Any
) -> None:
    """Stands in for aiortc's ``decoder_worker`` in the bots: count, and decode only a sample."""
    stats = RECEIVED.setdefault(id(output_q), Received())
    decoder = None
    while True:
        task = input_q.get()
        if task is None:
            break
        codec, encoded = task
        stats.pictures += 1
        stats.bytes += len(encoded.data)
        if codec.mimeType.startswith("video/") and len(stats.samples) < SAMPLE_PICTURES:
            decoder = decoder or get_decoder(codec)
            try:
                stats.samples += [(f.width, f.height) for f in decoder.decode(encoded)]
            except av.FFmpegError:
                stats.sample_errors += 1


aiortc.rtcrtpreceiver.decoder_worker = counting_worker  # type: ignore[assignment]


def throttle_remb(receiver: Any) -> None:
    """Drop this receiver's REMBs that libwebrtc would not send (see the module docstring)."""
    send = receiver._send_rtcp
    last: list[float] = []  # [when, bitrate] of the last REMB sent

    async def send_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            bitrate = unpack_remb_fci(packet.fci)[0]
            now = time.monotonic()
            if last and now - last[0] < 0.2 and bitrate >= 0.97 * last[1]:
                return
            last[:] = [now, bitrate]
        await send(packet)

    receiver._send_rtcp = send_rtcp


class Bot:
    """A WebRTC participant: the node's WebSocket signalling and a peer connection."""

    def __init__(self, url: str, name: str, clip: Clip, talks: bool) -> None:
        self.url, self.name, self.clip, self.talks = url, name, clip, talks
        self.ws: Any = None
        self.pc: RTCPeerConnection | None = None
        self.messages: list[dict[str, Any]] = []
        self.video_queue: int | None = None
        self._reader: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
                self._new.set()

    async def wait_for(self, kind: str, deadline_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + deadline_s
        while True:
            for m in self.messages:
                if m.get("type") in (kind, "error"):
                    return m
            if time.monotonic() > deadline or (self._reader is not None and self._reader.done()):
                raise RuntimeError(f"{self.name}: no '{kind}' ({self.messages[-2:]})")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), 0.1)

    async def join(self, pin: int | None, deadline_s: float = 30.0) -> None:
        """Join (retrying while the node has not learnt the room yet) and start media."""
        deadline = time.monotonic() + deadline_s
        while True:
            self.messages = []
            self.ws = await websockets.connect(self.url, max_size=2**22)
            self._reader = asyncio.get_running_loop().create_task(self._read())
            hello = {"type": "join", "displayName": self.name}
            await self.ws.send(json.dumps(hello if pin is None else {**hello, "pin": str(pin)}))
            msg = await self.wait_for("joined", 15)
            if msg["type"] == "joined":
                break
            await self.ws.close()
            if msg.get("code") != "not_found" or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: join refused: {msg}")
            await asyncio.sleep(0.2)
        pc = self.pc = RTCPeerConnection()
        video = PacketLoop("video", self.clip.video, self.clip.fps, 90000)
        pc.addTrack(video)
        pc.addTrack(PacketLoop("audio", self.clip.speech if self.talks else self.clip.hush, 50, 48000))
        caps = RTCRtpSender.getCapabilities("video").codecs
        for t in pc.getTransceivers():
            throttle_remb(t.receiver)
            if t.kind == "video":
                t.setCodecPreferences(
                    [c for c in caps if c.mimeType.lower() == f"video/{self.clip.codec.lower()}"]
                )
                original = t.sender._send_keyframe

                def keyframe(original: Any = original) -> None:
                    original()
                    video.restart()

                t.sender._send_keyframe = keyframe  # type: ignore[method-assign]

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self.video_queue = id(track._queue)  # type: ignore[attr-defined]

        await pc.setLocalDescription(await pc.createOffer())
        await self.ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
        answer = await self.wait_for("answer", 20)
        if answer["type"] != "answer":
            raise RuntimeError(f"{self.name}: offer refused: {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    @property
    def received(self) -> Received:
        return RECEIVED.get(self.video_queue or -1, Received())

    @property
    def samples(self) -> list[tuple[int, int]]:
        return self.received.samples

    def packet_counts(self) -> tuple[int, int, int, int]:
        """Packets (video expected, video received, audio expected, audio received) so far, from
        the RFC 3550 A.3 counters aiortc's receivers keep for their receiver reports. They are
        read from the receiver's private table because ``getStats`` is a coroutine that builds
        whole report objects, and a window's edges are taken synchronously for all bots."""
        counts = {"video": [0, 0], "audio": [0, 0]}
        for t in self.pc.getTransceivers() if self.pc is not None else []:
            streams = getattr(t.receiver, "_RTCRtpReceiver__remote_streams", {})
            for stream in streams.values():
                if stream.base_seq is not None and t.kind in counts:
                    counts[t.kind][0] += stream.packets_expected
                    counts[t.kind][1] += stream.packets_received
        return counts["video"][0], counts["video"][1], counts["audio"][0], counts["audio"][1]

    @property
    def sample_errors(self) -> int:
        return self.received.sample_errors

    async def leave(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send(json.dumps({"type": "leave"}))
            await self.ws.close()
        if self.pc is not None:
            await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()


class WebRtcLoad:
    """Bots placed like ``sip_load.SipLoad``'s calls, with the same window figures: pictures a
    second, and video and audio loss by RTP sequence numbers (what never arrived, NACK repairs
    counted as arrived)."""

    def __init__(self, base_url: str) -> None:
        self.ws_base = base_url.replace("http", "ws", 1)
        self.placed: list[Bot] = []
        self.pins: dict[int, int | None] = {}
        self.late_ticks = 0

    def call(self, alias: str, pin: int | None, clip: Clip, talks: bool = False) -> Bot:
        bot = Bot(f"{self.ws_base}/ws/rooms/{alias}", f"Bot {len(self.placed) + 1}", clip, talks)
        self.pins[id(bot)] = pin
        self.placed.append(bot)
        return bot

    async def place_all(self) -> list[str]:
        errors: list[str] = []
        for bot in self.placed:  # one after another: ICE and DTLS set-up is heavy on a small machine
            try:
                await bot.join(self.pins[id(bot)])
            except Exception as exc:
                errors.append(f"{bot.name}: {exc!r}")
        return errors

    def snapshot(self) -> Snapshot:
        return Snapshot(
            time.monotonic(),
            [b.received.pictures for b in self.placed],
            [b.packet_counts() for b in self.placed],
        )

    def rates(self, before: Snapshot, after: Snapshot) -> list[Rates]:
        dt = max(after.at - before.at, 1e-6)
        rates = []
        for a, b, pa, pb in zip(before.counts, after.counts, before.packets, after.packets, strict=True):
            video = window_loss((pa[1], pa[0], 0), (pb[1], pb[0], 0))
            audio = window_loss((pa[3], pa[2], 0), (pb[3], pb[2], 0))
            rates.append(Rates((b - a) / dt, video, audio, (pb[3] - pa[3]) / dt))
        return rates

    async def hang_up_all(self) -> None:
        for bot in self.placed:
            await bot.leave()

    def close(self) -> None:
        pass


@dataclass
class Snapshot:
    at: float
    counts: list[int]
    packets: list[tuple[int, int, int, int]]
