"""The SIP leg: a SIP call's RTP endpoints seen as the MCU's inner interface (like ``legs.webrtc``).

In: RTP from the room system, in order (the endpoint's jitter buffer), depacketised with aiortc's
H.264 / VP8 payload parsers, one frame per RTP timestamp, decoded with PyAV in the node's thread
pool (in order per leg, so the event loop stays free for packets; the frames are stored from
there, see ``DecodeWorker``); audio (PCMU, PCMA, G.722, Opus) decoded with PyAV and resampled to
the mixer's 48 kHz mono 20 ms chunks.
Out: the view's encoded pictures, packetised here (H.264 mode 1 with STAP-A/FU-A; mode 0 one NAL
per packet, the view encoder cutting slices small enough; VP8 per RFC 7741), and the participant's
mix-minus encoded to the negotiated audio codec on each 20 ms mixer tick.

Keyframes both ways: a PLI/FIR from the room system goes to the shared view encoder (which
rate-limits); we send a PLI when our decoder fails, when no keyframe has arrived yet, and when
the participant enters the stage. Nothing a peer sends may raise out of here: bad packets are
counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, cast

import av
import numpy as np
from aiortc.codecs.h264 import H264Encoder, H264PayloadDescriptor
from aiortc.codecs.vpx import VpxPayloadDescriptor

from vdx.legs.audio_codecs import AUDIO_RATES, AudioDecoder, AudioEncoder
from vdx.legs.pcm import CHUNK_SAMPLES, SAMPLE_RATE, Pcm
from vdx.sip import rtcp
from vdx.sip.media import RtpEndpoint
from vdx.sip.rtp import RtpHeader, RtpPacket
from vdx.sip.sdp import Codec, H264Params, NegotiatedStream, fmtp_params

log = logging.getLogger("vdx.legs.sip")

VIDEO_CLOCK = 90000
MAX_FRAME_BYTES = 2_000_000  # a picture larger than this is garbage, not video
PLI_INTERVAL = 1.0  # least seconds between our keyframe requests to one peer


def main_codec(stream: NegotiatedStream | None) -> Codec | None:
    """The codec we send on a stream: the offerer's first that is not telephone-event."""
    if stream is None:
        return None
    for c in stream.codecs:
        if c.name.lower() != "telephone-event":
            return c
    return None


def view_codec(codec: Codec | None) -> str | None:
    """The MCU view codec for a negotiated video codec."""
    if codec is None:
        return None
    name = codec.name.upper()
    if name == "VP8":
        return "VP8"
    if name == "H264":
        h = H264Params.from_fmtp(codec.remote_fmtp or codec.fmtp)
        return "H264" if h is not None and h.packetization_mode == 1 else "H264M0"
    return None


