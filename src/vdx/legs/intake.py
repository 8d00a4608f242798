"""A leg's received media on its way to the conference, the same for SIP and WebRTC legs.

Ordered RTP of the negotiated codecs comes in (each leg reads its own wire and resolves payload
types to codecs); video is assembled and decoded (``legs.video_decoding``), audio decoded to the
mixer's chunks (``legs.audio_codecs``), both counted in :class:`LegCounters`. Keyframe requests
to the far end are paced here; how one is sent is the leg's. Nothing a peer sends may raise out
of here: bad packets are counted and dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

import av

from vdx.legs.audio_codecs import AUDIO_RATES, AudioDecoder
from vdx.legs.pcm import Pcm
from vdx.legs.video_decoding import DecodeWorker, VideoReceiver
from vdx.sip.rtp import RtpHeader
from vdx.sip.sdp import Codec

PLI_INTERVAL = 1.0  # least seconds between our keyframe requests to one peer
KEYFRAME_WAIT = 10.0  # seconds a new stream keeps asking until a keyframe arrives
VIDEO_CODECS = ("H264", "VP8")


class RtpIn(RtpHeader, Protocol):
    """What the intake reads of a packet: ours (SIP) or aiortc's (WebRTC)."""

    @property
    def payload_type(self) -> int: ...


@dataclass
class LegCounters:
    """What a leg counts of its media, whatever its wire (``stats()`` reports them)."""

    video_frames_in: int = 0
    audio_frames_in: int = 0
    keyframe_requests_in: int = 0  # from the far end
    keyframe_requests_out: int = 0  # sent to the far end
    decode_errors: int = 0
    dropped: int = 0  # packets of no usable codec, or that do not decode
    video_width: int = 0  # of the last picture received (the dashboard shows it)
    video_height: int = 0


class MediaIntake:
    """A leg's decoders and counters. ``video_codec``/``audio_codec`` resolve a payload type the
    leg has negotiated (None: not one); ``ask_keyframe`` sends a keyframe request on the leg's
    wire and says whether it went (None: nobody to ask yet). ``on_video`` is called in a worker
    thread of ``executor`` (with one) and must only store the frame; the rest runs on the loop."""

    def __init__(
        self,
        on_video: Callable[[av.VideoFrame], None],
        on_audio: Callable[[Pcm], None],
        video_codec: Callable[[int], Codec | None],
        audio_codec: Callable[[int], Codec | None],
        ask_keyframe: Callable[[], bool | None],
        executor: Executor | None,
    ) -> None:
        self.counters = LegCounters()
        self.closed = False
        self._on_video = on_video
        self._on_audio = on_audio
        self._video_codec = video_codec
        self._audio_codec = audio_codec
        self._ask_keyframe = ask_keyframe
        self._video_in: VideoReceiver | None = None
        self._audio_in: dict[int, AudioDecoder] = {}
        self._decoder = DecodeWorker(executor, self._decoded, self._decode_wants_keyframe)
        self._last_request = -1e9
        self._want_keyframe_until = 0.0

    def forget_video(self) -> None:
        """A new video stream: its first packet makes a new receiver."""
        self._video_in = None

    def forget_audio(self) -> None:
        """New audio streams: their first packets make new decoders."""
        self._audio_in.clear()

    def video(self, packet: RtpIn) -> None:
        if self.closed:
            return
        rx = self._video_in
        if rx is None or rx.codec.pt != packet.payload_type:
            codec = self._video_codec(packet.payload_type)
            if codec is None or codec.name.upper() not in VIDEO_CODECS:
                self.counters.dropped += 1
                return
            rx = self._video_in = VideoReceiver(codec)
        for data, broken in rx.assemble(packet):
            self._decoder.submit(rx, data, broken)
        if self._want_keyframe_until and rx.keyframes == 0 and time.monotonic() < self._want_keyframe_until:
            self.request_keyframe()

    def audio(self, packet: RtpIn) -> None:
        if self.closed:
            return
        # A decoder per payload type, made at its first packet: later packets skip the lookup.
        dec = self._audio_in.get(packet.payload_type)
        if dec is None:
            codec = self._audio_codec(packet.payload_type)
            if codec is None or codec.name.lower() not in AUDIO_RATES:
                self.counters.dropped += 1
                return
            dec = self._audio_in[packet.payload_type] = AudioDecoder(codec)
        try:
            chunks = dec.decode(packet.payload)
        except Exception:  # a corrupt packet
            self.counters.dropped += 1
            return
        for chunk in chunks:
            self.counters.audio_frames_in += 1
            self._on_audio(chunk)

    def request_keyframe(self, force: bool = False) -> None:
        """Ask the far end for a keyframe, at most once per ``PLI_INTERVAL``; ``force`` also keeps
        asking until one arrives (a new participant, a new stream)."""
        now = time.monotonic()
        if force:
            self._want_keyframe_until = now + KEYFRAME_WAIT
        if self.closed or now - self._last_request < PLI_INTERVAL:
            return
        sent = self._ask_keyframe()
        if sent is None:
            return
        self._last_request = now
        if sent:
            self.counters.keyframe_requests_out += 1

    def _decoded(self, rx: VideoReceiver, frames: list[av.VideoFrame]) -> None:
        """In a worker thread: store only."""
        if self.closed or rx is not self._video_in:
            return  # a picture of a stream the leg has left (a codec change, the end of the call)
        c = self.counters
        c.decode_errors = rx.errors
        for frame in frames:
            c.video_frames_in += 1
            c.video_width, c.video_height = frame.width, frame.height
            if frame.key_frame:
                self._want_keyframe_until = 0.0
            self._on_video(frame)

    def _decode_wants_keyframe(self, rx: VideoReceiver) -> None:
        if not self.closed and rx is self._video_in:
            self.counters.decode_errors = rx.errors
            self.request_keyframe()

    def stats(self) -> dict[str, Any]:
        """The counters under the names the room status (and so the dashboard and bench) reads."""
        c = self.counters
        return {
            "videoFramesDecoded": c.video_frames_in,
            "videoWidth": c.video_width,
            "videoHeight": c.video_height,
            "audioFramesDecoded": c.audio_frames_in,
            "keyframeRequests": c.keyframe_requests_in,
            "keyframeRequestsSent": c.keyframe_requests_out,
            "decodeErrors": c.decode_errors,
            "packetsDropped": c.dropped + self._decoder.dropped,
        }
