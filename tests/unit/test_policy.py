"""Room policy as Pexip does it (peers.md 1.2) with the VDX fields (spec 2.8, 4.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vdx.conference.policy import (
    GuestMicrophone,
    LobbyReason,
    Refusal,
    Role,
    RoomConfig,
    decide_pin,
    guest_audio_muted,
    is_full,
    lobby_reason,
    may_present,
    time_refusal,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_from_scheduling_info_reads_the_api_fields():
    si = {
        "uriWithDomain": "1234567@vdx.test",
        "uriWithoutDomain": "1234567",
        "hostPin": 1234567,
        "guestPin": 4321,
        "maxParticipants": 5,
        "vmrType": "lecture",
        "hostView": "four_mains_zero_pips",
        "guestView": "one_main_zero_pips",
        "vmrQuality": "sd",
        "enableOverlayText": False,
        "muteAllGuests": True,
        "endMeetingOnEndTime": True,
        "vmrAvailableBefore": 15,
        "meetingDetails": {
            "startTime": "2026-11-25T12:00:00Z",
            "endTime": "2026-11-25T13:00:00+01:00",
            "guestMicrophone": "muted",
        },
    }
    c = RoomConfig.from_scheduling_info(si)
    assert (c.alias, c.host_pin, c.guest_pin, c.max_participants) == (
        "1234567@vdx.test",
        "1234567",
        "4321",
        5,
    )
    assert c.aliases == {"1234567@vdx.test", "1234567"}
    assert (c.vmr_type, c.host_view, c.guest_view, c.max_size) == (
        "lecture",
        "four_mains_zero_pips",
        "one_main_zero_pips",
        (640, 360),
    )
    assert not c.enable_overlay_text and c.mute_all_guests and c.end_meeting_on_end_time
    assert c.guest_microphone is GuestMicrophone.MUTED
    assert c.opens_at == NOW - timedelta(minutes=15)
    assert c.end_time == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_from_scheduling_info_defaults_and_event_spelling():
    # spec 4.2: events spell vmravailableBefore and carry meetingEndTime.
    c = RoomConfig.from_scheduling_info(
        {
            "uriWithDomain": "9@vdx.test",
            "vmravailableBefore": 5,
            "meetingEndTime": "2026-11-25T13:00:00Z",
            "hostPin": None,
        }
    )
    assert c.vmr_available_before == 5 and c.end_time == NOW + timedelta(hours=1)
    assert (c.host_view, c.vmr_quality, c.enable_overlay_text, c.max_participants) == (
        "one_main_seven_pips",
        "hd",
        True,
        0,
    )
    assert not c.has_pins


@pytest.mark.parametrize(
    "field,value",
    [("hostView", "seven_mains"), ("vmrQuality", "4k"), ("vmrType", "party"), ("uriWithDomain", None)],
)
def test_bad_fields_are_refused(field, value):
    with pytest.raises(ValueError):
        RoomConfig.from_scheduling_info({"uriWithDomain": "1@vdx.test", field: value})


def test_pins_make_hosts_and_guests():
    c = RoomConfig(alias="a", host_pin="1234", guest_pin="5678")
    assert decide_pin(c, "1234", 0).role is Role.HOST
    assert decide_pin(c, "5678#", 0).role is Role.GUEST  # DTMF terminator
    assert decide_pin(c, None, 0).refusal is Refusal.PIN_REQUIRED
    # Only a host PIN: whoever knows it is a host; no PINs: everyone is a host.
    assert decide_pin(RoomConfig(alias="a", host_pin="1234"), "1234", 0).role is Role.HOST
    assert decide_pin(RoomConfig(alias="a"), None, 0).role is Role.HOST
    # A lone guest PIN (template without a host PIN) is the room's single PIN.
    lone = RoomConfig(alias="a", guest_pin="5678")
    assert decide_pin(lone, "5678", 0).role is Role.HOST
    assert decide_pin(lone, None, 0).refusal is Refusal.PIN_REQUIRED


def test_third_wrong_pin_ends_the_attempt():
    c = RoomConfig(alias="a", host_pin="1234", guest_pin="5678")
    d1, d2, d3 = (decide_pin(c, "0000", n) for n in range(3))
    assert (d1.refusal, d1.attempts_left) == (Refusal.WRONG_PIN, 2)
    assert (d2.refusal, d2.attempts_left) == (Refusal.WRONG_PIN, 1)
    assert (d3.refusal, d3.attempts_left) == (Refusal.TOO_MANY_ATTEMPTS, 0)


def test_lobby_rules():
    assert (
        lobby_reason(Role.GUEST, hosts_present=False, locked=False, has_pins=True)
        is LobbyReason.WAITING_FOR_HOST
    )
    assert lobby_reason(Role.GUEST, hosts_present=True, locked=False, has_pins=True) is None
    assert lobby_reason(Role.GUEST, hosts_present=True, locked=True, has_pins=True) is LobbyReason.LOCKED
    assert (
        lobby_reason(Role.HOST, hosts_present=False, locked=True, has_pins=True) is None
    )  # the host PIN passes
    assert lobby_reason(Role.HOST, hosts_present=True, locked=True, has_pins=False) is LobbyReason.LOCKED


def test_room_limit_and_time_window():
    assert not is_full(RoomConfig(alias="a"), 1000)
    assert is_full(RoomConfig(alias="a", max_participants=3), 3) and not is_full(
        RoomConfig(alias="a", max_participants=3), 2
    )
    c = RoomConfig(alias="a", start_time=NOW, end_time=NOW + timedelta(hours=1), vmr_available_before=15)
    assert time_refusal(c, NOW - timedelta(minutes=16)) is Refusal.NOT_OPEN
    assert time_refusal(c, NOW - timedelta(minutes=15)) is None
    assert time_refusal(c, NOW + timedelta(hours=2)) is None  # without endMeetingOnEndTime people may stay
    ends = RoomConfig(alias="a", end_time=NOW, end_meeting_on_end_time=True)
    assert time_refusal(ends, NOW) is Refusal.ENDED and time_refusal(ends, NOW - timedelta(seconds=1)) is None


def test_guest_microphone_and_mute_all_guests():
    assert not guest_audio_muted(RoomConfig(alias="a"))
    assert guest_audio_muted(RoomConfig(alias="a", mute_all_guests=True))
    assert guest_audio_muted(RoomConfig(alias="a", guest_microphone=GuestMicrophone.OFF))
    assert guest_audio_muted(RoomConfig(alias="a", guest_microphone=GuestMicrophone.MUTED))


def test_auditorium_views():
    c = RoomConfig(
        alias="a", vmr_type="lecture", host_view="four_mains_zero_pips", guest_view="one_main_zero_pips"
    )
    assert c.view_for(Role.HOST) == "four_mains_zero_pips" and c.view_for(Role.GUEST) == "one_main_zero_pips"
    plain = RoomConfig(alias="a", host_view="nine_mains_zero_pips", guest_view="one_main_zero_pips")
    assert plain.view_for(Role.GUEST) == "nine_mains_zero_pips"


def test_who_may_present():
    """Hosts always; guests where ``guestsCanPresent`` (default true, as Pexip's) says so; both
    presentation fields are read from the scheduling info."""
    base = {"uriWithDomain": "1@vdx.test"}
    c = RoomConfig.from_scheduling_info(base)
    assert c.guests_can_present and c.force_presenter_into_main
    assert may_present(c, Role.GUEST) and may_present(c, Role.HOST)
    c = RoomConfig.from_scheduling_info(base | {"guestsCanPresent": False, "forcePresenterIntoMain": False})
    assert not c.guests_can_present and not c.force_presenter_into_main
    assert may_present(c, Role.HOST) and not may_present(c, Role.GUEST)
