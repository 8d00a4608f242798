"""The codec floor: the pure PyAV cost of the work an MCU room does, measured in this process.

Per operation, in milliseconds of CPU (this process, all threads): decode one incoming picture
(the SIP leg's decoder, its settings), scale it to its tile and compose one view picture from the
scaled tiles (vdx's Compositor and its scale cache: a real layout of real decoded pictures, with
name overlays; a picture is scaled once however many views show it), encode it (vdx's
VideoEncoder, the node's settings), decode and encode 20 ms of Opus (the SIP leg's libopus
decoder and encoder). A benchmark measures these once per (codec, size, layout) in the same run
as the node, while no room runs, and multiplies by the work the node did, so "MCU / floor" is a
ratio taken on one machine at one moment.
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
from vdx.legs.video_decoding import video_decoder
from vdx.sip.sdp import Codec

AUDIO_PER_SECOND = 50  # 20 ms packets


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

    def stage(i: int) -> list[TileSource | None]:
        return [
            TileSource(frames[(i + 7 * k) % len(frames)], f"Caller {k}", f"p{k}") for k in range(tiles_shown)
        ]

    # Every picture new (each tile scaled), then the same pictures again (the tiles from the
    # cache): the difference is the scaling, the second pass what composing a view adds to it.
    compositor = Compositor(width, height, ScaleCache())
    t0 = _cpu()
    for i in range(count):
        compositor.compose(layout_tiles, stage(i), overlay)
    both = (_cpu() - t0) / count
    last = stage(count - 1)
    t0 = _cpu()
    for _ in range(count):
        compositor.compose(layout_tiles, last, overlay)
    comp = (_cpu() - t0) / count
    scale = max(0.0, both - comp) / tiles_shown
    composed = [copy_picture(compositor.compose(layout_tiles, stage(i), overlay)) for i in range(count)]

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


def floor_costs(clip: Clip, tiles_shown: int, layout: str, overlay: bool = True) -> FloorCosts:
    dec, scale, comp, enc = video_costs(clip, tiles_shown, layout, overlay)
    adec, aenc = opus_costs(clip.speech)
    return FloorCosts(dec, scale, comp, enc, adec, aenc)


def half_size_floor(clip: Clip, tiles_shown: int, layout: str) -> FloorCosts:
    """What views a size down add to the floor: the pictures scaled again for the smaller tiles,
    those views composed and encoded (decoding and audio are counted once, at the full size)."""
    half = ((clip.width // 2) & ~1, (clip.height // 2) & ~1)
    _, scale, comp, enc = video_costs(clip, tiles_shown, layout, view=half)
    return FloorCosts(0.0, scale, comp, enc, 0.0, 0.0)


def audio_floor(packets: list[bytes]) -> FloorCosts:
    """The floor of an audio-only participant: Opus both ways, no video."""
    adec, aenc = opus_costs(packets)
    return FloorCosts(0.0, 0.0, 0.0, 0.0, adec, aenc)


__all__ = ["AUDIO_PER_SECOND", "FloorCosts", "audio_floor", "floor_costs", "half_size_floor"]
