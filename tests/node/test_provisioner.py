"""The node learns its rooms like a VDX provisioner (issue 4): from scheduling-info events or the
polling lists, at the VMR start time, reporting each step with PUT /v2/scheduling-info/{uuid}."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from harness.waiting import until
from tests.node.booking import (
    attach_pool_vmr,
    book,
    book_pool_vmr,
    change_meeting,
    delete_booking,
    history,
    scheduling_info,
    wait_for_room,
    wait_for_status,
    whole_seconds,
)
from tests.node.conftest import start_node_app
from tests.seed import meeting_with_si
from vdx.booking.enums import ProvisionStatus
from vdx.conference.policy import GuestMicrophone, Refusal, time_refusal
from vdx.services import organisations
from vdx.store.db import now_utc
from vdx.store.models import SchedulingInfo


async def test_meeting_due_now_is_provisioned_from_its_event(node_api):
    # spec 2.12 (new provisioner), 4.2: the CREATE event of a meeting whose vmrStartTime has come
    now = whole_seconds(now_utc())
    uuid, alias = await book(
        node_api, "clinic", start=now, end=now + timedelta(hours=1), guest_microphone="muted"
    )
    config = await wait_for_room(node_api, alias)
    assert node_api.app.state.rooms.lookup(alias) == config
    si = await wait_for_status(node_api, uuid, "PROVISIONED_OK")
    assert si["provisionVmrId"] == f"{node_api.settings.node_id}/{alias}"
    # The event lacks guestMicrophone and the start time: the node read the scheduling info.
    assert config.guest_microphone is GuestMicrophone.MUTED
    assert config.start_time == now and config.end_time == now + timedelta(hours=1)
    assert config.host_pin == str(si["hostPin"]) and config.guest_pin == str(si["guestPin"])
    assert time_refusal(config, now_utc()) is None  # open: a join is let in
    # The room names its organisation (whose admins control it), as the scheduling info does.
    assert config.organisation == si["organisationCode"] == "clinic"


async def test_future_meeting_waits_for_its_vmr_start_time(node_api):
    # spec 2.8/2.10: provisioned when vmrStartTime (start - vmrAvailableBefore) arrives, not at
    # booking time; until then the alias answers "not open yet".
    start = whole_seconds(now_utc()) + timedelta(minutes=1, seconds=5)
    uuid, alias = await book(
        node_api, "clinic", start=start, end=start + timedelta(hours=1), vmr_available_before=1
    )
    announced = await until(lambda: _lookup(node_api, alias), what=f"{alias} announced in the directory")
    assert time_refusal(announced, now_utc()) is Refusal.NOT_OPEN
    assert announced.organisation == "clinic"  # from the event
    assert announced.opens_at == start - timedelta(minutes=1)
    assert (await scheduling_info(node_api, uuid))["provisionStatus"] == "AWAITS_PROVISION"
    assert node_api.app.state.provisioner.provisioned(alias) is None

    config = await wait_for_room(node_api, alias, deadline=20)
    assert now_utc() >= start - timedelta(minutes=1)  # not before its time
    await wait_for_status(node_api, uuid, "PROVISIONED_OK")
    assert time_refusal(config, now_utc()) is None


async def test_ended_meeting_is_deprovisioned_and_answers_ended(node_api):
    # spec 1.3.6: deprovisioned once endTime < now; 1.3.4: DEPROVISION_OK frees the number
    now = whole_seconds(now_utc())
    uuid, alias = await book(
        node_api, "clinic", start=now - timedelta(minutes=5), end=now + timedelta(seconds=3)
    )
    si = await wait_for_status(node_api, uuid, "DEPROVISION_OK", deadline=20)
    assert await history(node_api, uuid) == ["PROVISIONED_OK", "DEPROVISION_OK"]
    assert si["provisionVmrId"] == f"{node_api.settings.node_id}/{alias}"
    assert si["uriWithoutDomain"] is None and si["uriWithDomain"] == alias
    assert node_api.app.state.provisioner.provisioned(alias) is None
    rooms = node_api.app.state.rooms
    assert rooms.retired(alias)
    assert time_refusal(rooms.lookup(alias), now_utc()) is Refusal.ENDED


async def test_update_event_moves_a_waiting_meeting_and_extends_a_provisioned_one(node_api):
    # spec 2.10 step 5: UPDATE while AWAITS_PROVISION reschedules; while PROVISIONED_OK it carries
    # the new end time to the live room.
    now = whole_seconds(now_utc())
    uuid, alias = await book(node_api, "clinic", start=now + timedelta(hours=2), end=now + timedelta(hours=3))
    await until(lambda: _lookup(node_api, alias), what="announced")
    await change_meeting(node_api, uuid, start=now, end=now + timedelta(seconds=30))
    config = await wait_for_room(node_api, alias)
    assert config.end_time == now + timedelta(seconds=30)

    new_end = now + timedelta(hours=4)
    await change_meeting(node_api, uuid, end=new_end)

    async def extended():
        c = node_api.app.state.rooms.lookup(alias)
        return c is not None and c.end_time == new_end

    await until(extended, what="the live room to follow the new end time")
    assert (await scheduling_info(node_api, uuid))["provisionStatus"] == "PROVISIONED_OK"


async def test_delete_event_removes_the_room(node_api):
    # spec 1.2.7 / 4.2 DELETE: the booked room leaves the directory
    now = whole_seconds(now_utc())
    uuid, alias = await book(node_api, "clinic", start=now + timedelta(hours=1), end=now + timedelta(hours=2))
    await until(lambda: _lookup(node_api, alias), what="announced")
    await delete_booking(node_api, uuid)

    async def gone():
        return node_api.app.state.rooms.lookup(alias) is None and (
            node_api.app.state.provisioner.schedule.get(alias) is None
        )

    await until(gone, what=f"{alias} removed")


async def test_pool_vmr_is_provisioned_at_once_and_removed_on_pool_delete(node_api):
    # spec 2.13: only PROVISIONED_OK pool VMRs can be attached, so they are provisioned at once
    uuid, alias = await book_pool_vmr(node_api, "clinic")
    config = await wait_for_room(node_api, alias)
    assert config.start_time is None and config.end_time is None
    assert time_refusal(config, now_utc()) is None
    await wait_for_status(node_api, uuid, "PROVISIONED_OK")
    await delete_booking(node_api, uuid, "POOL_DELETE")
    await until(lambda: _absent(node_api, alias), what="pool VMR removed")

    # Where the row stays, the node reports it deprovisioned (spec 2.12 DEPROVISION_OK).
    kept, kept_alias = await book_pool_vmr(node_api, "clinic")
    await wait_for_room(node_api, kept_alias)
    await delete_booking(node_api, kept, "POOL_DELETE", keep_row=True)
    await wait_for_status(node_api, kept, "DEPROVISION_OK")
    assert node_api.app.state.rooms.lookup(kept_alias) is None


async def test_attached_pool_vmr_follows_its_meeting_and_is_deprovisioned_after_it(node_api):
    # spec 2.13 attach: UPDATE with the meeting's uuid and times; 1.3.6 deprovision after the end
    pool_uuid, alias = await book_pool_vmr(node_api, "clinic")
    await wait_for_room(node_api, alias)
    await wait_for_status(node_api, pool_uuid, "PROVISIONED_OK")
    now = whole_seconds(now_utc())
    uuid = await attach_pool_vmr(node_api, pool_uuid, start=now, end=now + timedelta(seconds=3))

    async def follows():
        c = node_api.app.state.rooms.lookup(alias)
        return c is not None and c.end_time == now + timedelta(seconds=3)

    await until(follows, what="the pool room to take the meeting's end time")
    si = await wait_for_status(node_api, uuid, "DEPROVISION_OK", deadline=20)
    assert si["uriWithDomain"] == alias
    assert await history(node_api, uuid) == ["PROVISIONED_OK", "DEPROVISION_OK"]
    assert node_api.app.state.rooms.retired(alias)


async def test_shortened_meeting_ends_its_live_conference(node_api):
    # spec 2.10 step 5 + 2.8 endMeetingOnEndTime: "users are kicked from the meeting when it ends"
    now = whole_seconds(now_utc())
    uuid, alias = await book(
        node_api, "clinic", start=now, end=now + timedelta(hours=1), end_meeting_on_end_time=True
    )
    config = await wait_for_room(node_api, alias)
    await wait_for_status(node_api, uuid, "PROVISIONED_OK")
    conference = node_api.app.state.rooms.conference(config)  # the meeting is running
    await change_meeting(node_api, uuid, end=now + timedelta(seconds=3))

    async def ended():
        return conference.ended

    await until(ended, deadline_s=20, what="the live conference to end at the new end time")
    await wait_for_status(node_api, uuid, "DEPROVISION_OK", deadline=20)
    assert time_refusal(node_api.app.state.rooms.lookup(alias), now_utc()) is Refusal.ENDED


async def test_bad_scheduling_info_gets_provision_problems(node_api):
    # spec 2.12: PROVISION_PROBLEMS with the reason as description
    now = whole_seconds(now_utc())
    uuid, alias = await book(
        node_api, "clinic", start=now, end=now + timedelta(hours=1), host_pin=123456, guest_pin=123456
    )
    si = await wait_for_status(node_api, uuid, "PROVISION_PROBLEMS")
    assert "guestPin" in si["provisionStatusDescription"]
    assert node_api.app.state.rooms.lookup(alias) is None


async def test_polling_path_provisions_and_deprovisions(api_factory):
    # spec 1.3.5 / 1.3.6: organisations not served by events are polled
    api = await start_node_app(api_factory, event_organisation_filter="-")
    await api.add_org("clinic")
    now = whole_seconds(now_utc())
    uuid = await meeting_with_si(
        api, "clinic", start=now - timedelta(minutes=1), end=now + timedelta(seconds=3)
    )
    si = await wait_for_status(api, uuid, "DEPROVISION_OK", deadline=20)
    assert await history(api, uuid) == ["PROVISIONED_OK", "DEPROVISION_OK"]
    assert api.app.state.rooms.retired(si["uriWithDomain"])


async def test_polled_bookings_to_come_answer_not_open_and_leave_when_deleted(api_factory):
    # Polled organisations get no events: the node looks ahead (spec 1.3.1 window) so their rooms
    # answer "not open yet" too, and a deleted booking leaves the directory before its time.
    api = await start_node_app(api_factory, event_organisation_filter="-", node_resync_interval=0.3)
    await api.add_org("clinic")
    now = whole_seconds(now_utc())
    uuid = await meeting_with_si(api, "clinic", start=now + timedelta(hours=1), end=now + timedelta(hours=2))
    alias = (await scheduling_info(api, uuid))["uriWithDomain"]
    announced = await until(lambda: _lookup(api, alias), what="the polled booking announced")
    assert time_refusal(announced, now_utc()) is Refusal.NOT_OPEN
    assert announced.organisation == "clinic"  # from the API's list
    async with api.app.state.sessions() as s, s.begin():
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == uuid))).scalar_one()
        meeting = si.meeting
        await s.delete(si)
        await s.flush()
        await s.delete(meeting)
    await until(lambda: _absent(api, alias), what="the deleted booking to leave the directory")
    assert api.app.state.provisioner.schedule.get(alias) is None


async def test_node_waits_out_an_api_that_refuses_it(node_api):
    # While the API refuses the node's token (its organisation gone: 403, spec 3.2 step 4) the
    # node retries; once the API takes it again, the booking is provisioned, once.
    async def rename(old: str, new: str) -> None:
        async with node_api.app.state.sessions() as s, s.begin():
            org = await organisations.by_code(s, old)
            org.code = new

    await rename("vdx-node", "vdx-node-away")
    provisioner = node_api.app.state.provisioner
    failures = provisioner.failures
    now = whole_seconds(now_utc())
    uuid, alias = await book(node_api, "clinic", start=now, end=now + timedelta(hours=1))

    async def refused_a_while():
        b = provisioner.schedule.get(alias)
        return b is not None and b.phase.value == "waiting" and provisioner.failures >= failures + 2

    await until(refused_a_while, what="the node to know the booking but not get through")
    assert (await scheduling_info(node_api, uuid))["provisionStatus"] == "AWAITS_PROVISION"
    await rename("vdx-node-away", "vdx-node")
    await wait_for_room(node_api, alias, deadline=30)
    await wait_for_status(node_api, uuid, "PROVISIONED_OK")
    assert await history(node_api, uuid) == ["PROVISIONED_OK"]


async def test_rooms_of_another_provisioner_are_left_alone(api_factory):
    # A VMR another provisioner made (a Pexip id) is not the node's to deprovision or take back.
    api = await start_node_app(api_factory, event_organisation_filter="-")
    await api.add_org("clinic")
    now = whole_seconds(now_utc())
    uuid = await meeting_with_si(
        api,
        "clinic",
        start=now - timedelta(hours=2),
        end=now - timedelta(hours=1),
        status=ProvisionStatus.PROVISIONED_OK,
    )
    async with api.app.state.sessions() as s, s.begin():
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == uuid))).scalar_one()
        si.provision_vmr_id = "/api/admin/configuration/v1/conference/42/"
    provisioner = api.app.state.provisioner
    seen = provisioner.polls

    async def polled_twice():
        return provisioner.polls >= seen + 2

    await until(polled_twice, what="two polls")
    assert (await scheduling_info(api, uuid))["provisionStatus"] == "PROVISIONED_OK"
    second = await start_node_app(api_factory, event_organisation_filter="-")
    assert second.app.state.rooms.aliases() == []


async def test_restarted_node_rebuilds_its_directory(api_factory):
    # Events are not replayed by the in-process bus: a restarted node reads the API (spec 1.3.1)
    first = await start_node_app(api_factory)
    await first.add_org("clinic")
    now = whole_seconds(now_utc())
    running, running_alias = await book(first, "clinic", start=now, end=now + timedelta(hours=1))
    await wait_for_room(first, running_alias)
    await wait_for_status(first, running, "PROVISIONED_OK")
    await first.app.state.provisioner.stop()  # the first node goes away

    later, later_alias = await book(
        first, "clinic", start=now + timedelta(hours=2), end=now + timedelta(hours=3)
    )
    second = await start_node_app(api_factory)  # same database, fresh process state
    assert second.app.state.provisioner.provisioned(running_alias) is not None
    assert second.app.state.rooms.lookup(running_alias).end_time == now + timedelta(hours=1)
    waiting = second.app.state.rooms.lookup(later_alias)
    assert waiting is not None and time_refusal(waiting, now_utc()) is Refusal.NOT_OPEN
    assert second.app.state.provisioner.schedule.get(later_alias).uuid == later


async def test_node_token_organisation_is_created(node_api):
    async with node_api.app.state.sessions() as s:
        org = await organisations.by_code(s, node_api.settings.node_organisation)
    assert org is not None and org.parent_id is None


async def test_health_shows_the_node(node_api):
    r = await node_api.client.get("/manage/health")
    node = r.json()["components"]["node"]
    assert node["status"] == "UP" and node["node"] == node_api.settings.node_id


async def test_provisioner_is_off_without_a_node(api_factory):
    api = await api_factory(node_provisioner=True, node_enabled=False)
    assert api.app.state.provisioner is None  # no rooms here: nothing to provision


async def _lookup(api, alias):
    return api.app.state.rooms.lookup(alias)


async def _absent(api, alias):
    return api.app.state.rooms.lookup(alias) is None
