"""The leg interface: what the conference needs of a participant's media connection, and what it
gives one. The core never names a kind of leg; SIP and WebRTC legs are built at the node's edges."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import av

from vdx.legs.link_feedback import LinkReport
from vdx.legs.pcm import Pcm


class VideoOut(Protocol):
    """Where a view's encoded packets go (the leg packetises them for its wire)."""

    def push(self, packet: av.Packet) -> None: ...

    def restart(self, after_loss: bool = False) -> None:
        """A new view: start at its next keyframe; ``after_loss``: a smaller layer because the link
        lost what it was sent, whose holes are not worth filling."""


class PcmEncoder(Protocol):
    def encode(self, pcm: Pcm) -> list[bytes]: ...


class AudioOut(Protocol):
    """Where a participant's mix goes: ``push`` encodes their own mix-minus with their own
    encoder; ``push_encoded`` sends the common mix encoded once for every listener with the same
    ``codec_key`` (None: nothing is sent), by an encoder from ``new_encoder``."""

    @property
    def codec_key(self) -> str | None: ...

    def push(self, pcm: Pcm) -> None: ...

    def push_encoded(self, payloads: list[bytes]) -> None: ...

    def new_encoder(self) -> PcmEncoder: ...


class Leg(Protocol):
    """A participant's media connection as the conference sees it. ``video_codec`` is the view
    codec it receives ("VP8", "H264", "H264M0" or None for audio-only); ``size_cap`` bounds the
    picture it may receive (H.264 level, max-fs)."""

    video_codec: str | None
    size_cap: tuple[int, int] | None

    @property
    def video_out(self) -> VideoOut: ...

    @property
    def audio_out(self) -> AudioOut: ...

    async def stats(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class MediaFeed:
    """What a leg calls with its far end's media, bound to one participant. ``on_video`` may be
    called from a decode thread and only stores; the others run on the event loop."""

    on_video: Callable[[av.VideoFrame], None]
    on_audio: Callable[[Pcm], None]
    on_keyframe_request: Callable[[], None]
    on_failed: Callable[[], None]
    on_link: Callable[[LinkReport], None]  # the far end's feedback on the video it receives
