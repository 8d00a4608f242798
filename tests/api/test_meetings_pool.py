"""Ad-hoc meetings on pool VMRs, overflow and reservations (spec 2.9 steps 7c/7e, 2.13)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.seed import meeting_body, outbox, pool_vmr, scheduling_info_of
from vdx.booking.enums import ProvisionStatus
from vdx.booking.roles import ADMIN, USER
from vdx.store.db import now_utc


async def _adhoc(api, org="org1", email="u@x.dk", role=USER, **fields):
    body = meeting_body(start=now_utc() + timedelta(seconds=30), **fields)
    return await api.client.post(f"{api.v2}/meetings", headers=api.auth(org, email, role), json=body)


async def test_ad_hoc_attaches_a_free_pool_vmr(api):
    # spec 2.9 7e, 2.13 attach: uuid := meeting uuid, createdBy/updatedBy, vmrStartTime, portal link
    await api.add_org("org1", pool_size=2)
    vmr = await pool_vmr(api, "org1", guest_pin=4444, host_pin=55556666, new_provisioner=True)
    r = await _adhoc(api, maxParticipants=99)
    assert r.status_code == 200, r.text
    m = r.json()
    si = await scheduling_info_of(api, m["uuid"])
    assert si is not None and si.id == vmr.id and si.meeting is not None
    assert si.provision_status == ProvisionStatus.PROVISIONED_OK
    assert (si.guest_pin, si.host_pin, si.uri_with_domain) == (4444, 55556666, vmr.uri_with_domain)
    assert si.max_participants == 10  # the request's maxParticipants is not applied on attach
    assert si.created_by.email == "u@x.dk" and si.updated_by.email == "u@x.dk"
    assert si.vmr_start_time == si.meeting.start_time  # vmrAvailableBefore 0
    assert si.portal_link.startswith(f"http://vdx.test/join/?conference={vmr.uri_with_domain}&pin=4444")
    assert si.pool_overflow is False
    events = await outbox(api, api.settings.nats_subject_scheduling_info)
    assert [e["messageType"] for e in events] == ["UPDATE"] and events[0]["uuid"] == m["uuid"]
    audits = [e["auditEvent"] for e in await outbox(api, api.settings.nats_subject_audit)]
    assert [(a["resource"], a["operation"]) for a in audits] == [
        ("schedulingInfo", "update"),
        ("meeting", "create"),
    ]


async def test_what_is_not_free(api):
    # spec 2.13: attached, not PROVISIONED_OK, reserved, younger than pool_minimum_age_sec -> not free
    await api.add_org("org1", pool_size=5)
    await pool_vmr(api, "org1", status=ProvisionStatus.AWAITS_PROVISION)
    await pool_vmr(api, "org1", reservation_id=str(uuid.uuid4()))
    await pool_vmr(api, "org1", provisioned_at=now_utc() - timedelta(seconds=20))
    r = await _adhoc(api)
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.pool is False and si.provision_status == "AWAITS_PROVISION"  # a new VMR
    r = await _adhoc(api, meetingType="POOL")
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "20"
    assert (
        r.json()["detailed_error"] == "Unused scheduling information not found for organisation tree for org1"
    )


async def test_minimum_age_is_a_setting(api_factory):
    # spec 2.13 pool.meeting.minimumAgeSec
    api = await api_factory(pool_minimum_age_sec=5)
    await api.add_org("org1", pool_size=1)
    vmr = await pool_vmr(api, "org1", provisioned_at=now_utc() - timedelta(seconds=20))
    r = await _adhoc(api, meetingType="POOL")
    assert r.status_code == 200 and (await scheduling_info_of(api, r.json()["uuid"])).id == vmr.id


async def test_room_settings_are_match_filters(api):
    # spec 2.13: each given room setting must equal the VMR's; unspecified = any
    await api.add_org("org1", pool_size=3)
    hd = await pool_vmr(api, "org1")
    sd = await pool_vmr(api, "org1", vmr_quality="sd", mute_all_guests=True)
    r = await _adhoc(api, meetingType="POOL", vmrQuality="sd", muteAllGuests=True)
    assert (await scheduling_info_of(api, r.json()["uuid"])).id == sd.id
    r = await _adhoc(api, meetingType="POOL", vmrType="lecture")
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "20"
    r = await _adhoc(api, meetingType="POOL", guestView="one_main_seven_pips", forceEncryption=False)
    assert (await scheduling_info_of(api, r.json()["uuid"])).id == hd.id


async def test_scheduled_meeting_never_takes_a_pool_vmr(api):
    # spec 2.9 7d: more than 2 minutes ahead -> new VMR
    await api.add_org("org1", pool_size=1)
    vmr = await pool_vmr(api, "org1")
    body = meeting_body(start=now_utc() + timedelta(minutes=10))
    r = await api.client.post(f"{api.v2}/meetings", headers=api.auth("org1", "u@x.dk", USER), json=body)
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.id != vmr.id and si.provision_status == "AWAITS_PROVISION"


async def test_past_start_is_ad_hoc(api):
    # spec 2.9 7e: starts within 2 minutes *or in the past*
    await api.add_org("org1", pool_size=1)
    vmr = await pool_vmr(api, "org1")
    body = meeting_body(start=now_utc() - timedelta(hours=1))
    r = await api.client.post(f"{api.v2}/meetings", headers=api.auth("org1", "u@x.dk", USER), json=body)
    assert (await scheduling_info_of(api, r.json()["uuid"])).id == vmr.id


async def test_child_uses_the_pool_of_its_ancestor_and_the_vmr_moves(api):
    # spec 2.2 pool organisation, 2.13 "move SI to the meeting's organisation"
    await api.add_org("region", pool_size=2)
    await api.add_org("clinic", parent_code="region")
    vmr = await pool_vmr(api, "region")
    r = await _adhoc(api, org="clinic", meetingType="POOL")
    assert r.status_code == 200, r.text
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.id == vmr.id and si.organisation.code == "clinic" and si.pool_overflow is False


async def test_overflow_pool(api_factory):
    # spec 2.13: nothing free in the pool org (which has a pool) -> the overflow organisation
    api = await api_factory(overflow_pool_organisation="overflow")
    await api.add_org("overflow", pool_size=5)
    await api.add_org("org1", pool_size=1)
    await api.add_org("nopool")
    spare = await pool_vmr(api, "overflow")
    r = await _adhoc(api, org="nopool", meetingType="POOL")  # pool org without a pool: no overflow
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "19"
    r = await _adhoc(api, org="nopool")
    assert (await scheduling_info_of(api, r.json()["uuid"])).id != spare.id
    r = await _adhoc(api, org="org1", meetingType="POOL")
    assert r.status_code == 200, r.text
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.id == spare.id and si.pool_overflow is True and si.organisation.code == "org1"
    r = await _adhoc(api, org="org1", meetingType="POOL")
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "20"


async def test_reservation_attach(api):
    # spec 2.9 7c: SI with that reservation id and no meeting, same org; else 400/29
    await api.add_org("org1", pool_size=2)
    await api.add_org("org2", pool_size=2)
    rid = str(uuid.uuid4())
    reserved = await pool_vmr(api, "org1", reservation_id=rid)
    foreign_rid = str(uuid.uuid4())
    await pool_vmr(api, "org2", reservation_id=foreign_rid)
    # a reservation works for scheduled meetings too (7c comes before 7d)
    body = meeting_body(schedulingInfoReservationId=rid)
    h = api.auth("org1", "a@x.dk", ADMIN)
    r = await api.client.post(f"{api.v2}/meetings", headers=h, json=body)
    assert r.status_code == 200, r.text
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.id == reserved.id and str(si.reservation_id) == rid
    for bad in (rid, foreign_rid, str(uuid.uuid4())):  # used, other org, unknown
        r = await api.client.post(
            f"{api.v2}/meetings", headers=h, json=meeting_body(schedulingInfoReservationId=bad)
        )
        assert r.status_code == 400 and r.json()["detailed_error_code"] == "29", bad
        assert r.json()["detailed_error"] == "ReservationId not owned by organisation or not found."


async def test_explicit_pins_or_custom_uri_skip_the_pool(api):
    # spec 2.9: 7a/7b come before 7e
    await api.add_org("org1", pool_size=1)
    vmr = await pool_vmr(api, "org1")
    r = await _adhoc(api, guestPin=1234)
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.id != vmr.id and si.guest_pin == 1234


async def test_client_uuid_of_an_unattached_vmr_is_400_24(api):
    # spec 2.17.5: any uuid clash is 400/24 (the scheduling info takes the meeting's uuid)
    await api.add_org("org1", pool_size=1)
    vmr = await pool_vmr(api, "org1")
    r = await api.client.post(
        f"{api.v2}/meetings", headers=api.auth("org1", "u@x.dk", USER), json=meeting_body(uuid=vmr.uuid)
    )
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "24"
