"""When the node provisions and deprovisions (vdx.node.schedule): pure rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from vdx.conference.policy import RoomConfig
from vdx.node.schedule import (
    AFTER_END,
    VMR_ID_MAX,
    Action,
    Booking,
    Phase,
    Schedule,
    action,
    booking_from_api,
    booking_from_event,
    event_as_scheduling_info,
    provisioned_by_a_node,
    vmr_id,
    wake_at,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def meeting(**kw) -> Booking:
    values = {"uuid": "u1", "alias": "123@vdx.test", "vmr_start": T0, "end": T0 + timedelta(hours=1)}
    values.update(kw)
    return Booking(**values)


def test_provision_is_due_from_vmr_start_until_the_end():
    # spec 1.3.5: vmrStartTime <= now <= meeting.endTime
    b = meeting()
    assert action(b, T0 - timedelta(seconds=1)) is None
    assert action(b, T0) is Action.PROVISION
    assert action(b, T0 + timedelta(hours=1)) is Action.PROVISION
    assert action(b, T0 + timedelta(hours=1, seconds=1)) is Action.FORGET  # never provisioned


def test_deprovision_is_due_strictly_after_the_end():
    # spec 1.3.6: endTime < now
    b = meeting(phase=Phase.PROVISIONED)
    assert action(b, T0 + timedelta(minutes=30)) is None
    assert action(b, T0 + timedelta(hours=1)) is None
    assert action(b, T0 + timedelta(hours=1) + AFTER_END) is Action.DEPROVISION


def test_pool_vmr_is_due_at_once_and_never_ends():
    # spec 2.13: a pool VMR must be PROVISIONED_OK to be attachable
    b = meeting(vmr_start=None, end=None)
    assert action(b, T0 - timedelta(days=365)) is Action.PROVISION
    provisioned = replace(b, phase=Phase.PROVISIONED)
    assert action(provisioned, T0 + timedelta(days=365)) is None
    assert wake_at(provisioned, T0) is None


def test_deleted_is_removed_at_once_and_problems_wait_for_a_change():
    assert action(meeting(deleted=True, phase=Phase.PROVISIONED), T0) is Action.REMOVE
    problem = meeting(phase=Phase.PROBLEM)
    assert action(problem, T0 + timedelta(minutes=1)) is None
    assert action(problem, T0 + timedelta(hours=2)) is Action.FORGET


def test_stale_provisioned_room_is_refreshed():
    # spec 2.10 step 5: an UPDATE while PROVISIONED_OK (new end time)
    assert action(meeting(phase=Phase.PROVISIONED, stale=True), T0) is Action.REFRESH


def test_wake_at_is_the_next_instant_with_work():
    b = meeting(vmr_start=T0 + timedelta(minutes=10))
    assert wake_at(b, T0) == T0 + timedelta(minutes=10)
    assert wake_at(replace(b, phase=Phase.PROVISIONED), T0) == b.end + AFTER_END
    assert wake_at(replace(b, phase=Phase.PROBLEM), T0) == b.end + AFTER_END
    assert wake_at(b, T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=10)  # due now


def test_schedule_due_and_next_wake():
    s = Schedule()
    s.learn(meeting(alias="A@vdx.test"))
    s.learn(meeting(uuid="u2", alias="b@vdx.test", vmr_start=T0 + timedelta(minutes=5)))
    assert [(a, b.alias) for a, b in s.due(T0)] == [(Action.PROVISION, "A@vdx.test")]
    s.set(replace(s.get("a@VDX.test"), phase=Phase.PROVISIONED))  # aliases are case-blind
    assert s.due(T0) == []
    assert s.next_wake(T0) == T0 + timedelta(minutes=5)


def test_events_keep_the_phase_and_mark_provisioned_rooms_stale():
    s = Schedule()
    s.learn(meeting(phase=Phase.PROVISIONED), authoritative=True)
    updated = s.learn(meeting(end=T0 + timedelta(hours=2)))  # an UPDATE event: no status in it
    assert updated.phase is Phase.PROVISIONED and updated.stale
    assert updated.end == T0 + timedelta(hours=2)
    s.set(replace(updated, phase=Phase.PROBLEM, stale=False))
    assert s.learn(meeting()).phase is Phase.WAITING  # a change after problems: try again
    assert s.learn(meeting(phase=Phase.PROVISIONED), authoritative=True).phase is Phase.PROVISIONED


def test_pool_attach_keeps_the_booking_under_its_alias():
    # spec 2.13 attach: the SI takes the meeting's uuid; the alias stays
    s = Schedule()
    s.learn(meeting(uuid="pool", vmr_start=None, end=None, phase=Phase.PROVISIONED), authoritative=True)
    attached = s.learn(meeting(uuid="meeting"))
    assert attached.uuid == "meeting" and attached.phase is Phase.PROVISIONED and attached.stale
    assert len(s.bookings) == 1


def test_delete_marks_the_booking_but_not_a_successor_on_the_same_alias():
    s = Schedule()
    s.learn(meeting(uuid="new"))
    assert s.delete("123@vdx.test", "old") is None  # an old event for a reused number
    assert not s.get("123@vdx.test").deleted
    assert s.delete("123@vdx.test", "new").deleted
    assert s.delete("999@vdx.test", "x").deleted  # unknown: still dropped from the directory


def _event(**kw):
    body = {
        "messageType": "CREATE",
        "uuid": "u1",
        "uriWithDomain": "123@vdx.test",
        "vMRStartTime": "2026-03-02T08:45:00Z",
        "vmravailableBefore": 15,
        "meetingEndTime": "2026-03-02T10:00:00Z",
        "hostPin": 1234567,
        "guestPin": 1234,
    }
    body.update(kw)
    return body


def test_booking_and_room_from_an_event():
    # spec 4.2 keys; the start time is derived (start = vMRStartTime + vmravailableBefore, 2.8)
    b = booking_from_event(_event())
    assert b.vmr_start == T0 - timedelta(minutes=15) and b.end == T0 + timedelta(hours=1)
    config = RoomConfig.from_scheduling_info(event_as_scheduling_info(_event()))
    assert config.start_time == T0 and config.opens_at == T0 - timedelta(minutes=15)
    assert config.end_time == T0 + timedelta(hours=1)
    pool = booking_from_event(_event(vMRStartTime=None, meetingEndTime=None))
    assert pool.vmr_start is None and pool.end is None
    with pytest.raises(ValueError):
        booking_from_event(_event(uriWithDomain=None))


def test_booking_from_the_api_representation():
    si = {
        "uuid": "u1",
        "uriWithDomain": "123@vdx.test",
        "vmrAvailableBefore": 10,
        "provisionStatus": "PROVISIONED_OK",
        "meetingDetails": {"startTime": "2026-03-02T10:00:00+01:00", "endTime": "2026-03-02T11:00:00+01:00"},
    }
    b = booking_from_api(si)
    assert b.vmr_start == T0 - timedelta(minutes=10) and b.end == T0 + timedelta(hours=1)
    assert b.phase is Phase.PROVISIONED
    assert booking_from_api({**si, "provisionStatus": "AWAITS_PROVISION"}).phase is Phase.WAITING
    pool = booking_from_api({**si, "meetingDetails": None})
    assert pool.vmr_start is None and pool.end is None


def test_vmr_id_fits_the_field():
    # spec 1.3.4: provisionVmrId <= 50 characters
    assert vmr_id("node-1", "12345678@vdx.test") == "node-1/12345678@vdx.test"
    long = vmr_id("n" * 40, "12345678@a-long-domain.example.dk")
    assert len(long) <= VMR_ID_MAX and long.startswith("n" * 10)
    assert long != vmr_id("n" * 40, "12345679@a-long-domain.example.dk")


def test_room_refuses_pins_pexip_would_refuse():
    base = {"uriWithDomain": "1@vdx.test", "hostPin": 1234, "guestPin": 1234}
    with pytest.raises(ValueError, match="equal"):
        RoomConfig.from_scheduling_info(base)
    with pytest.raises(ValueError, match="without hostPin"):
        RoomConfig.from_scheduling_info({**base, "hostPin": None})
    assert RoomConfig.from_scheduling_info({**base, "guestPin": None}).host_pin == "1234"


def test_rooms_of_other_provisioners_are_recognised():
    alias = "12345678@a-long-domain.example.dk"
    assert provisioned_by_a_node(vmr_id("node-1", "1@vdx.test"), "1@vdx.test")
    assert provisioned_by_a_node(vmr_id("n" * 40, alias), alias)
    assert not provisioned_by_a_node("/api/admin/configuration/v1/conference/42/", "1@vdx.test")
    assert not provisioned_by_a_node("42", "1@vdx.test")
    assert not provisioned_by_a_node(None, "1@vdx.test")