def size_for_macroblocks(max_fs: int, max_mbps: int | None, fps: int) -> tuple[int, int]:
    """The largest 16:9 picture within ``max_fs`` macroblocks per frame (and ``max_mbps`` per
    second at ``fps``), e.g. level 3.1's 3600 -> 1280x720, level 3.0's 1620 -> 848x480 -> 832x468."""
    budget = max_fs
    if max_mbps:
        budget = min(budget, max_mbps // max(fps, 1))
    w = 1920
    while w > 64:
        h = w * 9 // 16
        if ((w + 15) // 16) * ((h + 15) // 16) <= budget:
            break
        w -= 16
    return w - w % 2, (w * 9 // 16) - (w * 9 // 16) % 2


def size_cap_for(codec: Codec | None, fps: int) -> tuple[int, int] | None:
    """What the far end's SDP allows us to send: H.264 level / max-fs / max-mbps (RFC 6184
    §8.1), VP8 max-fs (RFC 7741 §6.1)."""
    if codec is None:
        return None
    if codec.name.upper() == "H264":
        h = codec.send_limits
        if h is None:
            return None
        return size_for_macroblocks(h.max_frame_macroblocks, h.max_macroblocks_per_second, fps)
    if codec.name.upper() == "VP8":
        fs = fmtp_params(codec.remote_fmtp).get("max-fs", "")
        if fs.isdigit() and int(fs) > 0:
            return size_for_macroblocks(int(fs), None, fps)
    return None


# --- audio ----------------------------------------------------------------------------------


class AudioSender:
    """Sends 20 ms chunks as RTP on an endpoint: our SSRC, sequence and timestamp."""

    def __init__(self, endpoint: RtpEndpoint, codec: Codec) -> None:
        self.endpoint = endpoint
        self.codec = codec
        self.encoder = AudioEncoder(codec)
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.packets = 0
        self._first = True

    def push(self, pcm: Pcm) -> None:
        self.push_encoded(self.encoder.encode(pcm))

    def push_encoded(self, payloads: list[bytes]) -> None:
        """20 ms of audio already encoded in this sender's codec (by this sender's encoder, or
        the conference's encoder of the common mix)."""
        for payload in payloads:
            self.endpoint.send_rtp(
                RtpPacket(
                    payload_type=self.codec.pt,
                    sequence_number=self.seq,
                    timestamp=self.ts,
                    ssrc=self.ssrc,
                    payload=payload,
                    marker=self._first,
                )
            )
            self._first = False
            self.seq = (self.seq + 1) & 0xFFFF
            self.packets += 1
        self.ts = (self.ts + self.encoder.clock_step) & 0xFFFFFFFF


class PcmChunker:
    """Decoded audio frames of any layout and rate -> 20 ms mono 48 kHz int16 chunks."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.int16)

    def feed(self, frame: av.AudioFrame) -> list[Pcm]:
        parts = [self._pending]
        for out in self._resampler.resample(frame):
            parts.append(out.to_ndarray().reshape(-1).astype(np.int16))
        buf = np.concatenate(parts)
        n = len(buf) // CHUNK_SAMPLES
        chunks = [buf[i * CHUNK_SAMPLES : (i + 1) * CHUNK_SAMPLES] for i in range(n)]
        self._pending = buf[n * CHUNK_SAMPLES :]
        return chunks


def wav_chunks(path: Path) -> list[Pcm]:
    """A WAV (or any audio file PyAV reads) as 48 kHz mono 20 ms chunks, the last padded."""
    chunker = PcmChunker()
    chunks: list[Pcm] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += chunker.feed(frame)
    rest = chunker._pending
    if len(rest):
        chunks.append(np.concatenate([rest, np.zeros(CHUNK_SAMPLES - len(rest), dtype=np.int16)]))
    return chunks


async def play(
    sender: AudioSender, chunks: list[Pcm], until: Callable[[], bool], *, loop_pause_s: float = 1.5
) -> None:
    """Play chunks in real time on a sender, again and again until ``until()`` holds (a PIN
    prompt as early media, until the PIN is accepted or the call ends)."""
    loop = asyncio.get_running_loop()
    period = CHUNK_SAMPLES / SAMPLE_RATE
    silence = np.zeros(CHUNK_SAMPLES, dtype=np.int16)
    pause = [silence] * int(loop_pause_s / period)
    start = loop.time()
    n = 0
    while True:
        for chunk in [*chunks, *pause]:
            if until():
                return
            sender.push(chunk)
            n += 1
            await asyncio.sleep(max(0.0, start + n * period - loop.time()))


# --- video ----------------------------------------------------------------------------------


VP8_PAYLOAD_MAX = 1300 - 4  # aiortc's packet size less our 4-byte payload descriptor


def _vp8_descriptor(first: bool, picture_id: int) -> bytes:
    """RFC 7741 §4.2: X=1, S on a picture's first packet, partition 0; I=1 with the 15-bit
    PictureID (M=1) always, so every packet's descriptor has the same length."""
    return _VP8_DESCRIPTOR.pack(0x90 if first else 0x80, 0x80, 0x8000 | picture_id)


_VP8_DESCRIPTOR = struct.Struct("!BBH")


# The last picture cut, per packetisation ("VP8", "H264", "H264M0"): (packet, ts, pieces).
_cuts: dict[str, tuple[av.Packet, int, list[bytes]]] = {}


def cut_picture(kind: str, packet: av.Packet, pts: int, tb: Fraction) -> tuple[int, list[bytes]]:
    """A view's picture as its RTP timestamp (90 kHz, before a sender's offset) and pieces: VP8
    data chunks (a descriptor goes in front of each, per receiver: ``vp8_payloads``), or H.264
    payloads (``kind`` "H264", mode 1: STAP-A/FU-A; "H264M0": one NAL unit each, RFC 6184
    §6.2). A shared view sends the same picture to every subscriber in turn (SIP and WebRTC
    legs alike), so this is done once per picture and kind of packetisation, not once per
    subscriber."""
    cached = _cuts.get(kind)
    if cached is not None and cached[0] is packet:
        return cached[1], cached[2]
    ts = pts * VIDEO_CLOCK * tb.numerator // tb.denominator
    data = bytes(packet)
    if kind == "VP8":
        pieces = [data[i : i + VP8_PAYLOAD_MAX] for i in range(0, len(data), VP8_PAYLOAD_MAX)]
    else:
        nals = [n for n in H264Encoder._split_bitstream(data) if n]
        pieces = nals if kind == "H264M0" else H264Encoder._packetize(nals)
    _cuts[kind] = (packet, ts, pieces)
    return ts, pieces


def vp8_payloads(pieces: list[bytes], picture_id: int) -> list[bytes]:
    """A VP8 picture's pieces with a receiver's descriptor in front of each."""
    return [_vp8_descriptor(i == 0, picture_id) + piece for i, piece in enumerate(pieces)]


class VideoSender:
    """The view's encoded pictures -> RTP: waits for a keyframe after (re)starting, one RTP
    timestamp per picture, marker on its last packet; pictures are cut once for every
    subscriber (``cut_picture``)."""

    def __init__(self, endpoint: RtpEndpoint, codec: Codec, view_codec_name: str) -> None:
        self.endpoint = endpoint
        self.codec = codec
        self.kind = view_codec_name if view_codec_name in ("VP8", "H264M0") else "H264"
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts_offset = random.getrandbits(32)
        self.picture_id = random.getrandbits(15)
        self._need_keyframe = True
        self._last_ts: int | None = None
        self.on_keyframe_needed: Callable[[], None] = lambda: None
        self.packets = 0
        self.frames = 0

    def restart(self) -> None:
        self._need_keyframe = True

    def push(self, packet: av.Packet) -> None:
        pts, tb = packet.pts, packet.time_base
        if pts is None or tb is None:
            return
        ts, pieces = cut_picture(self.kind, packet, pts, tb)
        if self._last_ts is not None and ts <= self._last_ts:
            if packet.is_keyframe:
                self.on_keyframe_needed()
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                return
            self._need_keyframe = False
        self._last_ts = ts
        if self.kind == "VP8":
            payloads = vp8_payloads(pieces, self.picture_id)
            self.picture_id = (self.picture_id + 1) % (1 << 15)
        else:
            payloads = pieces
        rtp_ts = (ts + self.ts_offset) & 0xFFFFFFFF
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            self.endpoint.send_rtp(
                RtpPacket(
                    payload_type=self.codec.pt,
                    sequence_number=self.seq,
                    timestamp=rtp_ts,
                    ssrc=self.ssrc,
                    payload=payload,
                    marker=i == last,
                )
            )
            self.seq = (self.seq + 1) & 0xFFFF
            self.packets += 1
        self.frames += 1


def video_decoder(codec_name: str) -> av.VideoCodecContext:
    """An H.264 or VP8 decoder as the node runs it (``bench/floor.py`` measures the same).

    One thread each: FFmpeg's default (``threads`` auto) gives every decoder a slice-thread pool
    of its own, one thread per core, and a node decodes tens of streams at once in its thread
    pool, which already keeps every core busy."""
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
        self.frames = 0
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
        return any(nal[0] & 0x1F == 5 for nal in H264Encoder._split_bitstream(data) if nal)

    def decode(self, data: bytes, broken: bool) -> tuple[list[av.VideoFrame], bool]:
        """Decode one picture (in order, one thread at a time): frames, and whether we need a
        keyframe."""
        if not data:
            return [], broken
        try:
            frames = list(self.decoder.decode(av.Packet(data)))
        except Exception:  # av.error.FFmpegError and friends: a corrupt or partial picture
            self.errors += 1
            return [], True
        self.frames += len(frames)
        self.keyframes += sum(1 for f in frames if f.key_frame)
        return frames, broken


class DecodeWorker:
    """Decodes a leg's pictures in the node's thread pool, in order, one job at a time per leg
    (PyAV releases the GIL while decoding, so the event loop keeps receiving and sending on one
    core while pictures decode on the other). ``done`` gets each picture's frames in the worker
    thread, so it must only store them (a decoded picture does not wake the event loop: at 30
    pictures a second per participant those wake-ups cost more than the store); a keyframe that
    is needed (loss, a decoder error) goes to ``need_keyframe`` on the event loop. Without an
    executor it decodes at once.

    When the pool falls behind (a node short of CPU), a leg's backlog is bounded: past
    ``MAX_BACKLOG`` pictures waiting, they are dropped and so is everything up to the next
    keyframe (which is asked for), so the node sheds load instead of queueing it without end and
    never decodes a picture whose references it skipped."""

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


# --- the leg --------------------------------------------------------------------------------


@dataclass
class SipLegCounters:
    video_frames_in: int = 0
    audio_frames_in: int = 0
    keyframe_requests_in: int = 0
    keyframe_requests_out: int = 0
    decode_errors: int = 0
    dropped: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    video_width: int = 0  # of the last picture received
    video_height: int = 0


class VideoInCounters(Protocol):
    """The counters ``VideoIntake`` keeps, whatever else a leg's counters hold."""

    video_frames_in: int
    decode_errors: int
    video_width: int
    video_height: int


class VideoIntake(ABC):
    """The leg's ends of its ``DecodeWorker``, the same for SIP and WebRTC legs: ``_decoded``
    stores a picture (in a worker thread, so it only stores), ``_decode_wants_keyframe`` asks the
    far end for a keyframe (on the event loop)."""

    counters: VideoInCounters
    _closed: bool
    _video_in: VideoReceiver | None
    _want_keyframe_until: float
    _on_video: Callable[[av.VideoFrame], None]

    @abstractmethod
    def request_keyframe(self) -> None:
        """Ask the far end for a keyframe (each kind of leg has its own way: RTCP PLI or FIR)."""

    def _decoded(self, rx: VideoReceiver, frames: list[av.VideoFrame]) -> None:
        if self._closed or rx is not self._video_in:
            return  # a picture of a stream the leg has left (a codec change, the end of the call)
        self.counters.decode_errors = rx.errors
        for frame in frames:
            self.counters.video_frames_in += 1
            self.counters.video_width, self.counters.video_height = frame.width, frame.height
            if frame.key_frame:
                self._want_keyframe_until = 0.0
            self._on_video(frame)

    def _decode_wants_keyframe(self, rx: VideoReceiver) -> None:
        if not self._closed and rx is self._video_in:
            self.counters.decode_errors = rx.errors
            self.request_keyframe()


class VideoOut:
    """The leg's stable video subscriber: forwards to the current sender (None while the call has
    no video), so a re-INVITE that changes the codec does not leave a stale subscription."""

    def __init__(self) -> None:
        self.sender: VideoSender | None = None

    def push(self, packet: av.Packet) -> None:
        if self.sender is not None:
            self.sender.push(packet)

    def restart(self) -> None:
        if self.sender is not None:
            self.sender.restart()


class AudioOut:
    """The leg's mix-minus out (``conference.participant.AudioOut``): to the current sender."""

    def __init__(self) -> None:
        self.sender: AudioSender | None = None

    @property
    def codec_key(self) -> str | None:
        return self.sender.encoder.name if self.sender is not None else None

    def push(self, pcm: Pcm) -> None:
        if self.sender is not None:
            self.sender.push(pcm)

    def push_encoded(self, payloads: list[bytes]) -> None:
        if self.sender is not None:
            self.sender.push_encoded(payloads)

    def new_encoder(self) -> AudioEncoder:
        if self.sender is None:
            raise RuntimeError("no audio is sent on this leg")
        return AudioEncoder(self.sender.codec)


class SipLeg(VideoIntake):
    """One SIP participant's media. Built from the call's negotiated endpoints; ``update()``
    after a re-INVITE re-reads them (codec change, hold). ``on_video`` is called in a worker
    thread of ``executor`` (with one) and must only store the frame; the other callbacks run on
    the event loop."""

    def __init__(
        self,
        audio: RtpEndpoint | None,
        video: RtpEndpoint | None,
        on_video: Callable[[av.VideoFrame], None],
        on_audio: Callable[[Pcm], None],
        on_keyframe_request: Callable[[], None],
        fps: int = 20,
        executor: Executor | None = None,
    ) -> None:
        self._on_video = on_video
        self._on_audio = on_audio
        self._on_keyframe_request = on_keyframe_request
        self.fps = fps
        self.counters: SipLegCounters = SipLegCounters()
        self.audio_ep = audio
        self.video_ep = video
        self.video_codec: str | None = None
        self.size_cap: tuple[int, int] | None = None
        self._video_out = VideoOut()
        self._audio_out = AudioOut()
        self._audio_in: dict[int, AudioDecoder] = {}
        self._video_in: VideoReceiver | None = None
        self._decoder = DecodeWorker(executor, self._decoded, self._decode_wants_keyframe)
        self._remote_video_ssrc = 0
        self._last_pli = -1e9
        self._want_keyframe_until = 0.0
        self._closed = False
        self.update(audio, video)

    @property
    def video_out(self) -> VideoOut:
        return self._video_out

    @property
    def audio_out(self) -> AudioOut:
        return self._audio_out

    def update(self, audio: RtpEndpoint | None, video: RtpEndpoint | None) -> None:
        self.audio_ep, self.video_ep = audio, video
        acodec = main_codec(audio.stream if audio else None)
        if audio is not None and acodec is not None and acodec.name.lower() in AUDIO_RATES:
            current = self._audio_out.sender
            if current is None or current.codec != acodec or current.endpoint is not audio:
                self._audio_out.sender = AudioSender(audio, acodec)
            audio.on_rtp = self._audio_rtp
        else:
            self._audio_out.sender = None
        self._audio_in.clear()
        vcodec = main_codec(video.stream if video else None)
        name = view_codec(vcodec)
        if video is not None and vcodec is not None and name is not None:
            current_v = self._video_out.sender
            if current_v is None or current_v.codec != vcodec or current_v.endpoint is not video:
                sender = VideoSender(video, vcodec, name)
                sender.on_keyframe_needed = self._on_keyframe_request
                self._video_out.sender = sender
            self.video_codec = name
            self.size_cap = size_cap_for(vcodec, self.fps)
            video.on_rtp = self._video_rtp
            video.on_keyframe_request = self._keyframe_requested
            self._video_in = None
            self.request_keyframe(force=True)
        else:
            self._video_out.sender = None
            self.video_codec = None
            self.size_cap = None

    # --- in ---------------------------------------------------------------------------------
    def _drop(self, reason: str) -> None:
        self.counters.dropped += 1
        self.counters.by_reason[reason] = self.counters.by_reason.get(reason, 0) + 1

    def _audio_rtp(self, packet: RtpPacket) -> None:
        if self._closed or self.audio_ep is None or self.audio_ep.stream is None:
            return
        # A decoder per payload type, made at its first packet (``update`` clears them when the
        # stream changes): later packets skip the search of the stream's codecs.
        dec = self._audio_in.get(packet.payload_type)
        if dec is None:
            codec = next((c for c in self.audio_ep.stream.codecs if c.pt == packet.payload_type), None)
            if codec is None or codec.name.lower() not in AUDIO_RATES:
                self._drop("audio payload type")
                return
            dec = self._audio_in[codec.pt] = AudioDecoder(codec)
        try:
            chunks = dec.decode(packet.payload)
        except Exception:
            self._drop("audio decode")
            return
        for chunk in chunks:
            self.counters.audio_frames_in += 1
            self._on_audio(chunk)

    def _video_rtp(self, packet: RtpPacket) -> None:
        if self._closed or self.video_ep is None or self.video_ep.stream is None:
            return
        rx = self._video_in
        if rx is None or rx.codec.pt != packet.payload_type:  # ``update`` clears it on a new stream
            codec = next((c for c in self.video_ep.stream.codecs if c.pt == packet.payload_type), None)
            if codec is None or codec.name.upper() not in ("H264", "VP8"):
                self._drop("video payload type")
                return
            rx = self._video_in = VideoReceiver(codec)
        self._remote_video_ssrc = packet.ssrc
        for data, broken in rx.assemble(packet):
            self._decoder.submit(rx, data, broken)
        if rx.keyframes == 0 and time.monotonic() < self._want_keyframe_until:
            self.request_keyframe()

    def _keyframe_requested(self) -> None:
        self.counters.keyframe_requests_in += 1
        self._on_keyframe_request()

    def request_keyframe(self, force: bool = False) -> None:
        """Send a PLI (and a FIR, for endpoints that only honour that, RFC 5104 §4.3.1) to the
        room system, at most once per ``PLI_INTERVAL``; ``force`` also keeps asking until a
        keyframe arrives (a new participant, a new stream)."""
        now = time.monotonic()
        if force:
            self._want_keyframe_until = now + 10.0
        ep = self.video_ep
        if ep is None or now - self._last_pli < PLI_INTERVAL:
            return
        self._last_pli = now
        sender_ssrc = self._video_out.sender.ssrc if self._video_out.sender is not None else 1
        media = self._remote_video_ssrc
        msgs: list[rtcp.RtcpMessage] = [rtcp.Pli(sender_ssrc, media)]
        fb = ep.stream.codecs[0].rtcp_fb if ep.stream and ep.stream.codecs else ()
        if "ccm fir" in fb:
            msgs.append(rtcp.Fir(sender_ssrc, [(media, int(now) & 0xFF)]))
        try:
            ep.send_rtcp([rtcp.ReceiverReport(sender_ssrc), *msgs])
        except Exception:
            log.debug("could not send a keyframe request", exc_info=True)
            return
        self.counters.keyframe_requests_out += 1

    # --- reporting, end ---------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "videoCodec": self.video_codec,
            "videoFramesDecoded": self.counters.video_frames_in,
            "audioFramesDecoded": self.counters.audio_frames_in,
            "keyframeRequests": self.counters.keyframe_requests_in,
            "keyframeRequestsSent": self.counters.keyframe_requests_out,
            "decodeErrors": self.counters.decode_errors,
            "packetsDropped": self.counters.dropped,
        }
        if self._video_out.sender is not None:
            out["videoPacketsSent"] = self._video_out.sender.packets
            out["videoFramesSent"] = self._video_out.sender.frames
        if self._audio_out.sender is not None:
            out["audioPacketsSent"] = self._audio_out.sender.packets
        received = 0
        for kind, ep in (("audio", self.audio_ep), ("video", self.video_ep)):
            if ep is not None:
                out[f"{kind}PacketsReceived"] = ep.stats.rtp_packets
                out[f"{kind}PacketsLost"] = ep.packets_lost
                out[f"{kind}RemotePacketsLost"] = ep.stats.remote_packets_lost
                out[f"{kind}BadPackets"] = ep.stats.bad_packets
                received += ep.stats.rtp_bytes
        out["bytesReceived"] = received
        return out

    async def close(self) -> None:
        self._closed = True
        self._audio_out.sender = None
        self._video_out.sender = None
        for ep in (self.audio_ep, self.video_ep):
            if ep is not None:
                ep.on_rtp = None
                ep.on_keyframe_request = None
