"""PUT/PATCH (spec 1.2.6, 2.10, 2.17.2, 2.17.8) and DELETE (spec 1.2.7, 2.11) of meetings."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.seed import meeting_body, outbox, pool_vmr, scheduling_info_of, set_status
from vdx.booking.enums import ProvisionStatus
from vdx.booking.roles import ADMIN, PLANNER, PROVISIONER, PROVISIONER_USER, USER
from vdx.store.db import now_utc

START = "3025-11-02T10:00:00Z"
END = "3025-11-02T11:00:00Z"


async def _create(api, org="org1", email="u@x.dk", role=USER, **fields):
    body = {"subject": "First", "startTime": START, "endTime": END} | fields
    r = await api.client.post(f"{api.v2}/meetings", headers=api.auth(org, email, role), json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _url(api, m):
    return f"{api.v2}/meetings/{m['uuid']}"


async def test_put_is_a_full_replacement(api):
    # spec 1.2.6: omitted description/projectCode -> null, labels/additional info -> empty,
    # organiser -> caller; microphone, guestPinRequired, PINs, callType kept
    await api.add_org("org1")
    m = await _create(
        api,
        email="admin@x.dk",
        role=ADMIN,
        description="d",
        projectCode="p",
        organizedByEmail="doc@x.dk",
        labels=["a"],
        additionalInformation=[{"key": "k", "value": "v"}],
        guestMicrophone="off",
        guestPinRequired=True,
        guestPin=2345,
        hostPin=6789,
        callType="video",
    )
    body = {
        "subject": "Second",
        "startTime": "3025-11-03T10:00:00+01:00",
        "endTime": "3025-11-03T12:00:00+01:00",
    }
    r = await api.client.put(_url(api, m), headers=api.auth("org1", "admin@x.dk", ADMIN), json=body)
    assert r.status_code == 200, r.text
    u = r.json()
    assert (u["subject"], u["startTime"], u["endTime"]) == (
        "Second",
        "3025-11-03T09:00:00Z",
        "3025-11-03T11:00:00Z",
    )
    assert u["description"] is None and u["projectCode"] is None
    assert u["labels"] == [] and u["additionalInformation"] == []
    assert u["organizedBy"]["email"] == "admin@x.dk"
    assert u["updatedBy"] == {"organisationId": "org1", "email": "admin@x.dk"} and u["updatedTime"]
    assert u["guestMicrophone"] == "off" and u["guestPinRequired"] is True
    si = await scheduling_info_of(api, m["uuid"])
    assert (si.guest_pin, si.host_pin, si.call_type) == (2345, 6789, "video")
    assert "start_dato=3025-11-03T09:00:00" in si.portal_link  # recomputed (spec 2.7)


async def test_put_replaces_labels_and_additional_information(api):
    await api.add_org("org1")
    m = await _create(api, labels=["a", "b"], additionalInformation=[{"key": "k", "value": "v"}])
    body = {
        "subject": "x",
        "startTime": START,
        "endTime": END,
        "labels": ["c"],
        "additionalInformation": [{"key": "k", "value": "w"}, {"key": "j", "value": "z"}],
    }
    u = (await api.client.put(_url(api, m), headers=api.auth("org1", "u@x.dk", USER), json=body)).json()
    assert u["labels"] == ["c"]
    assert u["additionalInformation"] == [{"key": "k", "value": "w"}, {"key": "j", "value": "z"}]
    body["additionalInformation"] = [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]
    r = await api.client.put(_url(api, m), headers=api.auth("org1", "u@x.dk", USER), json=body)
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "35"


async def test_patch_overlays_present_non_null_fields(api):
    # spec 1.2.6, 2.17.2: null = unchanged
    await api.add_org("org1")
    m = await _create(api, description="d", labels=["a"], projectCode="p")
    h = api.auth("org1", "u@x.dk", USER)
    r = await api.client.patch(
        _url(api, m), headers=h, json={"description": None, "labels": None, "subject": "New"}
    )
    u = r.json()
    assert (u["subject"], u["description"], u["labels"], u["projectCode"]) == ("New", "d", ["a"], "p")
    assert u["startTime"] == m["startTime"] and u["endTime"] == m["endTime"]
    r = await api.client.patch(_url(api, m), headers=h, json={"labels": [], "guestMicrophone": "muted"})
    assert r.json()["labels"] == [] and r.json()["guestMicrophone"] == "muted"
    assert "muteMicrophone=muted" in (await scheduling_info_of(api, m["uuid"])).portal_link


async def test_patch_pins_call_type_and_start_recompute_the_vmr(api):
    # spec 2.10 step 5: AWAITS_PROVISION -> vmrStartTime, portal link, PINs, callType; event UPDATE
    await api.add_org("org1")
    m = await _create(api)
    before = await scheduling_info_of(api, m["uuid"])
    body = {"guestPin": 1111, "hostPin": 22222, "callType": "audio", "startTime": "3025-11-02T12:00:00Z"}
    r = await api.client.patch(_url(api, m), headers=api.auth("org1", "u@x.dk", USER), json=body)
    assert r.status_code == 200
    si = await scheduling_info_of(api, m["uuid"])
    assert (si.guest_pin, si.host_pin, si.call_type) == (1111, 22222, "audio")
    assert si.vmr_start_time - before.vmr_start_time == timedelta(hours=2)
    assert "pin=1111" in si.portal_link and si.updated_by.email == "u@x.dk"
    events = [e["messageType"] for e in await outbox(api, api.settings.nats_subject_scheduling_info)]
    assert events == ["CREATE", "UPDATE"]
    audits = [
        (a["auditEvent"]["resource"], a["auditEvent"]["operation"])
        for a in await outbox(api, api.settings.nats_subject_audit)
    ]
    assert audits[-2:] == [("schedulingInfo", "update"), ("meeting", "update")]


async def test_status_gate_406_12(api):
    # spec 2.10 step 1
    await api.add_org("org1")
    h = api.auth("org1", "u@x.dk", USER)
    for status in (
        ProvisionStatus.STARTING_TO_PROVISION,
        ProvisionStatus.PROVISION_PROBLEMS,
        ProvisionStatus.DEPROVISION_OK,
    ):
        m = await _create(api)
        await set_status(api, m["uuid"], status)
        r = await api.client.patch(_url(api, m), headers=h, json={"subject": "x"})
        assert r.status_code == 406 and r.json()["detailed_error_code"] == "12", status
        r = await api.client.put(
            _url(api, m), headers=h, json={"subject": "x", "startTime": START, "endTime": END}
        )
        assert r.status_code == 406, status


async def test_provisioned_ok_non_pool_org_changes_only_end_time_and_step_4(api):
    # spec 2.10 step 3/4/5: only endTime (+ microphone, labels, ...) change; SI untouched but event UPDATE
    await api.add_org("org1")
    m = await _create(api, description="d")
    await set_status(api, m["uuid"], ProvisionStatus.PROVISIONED_OK)
    before = await scheduling_info_of(api, m["uuid"])
    body = {
        "subject": "Other",
        "description": "e",
        "endTime": "3025-11-02T12:30:00Z",
        "labels": ["L"],
        "guestPin": 9999,
    }
    r = await api.client.patch(_url(api, m), headers=api.auth("org1", "u@x.dk", USER), json=body)
    assert r.status_code == 200, r.text
    u = r.json()
    assert (u["subject"], u["description"]) == ("First", "d")
    assert u["endTime"] == "3025-11-02T12:30:00Z" and u["labels"] == ["L"]
    si = await scheduling_info_of(api, m["uuid"])
    assert si.guest_pin == before.guest_pin and si.updated_time is None
    events = await outbox(api, api.settings.nats_subject_scheduling_info)
    assert [e["messageType"] for e in events] == ["CREATE", "UPDATE"]
    assert events[-1]["meetingEndTime"] == "3025-11-02T12:30:00Z"
    audits = [
        (a["auditEvent"]["resource"], a["auditEvent"]["operation"])
        for a in await outbox(api, api.settings.nats_subject_audit)
    ]
    assert audits[-1] == ("meeting", "update") and ("schedulingInfo", "update") not in audits


async def test_provisioned_ok_in_pool_org_updates_subject_and_start(api):
    # spec 2.10 step 3: PROVISIONED_OK and the SI's organisation has a pool
    await api.add_org("org1", pool_size=1)
    await pool_vmr(api, "org1")
    body = meeting_body(start=now_utc())
    h = api.auth("org1", "u@x.dk", USER)
    m = (await api.client.post(f"{api.v2}/meetings", headers=h, json=body)).json()
    r = await api.client.patch(
        _url(api, m), headers=h, json={"subject": "Renamed", "startTime": "3025-01-01T00:00:00Z"}
    )
    assert r.status_code == 200 and r.json()["subject"] == "Renamed"
    assert r.json()["startTime"] == "3025-01-01T00:00:00Z"


async def test_organiser_rules_on_update(api):
    # spec 2.10 step 3: organizedByEmail for admin/planner; PATCH keeps the stored organiser;
    # quirk 2.17.8: a provisioner-user's update makes the caller the organiser
    await api.add_org("org1")
    m = await _create(api, email="plan@x.dk", role=PLANNER, organizedByEmail="doc@x.dk")
    r = await api.client.patch(
        _url(api, m), headers=api.auth("org1", "plan@x.dk", PLANNER), json={"subject": "a"}
    )
    assert r.json()["organizedBy"]["email"] == "doc@x.dk"
    r = await api.client.patch(
        _url(api, m), headers=api.auth("org1", "plan@x.dk", PLANNER), json={"organizedByEmail": "nurse@x.dk"}
    )
    assert r.json()["organizedBy"]["email"] == "nurse@x.dk"
    r = await api.client.patch(
        _url(api, m), headers=api.auth("org1", "prov@x.dk", PROVISIONER_USER), json={"subject": "b"}
    )
    assert r.json()["organizedBy"]["email"] == "prov@x.dk"


async def test_update_access(api):
    # spec 3.4: same org only; only-user must be the organiser; 404 unknown; provisioner 403
    await api.add_org("org1")
    await api.add_org("org2")
    m = await _create(api, email="owner@x.dk")
    patch = {"subject": "x"}
    assert (
        await api.client.patch(_url(api, m), headers=api.auth("org1", "other@x.dk", USER), json=patch)
    ).status_code == 403
    assert (
        await api.client.patch(_url(api, m), headers=api.auth("org2", "owner@x.dk", ADMIN), json=patch)
    ).status_code == 403
    assert (
        await api.client.patch(_url(api, m), headers=api.auth("org1", "p@x.dk", PROVISIONER), json=patch)
    ).status_code == 403
    assert (
        await api.client.patch(_url(api, m), headers=api.auth("org1", "a@x.dk", ADMIN), json=patch)
    ).status_code == 200
    r = await api.client.patch(
        f"{api.v2}/meetings/{uuid.uuid4()}", headers=api.auth("org1", "a@x.dk", ADMIN), json=patch
    )
    assert (
        r.status_code == 404 and r.json()["detailed_error"] == "Resource: meeting in field: uuid not found."
    )


async def test_update_validation(api):
    # spec 1.0.1 code 25 on PATCH/PUT; schema limits 400/10; PUT needs subject and times
    await api.add_org("org1")
    m = await _create(api)
    h = api.auth("org1", "u@x.dk", USER)
    r = await api.client.patch(_url(api, m), headers=h, json={"endTime": "10000-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "25"
    r = await api.client.patch(_url(api, m), headers=h, json={"hostPin": 5})
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "10"
    r = await api.client.put(_url(api, m), headers=h, json={"subject": "x"})
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "10"
    r = await api.client.patch(f"{api.v2}/meetings/not-a-uuid", headers=h, json={})
    assert r.status_code == 400


async def test_delete(api):
    # spec 1.2.7: 204, cascade, audit delete first, event DELETE; then 404
    await api.add_org("org1")
    m = await _create(api, labels=["a"], additionalInformation=[{"key": "k", "value": "v"}])
    h = api.auth("org1", "u@x.dk", USER)
    r = await api.client.delete(_url(api, m), headers=h)
    assert r.status_code == 204 and r.content == b""
    assert (await api.client.get(_url(api, m), headers=h)).status_code == 404
    assert await scheduling_info_of(api, m["uuid"]) is None
    all_events = await outbox(api)
    kinds = [
        e.get("messageType") or (e["auditEvent"]["resource"], e["auditEvent"]["operation"])
        for e in all_events
    ]
    assert kinds[-2:] == [("meeting", "delete"), "DELETE"]
    assert (await api.client.delete(_url(api, m), headers=h)).status_code == 404
    # the short id and uuid are free again; labels/additional info rows went with the meeting
    from sqlalchemy import func, select

    from vdx.store.models import MeetingAdditionalInfo, MeetingLabel

    async with api.app.state.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(MeetingLabel))).scalar_one() == 0
        assert (await s.execute(select(func.count()).select_from(MeetingAdditionalInfo))).scalar_one() == 0


async def test_delete_only_while_awaiting_provision(api):
    # spec 1.2.7, 2.11: 406/13 otherwise (pool-attached meetings are already provisioned)
    await api.add_org("org1", pool_size=1)
    await pool_vmr(api, "org1")
    h = api.auth("org1", "u@x.dk", USER)
    adhoc = (
        await api.client.post(f"{api.v2}/meetings", headers=h, json=meeting_body(start=now_utc()))
    ).json()
    r = await api.client.delete(_url(api, adhoc), headers=h)
    assert r.status_code == 406 and r.json()["detailed_error_code"] == "13"
    m = await _create(api)
    await set_status(api, m["uuid"], ProvisionStatus.DEPROVISION_OK)
    assert (await api.client.delete(_url(api, m), headers=h)).status_code == 406


async def test_delete_access(api):
    await api.add_org("org1")
    await api.add_org("org2")
    m = await _create(api, email="owner@x.dk")
    assert (
        await api.client.delete(_url(api, m), headers=api.auth("org1", "x@x.dk", USER))
    ).status_code == 403
    assert (
        await api.client.delete(_url(api, m), headers=api.auth("org2", "a@x.dk", ADMIN))
    ).status_code == 403
    assert (
        await api.client.delete(_url(api, m), headers=api.auth("org1", "a@x.dk", PROVISIONER))
    ).status_code == 403
    assert (
        await api.client.delete(_url(api, m), headers=api.auth("org1", "a@x.dk", PLANNER))
    ).status_code == 204
