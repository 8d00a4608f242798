"""Received video, the same for SIP and WebRTC legs: ordered RTP -> pictures -> decoded frames.

:class:`VideoReceiver` assembles and depacketises (aiortc's H.264 / VP8 payload parsers) on the
event loop, where it is cheap; :class:`DecodeWorker` decodes in the node's thread pool, in order
per leg, so the loop stays free for packets. Nothing a peer sends may raise out of here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import cast

import av
from aiortc.codecs.h264 import H264PayloadDescriptor
from aiortc.codecs.vpx import VpxPayloadDescriptor

from vdx.legs.aiortc_hooks import h264_nal_units
from vdx.legs.media_cpu import MEDIA_CPU, VIDEO_DECODE, clock
from vdx.sip.rtp import RtpHeader
from vdx.sip.sdp import Codec

log = logging.getLogger("vdx.legs.video_decoding")

MAX_FRAME_BYTES = 2_000_000  # a picture larger than this is garbage, not video


def video_decoder(codec_name: str) -> av.VideoCodecContext:
    """An H.264 or VP8 decoder as the node runs it (``bench/floor.py`` measures the same).

    One thread each: FFmpeg's default gives every decoder a slice-thread pool of its own, and a
    node decodes many streams at once in its thread pool, which already keeps every core busy."""
    ctx = av.CodecContext.create("h264" if codec_name.upper() == "H264" else "vp8", "r")
    ctx.thread_count = 1
    return cast(av.VideoCodecContext, ctx)


class VideoReceiver:
    """Ordered RTP -> decoded frames: collects one picture per RTP timestamp (complete at the
    marker bit or when the next timestamp starts), depacketises and decodes it."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.h264 = codec.name.upper() == "H264"
        self.decoder = video_decoder(codec.name)
        self._ts: int | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._broken = False
        self._expected_seq: int | None = None
        self.errors = 0
        self.keyframes = 0

    def feed(self, packet: RtpHeader) -> tuple[list[av.VideoFrame], bool]:
        """Frames decoded, and whether we need a keyframe (loss, decoder error)."""
        frames: list[av.VideoFrame] = []
        need = False
        for data, broken in self.assemble(packet):
            f, n = self.decode(data, broken)
            frames += f
            need = need or n
        return frames, need

    def assemble(self, packet: RtpHeader) -> list[tuple[bytes, bool]]:
        """The pictures this packet completes, depacketised, each with whether a part of it was
        lost (then we need a keyframe). Cheap: the leg runs this on the event loop and hands
        the pictures to :meth:`decode` in a worker thread."""
        out: list[tuple[bytes, bool]] = []
        if self._expected_seq is not None and packet.sequence_number != self._expected_seq:
            self._broken = True  # a packet of this picture was lost
        self._expected_seq = (packet.sequence_number + 1) & 0xFFFF
        if self._ts is not None and packet.timestamp != self._ts:
            out.append(self._finish())
        self._ts = packet.timestamp
        try:
            if not packet.payload:
                data = b""  # padding only (a sender probing bandwidth): nothing of the picture
            elif self.h264:
                _, data = H264PayloadDescriptor.parse(packet.payload)
            else:
                _, data = VpxPayloadDescriptor.parse(packet.payload)
        except Exception:
            data = b""
            self._broken = True
        if data:
            self._parts.append(data)
            self._size += len(data)
            if self._size > MAX_FRAME_BYTES:
                self._parts, self._size, self._broken = [], 0, True
        if packet.marker:
            out.append(self._finish())
        return out

    def _finish(self) -> tuple[bytes, bool]:
        data = b"".join(self._parts)
        broken = self._broken
        self._parts, self._size, self._broken, self._ts = [], 0, False, None
        return data, broken

    def is_keyframe(self, data: bytes) -> bool:
        """Whether a depacketised picture starts a stream: a VP8 key frame (RFC 6386 §9.1: bit 0
        of the frame tag clear), or H.264 with an IDR slice (NAL type 5)."""
        if not data:
            return False
        if not self.h264:
            return not data[0] & 1
        return any(nal[0] & 0x1F == 5 for nal in h264_nal_units(data) if nal)

    def decode(self, data: bytes, broken: bool) -> tuple[list[av.VideoFrame], bool]:
        """Decode one picture (in order, one thread at a time): frames, and whether we need a
        keyframe."""
        if not data:
            return [], broken
        started = clock()
        try:
            frames = list(self.decoder.decode(av.Packet(data)))
        except Exception:  # av.error.FFmpegError and friends: a corrupt or partial picture
            self.errors += 1
            return [], True
        finally:
            MEDIA_CPU.add(VIDEO_DECODE, clock() - started)
        self.keyframes += sum(1 for f in frames if f.key_frame)
        return frames, broken


class DecodeWorker:
    """Decodes a leg's pictures in the node's thread pool, in order, one at a time per leg
    (PyAV releases the GIL, so the event loop keeps moving packets meanwhile); without an
    executor, at once. ``done`` runs in the worker thread and must only store the frames (a
    wake-up of the loop per picture would cost more); ``need_keyframe`` runs on the loop.

    Past ``MAX_BACKLOG`` waiting pictures (a node short of CPU), the backlog and everything up
    to the next keyframe (asked for) are dropped: the node sheds load instead of queueing it,
    and never decodes a picture whose references it skipped."""

    MAX_BACKLOG = 3

    def __init__(
        self,
        executor: Executor | None,
        done: Callable[[VideoReceiver, list[av.VideoFrame]], None],
        need_keyframe: Callable[[VideoReceiver], None],
    ) -> None:
        self._executor = executor
        self._done = done
        self._need_keyframe = need_keyframe
        self._loop = asyncio.get_running_loop() if executor is not None else None
        self._pending: deque[tuple[VideoReceiver, bytes, bool]] = deque()
        self._lock = threading.Lock()
        self._running = False
        self._skipping = False
        self.dropped = 0

    def submit(self, rx: VideoReceiver, data: bytes, broken: bool) -> None:
        if self._executor is None:
            frames, need = rx.decode(data, broken)
            self._done(rx, frames)
            if need:
                self._need_keyframe(rx)
            return
        with self._lock:
            if len(self._pending) >= self.MAX_BACKLOG:
                self.dropped += len(self._pending)
                self._pending.clear()
                self._skipping = True
            if self._skipping:
                if not rx.is_keyframe(data):
                    self.dropped += 1
                    shed = True
                else:
                    self._skipping = shed = False
            else:
                shed = False
            if not shed:
                self._pending.append((rx, data, broken))
                start = not self._running
                self._running = True
        if shed:
            self._need_keyframe(rx)  # ask for the keyframe that ends the skipping
            return
        if start:
            self._executor.submit(self._drain)

    def _drain(self) -> None:
        assert self._loop is not None
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                rx, data, broken = self._pending.popleft()
            frames, need = rx.decode(data, broken)
            try:
                self._done(rx, frames)
            except Exception:
                log.exception("error storing a decoded picture")
            if not need:
                continue
            try:
                self._loop.call_soon_threadsafe(self._need_keyframe, rx)
            except RuntimeError:  # the loop has closed: the node is stopping
                with self._lock:
                    self._pending.clear()
                    self._running = False
                return
