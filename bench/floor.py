"""The codec floor: the pure PyAV cost of the work an MCU room does, measured in this process.

Per operation, in milliseconds of CPU (this process, all threads): decode one incoming picture
(the SIP leg's decoder, its settings), scale it to its tile and compose one view picture from the
scaled tiles (vdx's Compositor and its scale cache: a real layout of real decoded pictures, with
name overlays; a picture is scaled once however many views show it), encode it (vdx's
VideoEncoder, the node's settings), decode and encode 20 ms of Opus (the SIP leg's libopus
decoder and encoder). A benchmark measures these once per (codec, size, layout) in the same run
as the node, while no room runs, and multiplies by the work the node did, so "MCU / floor" is a
ratio taken on one machine at one moment.

Each is measured twice. *Tight*: every operation in a loop, back to back, as fast as the codec
goes. *Paced*: one room's work as it comes in a call, every frame interval (20 ms for audio) each
participant's picture decoded and a view per participant composed and encoded, then nothing
until the next interval. A processor that idles between frames comes back to cold caches (on
this project's VMs an encode costs half as much again after 5 ms idle as back to back), so a
real-time MCU can reach the paced floor but not the tight one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import av

from bench.clips import Clip, tone
from vdx.conference.compositor import Compositor, ScaleCache, TileSource, copy_picture
from vdx.conference.layouts import tiles
from vdx.conference.views import VideoEncoder
from vdx.legs.audio_codecs import AudioDecoder, AudioEncoder
from vdx.legs.media_cpu import MEDIA_CPU, VIDEO_COMPOSE, VIDEO_SCALE
from vdx.legs.video_decoding import video_decoder
from vdx.sip.sdp import Codec

AUDIO_PER_SECOND = 50  # 20 ms packets
PACED_S = 2.0  # seconds of a room's work the paced floor takes


@dataclass(frozen=True)
class FloorCosts:
    """Milliseconds of CPU per operation. Composing is two operations: ``scale`` one decoded
    picture to its tile and draw its name on it (once, however many views show it: any MCU
    shares that, as the node's scale cache does) and ``compose`` one view picture from tiles
    already scaled (the canvas and the copies)."""

    decode: float
    scale: float
    compose: float
    encode: float
    opus_decode: float
    opus_encode: float
    paced: FloorCosts | None = None  # the same operations at a room's pace (the module's doc)

    def per_second(self, streams: int, views: int, fps: float, audio: int | None = None) -> dict[str, float]:
        """Milliseconds of CPU per second of a room's work: ``streams`` pictures decoded and
        scaled and ``views`` composed and encoded at ``fps``, ``audio`` participants' Opus both
        ways (default: one per stream). *codec* leaves composing out, *full* has it."""
        talkers = streams if audio is None else audio
        codec = (
            streams * fps * self.decode
            + views * fps * self.encode
            + talkers * AUDIO_PER_SECOND * (self.opus_decode + self.opus_encode)
        )
        return {"codec": codec, "full": codec + streams * fps * self.scale + views * fps * self.compose}

    def work(self, decoded: float, encoded: float, audio_packets: float) -> dict[str, float]:
        """Milliseconds of CPU for a count of work actually done (pictures decoded and scaled,
        view pictures composed and encoded, 20 ms audio packets decoded and encoded)."""
        codec = (
            decoded * self.decode
            + encoded * self.encode
            + audio_packets * (self.opus_decode + self.opus_encode)
        )
        return {"codec": codec, "full": codec + decoded * self.scale + encoded * self.compose}


def _cpu() -> float:
    return time.process_time()


def _stage(frames: list[av.VideoFrame], i: int, shown: int) -> list[TileSource | None]:
    """The ``i``-th picture of a room of ``shown``: each participant a different frame of the clip."""
    return [TileSource(frames[(i + 7 * k) % len(frames)], f"Caller {k}", f"p{k}") for k in range(shown)]


def video_costs(
    clip: Clip, tiles_shown: int, layout: str, overlay: bool = True, view: tuple[int, int] | None = None
) -> tuple[float, float, float, float]:
    """(decode, scale, compose, encode) in ms per picture for ``clip`` in ``layout`` with
    ``tiles_shown`` participants on stage, composed and encoded at ``view`` (default the clip's
    size): scale per decoded picture, compose per view picture from tiles already scaled."""
    width, height = view or (clip.width, clip.height)
    decoder = video_decoder("H264" if clip.codec.startswith("H264") else "VP8")
    frames: list[av.VideoFrame] = []
    t0 = _cpu()
    for data in clip.video:
        frames += decoder.decode(av.Packet(data))
    dec = (_cpu() - t0) / len(clip.video)
    if not frames:
        raise RuntimeError(f"the {clip.codec} clip did not decode")

    layout_tiles = tiles(layout, width, height)
    count = min(len(frames), 2 * clip.fps)

    # Every picture new (each tile scaled), then the same pictures again (the tiles from the
    # cache, each painted again): the difference is the scaling, the second pass what composing
    # a view adds to it.
    compositor = Compositor(width, height, ScaleCache())
    t0 = _cpu()
    for i in range(count):
        compositor.compose(layout_tiles, _stage(frames, i, tiles_shown), overlay)
    both = (_cpu() - t0) / count
    last = _stage(frames, count - 1, tiles_shown)
    t0 = _cpu()
    for _ in range(count):
        compositor.repaint()
        compositor.compose(layout_tiles, last, overlay)
    comp = (_cpu() - t0) / count
    scale = max(0.0, both - comp) / tiles_shown
    composed = [
        copy_picture(compositor.compose(layout_tiles, _stage(frames, i, tiles_shown), overlay))
        for i in range(count)
    ]

    encoder = VideoEncoder(clip.codec, width, height, clip.fps)
    t0 = _cpu()
    for i, frame in enumerate(composed):
        encoder.encode(frame, i, keyframe=i == 0)
    enc = (_cpu() - t0) / count
    return dec * 1e3, scale * 1e3, comp * 1e3, enc * 1e3


def opus_costs(packets: list[bytes]) -> tuple[float, float]:
    """(decode, encode) in ms per 20 ms of Opus at 48 kHz mono: the SIP leg's own decoder and
    encoder (libopus through PyAV, the node's settings)."""
    opus = Codec("audio", 111, "opus", 48000, 2)
    decoder = AudioDecoder(opus)
    t0 = _cpu()
    for data in packets:
        decoder.decode(data)
    adec = (_cpu() - t0) / len(packets)
    encoder = AudioEncoder(opus)
    pcm = [tone(300.0, 3000, n).reshape(-1) for n in range(len(packets))]
    t0 = _cpu()
    for chunk in pcm:
        encoder.encode(chunk)
    aenc = (_cpu() - t0) / len(packets)
    return adec * 1e3, aenc * 1e3


def _next_interval(due: float, interval: float) -> float:
    """Sleep until ``due`` + ``interval`` (at once when late) and return it."""
    due += interval
    time.sleep(max(0.0, due - time.monotonic()))
    return due


def paced_video_costs(
    clip: Clip,
    tiles_shown: int,
    layout: str,
    overlay: bool = True,
    view: tuple[int, int] | None = None,
    seconds: float = PACED_S,
) -> tuple[float, float, float, float]:
    """(decode, scale, compose, encode) in ms per picture, as :func:`video_costs`, with the work
    paced as a room of ``tiles_shown`` brings it: every frame interval, each participant's next
    picture decoded (a decoder each), a view per participant composed from everyone's tiles (each
    picture scaled once, the scale cache shared as in a node) and encoded (an encoder each)."""
    width, height = view or (clip.width, clip.height)
    codec = "H264" if clip.codec.startswith("H264") else "VP8"
    decoders = [video_decoder(codec) for _ in range(tiles_shown)]
    reference = video_decoder(codec)  # the pictures the tiles show, as in video_costs (untimed)
    frames = [f for data in clip.video for f in reference.decode(av.Packet(data))]
    cache = ScaleCache()
    compositors = [Compositor(width, height, cache) for _ in range(tiles_shown)]
    encoders = [VideoEncoder(clip.codec, width, height, clip.fps) for _ in range(tiles_shown)]
    layout_tiles = tiles(layout, width, height)
    ticks = max(1, int(seconds * clip.fps))
    dec = enc = 0.0
    before = MEDIA_CPU.totals()
    due = time.monotonic()
    for i in range(ticks):
        data = clip.video[i % len(clip.video)]
        t0 = _cpu()
        for decoder in decoders:
            decoder.decode(av.Packet(data))
        dec += _cpu() - t0
        stage = _stage(frames, i, tiles_shown)
        for compositor, encoder in zip(compositors, encoders, strict=True):
            picture = compositor.compose(layout_tiles, stage, overlay)
            t0 = _cpu()
            encoder.encode(picture, i, keyframe=i == 0)
            enc += _cpu() - t0
        due = _next_interval(due, 1 / clip.fps)
    after = MEDIA_CPU.totals()

    def per_call(op: str) -> float:
        calls = after[op][0] - before[op][0]
        return (after[op][1] - before[op][1]) / calls if calls else 0.0

    n = ticks * tiles_shown
    return dec / n * 1e3, per_call(VIDEO_SCALE) * 1e3, per_call(VIDEO_COMPOSE) * 1e3, enc / n * 1e3


def paced_opus_costs(packets: list[bytes], streams: int, seconds: float = PACED_S) -> tuple[float, float]:
    """(decode, encode) in ms per 20 ms of Opus, as :func:`opus_costs`, paced as a room of
    ``streams`` brings them: every 20 ms a packet decoded and a chunk encoded for each."""
    opus = Codec("audio", 111, "opus", 48000, 2)
    decoders = [AudioDecoder(opus) for _ in range(streams)]
    encoders = [AudioEncoder(opus) for _ in range(streams)]
    ticks = max(1, int(seconds * AUDIO_PER_SECOND))
    pcm = [tone(300.0, 3000, n).reshape(-1) for n in range(ticks)]
    adec = aenc = 0.0
    due = time.monotonic()
    for i in range(ticks):
        t0 = _cpu()
        for decoder in decoders:
            decoder.decode(packets[i % len(packets)])
        t1 = _cpu()
        for encoder in encoders:
            encoder.encode(pcm[i])
        adec, aenc = adec + t1 - t0, aenc + _cpu() - t1
        due = _next_interval(due, 1 / AUDIO_PER_SECOND)
    n = ticks * streams
    return adec / n * 1e3, aenc / n * 1e3


def floor_costs(clip: Clip, tiles_shown: int, layout: str, overlay: bool = True) -> FloorCosts:
    dec, scale, comp, enc = video_costs(clip, tiles_shown, layout, overlay)
    adec, aenc = opus_costs(clip.speech)
    paced = FloorCosts(
        *paced_video_costs(clip, tiles_shown, layout, overlay), *paced_opus_costs(clip.speech, tiles_shown)
    )
    return FloorCosts(dec, scale, comp, enc, adec, aenc, paced)


def half_size_floor(clip: Clip, tiles_shown: int, layout: str) -> FloorCosts:
    """What views a size down add to the floor: the pictures scaled again for the smaller tiles,
    those views composed and encoded (decoding and audio are counted once, at the full size)."""
    half = ((clip.width // 2) & ~1, (clip.height // 2) & ~1)
    _, scale, comp, enc = video_costs(clip, tiles_shown, layout, view=half)
    _, pscale, pcomp, penc = paced_video_costs(clip, tiles_shown, layout, view=half)
    return FloorCosts(0.0, scale, comp, enc, 0.0, 0.0, FloorCosts(0.0, pscale, pcomp, penc, 0.0, 0.0))


def audio_floor(packets: list[bytes], streams: int) -> FloorCosts:
    """The floor of an audio-only participant in a room of ``streams``: Opus both ways, no video."""
    adec, aenc = opus_costs(packets)
    paced = FloorCosts(0.0, 0.0, 0.0, 0.0, *paced_opus_costs(packets, streams))
    return FloorCosts(0.0, 0.0, 0.0, 0.0, adec, aenc, paced)


__all__ = [
    "AUDIO_PER_SECOND",
    "FloorCosts",
    "audio_floor",
    "floor_costs",
    "half_size_floor",
    "paced_opus_costs",
    "paced_video_costs",
    "video_costs",
]
