"""Room policy: what a VMR is (from its scheduling-info), who may enter, as whom, and when.

Pure rules, no I/O, shared by every kind of leg. The behaviour follows Pexip Infinity, the engine
behind the real VDX (spec 4.3 for the field mapping):
- a room with a host PIN and a guest PIN: the host PIN makes a host, the guest PIN a guest;
- a room with only one PIN: everyone who knows it is a host;
- a room without PINs: everyone is a host (Pexip: "no PIN, everyone is a Host");
- three wrong PIN attempts end the attempt (across attempts the node's throttle,
  ``pin_guard``, counts per room and source address);
- guests wait in the lobby until a host is present; a locked room holds every newcomer in the
  lobby until a host admits them;
- ``maxParticipants`` (0 = no limit) refuses the next participant when reached;
- the room opens ``vmrAvailableBefore`` minutes before the start and, with
  ``endMeetingOnEndTime``, ends at the end time (spec 2.8).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from vdx.booking.clinical import is_clinical
from vdx.booking.timefmt import parse_ts

LAYOUTS = (
    "one_main_zero_pips",
    "one_main_seven_pips",
    "one_main_twentyone_pips",
    "two_mains_twentyone_pips",
    "four_mains_zero_pips",
    "five_mains_seven_pips",
    "one_main_thirtythree_pips",
    "nine_mains_zero_pips",
    "sixteen_mains_zero_pips",
    "twentyfive_mains_zero_pips",
)
DEFAULT_LAYOUT = "one_main_seven_pips"

# vmrQuality caps the output size of a room's views.
QUALITY_SIZES: dict[str, tuple[int, int]] = {
    "sd": (640, 360),
    "hd": (1280, 720),
    "fullhd": (1920, 1080),
}

MAX_PIN_ATTEMPTS = 3


class Role(enum.StrEnum):
    HOST = "host"
    GUEST = "guest"


class GuestMicrophone(enum.StrEnum):
    """The meeting's ``guestMicrophone``: on (free), muted (joins muted, may unmute), off (no
    microphone: the node never mixes the guest's audio)."""

    ON = "on"
    MUTED = "muted"
    OFF = "off"


class Refusal(enum.StrEnum):
    """Why a join is refused: the ``code`` of the signalling error (README, "Joining a room")."""

    NOT_FOUND = "not_found"
    NOT_OPEN = "not_open"
    ENDED = "ended"
    PIN_REQUIRED = "pin_required"
    WRONG_PIN = "wrong_pin"
    TOO_MANY_ATTEMPTS = "too_many_pin_attempts"
    PIN_WAIT = "pin_wait"  # the PIN throttle (conference.pin_guard): too many tries from this source
    FULL = "room_full"


