"""Scheduling information and the polling provisioner's contract (spec 1.3, 2.4, 2.12, 3.3, 3.4)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests import seed
from vdx.booking.enums import ProvisionStatus
from vdx.booking.roles import ADMIN, ALL_ROLES, PLANNER, PROVISIONER, PROVISIONER_USER, USER
from vdx.store.db import now_utc
from vdx.store.models import Outbox, SchedulingInfo, SchedulingStatus

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
T0 = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)


def q(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def window(api, start: datetime, end: datetime, status: str | None = None) -> str:
    url = f"{api.v2}/scheduling-info?from-start-time={q(start)}&to-end-time={q(end)}"
    return url + (f"&provision-status={status}" if status else "")


async def uuids(api, url: str, headers) -> set[str]:
    r = await api.client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    return {si["uuid"] for si in r.json()}


async def tree(api) -> None:
    """root -> child -> grandchild, and an unrelated organisation."""
    await api.add_org("root")
    await api.add_org("child", parent_code="root")
    await api.add_org("grandchild", parent_code="child")
    await api.add_org("other")


# ---------------------------------------------------------------------------------------------
# GET /v2/scheduling-info (spec 1.3.1)


async def test_window_query_needs_both_times(api):
    # spec 1.3.1: from-start-time and to-end-time are required -> 400; bad values -> 400
    await api.add_org("org1")
    h = api.auth("org1", "u@org1.dk", USER)
    base = f"{api.v2}/scheduling-info"
    for url in (
        base,
        f"{base}?from-start-time={q(T0)}",
        f"{base}?to-end-time={q(T0)}",
        f"{base}?from-start-time=yesterday&to-end-time={q(T0)}",
        window(api, T0, T0 + timedelta(hours=1), "PROVISIONED"),
    ):
        r = await api.client.get(url, headers=h)
        assert r.status_code == 400, url
        assert r.json()["status"] == 400
    # spec 1.0.1 code 25: a year beyond 9999
    r = await api.client.get(f"{base}?from-start-time=10000-01-01T00:00:00Z&to-end-time={q(T0)}", headers=h)
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "25"


async def test_window_is_strict_on_vmr_start_or_meeting_end(api):
    # spec 1.3.1: from < vmrStartTime < to  OR  from < meeting.endTime < to (strict)
    await api.add_org("org1")
    h = api.auth("org1", "u@org1.dk", USER)
    frm, to = T0, T0 + timedelta(hours=2)
    # vmrStartTime = start - 10 min
    inside_start = await seed.meeting_with_si(
        api, "org1", start=T0 + timedelta(minutes=30), end=T0 + timedelta(hours=5), vmr_available_before=10
    )
    inside_end = await seed.meeting_with_si(
        api, "org1", start=T0 - timedelta(hours=3), end=T0 + timedelta(minutes=1)
    )
    start_on_from = await seed.meeting_with_si(
        api, "org1", start=T0 + timedelta(minutes=10), end=T0 + timedelta(hours=5), vmr_available_before=10
    )
    end_on_to = await seed.meeting_with_si(api, "org1", start=T0 - timedelta(hours=1), end=to)
    spanning = await seed.meeting_with_si(
        api, "org1", start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=3)
    )
    # the VMR start counts, not the meeting start: meeting starts inside, VMR opens before `from`
    vmr_before = await seed.meeting_with_si(
        api, "org1", start=T0 + timedelta(minutes=5), end=T0 + timedelta(hours=5), vmr_available_before=15
    )
    got = await uuids(api, window(api, frm, to), h)
    assert inside_start in got and inside_end in got
    assert not got & {start_on_from, end_on_to, spanning, vmr_before}
    # an offset in the query is honoured (+ sent as %2B, spec 1.0)
    url = (
        f"{api.v2}/scheduling-info?from-start-time=2031-05-01T14:00:00%2B02:00"
        f"&to-end-time=2031-05-01T16:00:00.123%2B02:00"
    )
    assert await uuids(api, url, h) == got


async def test_status_defaults_to_awaits_provision(api):
    # spec 1.3.1: provision-status defaults to AWAITS_PROVISION; other values filter
    await api.add_org("org1")
    h = api.auth("org1", "u@org1.dk", USER)
    start = T0 + timedelta(minutes=30)
    waiting = await seed.meeting_with_si(api, "org1", start=start)
    ok = await seed.meeting_with_si(api, "org1", start=start, status=ProvisionStatus.PROVISIONED_OK)
    problems = await seed.meeting_with_si(api, "org1", start=start, status=ProvisionStatus.PROVISION_PROBLEMS)
    frm, to = T0, T0 + timedelta(hours=1)
    assert await uuids(api, window(api, frm, to), h) == {waiting}
    assert await uuids(api, window(api, frm, to, "PROVISIONED_OK"), h) == {ok}
    assert await uuids(api, window(api, frm, to, "PROVISION_PROBLEMS"), h) == {problems}
    assert await uuids(api, window(api, frm, to, "DEPROVISION_OK"), h) == set()


async def test_window_lists_only_scheduling_infos_with_a_meeting(api):
    # spec 1.3.1: pool VMRs (no meeting) never appear, whatever their status
    await api.add_org("org1", pool_size=2)
    h = api.auth("org1", "p@org1.dk", PROVISIONER_USER)
    await seed.pool_vmr(api, "org1", status=ProvisionStatus.AWAITS_PROVISION)
    await seed.pool_vmr(api, "org1")
    now = now_utc()
    assert await uuids(api, window(api, now - timedelta(days=1), now + timedelta(days=1)), h) == set()
    assert (
        await uuids(api, window(api, now - timedelta(days=1), now + timedelta(days=1), "PROVISIONED_OK"), h)
        == set()
    )


async def test_window_scoping_by_role(api):
    # spec 1.3.1 / 3.4: provisioner(-user) all orgs; admin/planner own + descendants; others own org
    await tree(api)
    start = T0 + timedelta(minutes=30)
    si = {
        org: await seed.meeting_with_si(api, org, start=start)
        for org in ("root", "child", "grandchild", "other")
    }
    url = window(api, T0, T0 + timedelta(hours=1))

    async def seen(org, *roles):
        h = api.auth(org, f"x@{org}.dk", *roles) if org else api.auth(None, None, *roles)
        return {name for name, u in si.items() if u in await uuids(api, url, h)}

    everything = set(si)
    assert await seen(None, PROVISIONER) == everything
    assert await seen("child", PROVISIONER_USER) == everything
    assert await seen("root", ADMIN) == {"root", "child", "grandchild"}
    assert await seen("child", PLANNER) == {"child", "grandchild"}
    assert await seen("grandchild", ADMIN) == {"grandchild"}
    assert await seen("root", USER) == {"root"}
    assert await seen("child", USER) == {"child"}
    assert await seen("root", USER, PLANNER) == {"root", "child", "grandchild"}


async def test_window_role_matrix(api):
    # spec 3.3: GET /v2/scheduling-info is open to every role
    await api.add_org("org1")
    for role in ALL_ROLES:
        r = await api.client.get(
            window(api, T0, T0 + timedelta(hours=1)), headers=api.auth("org1", "x@o.dk", role)
        )
        assert r.status_code == 200, role
        assert r.json() == []


# ---------------------------------------------------------------------------------------------
# GET /v2/scheduling-info/{uuid} (spec 1.3.3, 1.6)


async def test_get_by_uuid_shows_the_resource_with_meeting_details(api):
    # spec 1.3.3 / 1.6: every scheduling-info field, meetingDetails, shortLink, _links.self
    await api.add_org("org1")
    start = datetime(2031, 5, 1, 12, 0, 30, tzinfo=UTC)
    u = await seed.meeting_with_si(api, "org1", start=start, vmr_available_before=15, uri_number=55512345)
    r = await api.client.get(f"{api.v2}/scheduling-info/{u}", headers=api.auth("org1", "u@org1.dk", USER))
    assert r.status_code == 200
    si = r.json()
    assert si["uuid"] == u
    assert si["uriWithDomain"] == "55512345@vdx.test" and si["uriWithoutDomain"] == "55512345"
    assert "uriDomain" not in si and "vmrStartTime" not in si and "newProvisioner" not in si
    assert si["vmrAvailableBefore"] == 15 and si["provisionStatus"] == "AWAITS_PROVISION"
    assert si["provisionStatusDescription"] == "seeded" and si["provisionTimestamp"] is None
    assert si["createdBy"] == {"organisationId": "org1", "email": "organiser@example.dk"}
    assert si["updatedBy"] == {"organisationId": None, "email": None}
    assert TS.match(si["createdTime"]) and si["updatedTime"] is None
    assert si["vmrType"] == "conference" and si["hostView"] == "one_main_seven_pips"
    details = si["meetingDetails"]
    assert details["uuid"] == u and details["subject"] == "Seeded meeting"
    assert details["startTime"] == "2031-05-01T12:00:30Z"
    assert si["shortLink"] == si["shortlink"] == f"http://vdx.test/s/{details['shortId']}"
    assert si["_links"]["self"]["href"] == f"http://vdx.test/api/v2/scheduling-info/{u}"
    assert details["_links"]["scheduling-info"]["href"] == si["_links"]["self"]["href"]


async def test_get_by_uuid_shows_the_meeting_as_created(api):
    # spec 1.3.3 / 1.6: meetingDetails is the meeting's own body: every label and additional
    # information pair in the order given, whatever characters they hold, the three users
    await api.add_org("org1")
    labels = ["zeta", "alpha", 'quote " comma , bracket ] ÆØÅ', "alpha2"]
    info = [{"key": "z", "value": "1"}, {"key": "a", "value": '[" ]'}, {"key": "æ", "value": ""}]
    body = {
        "subject": "Knee",
        "startTime": "3025-06-01T10:00:00Z",
        "endTime": "3025-06-01T11:00:00Z",
        "labels": labels,
        "additionalInformation": info,
        "organizedByEmail": "doc@org1.dk",
    }
    h = api.auth("org1", "planner@org1.dk", PLANNER)
    created = (await api.client.post(f"{api.v2}/meetings", headers=h, json=body)).json()
    assert created["labels"] == labels and created["additionalInformation"] == info
    meeting = (await api.client.get(f"{api.v2}/meetings/{created['uuid']}", headers=h)).json()
    si = (await api.client.get(f"{api.v2}/scheduling-info/{created['uuid']}", headers=h)).json()
    assert meeting == created and si["meetingDetails"] == created
    assert created["organizedBy"] == {"organisationId": "org1", "email": "doc@org1.dk"}
    assert si["createdBy"] == created["createdBy"] == {"organisationId": "org1", "email": "planner@org1.dk"}
    plain = (
        await api.client.post(
            f"{api.v2}/meetings", headers=h, json=body | {"labels": [], "additionalInformation": []}
        )
    ).json()
    assert plain["labels"] == [] and plain["additionalInformation"] == []
    si = (await api.client.get(f"{api.v2}/scheduling-info/{plain['uuid']}", headers=h)).json()
    assert si["meetingDetails"] == plain


async def test_get_by_uuid_of_a_pool_vmr(api):
    # spec 1.6: without a meeting, meetingDetails and shortLink are null
    await api.add_org("org1", pool_size=1)
    u = (await seed.pool_vmr(api, "org1")).uuid
    r = await api.client.get(f"{api.v2}/scheduling-info/{u}", headers=api.auth("org1", "a@org1.dk", ADMIN))
    assert r.status_code == 200
    si = r.json()
    assert si["meetingDetails"] is None and si["shortLink"] is None and si["shortlink"] is None
    assert si["provisionStatus"] == "PROVISIONED_OK" and TS.match(si["provisionTimestamp"])


async def test_get_by_uuid_shows_the_users_organisation_to_readers_of_another(api):
    # spec 1.6: createdBy.organisationId is the user's organisation whoever reads it (a provisioner
    # without one, an admin of an ancestor), not the reader's
    await tree(api)
    u = await seed.meeting_with_si(api, "grandchild")
    expected = {"organisationId": "grandchild", "email": "organiser@example.dk"}
    for org, role in ((None, PROVISIONER), ("root", PROVISIONER_USER), ("root", ADMIN), ("grandchild", USER)):
        h = api.auth(org, f"x@{org}.dk", role) if org else api.auth(None, None, role)
        si = (await api.client.get(f"{api.v2}/scheduling-info/{u}", headers=h)).json()
        assert si["createdBy"] == si["meetingDetails"]["createdBy"] == expected, (org, role)
        assert si["meetingDetails"]["organizedBy"] == expected and si["updatedBy"]["organisationId"] is None


async def test_get_by_uuid_access_rules(api):
    # spec 1.3.3: 404 unknown; provisioner(-user) any; same org ok; admin/planner descendants; else 403
    await tree(api)
    si = {org: await seed.meeting_with_si(api, org) for org in ("root", "child", "grandchild", "other")}

    async def status(org, role, target):
        h = api.auth(org, f"x@{org}.dk", role) if org else api.auth(None, None, role)
        return (await api.client.get(f"{api.v2}/scheduling-info/{si[target]}", headers=h)).status_code

    assert await status(None, PROVISIONER, "other") == 200
    assert await status("root", PROVISIONER_USER, "other") == 200
    assert await status("root", ADMIN, "grandchild") == 200
    assert await status("child", PLANNER, "grandchild") == 200
    assert await status("child", ADMIN, "root") == 403
    assert await status("root", USER, "child") == 403
    assert await status("child", USER, "child") == 200
    assert await status("root", ADMIN, "other") == 403
    r = await api.client.get(
        f"{api.v2}/scheduling-info/{si['other']}", headers=api.auth("root", "u@r.dk", USER)
    )
    body = r.json()
    assert body["status"] == 403 and body["detailed_error_code"] == "11" and body["detailed_error"] is None

    missing = "00000000-0000-4000-8000-000000000000"
    r = await api.client.get(f"{api.v2}/scheduling-info/{missing}", headers=api.auth("root", "u@r.dk", USER))
    assert r.status_code == 404
    assert r.json()["detailed_error"] == "Resource: schedulingInfo in field: uuid not found."
    r = await api.client.get(f"{api.v2}/scheduling-info/not-a-uuid", headers=api.auth("root", "u@r.dk", USER))
    assert r.status_code == 400


# ---------------------------------------------------------------------------------------------
# PUT /v2/scheduling-info/{uuid} (spec 1.3.4)


async def test_status_report_role_gate(api):
    # spec 3.3: only meeting-provisioner-user may PUT a status
    await api.add_org("org1")
    u = await seed.meeting_with_si(api, "org1")
    body = {"provisionStatus": "PROVISIONED_OK"}
    for role in (ADMIN, USER, PLANNER, PROVISIONER):
        r = await api.client.put(
            f"{api.v2}/scheduling-info/{u}", json=body, headers=api.auth("org1", "x@o.dk", role)
        )
        assert r.status_code == 403, role
    r = await api.client.get(f"{api.v2}/scheduling-info/{u}", headers=api.auth("org1", "x@o.dk", USER))
    assert r.json()["provisionStatus"] == "AWAITS_PROVISION"


async def test_status_report_updates_fields_history_and_audit(api):
    # spec 1.3.4: status, description, vmrId, provisionTimestamp=now, updatedBy/Time;
    # a scheduling_status history row per report; audit "update"; no state machine; no NATS event
    await api.add_org("org1")
    await api.add_org("provisioning")
    u = await seed.meeting_with_si(api, "org1", new_provisioner=True)
    h = api.auth("provisioning", "robot@prov.dk", PROVISIONER_USER)
    before = now_utc()
    reports = [
        {
            "provisionStatus": "PROVISIONED_OK",
            "provisionStatusDescription": "created",
            "provisionVmrId": "vmr-1",
        },
        # any transition is accepted, even back to the start (no state-machine validation)
        {"provisionStatus": "AWAITS_PROVISION"},
        {"provisionStatus": "PROVISION_PROBLEMS", "provisionStatusDescription": "x" * 200},
    ]
    for body in reports:
        r = await api.client.put(f"{api.v2}/scheduling-info/{u}", json=body, headers=h)
        assert r.status_code == 200, r.text
        si = r.json()
        assert si["provisionStatus"] == body["provisionStatus"]
        assert si["provisionStatusDescription"] == body.get("provisionStatusDescription")
        assert si["provisionVmrId"] == body.get("provisionVmrId")
        assert si["updatedBy"] == {"organisationId": "provisioning", "email": "robot@prov.dk"}
        assert TS.match(si["provisionTimestamp"]) and TS.match(si["updatedTime"])
        stamp = datetime.fromisoformat(si["provisionTimestamp"].replace("Z", "+00:00"))
        assert before <= stamp <= now_utc()
        assert si["meetingDetails"]["uuid"] == u
    got = await api.client.get(f"{api.v2}/scheduling-info/{u}", headers=api.auth("org1", "x@org1.dk", USER))
    assert got.json()["provisionStatus"] == "PROVISION_PROBLEMS"

    async with api.app.state.sessions() as s:
        row = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == u))).scalar_one()
        history = (
            (
                await s.execute(
                    select(SchedulingStatus)
                    .where(SchedulingStatus.scheduling_info_id == row.id)
                    .order_by(SchedulingStatus.id)
                )
            )
            .scalars()
            .all()
        )
        assert [h.provision_status for h in history] == [
            ProvisionStatus.PROVISIONED_OK,
            ProvisionStatus.AWAITS_PROVISION,
            ProvisionStatus.PROVISION_PROBLEMS,
        ]
        assert history[0].provision_status_description == "created"
        assert all(h.meeting_id == row.meeting_id for h in history)
        outbox = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
    # one audit event per report and no scheduling-info event, even for an event-driven VMR
    assert [o.subject for o in outbox] == [api.settings.nats_subject_audit] * 3
    first = json.loads(outbox[0].payload)["auditEvent"]
    assert first["resource"] == "schedulingInfo" and first["operation"] == "update"
    assert first["organisationCode"] == "org1" and first["user"] == "robot@prov.dk"


async def test_deprovision_ok_releases_the_number(api):
    # spec 1.3.4 / 2.4: DEPROVISION_OK nulls uriWithoutDomain and uriDomain, keeps uriWithDomain,
    # so the number can be used again in that domain
    await api.add_org("org1")
    u = await seed.meeting_with_si(api, "org1", uri_number=77700001)
    h = api.auth("org1", "robot@org1.dk", PROVISIONER_USER)
    r = await api.client.put(
        f"{api.v2}/scheduling-info/{u}", json={"provisionStatus": "DEPROVISION_PROBLEMS"}, headers=h
    )
    assert r.json()["uriWithoutDomain"] == "77700001"
    r = await api.client.put(
        f"{api.v2}/scheduling-info/{u}", json={"provisionStatus": "DEPROVISION_OK"}, headers=h
    )
    assert r.status_code == 200
    si = r.json()
    assert si["uriWithoutDomain"] is None and si["uriWithDomain"] == "77700001@vdx.test"
    async with api.app.state.sessions() as s:
        row = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == u))).scalar_one()
        assert row.uri_domain is None
    again = await seed.meeting_with_si(api, "org1", uri_number=77700001)
    r = await api.client.get(f"{api.v2}/scheduling-info/{again}", headers=h)
    assert r.json()["uriWithoutDomain"] == "77700001"


async def test_status_report_errors(api):
    # spec 1.3.4: 404 unknown (404 text as GET); body validated (required status, lengths) -> 400
    await api.add_org("org1")
    u = await seed.meeting_with_si(api, "org1")
    h = api.auth("org1", "robot@org1.dk", PROVISIONER_USER)
    missing = "00000000-0000-4000-8000-000000000001"
    r = await api.client.put(
        f"{api.v2}/scheduling-info/{missing}", json={"provisionStatus": "PROVISIONED_OK"}, headers=h
    )
    assert r.status_code == 404
    assert r.json()["detailed_error"] == "Resource: schedulingInfo in field: uuid not found."
    for body in (
        {},
        {"provisionStatus": "DONE"},
        {"provisionStatus": "PROVISIONED_OK", "provisionStatusDescription": "x" * 201},
        {"provisionStatus": "PROVISIONED_OK", "provisionVmrId": "v" * 51},
    ):
        r = await api.client.put(f"{api.v2}/scheduling-info/{u}", json=body, headers=h)
        assert r.status_code == 400, body
    async with api.app.state.sessions() as s:
        assert (await s.execute(select(SchedulingStatus))).scalars().all() == []


# ---------------------------------------------------------------------------------------------
# GET /v2/scheduling-info-provision and -deprovision (spec 1.3.5, 1.3.6)


async def test_work_lists_role_gate(api):
    # spec 3.3: only meeting-provisioner-user
    await api.add_org("org1")
    for path in ("scheduling-info-provision", "scheduling-info-deprovision"):
        for role in (ADMIN, USER, PLANNER, PROVISIONER):
            r = await api.client.get(f"{api.v2}/{path}", headers=api.auth("org1", "x@o.dk", role))
            assert r.status_code == 403, (path, role)
        r = await api.client.get(f"{api.v2}/{path}", headers=api.auth("org1", "x@o.dk", PROVISIONER_USER))
        assert r.status_code == 200 and r.json() == []


async def test_provision_list(api):
    # spec 1.3.5: meeting VMRs AWAITS_PROVISION with vmrStartTime <= now <= meeting.endTime,
    # newProvisioner false, any organisation
    await api.add_org("org1")
    await api.add_org("org2", pool_size=1)
    now = now_utc()
    due = await seed.meeting_with_si(api, "org1", start=now + timedelta(minutes=5), vmr_available_before=10)
    running = await seed.meeting_with_si(
        api, "org2", start=now - timedelta(minutes=30), end=now + timedelta(minutes=30)
    )
    await seed.meeting_with_si(
        api, "org1", start=now + timedelta(minutes=20), vmr_available_before=10
    )  # not yet
    await seed.meeting_with_si(
        api, "org1", start=now - timedelta(hours=2), end=now - timedelta(minutes=1)
    )  # over
    await seed.meeting_with_si(
        api, "org1", start=now - timedelta(minutes=5), status=ProvisionStatus.PROVISION_PROBLEMS
    )
    await seed.meeting_with_si(api, "org1", start=now - timedelta(minutes=5), new_provisioner=True)
    await seed.pool_vmr(api, "org2", status=ProvisionStatus.AWAITS_PROVISION)
    got = await uuids(
        api, f"{api.v2}/scheduling-info-provision", api.auth("org1", "p@o.dk", PROVISIONER_USER)
    )
    assert got == {due, running}


async def test_deprovision_list(api):
    # spec 1.3.6: meeting VMRs PROVISIONED_OK whose meeting ended (endTime < now), newProvisioner false
    await api.add_org("org1")
    await api.add_org("org2")
    now = now_utc()
    ok = ProvisionStatus.PROVISIONED_OK
    ended = await seed.meeting_with_si(
        api, "org1", start=now - timedelta(hours=2), end=now - timedelta(minutes=1), status=ok
    )
    ended2 = await seed.meeting_with_si(
        api, "org2", start=now - timedelta(days=2), end=now - timedelta(days=1), status=ok
    )
    await seed.meeting_with_si(
        api, "org1", start=now - timedelta(hours=1), end=now + timedelta(minutes=5), status=ok
    )
    await seed.meeting_with_si(api, "org1", start=now - timedelta(hours=2), end=now - timedelta(minutes=1))
    await seed.meeting_with_si(
        api,
        "org1",
        start=now - timedelta(hours=2),
        end=now - timedelta(minutes=1),
        status=ok,
        new_provisioner=True,
    )
    await seed.meeting_with_si(
        api,
        "org1",
        start=now - timedelta(hours=2),
        end=now - timedelta(minutes=1),
        status=ProvisionStatus.DEPROVISION_OK,
    )
    h = api.auth("org1", "p@o.dk", PROVISIONER_USER)
    assert await uuids(api, f"{api.v2}/scheduling-info-deprovision", h) == {ended, ended2}
    # after the provisioner reports DEPROVISION_OK the VMR leaves the list
    r = await api.client.put(
        f"{api.v2}/scheduling-info/{ended}", json={"provisionStatus": "DEPROVISION_OK"}, headers=h
    )
    assert r.status_code == 200
    assert await uuids(api, f"{api.v2}/scheduling-info-deprovision", h) == {ended2}
