"""Pool VMRs created by provisioner-users (spec 1.3.2), reservations (1.3.7, 1.3.8) and their
use by a meeting (2.9 step 7c), end to end through the API."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.seed import meeting_body, outbox, pool_vmr, scheduling_info_of, template
from vdx.booking.roles import ADMIN, PLANNER, PROVISIONER, PROVISIONER_USER, USER
from vdx.store.db import now_utc


def _prov(api):
    return api.auth("node", "prov@node.dk", PROVISIONER_USER)


async def test_provisioner_user_creates_a_pool_vmr_from_the_template(api):
    # spec 1.3.2: random uuid, no meeting, pool, AWAITS_PROVISION + description, PINs/URI from
    # the template, room settings copied, createdBy the caller, no vmrStartTime/portalLink;
    # event CREATE (spec 4.2) and audit create (spec 4.4)
    await api.add_org("node")
    await api.add_org("org1", pool_size=3)
    tid = await template(
        api,
        "org1",
        uri_prefix="7",
        uri_number_range_low=500,
        uri_number_range_high=599,
        host_pin_required=True,
        host_pin_range_low=1000000,
        host_pin_range_high=1000001,
        guest_pin_required=True,
        guest_pin_range_low=2000,
        guest_pin_range_high=2001,
        vmr_quality="fullhd",
        mute_all_guests=True,
        max_participants=7,
        direct_media="best_effort",
        call_type="AudioSendRecv",
        vmr_available_before=5,
    )
    r = await api.client.post(
        f"{api.v2}/scheduling-info",
        headers=_prov(api),
        json={"organizationId": "org1", "schedulingTemplateId": tid},
    )
    assert r.status_code == 200, r.text
    si = r.json()
    assert si["provisionStatus"] == "AWAITS_PROVISION"
    assert si["provisionStatusDescription"] == "Pooled awaiting provisioning."
    assert si["meetingDetails"] is None and si["portalLink"] is None and si["reservationId"] is None
    assert si["uriWithDomain"].startswith("7") and si["uriWithDomain"].endswith("@vdx.test")
    assert 500 <= int(si["uriWithoutDomain"]) <= 599
    assert si["hostPin"] in (1000000, 1000001) and si["guestPin"] in (2000, 2001)
    assert (si["vmrQuality"], si["muteAllGuests"], si["maxParticipants"]) == ("fullhd", True, 7)
    assert (si["directMedia"], si["callType"], si["vmrAvailableBefore"]) == (
        "best_effort",
        "AudioSendRecv",
        5,
    )
    assert si["createdBy"]["email"] == "prov@node.dk"
    stored = await scheduling_info_of(api, si["uuid"])
    assert stored.pool is True and stored.meeting_id is None and stored.vmr_start_time is None
    assert stored.organisation.code == "org1" and stored.new_provisioner is True
    events = await outbox(api, api.settings.nats_subject_scheduling_info)
    assert [(e["messageType"], e["uuid"]) for e in events] == [("CREATE", si["uuid"])]
    audits = [e["auditEvent"] for e in await outbox(api, api.settings.nats_subject_audit)]
    assert [(a["resource"], a["operation"], a["identifier"]) for a in audits] == [
        ("schedulingInfo", "create", si["uriWithDomain"])
    ]


async def test_create_pool_vmr_errors(api):
    # spec 1.3.2 / 1.0.1: 400/22 unknown org, 23 org without pool, 26 unknown template,
    # 27 template of another org; a shared (org-less) template is fine
    await api.add_org("node")
    await api.add_org("org1", pool_size=2)
    await api.add_org("nopool")
    await api.add_org("other", pool_size=1)
    mine = await template(api, "org1")
    theirs = await template(api, "other")
    shared = await template(api, None)

    async def post(org, tid):
        return await api.client.post(
            f"{api.v2}/scheduling-info",
            headers=_prov(api),
            json={"organizationId": org, "schedulingTemplateId": tid},
        )

    cases = [
        ("ghost", mine, "22", "OrganisationId ghost in request not found."),
        (
            "nopool",
            mine,
            "23",
            "Scheduling information can not be created on organisation nopool that is not pool enabled.",
        ),
        ("org1", 999999, "26", "Scheduling template 999999 not found."),
        ("org1", theirs, "27", f"Scheduling template {theirs} does not belong to organisation org1."),
    ]
    for org, tid, code, text in cases:
        r = await post(org, tid)
        assert r.status_code == 400, (org, r.text)
        assert (r.json()["detailed_error_code"], r.json()["detailed_error"]) == (code, text)
    assert (await post("org1", shared)).status_code == 200
    # spec 3.3: only meeting-provisioner-user
    for role in (ADMIN, USER, PLANNER, PROVISIONER):
        r = await api.client.post(
            f"{api.v2}/scheduling-info",
            headers=api.auth("org1", "x@x.dk", role),
            json={"organizationId": "org1", "schedulingTemplateId": mine},
        )
        assert r.status_code == 403, role
    # bad template uri range -> 406/14 (spec 1.0.1)
    broken = await template(api, "org1", uri_number_range_low=10, uri_number_range_high=10)
    r = await post("org1", broken)
    assert r.status_code == 406 and r.json()["detailed_error_code"] == "14"


async def test_reserve_picks_a_free_vmr_of_the_own_organisation_with_default_filters(api):
    # spec 1.3.7: filters default to the template defaults; own organisation only (no tree walk,
    # no overflow); random reservationId; audit update; 404 when none
    await api.add_org("parent", pool_size=5)
    await api.add_org("org1", parent_code="parent", pool_size=5)
    await pool_vmr(api, "parent")  # an ancestor's VMR is never reserved for org1
    sd = await pool_vmr(api, "org1", vmr_quality="sd")
    young = await pool_vmr(api, "org1", provisioned_at=now_utc())  # younger than the minimum age
    h = api.auth("org1", "admin@x.dk", ADMIN)
    r = await api.client.get(f"{api.v2}/scheduling-info-reserve", headers=h)
    assert r.status_code == 404, r.text  # the sd VMR does not match the default hd filter
    ok = await pool_vmr(api, "org1")
    r = await api.client.get(f"{api.v2}/scheduling-info-reserve", headers=h)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["uuid"] == ok.uuid and uuid.UUID(got["reservationId"])
    assert (await api.client.get(f"{api.v2}/scheduling-info-reserve", headers=h)).status_code == 404
    r = await api.client.get(f"{api.v2}/scheduling-info-reserve", headers=h, params={"vmrQuality": "sd"})
    assert r.status_code == 200 and r.json()["uuid"] == sd.uuid
    assert r.json()["reservationId"] != got["reservationId"]
    audits = [e["auditEvent"] for e in await outbox(api, api.settings.nats_subject_audit)]
    assert [(a["resource"], a["operation"], a["user"]) for a in audits] == [
        ("schedulingInfo", "update", "admin@x.dk")
    ] * 2
    assert audits[0]["auditData"]["reservationId"] == got["reservationId"]
    # a reserved VMR is no longer free (spec 2.13) and not in the available count (spec 1.5)
    assert (await scheduling_info_of(api, young.uuid)).reservation_id is None
    for role in (USER, PLANNER, PROVISIONER, PROVISIONER_USER):  # spec 3.3: meeting-admin only
        r = await api.client.get(
            f"{api.v2}/scheduling-info-reserve", headers=api.auth("org1", "x@x.dk", role)
        )
        assert r.status_code == 403, role
    r = await api.client.get(f"{api.v2}/scheduling-info-reserve", headers=h, params={"vmrQuality": "uhd"})
    assert r.status_code == 400


async def test_reservation_read_and_use_by_a_meeting(api):
    # spec 1.3.8: by reservation id while no meeting uses it, no organisation check; then
    # spec 2.9 7c: a meeting with that reservation id gets exactly that VMR; 400/29 and 34
    await api.add_org("org1", pool_size=2)
    await api.add_org("org2")
    vmr = await pool_vmr(api, "org1", new_provisioner=True)
    h = api.auth("org1", "admin@x.dk", ADMIN)
    rid = (await api.client.get(f"{api.v2}/scheduling-info-reserve", headers=h)).json()["reservationId"]
    other_admin = api.auth("org2", "a2@x.dk", ADMIN)
    r = await api.client.get(f"{api.v2}/scheduling-info-reserve/{rid}", headers=other_admin)
    assert r.status_code == 200 and r.json()["uuid"] == vmr.uuid and r.json()["reservationId"] == rid
    r = await api.client.get(
        f"{api.v2}/scheduling-info-reserve/{rid}", headers=api.auth("org1", "u@x.dk", USER)
    )
    assert r.status_code == 403
    r = await api.client.post(
        f"{api.v2}/meetings", headers=h, json=meeting_body(schedulingInfoReservationId=rid, hostPin=12345678)
    )
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "34"
    r = await api.client.post(
        f"{api.v2}/meetings", headers=other_admin, json=meeting_body(schedulingInfoReservationId=rid)
    )
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "29"
    r = await api.client.post(
        f"{api.v2}/meetings", headers=h, json=meeting_body(schedulingInfoReservationId=rid)
    )
    assert r.status_code == 200, r.text
    meeting = r.json()
    si = await scheduling_info_of(api, meeting["uuid"])
    assert si.id == vmr.id and si.reservation_id == rid and si.meeting_id is not None
    # used: the reservation read is 404 now, and the id cannot be used twice
    r = await api.client.get(f"{api.v2}/scheduling-info-reserve/{rid}", headers=h)
    assert r.status_code == 404
    r = await api.client.get(f"{api.v2}/scheduling-info-reserve/{uuid.uuid4()}", headers=h)
    assert r.status_code == 404
    r = await api.client.post(
        f"{api.v2}/meetings", headers=h, json=meeting_body(schedulingInfoReservationId=rid)
    )
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "29"
    events = await outbox(api, api.settings.nats_subject_scheduling_info)
    assert [(e["messageType"], e["uuid"]) for e in events] == [("UPDATE", meeting["uuid"])]


async def test_ad_hoc_pool_meeting_after_start_window(api):
    # spec 2.9 7e with a VMR made by POST /v2/scheduling-info and provisioned by a status report
    await api.add_org("node")
    await api.add_org("org1", pool_size=1)
    tid = await template(api, "org1")
    r = await api.client.post(
        f"{api.v2}/scheduling-info",
        headers=_prov(api),
        json={"organizationId": "org1", "schedulingTemplateId": tid},
    )
    pool_uuid = r.json()["uuid"]
    r = await api.client.put(
        f"{api.v2}/scheduling-info/{pool_uuid}",
        headers=_prov(api),
        json={"provisionStatus": "PROVISIONED_OK"},
    )
    assert r.status_code == 200, r.text
    api_settings = api.settings
    assert api_settings.pool_minimum_age_sec == 60
    # the VMR is too young to be used (minimum age, spec 2.13): POOL meeting is 400/20
    body = meeting_body(start=now_utc() + timedelta(seconds=10), meetingType="POOL")
    r = await api.client.post(f"{api.v2}/meetings", headers=api.auth("org1", "u@x.dk", USER), json=body)
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "20"
