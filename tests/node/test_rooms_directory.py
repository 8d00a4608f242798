"""The room directory's part in provisioning: a live room follows a new end time, a retired room
answers "ended", a dropped room ends its conference."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from harness.waiting import until
from vdx.app import build_rooms
from vdx.conference.policy import Refusal, RoomConfig, time_refusal


@pytest.fixture
async def rooms(settings):
    r = build_rooms(settings)
    yield r
    await r.close()


def _room(**kw) -> RoomConfig:
    now = datetime.now(UTC)
    values = {
        "alias": "4000@vdx.test",
        "start_time": now - timedelta(minutes=5),
        "end_time": now + timedelta(hours=1),
        "end_meeting_on_end_time": True,
    }
    values.update(kw)
    return RoomConfig(**values)


async def test_live_conference_follows_a_shortened_end_time(rooms):
    # spec 2.10 step 5: the UPDATE of a running meeting moves its end; 2.8 endMeetingOnEndTime
    config = _room()
    rooms.put(config)
    conference = rooms.conference(config)
    rooms.put(replace(config, end_time=datetime.now(UTC) + timedelta(milliseconds=300)))

    async def ended():
        return conference.ended

    await until(ended, deadline_s=10, what="the conference to end at its new end time")
    assert rooms.live_conference(config.alias) is None


async def test_retired_room_answers_ended_and_its_conference_ends(rooms):
    config = _room()
    rooms.put(config)
    conference = rooms.conference(config)
    await rooms.retire(config.alias)
    assert conference.ended
    assert rooms.retired(config.alias)
    assert time_refusal(rooms.lookup(config.alias), datetime.now(UTC)) is Refusal.ENDED
    rooms.put(replace(config, start_time=datetime.now(UTC)))  # the number booked again
    assert not rooms.retired(config.alias)


async def test_retired_room_without_end_on_end_time_keeps_its_people(rooms):
    # Without endMeetingOnEndTime participants may stay on (as in VDX); nobody new comes in.
    config = _room(end_meeting_on_end_time=False)
    rooms.put(config)
    conference = rooms.conference(config)
    await rooms.retire(config.alias)
    assert not conference.ended
    assert time_refusal(rooms.lookup(config.alias), datetime.now(UTC)) is Refusal.ENDED


async def test_dropped_room_is_gone_and_its_conference_ends(rooms):
    config = _room(aliases=frozenset({"4000"}))
    rooms.put(config)
    conference = rooms.conference(config)
    await rooms.drop("4000", "deleted")
    assert conference.ended
    assert rooms.lookup(config.alias) is None and rooms.lookup("4000") is None


async def test_a_reused_number_survives_the_old_rooms_removal(rooms):
    # DEPROVISION_OK frees the number (spec 1.3.4): a new room may take it under another domain.
    old = _room(alias="4000@old.test", aliases=frozenset({"4000"}))
    rooms.put(old)
    await rooms.retire(old.alias)
    new = _room(alias="4000@vdx.test", aliases=frozenset({"4000"}))
    rooms.put(new)
    rooms.remove(old.alias)
    assert rooms.lookup("4000") == new
