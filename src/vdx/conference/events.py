"""What the conference tells a participant. Each edge renders these for its wire: the signalling
endpoint as JSON messages, the SIP side as a hang-up or a keyframe request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Lobby:
    """The participant waits in the lobby (a ``LobbyReason`` value)."""

    reason: str


@dataclass(frozen=True)
class Admitted:
    """The participant left the lobby for the stage."""


@dataclass(frozen=True)
class Knock:
    """Someone waits at a locked room (told to the hosts present)."""

    participant_id: str
    display_name: str


@dataclass(frozen=True)
class StageTile:
    participant_id: str
    display_name: str
    x: int
    y: int
    width: int
    height: int
    main: bool


@dataclass(frozen=True)
class Stage:
    """The view the participant receives and who is in its tiles, main tile first."""

    layout: str
    width: int
    height: int
    codec: str
    tiles: tuple[StageTile, ...]
    # Who presents (None: nobody). In a picture with the presentation composed in (a receiver of
    # one video) it fills the main area and ``tiles`` are the people in the strip.
    presenter: str | None = None


@dataclass(frozen=True)
class Speaker:
    participant_id: str


@dataclass(frozen=True)
class Muted:
    muted: bool


@dataclass(frozen=True)
class Member:
    """One participant as the roster shows them (``state``, ``role``: enum values)."""

    participant_id: str
    display_name: str
    role: str
    state: str
    muted: bool
    protocol: str
    joined_at: int
    presenting: bool = False


@dataclass(frozen=True)
class Roster:
    """Everyone in the room and its lobby (told to those on stage and to hosts)."""

    participants: tuple[Member, ...]


@dataclass(frozen=True)
class Dialling:
    """How far a dial-out from the room got (``state``: a ``DialState`` value; told to the hosts).
    ``participant_id`` is the one the dialled party has once connected."""

    participant_id: str
    destination: str
    state: str
    detail: str


@dataclass(frozen=True)
class Presentation:
    """Who presents now (None and None: nobody); told to everyone on stage."""

    presenter_id: str | None
    display_name: str | None


@dataclass(frozen=True)
class PresentationTaken:
    """Told to a presenter whose presentation someone else took over: theirs has stopped."""

    participant_id: str
    display_name: str


@dataclass(frozen=True)
class Bye:
    """The participant is out of the conference; nothing follows."""

    reason: str


Event = (
    Lobby
    | Admitted
    | Knock
    | Stage
    | Speaker
    | Muted
    | Roster
    | Dialling
    | Presentation
    | PresentationTaken
    | Bye
)
Notify = Callable[[Event], None]