@dataclass(frozen=True)
class RoomConfig:
    """One VMR as the node runs it (the Pexip VMR fields of spec 4.3)."""

    alias: str
    host_pin: str | None = None
    guest_pin: str | None = None
    max_participants: int = 0
    vmr_type: str = "conference"
    host_view: str = DEFAULT_LAYOUT
    guest_view: str = DEFAULT_LAYOUT
    vmr_quality: str = "hd"
    enable_overlay_text: bool = True
    mute_all_guests: bool = False
    guest_microphone: GuestMicrophone = GuestMicrophone.ON
    end_meeting_on_end_time: bool = False
    start_time: datetime | None = None
    end_time: datetime | None = None
    vmr_available_before: int = 0
    force_encryption: bool = False  # SIP calls need TLS signalling and SRTP media (Pexip)
    # Who may present (hosts always; guests when this is true) and whether the presenter's camera
    # takes the main tile while they present (Pexip's defaults: both true).
    guests_can_present: bool = True
    force_presenter_into_main: bool = True
    aliases: frozenset[str] = field(default_factory=frozenset)
    # The code of the organisation the VMR belongs to (its meeting's): whose admins may control
    # the live conference. None: a room no booking names, controlled by its hosts alone.
    organisation: str | None = None
    # The meeting's labels as booked (``meetingDetails.labels``); ``clinical`` reads them at
    # each join, so a relabelled meeting counts anew from its next join.
    labels: frozenset[str] = field(default_factory=frozenset)
    # The scheduling info's uuid (None: a room no booking names): what the node asks the API for
    # the room's automatically dialled participants by.
    booking: str | None = None

    def __post_init__(self) -> None:
        for name in ("host_view", "guest_view"):
            if getattr(self, name) not in LAYOUTS:
                raise ValueError(f"{name} '{getattr(self, name)}' is not a layout ({', '.join(LAYOUTS)})")
        if self.vmr_quality not in QUALITY_SIZES:
            raise ValueError(f"vmrQuality '{self.vmr_quality}' is not one of sd, hd, fullhd")
        if self.vmr_type not in ("conference", "lecture"):
            raise ValueError(f"vmrType '{self.vmr_type}' is not conference or lecture")

    def clinical(self, org_clinical: bool) -> bool:
        """Whether a join of this room counts as clinical, given its organisation's setting
        now: the meeting's ``clinical``/``non-clinical`` label overrides it (``booking.clinical``)."""
        return is_clinical(self.labels, org_clinical)

    @property
    def has_pins(self) -> bool:
        return bool(self.host_pin or self.guest_pin)

    @property
    def max_size(self) -> tuple[int, int]:
        return QUALITY_SIZES[self.vmr_quality]

    @property
    def opens_at(self) -> datetime | None:
        if self.start_time is None:
            return None
        return self.start_time - timedelta(minutes=max(self.vmr_available_before, 0))

    def view_for(self, role: Role) -> str:
        """The layout a role sees. In an ordinary room both views are the host view (Pexip's
        ``view``); auditoriums (``lecture``) show hosts and guests different layouts."""
        if self.vmr_type == "lecture" and role is Role.GUEST:
            return self.guest_view
        return self.host_view

    def with_views(self, host_view: str | None = None, guest_view: str | None = None) -> RoomConfig:
        return replace(self, host_view=host_view or self.host_view, guest_view=guest_view or self.guest_view)

    @classmethod
    def from_scheduling_info(cls, si: Mapping[str, Any]) -> RoomConfig:
        """Build from a scheduling-info as the API returns it (camelCase, spec 1.6) or as the
        scheduling-info event carries it (spec 4.2: ``vmravailableBefore``, ``meetingEndTime``).
        Times come from ``meetingDetails`` when present. Raises ValueError on a bad field."""
        alias = si.get("uriWithDomain")
        if not alias:
            raise ValueError("scheduling-info has no uriWithDomain")
        meeting = si.get("meetingDetails") or {}

        def opt(name: str, default: Any) -> Any:
            v = si.get(name)
            return default if v is None else v

        host_pin, guest_pin = _pins(si)
        aliases = {alias}
        if si.get("uriWithoutDomain"):
            aliases.add(str(si["uriWithoutDomain"]))
        available = si.get("vmrAvailableBefore", si.get("vmravailableBefore", 0))
        return cls(
            alias=str(alias),
            host_pin=host_pin,
            guest_pin=guest_pin,
            max_participants=int(opt("maxParticipants", 0)),
            vmr_type=str(opt("vmrType", "conference")),
            host_view=str(opt("hostView", DEFAULT_LAYOUT)),
            guest_view=str(opt("guestView", DEFAULT_LAYOUT)),
            vmr_quality=str(opt("vmrQuality", "hd")),
            enable_overlay_text=bool(opt("enableOverlayText", True)),
            mute_all_guests=bool(opt("muteAllGuests", False)),
            guest_microphone=GuestMicrophone(
                meeting.get("guestMicrophone") or si.get("guestMicrophone") or "on"
            ),
            end_meeting_on_end_time=bool(opt("endMeetingOnEndTime", False)),
            start_time=_time_of(meeting.get("startTime"), si.get("meetingStartTime")),
            end_time=_time_of(meeting.get("endTime"), si.get("meetingEndTime")),
            vmr_available_before=int(available or 0),
            force_encryption=bool(opt("forceEncryption", False)),
            guests_can_present=bool(opt("guestsCanPresent", True)),
            force_presenter_into_main=bool(opt("forcePresenterIntoMain", True)),
            aliases=frozenset(aliases),
            organisation=_text(si.get("organisationCode")),
            labels=frozenset(str(v) for v in (meeting.get("labels") or []) if v not in (None, "")),
            booking=_text(si.get("uuid")),
        )


def _time_of(*values: Any) -> datetime | None:
    """The first of ``values`` that is a time (a datetime or a non-empty timestamp)."""
    for v in values:
        if isinstance(v, datetime):
            return v
        if isinstance(v, str) and v:
            return parse_ts(v)
    return None


