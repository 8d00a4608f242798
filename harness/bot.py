"""A participant for tests and benchmarks: real aiortc, real WebSocket signalling, a solid colour
and a sine tone. It keeps every signalling message, the latest decoded picture and the last
second heard, so a check can read tiles by colour and the mix by FFT."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import websockets
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from harness.waiting import until
from vdx.conference.compositor import mean_yuv, solid_frame

RED = (81, 90, 240)
GREEN = (145, 54, 34)
BLUE = (41, 240, 110)
# Nine colours (BT.601 limited-range YUV) that differ by far more than ``colour_close``'s tolerance
# in at least one channel, for a room of nine bots that each send their own.
PALETTE = (
    RED,
    GREEN,
    BLUE,
    (210, 16, 146),  # yellow
    (170, 166, 16),  # cyan
    (106, 202, 222),  # magenta
    (146, 53, 193),  # orange
    (235, 128, 128),  # white
    (93, 147, 72),  # teal
)


class ColourTrack(MediaStreamTrack):
    kind = "video"

    def __init__(
        self, yuv: tuple[int, int, int], size: tuple[int, int] = (160, 90), fps: int = 15, busy: bool = False
    ) -> None:
        """``busy``: the lower half is fresh noise in every picture, so an encoder of it spends
        all the bits it may (a solid colour costs next to none); the upper half keeps the colour."""
        super().__init__()
        self._yuv = yuv
        self._size = size
        self._fps = fps
        self._busy = busy
        self._noise = np.random.default_rng(7)
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.VideoFrame:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._n / self._fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = solid_frame(self._size[0], self._size[1], self._yuv)
        if self._busy:
            y = frame.to_ndarray()  # yuv420p as one plane array: Y rows, then U and V
            h = self._size[1]
            y[h // 2 : h] = self._noise.integers(16, 235, size=(h - h // 2, self._size[0]), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(y, format="yuv420p")
        frame.pts = self._n * (90000 // self._fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self._n += 1
        return frame


class ToneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, hz: float, amplitude: int = 6000) -> None:
        super().__init__()
        self._hz = hz
        self._amp = amplitude
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._n * 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t = (np.arange(960) + self._n * 960) / 48000
        pcm = (self._amp * np.sin(2 * np.pi * self._hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self._n += 1
        return frame


class Bot:
    def __init__(
        self,
        url: str,
        name: str,
        colour: tuple[int, int, int] = RED,
        tone: float = 440.0,
        loudness: int = 6000,
        source: str | None = None,
        headers: dict[str, str] | None = None,
        camera: tuple[int, int] = (160, 90),
        busy: bool = False,
    ) -> None:
        """``source``: the local address to connect from (127.0.0.2 is another loopback client);
        ``headers``: extra headers of the WebSocket handshake; ``camera``: the size it sends;
        ``busy``: a picture that costs an encoder all its bits (:class:`ColourTrack`)."""
        self.camera, self.busy = camera, busy
        self.url = url
        self.source = source
        self.headers = headers
        self.loudness = loudness
        self.name = name
        self.colour = colour
        self.tone = tone
        self.messages: list[dict[str, Any]] = []
        self.ws: Any = None
        self.pc: RTCPeerConnection | None = None
        self.frame: av.VideoFrame | None = None
        self.video_frames = 0
        self.audio_frames = 0
        # (monotonic arrival, width) of each decoded picture: frame rates, freezes, layer changes
        self.pictures: deque[tuple[float, int]] = deque(maxlen=100_000)
        self.audio: deque[int] = deque(maxlen=48000)  # the last second heard, mono int16
        self.closed: asyncio.Event = asyncio.Event()
        self.close_code: int | None = None
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.participant_id: str | None = None
        self.token: str | None = None
        self.resume_token: str | None = None
        # The presentation's own peer connections (``present``, ``watch``) and what arrives on
        # the watching one.
        self.screen_pc: RTCPeerConnection | None = None
        self.watch_pc: RTCPeerConnection | None = None
        self.presentation: av.VideoFrame | None = None
        self.presentation_frames = 0

    # --- signalling ----------------------------------------------------------------------
    async def connect(self) -> None:
        bind: dict[str, Any] = {} if self.source is None else {"local_addr": (self.source, 0)}
        self.ws = await websockets.connect(self.url, max_size=2**22, additional_headers=self.headers, **bind)
        self._tasks.append(asyncio.get_running_loop().create_task(self._read()))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                self.messages.append(msg)
                if msg.get("type") == "joined":
                    self.participant_id, self.token = msg["participantId"], msg["token"]
                    self.resume_token = msg.get("resumeToken")
                self._poke()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            self._poke()

    def _poke(self) -> None:
        self._changed.set()

    async def send(self, msg: dict[str, Any] | str) -> None:
        await self.ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    async def until(self, check: Callable[[], Any], deadline_s: float = 15.0, what: str = "") -> Any:
        """:func:`harness.waiting.until`, re-checked on every message and frame, its failure
        naming this bot and its last messages."""
        return await until(
            check,
            deadline_s,
            lambda: f"{self.name}: {what or check} (last messages: {self.messages[-3:]})",
            wake=self._changed,
        )

    def last(self, kind: str) -> dict[str, Any] | None:
        for m in reversed(self.messages):
            if m.get("type") == kind:
                return m
        return None

    async def expect(self, kind: str, deadline_s: float = 10.0, since: int = 0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for m in self.messages[since:]:
                if m.get("type") == kind:
                    return m
            return None

        found: dict[str, Any] = await self.until(find, deadline_s, f"a '{kind}' message")
        return found

    async def join(
        self, pin: str | None = None, follow: int = 3, resume: str | None = None
    ) -> dict[str, Any]:
        """Send a join (``resume``: a resume token of an earlier ``joined``); return the
        ``joined`` or ``error`` answer. A ``redirect`` (another node hosts the room) is followed
        with the same join, up to ``follow`` times, as the join page does; past that it is the
        answer."""
        for _hop in range(follow):
            answer = await self._join_once(pin, resume)
            if answer.get("type") != "redirect":
                return answer
            await self.ws.close()
            for task in self._tasks:
                await task
            self._tasks.clear()
            self.closed.clear()
            self.close_code = None
            self.url = answer["url"]
            await self.connect()
        return await self._join_once(pin, resume)

    async def _join_once(self, pin: str | None, resume: str | None = None) -> dict[str, Any]:
        since = len(self.messages)
        msg: dict[str, Any] = {"type": "join", "displayName": self.name}
        if pin is not None:
            msg["pin"] = pin
        if resume is not None:
            msg["resume"] = resume
        with contextlib.suppress(websockets.ConnectionClosed):  # a redirect may close it first
            await self.send(msg)

        def answer() -> dict[str, Any] | None:
            for m in self.messages[since:]:
                if m.get("type") in ("joined", "error", "redirect"):
                    return m
            return None

        found: dict[str, Any] = await self.until(answer, 10, "joined, error or redirect")
        return found

    # --- media -----------------------------------------------------------------------------
    async def start_media(
        self, codec: str | None = None, video: bool = True, config: RTCConfiguration | None = None
    ) -> None:
        """Offer and answer; ``config``: ICE servers and policy (e.g. relay only through TURN).
        Again on the same socket: a new peer connection replaces the old one (a page's media
        restart after a network change), and the pictures counted start from nothing."""
        if self.pc is not None:
            await self.pc.close()
            self.frame, self.video_frames, self.audio_frames = None, 0, 0
        pc = RTCPeerConnection(config)
        self.pc = pc
        if video:
            pc.addTrack(ColourTrack(self.colour, self.camera, busy=self.busy))
        pc.addTrack(ToneTrack(self.tone, self.loudness))
        if codec is not None:
            from aiortc.rtcrtpsender import RTCRtpSender

            caps = RTCRtpSender.getCapabilities("video").codecs
            for t in pc.getTransceivers():
                if t.kind == "video":
                    t.setCodecPreferences([c for c in caps if c.mimeType.lower() == f"video/{codec.lower()}"])

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._consume(track)))

        await pc.setLocalDescription(await pc.createOffer())
        since = len(self.messages)
        await self.send({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await self.expect("answer", 15, since)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def present(self, colour: tuple[int, int, int] | None = None) -> dict[str, Any]:
        """Share a "screen" of ``colour`` (this bot's own colour by default) on a peer connection
        of its own (``present``). Returns the node's ``presenting`` answer or its ``error``."""
        return await self._second_connection("present", colour or self.colour)

    async def watch(self) -> dict[str, Any]:
        """Receive the presentation on a peer connection of its own (``watch``): its pictures in
        ``presentation``. Returns the node's ``watching`` answer or its ``error``."""
        return await self._second_connection("watch", None)

    async def _second_connection(self, kind: str, colour: tuple[int, int, int] | None) -> dict[str, Any]:
        pc = RTCPeerConnection()
        old = self.screen_pc if kind == "present" else self.watch_pc
        if old is not None:
            await old.close()
        if colour is not None:
            self.screen_pc = pc
            pc.addTrack(ColourTrack(colour, size=(320, 180)))
        else:
            self.watch_pc = pc
            self.presentation, self.presentation_frames = None, 0
            pc.addTransceiver("video", direction="recvonly")

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self._tasks.append(asyncio.get_running_loop().create_task(self._consume(track, True)))

        await pc.setLocalDescription(await pc.createOffer())
        since = len(self.messages)
        await self.send({"type": kind, "sdp": pc.localDescription.sdp})
        reply = "presenting" if kind == "present" else "watching"

        def answer() -> dict[str, Any] | None:
            return next((m for m in self.messages[since:] if m.get("type") in (reply, "error")), None)

        found: dict[str, Any] = await self.until(answer, 15, f"'{reply}' or an error")
        if found["type"] == reply:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=found["sdp"], type="answer"))
        else:
            await pc.close()
        return found

    async def _consume(self, track: MediaStreamTrack, presentation: bool = False) -> None:
        try:
            while True:
                frame = await track.recv()
                if presentation:
                    self.presentation = frame  # type: ignore[assignment]
                    self.presentation_frames += 1
                elif track.kind == "video":
                    self.frame = frame  # type: ignore[assignment]
                    self.video_frames += 1
                    self.pictures.append((time.monotonic(), frame.width))  # type: ignore[union-attr]
                else:
                    self.audio_frames += 1
                    arr = frame.to_ndarray().reshape(-1)  # type: ignore[union-attr]
                    if frame.layout.name == "stereo":  # type: ignore[union-attr]
                        arr = arr[::2]
                    self.audio.extend(arr.tolist())
                self._poke()
        except MediaStreamError:
            pass

    # --- checks ------------------------------------------------------------------------------
    def tile_colour(self, tile: dict[str, Any]) -> tuple[float, float, float] | None:
        """Mean YUV of the upper middle of a tile (clear of the name overlay)."""
        f = self.frame
        if f is None or f.width < tile["x"] + tile["width"] or f.height < tile["y"] + tile["height"]:
            return None
        w, h = tile["width"], tile["height"]
        return mean_yuv(f, tile["x"] + w // 4, tile["y"] + h // 8, max(2, w // 2), max(2, h // 3))

    def colour_share(self, colour: tuple[int, int, int], tol: float = 20.0) -> float:
        """:func:`colour_share` of the latest picture; 0 before the first."""
        return 0.0 if self.frame is None else colour_share(self.frame, colour, tol)

    def colour_share_of_presentation(self, colour: tuple[int, int, int], tol: float = 20.0) -> float:
        """:func:`colour_share` of the latest presentation picture (``watch``); 0 before one."""
        return 0.0 if self.presentation is None else colour_share(self.presentation, colour, tol)

    def tone_power(self, hz: float) -> float:
        """Relative power of ``hz`` in the last half second heard (vs the median bin)."""
        if len(self.audio) < 24000:
            return 0.0
        x = np.array(list(self.audio)[-24000:], dtype=np.float64)
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        freqs = np.fft.rfftfreq(len(x), 1 / 48000)
        band = (freqs > hz - 6) & (freqs < hz + 6)
        return float(spec[band].max() / (np.median(spec) + 1e-9))

    def cut_media(self) -> None:
        """The network goes: :func:`cut_network` of this bot's peer connection (the signalling
        WebSocket stays open, as a stalled browser's might)."""
        assert self.pc is not None
        cut_network(self.pc)

    async def leave(self) -> None:
        """Leave as the page's hang-up does (``leave``), then close: gone at once, not kept for
        a resume as after a dropped socket."""
        await self.send({"type": "leave"})
        await self.until(lambda: self.last("bye") is not None, 5, "the node's bye")
        await self.close()

    async def close(self) -> None:
        for pc in (self.pc, self.screen_pc, self.watch_pc):
            if pc is not None:
                await pc.close()
        if self.ws is not None:
            await self.ws.close()
        for t in self._tasks:
            t.cancel()

    async def drop_signalling(self) -> None:
        """The signalling socket dies with no goodbye (a network change); media is left as it is.
        ``connect`` then opens a new one."""
        if self.ws is not None:
            self.ws.transport.abort()
        await self.closed.wait()  # the reader has ended
        self.closed.clear()
        self.close_code = None

    async def vanish(self) -> None:
        """Disappear without a goodbye: drop the TCP connection and the media."""
        if self.ws is not None:
            self.ws.transport.abort()
        if self.pc is not None:
            await self.pc.close()
        for t in self._tasks:
            t.cancel()


class Shaper:
    """What reaches a peer connection held to ``rate_bps``, as tc's tbf holds a link: a packet
    waits its turn behind the ones before it, and is dropped when that wait passes ``queue_s``.
    Set ``rate_bps`` to None to lift the limit. (tc needs a network namespace per receiver;
    this holds one aiortc receiver on loopback, at its ICE sockets.)"""

    def __init__(self, pc: RTCPeerConnection, rate_bps: float | None, queue_s: float = 0.2) -> None:
        self.rate_bps = rate_bps
        self.queue_s = queue_s
        self.dropped = 0
        self._free_at = 0.0  # when the link has sent what it holds
        loop = asyncio.get_running_loop()
        for protocol in _ice_protocols(pc):
            original = protocol.datagram_received

            def received(data: bytes, addr: Any, original: Callable[[bytes, Any], None] = original) -> None:
                if self.rate_bps is None:
                    original(data, addr)
                    return
                now = loop.time()
                start = max(now, self._free_at)
                if start - now > self.queue_s:
                    self.dropped += 1
                    return
                self._free_at = start + (len(data) + 28) * 8 / self.rate_bps  # with IP and UDP headers
                loop.call_at(self._free_at, original, data, addr)

            protocol.datagram_received = received


def _ice_protocols(pc: RTCPeerConnection) -> list[Any]:
    found: dict[int, Any] = {}
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is not None:
            for protocol in dtls.transport._connection._protocols:
                found[id(protocol)] = protocol
    return list(found.values())


def cut_network(pc: RTCPeerConnection) -> None:
    """The network under a peer connection goes: every ICE socket drops what it sends and
    receives from now on, with no DTLS close and no bye. Either end: a bot's, or a node's leg."""
    for protocol in _ice_protocols(pc):
        protocol.datagram_received = lambda *_: None
        if protocol.transport is not None:
            protocol.transport.sendto = lambda *_: None


def colour_share(frame: av.VideoFrame, colour: tuple[int, int, int], tol: float = 20.0) -> float:
    """Share of a picture's pixels within ``tol`` of ``colour`` (YUV) in every channel."""
    a = frame.reformat(format="yuv420p").to_ndarray().astype(np.int16)
    w, h = frame.width, frame.height
    y = a[:h:2, :w:2]
    u = a[h : h + h // 4].reshape(h // 2, w // 2)
    v = a[h + h // 4 : h + h // 2].reshape(h // 2, w // 2)
    near = (abs(y - colour[0]) <= tol) & (abs(u - colour[1]) <= tol) & (abs(v - colour[2]) <= tol)
    return float(near.mean())


def colour_close(
    got: tuple[float, float, float] | None, want: tuple[int, int, int], tol: float = 20.0
) -> bool:
    return got is not None and all(abs(g - w) <= tol for g, w in zip(got, want, strict=True))
