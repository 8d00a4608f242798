"""A participant: who they are (name, role), where they are (lobby or conference), what they
may say (mutes), their latest picture and their queued voice."""

from __future__ import annotations

import enum
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import av

from vdx.conference.audio_mixer import Pcm, VoiceQueue
from vdx.conference.policy import Role
from vdx.conference.views import ViewKey


class State(enum.StrEnum):
    LOBBY = "lobby"
    CONFERENCE = "conference"
    GONE = "gone"


Notify = Callable[[dict[str, Any]], None]


class VideoOut(Protocol):
    """Where a view's encoded packets go (``PacketTrack`` of WebRTC, the SIP leg's packetiser)."""

    def push(self, packet: av.Packet) -> None: ...

    def restart(self) -> None: ...


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
    """A participant's media connection as the MCU sees it: WebRTC (``legs.webrtc``) or SIP
    (``legs.sip``). ``video_codec`` is the view codec it receives ("VP8", "H264", "H264M0" or
    None for audio-only); ``size_cap`` bounds the picture it may receive (H.264 level, max-fs)."""

    video_codec: str | None
    size_cap: tuple[int, int] | None

    @property
    def video_out(self) -> VideoOut: ...

    @property
    def audio_out(self) -> AudioOut: ...

    async def stats(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


@dataclass(eq=False)
class Participant:
    display_name: str
    role: Role
    notify: Notify
    protocol: str = "webrtc"
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    state: State = State.LOBBY
    lobby_reason: str | None = None
    muted: bool = False  # by themselves, a host or an operator
    mic_locked: bool = False  # a guest who may not unmute themselves (guestMicrophone off, muteAllGuests)
    joined_at: float = field(default_factory=time.time)
    leg: Leg | None = None
    view: ViewKey | None = None
    latest_frame: av.VideoFrame | None = None
    voice: VoiceQueue = field(default_factory=VoiceQueue)  # up to 200 ms of jitter, no standing delay
    last_level: float = 0.0

    @property
    def in_conference(self) -> bool:
        return self.state is State.CONFERENCE

    def summary(self) -> dict[str, Any]:
        return {
            "participantId": self.id,
            "displayName": self.display_name,
            "role": self.role.value,
            "state": self.state.value,
            "muted": self.muted,
            "protocol": self.protocol,
            "joinedAt": int(self.joined_at),
        }
