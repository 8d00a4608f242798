"""Scheduling-template administration (spec 1.4, 2.3, 3.3, 3.4)."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from tests.seed import template as seed_template
from vdx.booking.roles import ADMIN, ALL_ROLES, PLANNER, PROVISIONER, PROVISIONER_USER, USER
from vdx.store.models import MeetingUser, SchedulingTemplate

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

MINIMAL = {
    "conferencingSysId": 7,
    "uriPrefix": "vdx",
    "uriDomain": "rooms.test",
    "hostPinRequired": True,
    "guestPinRequired": False,
    "uriNumberRangeLow": 1000,
    "uriNumberRangeHigh": 9999,
}


def admin(api, org="org1", email="admin@org1.dk"):
    return api.auth(org, email, ADMIN)


async def create(api, body=None, headers=None, **extra):
    r = await api.client.post(
        f"{api.v2}/scheduling-templates", json=(body or MINIMAL) | extra, headers=headers or admin(api)
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_role_gates(api):
    # spec 3.3: any role reads templates; only meeting-admin writes them (403 otherwise)
    await api.add_org("org1")
    t = await create(api)
    url = f"{api.v2}/scheduling-templates"
    for role in ALL_ROLES:
        h = api.auth("org1", "x@org1.dk", role)
        assert (await api.client.get(url, headers=h)).status_code == 200, role
        assert (await api.client.get(f"{url}/{t['id']}", headers=h)).status_code == 200, role
    for role in (USER, PLANNER, PROVISIONER, PROVISIONER_USER):
        h = api.auth("org1", "x@org1.dk", role)
        r = await api.client.post(url, json=MINIMAL, headers=h)
        assert r.status_code == 403, role
        assert (await api.client.put(f"{url}/{t['id']}", json=MINIMAL, headers=h)).status_code == 403
        assert (await api.client.delete(f"{url}/{t['id']}", headers=h)).status_code == 403
    # nothing was written by the refused calls
    assert len((await api.client.get(url, headers=admin(api))).json()) == 1


async def test_create_applies_request_defaults_and_audit_fields(api):
    # spec 1.4 schedulingTemplateRequest defaults; spec 1.6 scheduling-template; spec 1.0 timestamps, links
    await api.add_org("org1")
    t = await create(api)
    assert t["organisationId"] == "org1"
    assert t["conferencingSysId"] == 7 and t["uriPrefix"] == "vdx" and t["uriDomain"] == "rooms.test"
    assert t["hostPinRequired"] is True and t["guestPinRequired"] is False
    assert t["hostPinRangeLow"] is None and t["guestPinRangeHigh"] is None
    assert t["vMRAvailableBefore"] == 0 and "vmrAvailableBefore" not in t
    assert t["maxParticipants"] == 0 and t["endMeetingOnEndTime"] is False
    assert t["isDefaultTemplate"] is False and t["isPoolTemplate"] is False
    assert t["vmrType"] == "conference"
    assert t["hostView"] == t["guestView"] == "one_main_seven_pips"
    assert t["vmrQuality"] == "hd" and t["directMedia"] == "never"
    assert t["enableOverlayText"] is True and t["guestsCanPresent"] is True
    assert t["forcePresenterIntoMain"] is True
    assert t["forceEncryption"] is False and t["muteAllGuests"] is False
    assert t["ivrTheme"] is None and t["callType"] is None and t["returnUrl"] is None
    assert t["createdBy"] == {"organisationId": "org1", "email": "admin@org1.dk"}
    assert TS.match(t["createdTime"])
    assert t["updatedBy"] is None and t["updatedTime"] is None
    assert t["_links"]["self"]["href"] == f"http://vdx.test/api/v2/scheduling-templates/{t['id']}"
    got = await api.client.get(t["_links"]["self"]["href"], headers=api.auth("org1", "u@org1.dk", USER))
    assert got.status_code == 200 and got.json() == t


async def test_create_stores_every_given_field(api):
    # spec 1.4 request fields, incl. the vMRAvailableBefore casing
    await api.add_org("org1")
    body = MINIMAL | {
        "hostPinRangeLow": 100000,
        "hostPinRangeHigh": 999999,
        "guestPinRequired": True,
        "guestPinRangeLow": 1000,
        "guestPinRangeHigh": 9999,
        "vMRAvailableBefore": 15,
        "maxParticipants": 12,
        "endMeetingOnEndTime": True,
        "ivrTheme": "/api/admin/configuration/v1/ivr_theme/10/",
        "customPortalGuest": "https://guest.test/%uri-with-domain%",
        "customPortalHost": "https://host.test/%pin%",
        "returnUrl": "https://return.test",
        "vmrType": "lecture",
        "hostView": "four_mains_zero_pips",
        "guestView": "one_main_zero_pips",
        "vmrQuality": "fullhd",
        "enableOverlayText": False,
        "guestsCanPresent": False,
        "forcePresenterIntoMain": False,
        "forceEncryption": True,
        "muteAllGuests": True,
        "directMedia": "best_effort",
        "callType": "AudioSendRecvVideoSendRecvPresentationSendRecv",
    }
    t = await create(api, body)
    for key, value in body.items():
        assert t[key] == value, key


async def test_no_range_sanity_checks_at_save_time(api):
    # spec 1.4: the reference saves low 201 > high 100; bad ranges surface later as 406/14-17
    await api.add_org("org1")
    t = await create(
        api, uriNumberRangeLow=201, uriNumberRangeHigh=100, hostPinRangeLow=5, hostPinRangeHigh=1
    )
    assert t["uriNumberRangeLow"] == 201 and t["uriNumberRangeHigh"] == 100


async def test_request_validation(api):
    # spec 1.0 / 2.15: schema violations -> 400 code "10"
    await api.add_org("org1")
    url = f"{api.v2}/scheduling-templates"
    missing = {k: v for k, v in MINIMAL.items() if k != "uriDomain"}
    r = await api.client.post(url, json=missing, headers=admin(api))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "10"
    assert "uriDomain" in r.json()["detailed_error"]
    r = await api.client.post(url, json=MINIMAL | {"uriPrefix": "x" * 101}, headers=admin(api))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "10"
    r = await api.client.post(url, json=MINIMAL | {"vmrType": "party"}, headers=admin(api))
    assert r.status_code == 400
    r = await api.client.get(f"{url}/not-a-number", headers=admin(api))
    assert r.status_code == 400


async def test_reads_are_scoped_to_the_callers_organisation(api):
    # spec 1.4 / 3.4: own organisation only; shared org-less templates are not listed;
    # other org / deleted / unknown -> 404 with the reference text
    await api.add_org("org1")
    await api.add_org("org2")
    mine = await create(api)
    theirs = await create(api, headers=admin(api, "org2", "admin@org2.dk"))
    shared = await seed_template(api, None, is_default_template=True)
    url = f"{api.v2}/scheduling-templates"
    h = api.auth("org1", "u@org1.dk", USER)
    listed = (await api.client.get(url, headers=h)).json()
    assert [t["id"] for t in listed] == [mine["id"]]
    for tid in (theirs["id"], shared, 999999):
        r = await api.client.get(f"{url}/{tid}", headers=h)
        assert r.status_code == 404
        body = r.json()
        assert body["detailed_error_code"] == "11"
        assert body["detailed_error"] == "Resource: schedulingTemplate in field: id not found."
    # writes cannot reach another organisation's template either
    assert (
        await api.client.put(f"{url}/{theirs['id']}", json=MINIMAL, headers=admin(api))
    ).status_code == 404
    assert (await api.client.delete(f"{url}/{theirs['id']}", headers=admin(api))).status_code == 404
    assert (await api.client.delete(f"{url}/{shared}", headers=admin(api))).status_code == 404
    # a pure provisioner without organisation owns no templates
    r = await api.client.get(url, headers=api.auth(None, None, PROVISIONER))
    assert r.status_code == 200 and r.json() == []


async def test_second_pool_template_is_refused(api):
    # spec 1.4, 1.0.1 code 18: at most one pool template per organisation (POST and PUT)
    await api.add_org("org1")
    await api.add_org("org2")
    pool = await create(api, isPoolTemplate=True)
    url = f"{api.v2}/scheduling-templates"
    r = await api.client.post(url, json=MINIMAL | {"isPoolTemplate": True}, headers=admin(api))
    assert r.status_code == 406
    assert r.json()["detailed_error_code"] == "18"
    assert r.json()["detailed_error"] == (
        "Create or update of pool template failed due to only one pool template allowed"
    )
    other = await create(api)
    r = await api.client.put(
        f"{url}/{other['id']}", json=MINIMAL | {"isPoolTemplate": True}, headers=admin(api)
    )
    assert r.status_code == 406 and r.json()["detailed_error_code"] == "18"
    assert (await api.client.get(f"{url}/{other['id']}", headers=admin(api))).json()[
        "isPoolTemplate"
    ] is False
    # another organisation has its own allowance
    await create(api, headers=admin(api, "org2", "admin@org2.dk"), isPoolTemplate=True)
    # a deleted pool template no longer counts
    assert (await api.client.delete(f"{url}/{pool['id']}", headers=admin(api))).status_code == 204
    assert (await create(api, isPoolTemplate=True))["isPoolTemplate"] is True


async def test_resaving_the_pool_template_keeps_it(api):
    # spec 2.17.3: the reference counts the template itself on PUT, so re-saving the current pool
    # template with isPoolTemplate=true fails with 406/18. vdx follows the documented rule (one pool
    # template per organisation) instead: the template being replaced is not counted.
    await api.add_org("org1")
    pool = await create(api, isPoolTemplate=True)
    r = await api.client.put(
        f"{api.v2}/scheduling-templates/{pool['id']}",
        json=MINIMAL | {"isPoolTemplate": True, "maxParticipants": 4},
        headers=admin(api),
    )
    assert r.status_code == 200, r.text
    assert r.json()["isPoolTemplate"] is True and r.json()["maxParticipants"] == 4


async def test_one_default_template_per_organisation(api):
    # spec 1.4 / 2.3: setting isDefaultTemplate clears the flag on the organisation's other templates
    await api.add_org("org1")
    await api.add_org("org2")
    url = f"{api.v2}/scheduling-templates"
    foreign = await create(api, headers=admin(api, "org2", "admin@org2.dk"), isDefaultTemplate=True)
    a = await create(api, isDefaultTemplate=True)
    b = await create(api, isDefaultTemplate=True)

    async def defaults(org="org1"):
        h = admin(api, org, f"admin@{org}.dk")
        return {t["id"] for t in (await api.client.get(url, headers=h)).json() if t["isDefaultTemplate"]}

    assert await defaults() == {b["id"]}
    c = await create(api)  # a non-default create leaves the default alone
    assert await defaults() == {b["id"]}
    r = await api.client.put(
        f"{url}/{a['id']}", json=MINIMAL | {"isDefaultTemplate": True}, headers=admin(api)
    )
    assert r.status_code == 200 and r.json()["isDefaultTemplate"] is True
    assert await defaults() == {a["id"]}
    # saving another template as non-default does not touch the default
    r = await api.client.put(f"{url}/{c['id']}", json=MINIMAL, headers=admin(api))
    assert r.status_code == 200
    assert await defaults() == {a["id"]}
    assert await defaults("org2") == {foreign["id"]}


async def test_put_is_a_full_replacement(api):
    # spec 1.4 PUT: omitted optionals become null / request defaults; updatedBy/updatedTime set,
    # creation data kept
    await api.add_org("org1")
    t = await create(
        api,
        ivrTheme="theme",
        callType="call",
        hostPinRangeLow=1000,
        hostPinRangeHigh=2000,
        maxParticipants=5,
        vMRAvailableBefore=10,
        vmrType="lecture",
        muteAllGuests=True,
        returnUrl="https://return.test",
    )
    r = await api.client.put(
        f"{api.v2}/scheduling-templates/{t['id']}",
        json=MINIMAL | {"uriPrefix": "new"},
        headers=admin(api, email="other-admin@org1.dk"),
    )
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["id"] == t["id"] and u["uriPrefix"] == "new"
    assert u["ivrTheme"] is None and u["callType"] is None and u["returnUrl"] is None
    assert u["hostPinRangeLow"] is None and u["hostPinRangeHigh"] is None
    assert u["maxParticipants"] == 0 and u["vMRAvailableBefore"] == 0
    assert u["vmrType"] == "conference" and u["muteAllGuests"] is False
    assert u["createdBy"] == t["createdBy"] and u["createdTime"] == t["createdTime"]
    assert u["updatedBy"] == {"organisationId": "org1", "email": "other-admin@org1.dk"}
    assert TS.match(u["updatedTime"])
    r = await api.client.put(f"{api.v2}/scheduling-templates/424242", json=MINIMAL, headers=admin(api))
    assert r.status_code == 404


async def test_delete_is_soft_and_hides_the_template(api):
    # spec 1.4 DELETE: soft delete (deletedTime, deletedBy) -> 204; afterwards it is gone for the API
    await api.add_org("org1")
    keep = await create(api)
    gone = await create(api)
    url = f"{api.v2}/scheduling-templates"
    r = await api.client.delete(f"{url}/{gone['id']}", headers=admin(api, email="deleter@org1.dk"))
    assert r.status_code == 204 and r.content == b""
    assert [t["id"] for t in (await api.client.get(url, headers=admin(api))).json()] == [keep["id"]]
    assert (await api.client.get(f"{url}/{gone['id']}", headers=admin(api))).status_code == 404
    assert (await api.client.put(f"{url}/{gone['id']}", json=MINIMAL, headers=admin(api))).status_code == 404
    assert (await api.client.delete(f"{url}/{gone['id']}", headers=admin(api))).status_code == 404
    async with api.app.state.sessions() as s:
        row = await s.get(SchedulingTemplate, gone["id"])
        assert row is not None and row.deleted_time is not None
        deleter = (
            await s.execute(
                select(SchedulingTemplate.deleted_by_id).where(SchedulingTemplate.id == gone["id"])
            )
        ).scalar_one()
        user = await s.get(MeetingUser, deleter)
        assert user is not None and user.email == "deleter@org1.dk"


async def test_concurrent_pool_templates_leave_one(api):
    # spec 1.4 / 2.3: at most one pool template per organisation, also when two admins race
    await api.add_org("org1")
    url = f"{api.v2}/scheduling-templates"
    body = MINIMAL | {"isPoolTemplate": True, "isDefaultTemplate": True}
    results = await asyncio.gather(
        *(api.client.post(url, json=body, headers=admin(api, email=f"a{i}@org1.dk")) for i in range(4))
    )
    assert sorted(r.status_code for r in results) == [200, 406, 406, 406]
    listed = (await api.client.get(url, headers=admin(api))).json()
    assert [t["isPoolTemplate"] for t in listed] == [True]
    assert [t["isDefaultTemplate"] for t in listed] == [True]
