"""A participant: who they are (name, role), where they are (lobby or conference), what they
may say (mutes), their latest picture and their queued voice."""

from __future__ import annotations

import enum
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import av

from vdx.conference.audio_mixer import VoiceQueue
from vdx.conference.events import Member, Notify
from vdx.conference.leg import Leg
from vdx.conference.policy import Role
from vdx.conference.views import ViewKey


class State(enum.StrEnum):
    LOBBY = "lobby"
    CONFERENCE = "conference"
    GONE = "gone"


@dataclass(eq=False)
class Participant:
    display_name: str
    role: Role
    notify: Notify
    protocol: str  # the kind of leg, as the roster shows it ("webrtc", "sip")
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # What takes this participant back after their signalling dropped (``Conference.resume``);
    # a new one each time it is used, so a token works once.
    resume_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    state: State = State.LOBBY
    lobby_reason: str | None = None
    muted: bool = False  # by themselves, a host or an operator
    mic_locked: bool = False  # a guest who may not unmute themselves (guestMicrophone off, muteAllGuests)
    joined_at: float = field(default_factory=time.time)
    leg: Leg | None = None
    # Takes the presentation as a video of its own (a SIP presentation stream): its main picture
    # stays the people's, as a browser's, rather than the composed fallback.
    separate_presentation: bool = False
    view: ViewKey | None = None
    latest_frame: av.VideoFrame | None = None
    voice: VoiceQueue = field(default_factory=VoiceQueue)  # up to 200 ms of jitter, no standing delay
    last_level: float = 0.0

    @property
    def in_conference(self) -> bool:
        return self.state is State.CONFERENCE

    def member(self) -> Member:
        return Member(
            participant_id=self.id,
            display_name=self.display_name,
            role=self.role.value,
            state=self.state.value,
            muted=self.muted,
            protocol=self.protocol,
            joined_at=int(self.joined_at),
        )

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