def _text(v: Any) -> str | None:
    """A PIN or a code as text; None when absent or empty."""
    return str(v) if v not in (None, "") else None


def _pins(si: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(host PIN, guest PIN). Pexip refuses such VMRs too: a guest PIN equal to the host PIN
    makes every guest a host, and a guest PIN alone leaves no host to let guests in."""
    host_pin, guest_pin = _text(si.get("hostPin")), _text(si.get("guestPin"))
    if guest_pin is not None and guest_pin == host_pin:
        raise ValueError("hostPin and guestPin are equal: guests could not be told from hosts")
    if guest_pin is not None and host_pin is None:
        raise ValueError("guestPin without hostPin: nobody could enter as host")
    return host_pin, guest_pin


def time_refusal(config: RoomConfig, now: datetime) -> Refusal | None:
    """``not_open`` before the room's window, ``ended`` after its end when the meeting ends on
    its end time (without that flag participants may stay on, as in VDX)."""
    opens = config.opens_at
    if opens is not None and now < opens:
        return Refusal.NOT_OPEN
    if config.end_meeting_on_end_time and config.end_time is not None and now >= config.end_time:
        return Refusal.ENDED
    return None


@dataclass(frozen=True)
class PinDecision:
    role: Role | None
    refusal: Refusal | None = None
    attempts_left: int = MAX_PIN_ATTEMPTS


def entered_pin(pin: str | None) -> str:
    """The PIN as typed, without spaces and a trailing ``#`` (DTMF terminator); empty: none."""
    return (pin or "").strip().rstrip("#")


def decide_pin(config: RoomConfig, pin: str | None, failed_attempts: int) -> PinDecision:
    """Role for a PIN entry. ``failed_attempts`` counts earlier wrong PINs of this attempt; the
    third wrong PIN refuses with ``too_many_pin_attempts`` (Pexip). A missing PIN is not an
    attempt: it asks for one. A trailing ``#`` (DTMF terminator) is ignored."""
    if not config.has_pins:
        return PinDecision(Role.HOST)
    entered = entered_pin(pin)
    if not entered:
        return PinDecision(None, Refusal.PIN_REQUIRED, MAX_PIN_ATTEMPTS - failed_attempts)
    if config.host_pin and entered == config.host_pin:
        return PinDecision(Role.HOST)
    if config.guest_pin and entered == config.guest_pin:
        # Without a host PIN nobody could ever open the room for guests; Pexip: "if there's no
        # host PIN, people always join immediately". So a lone guest PIN is the room's one PIN,
        # and, as with any single PIN, everyone who knows it is a host.
        return PinDecision(Role.GUEST if config.host_pin else Role.HOST)
    left = MAX_PIN_ATTEMPTS - failed_attempts - 1
    if left <= 0:
        return PinDecision(None, Refusal.TOO_MANY_ATTEMPTS, 0)
    return PinDecision(None, Refusal.WRONG_PIN, left)


def is_full(config: RoomConfig, present: int) -> bool:
    """``maxParticipants`` (0 = unlimited) counts everyone in the room and its lobby."""
    return config.max_participants > 0 and present >= config.max_participants


class LobbyReason(enum.StrEnum):
    WAITING_FOR_HOST = "waiting_for_host"
    LOCKED = "locked"


def lobby_reason(role: Role, *, hosts_present: bool, locked: bool, has_pins: bool) -> LobbyReason | None:
    """Whether a newcomer waits in the lobby, and why. Guests wait until a host is present. A
    locked room holds newcomers until a host admits them; a host who entered the host PIN passes
    the lock (Pexip), but in a room without PINs everyone is a host, so there the lock holds
    everyone who was not in before."""
    if role is Role.HOST:
        if locked and not has_pins:
            return LobbyReason.LOCKED
        return None
    if not hosts_present:
        return LobbyReason.WAITING_FOR_HOST
    if locked:
        return LobbyReason.LOCKED
    return None


def may_present(config: RoomConfig, role: Role) -> bool:
    """Hosts may always present; guests only where ``guestsCanPresent`` is true."""
    return role is Role.HOST or config.guests_can_present


def guest_audio_muted(config: RoomConfig) -> bool:
    """A guest joins muted when ``muteAllGuests`` or ``guestMicrophone`` muted/off say so."""
    return config.mute_all_guests or config.guest_microphone is not GuestMicrophone.ON
