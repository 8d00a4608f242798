"""A participant for tests and benchmarks: real aiortc, real WebSocket signalling, a solid colour
and a sine tone. It keeps every signalling message, the latest decoded picture and the last
second heard, so a check can read tiles by colour and the mix by FFT."""

from __future__ import annotations

import asyncio
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


class ColourTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, yuv: tuple[int, int, int], size: tuple[int, int] = (160, 90), fps: int = 15) -> None:
        super().__init__()
        self._yuv = yuv
        self._size = size
        self._fps = fps
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.VideoFrame:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._n / self._fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = solid_frame(self._size[0], self._size[1], self._yuv)
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
    ) -> None:
        """``source``: the local address to connect from (127.0.0.2 is another loopback client);
        ``headers``: extra headers of the WebSocket handshake."""
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
        self.audio: deque[int] = deque(maxlen=48000)  # the last second heard, mono int16
        self.closed: asyncio.Event = asyncio.Event()
        self.close_code: int | None = None
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.participant_id: str | None = None
        self.token: str | None = None

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

    async def join(self, pin: str | None = None) -> dict[str, Any]:
        """Send a join; return the ``joined`` or ``error`` answer."""
        since = len(self.messages)
        msg: dict[str, Any] = {"type": "join", "displayName": self.name}
        if pin is not None:
            msg["pin"] = pin
        await self.send(msg)

        def answer() -> dict[str, Any] | None:
            for m in self.messages[since:]:
                if m.get("type") in ("joined", "error"):
                    return m
            return None

        found: dict[str, Any] = await self.until(answer, 10, "joined or error")
        return found

    # --- media -----------------------------------------------------------------------------
    async def start_media(
        self, codec: str | None = None, video: bool = True, config: RTCConfiguration | None = None
    ) -> None:
        """Offer and answer; ``config``: ICE servers and policy (e.g. relay only through TURN)."""
        pc = RTCPeerConnection(config)
        self.pc = pc
        if video:
            pc.addTrack(ColourTrack(self.colour))
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

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.frame = frame  # type: ignore[assignment]
                    self.video_frames += 1
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
        """The network goes: every ICE socket of the peer connection drops what it sends and
        receives from now on, with no DTLS close and no bye (the signalling WebSocket stays open,
        as a stalled browser's might)."""
        assert self.pc is not None
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls is None:
                continue
            for protocol in dtls.transport._connection._protocols:
                protocol.datagram_received = lambda *_: None  # type: ignore[method-assign]
                if protocol.transport is not None:
                    protocol.transport.sendto = lambda *_: None  # type: ignore[method-assign]

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        if self.ws is not None:
            await self.ws.close()
        for t in self._tasks:
            t.cancel()

    async def vanish(self) -> None:
        """Disappear without a goodbye: drop the TCP connection and the media."""
        if self.ws is not None:
            self.ws.transport.abort()
        if self.pc is not None:
            await self.pc.close()
        for t in self._tasks:
            t.cancel()


def colour_close(
    got: tuple[float, float, float] | None, want: tuple[int, int, int], tol: float = 20.0
) -> bool:
    return got is not None and all(abs(g - w) <= tol for g, w in zip(got, want, strict=True))
