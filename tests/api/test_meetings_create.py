"""POST /v2/meetings (spec 1.2.4, 2.3-2.9): fields, defaults, template chain, URIs, PINs, errors."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from tests.seed import meeting_body, outbox, scheduling_info_of, set_org, template
from vdx.booking.roles import ADMIN, PLANNER, PROVISIONER_USER, USER
from vdx.store.db import now_utc
from vdx.store.models import Organisation

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def _post(api, body, org="org1", email="u@x.dk", *roles):
    return await api.client.post(
        f"{api.v2}/meetings", headers=api.auth(org, email, *(roles or (USER,))), json=body
    )


async def test_create_returns_meeting_with_all_fields(api):
    # spec 1.2.4 / 1.6: 200 meeting; defaults; timestamps yyyy-MM-ddTHH:mm:ssZ; absolute _links
    await api.add_org("org1")
    r = await _post(
        api,
        {
            "subject": "Video",
            "startTime": "3025-11-02T15:00:00.123456+02:00",
            "endTime": "3025-11-02T16:00:00+02:00",
            "description": "d",
            "projectCode": "p",
            "externalId": "ext-1",
            "labels": ["a", "b"],
            "additionalInformation": [{"key": "k1", "value": "v1"}, {"key": "k2", "value": "v2"}],
        },
    )
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["startTime"] == "3025-11-02T13:00:00Z" and m["endTime"] == "3025-11-02T14:00:00Z"
    assert TS.match(m["createdTime"]) and m["updatedTime"] is None
    assert m["createdBy"] == {"organisationId": "org1", "email": "u@x.dk"}
    assert m["organizedBy"] == {"organisationId": "org1", "email": "u@x.dk"}
    assert m["updatedBy"] == {"organisationId": None, "email": None}
    assert m["guestMicrophone"] == "on" and m["guestPinRequired"] is False
    assert m["labels"] == ["a", "b"]
    assert m["additionalInformation"] == [{"key": "k1", "value": "v1"}, {"key": "k2", "value": "v2"}]
    assert re.fullmatch(r"[0-9a-f]{12}", m["shortId"])
    assert m["shortLink"] == m["shortlink"] == f"http://vdx.test/s/{m['shortId']}"
    assert m["_links"]["self"]["href"] == f"http://vdx.test/api/v2/meetings/{m['uuid']}"
    assert m["_links"]["scheduling-info"]["href"] == f"http://vdx.test/api/v2/scheduling-info/{m['uuid']}"
    assert (m["description"], m["projectCode"], m["externalId"]) == ("d", "p", "ext-1")
    follow = await api.client.get(m["_links"]["self"]["href"], headers=api.auth("org1", "u@x.dk", USER))
    assert follow.status_code == 200 and follow.json() == m


async def test_new_vmr_from_the_configured_shared_template(api):
    # spec 2.3 step 5, 2.4, 2.5, 2.8, 2.9 "new SI details"
    await api.add_org("org1")
    r = await _post(api, meeting_body(start=now_utc() + timedelta(days=1)))
    m = r.json()
    si = await scheduling_info_of(api, m["uuid"])
    assert si is not None and si.provision_status == "AWAITS_PROVISION"
    assert 10000000 <= int(si.uri_without_domain) < 99999999
    assert si.uri_domain == "vdx.test" and si.uri_with_domain == f"{si.uri_without_domain}@vdx.test"
    assert 1000000 <= si.host_pin < 9999999 and 1000 <= si.guest_pin < 999999
    assert si.vmr_available_before == 15 and si.max_participants == 10
    start = now_utc() + timedelta(days=1)
    assert abs((si.vmr_start_time - (start - timedelta(minutes=15))).total_seconds()) < 60
    assert si.portal_link.startswith(
        f"http://vdx.test/join/?conference={si.uri_with_domain}&pin={si.guest_pin}"
    )
    assert si.new_provisioner is True and si.pool is False
    assert si.created_by.email == "u@x.dk"
    # the shared template was persisted once and is reused
    r2 = await _post(api, meeting_body())
    si2 = await scheduling_info_of(api, r2.json()["uuid"])
    assert si2.scheduling_template_id == si.scheduling_template_id


async def test_events_and_audit_on_create(api):
    # spec 2.9: SI event CREATE, audit create for SI and meeting; spec 4.2 payload
    await api.add_org("org1")
    m = (await _post(api, meeting_body())).json()
    si_events = await outbox(api, api.settings.nats_subject_scheduling_info)
    assert [e["messageType"] for e in si_events] == ["CREATE"] and si_events[0]["uuid"] == m["uuid"]
    audits = [e["auditEvent"] for e in await outbox(api, api.settings.nats_subject_audit)]
    assert [(a["resource"], a["operation"]) for a in audits] == [
        ("schedulingInfo", "create"),
        ("meeting", "create"),
    ]
    assert audits[1]["identifier"] == m["uuid"] and audits[1]["organisationCode"] == "org1"


async def test_no_event_for_polling_organisations(api_factory):
    # spec 4.2: event only when the org uses the new provisioner; audit still recorded
    api = await api_factory(event_organisation_filter="someone-else")
    await api.add_org("org1")
    m = (await _post(api, meeting_body())).json()
    assert await outbox(api, api.settings.nats_subject_scheduling_info) == []
    assert (await scheduling_info_of(api, m["uuid"])).new_provisioner is False


async def test_template_chain(api):
    # spec 2.3: requested (own org, >0, not deleted) -> org default -> ancestor default -> shared
    await api.add_org("root")
    await api.add_org("org1", parent_code="root")
    await api.add_org("other")
    shared = await template(api, None, uri_domain="shared.test")
    r = await _post(api, meeting_body())
    assert (await scheduling_info_of(api, r.json()["uuid"])).scheduling_template_id == shared
    anc = await template(api, "root", is_default_template=True, uri_domain="root.test")
    r = await _post(api, meeting_body())
    assert (await scheduling_info_of(api, r.json()["uuid"])).scheduling_template_id == anc
    own = await template(api, "org1", is_default_template=True, uri_domain="org1.test")
    r = await _post(api, meeting_body())
    assert (await scheduling_info_of(api, r.json()["uuid"])).scheduling_template_id == own
    chosen = await template(api, "org1", uri_domain="chosen.test", uri_prefix="77")
    r = await _post(api, meeting_body(schedulingTemplateId=chosen))
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.scheduling_template_id == chosen
    assert si.uri_with_domain == f"77{si.uri_without_domain}@chosen.test"  # spec 2.4 prefix
    # other org's, deleted, unknown, zero: silently ignored -> org default
    foreign = await template(api, "other")
    deleted = await template(api, "org1", deleted_time=now_utc())
    for tid in (foreign, deleted, 999999, 0, -1):
        r = await _post(api, meeting_body(schedulingTemplateId=tid))
        assert (await scheduling_info_of(api, r.json()["uuid"])).scheduling_template_id == own, tid


async def test_room_settings_request_else_template(api):
    # spec 2.8: request value if given, else template; directMedia/ivrTheme/portals template only
    await api.add_org("org1")
    t = await template(
        api,
        "org1",
        is_default_template=True,
        vmr_type="lecture",
        host_view="four_mains_zero_pips",
        vmr_quality="sd",
        mute_all_guests=True,
        max_participants=7,
        end_meeting_on_end_time=True,
        direct_media="best_effort",
        ivr_theme="/theme/1/",
        return_url="https://back",
        call_type="video",
        vmr_available_before=30,
    )
    r = await _post(
        api, meeting_body(vmrQuality="fullhd", muteAllGuests=False, maxParticipants=3, callType="audio")
    )
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.scheduling_template_id == t
    assert (si.vmr_type, si.host_view, si.vmr_quality, si.mute_all_guests) == (
        "lecture",
        "four_mains_zero_pips",
        "fullhd",
        False,
    )
    assert (si.max_participants, si.end_meeting_on_end_time, si.call_type) == (3, True, "audio")
    assert (si.direct_media, si.ivr_theme, si.return_url, si.vmr_available_before) == (
        "best_effort",
        "/theme/1/",
        "https://back",
        30,
    )
    r = await _post(api, meeting_body(maxParticipants=0, endMeetingOnEndTime=False))
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert (si.max_participants, si.end_meeting_on_end_time, si.call_type) == (7, False, "video")


async def test_template_range_errors(api):
    # spec 2.4 / 2.5: 406/14 uri range, 406/16 guest pin, 406/17 host pin
    await api.add_org("org1")
    bad_uri = await template(api, "org1", uri_number_range_low=201, uri_number_range_high=100)
    bad_guest = await template(api, "org1", guest_pin_required=True, guest_pin_range_low=None)
    bad_host = await template(
        api, "org1", host_pin_required=True, host_pin_range_low=5, host_pin_range_high=5
    )
    for tid, code in ((bad_uri, "14"), (bad_guest, "16"), (bad_host, "17")):
        r = await _post(api, meeting_body(schedulingTemplateId=tid))
        assert r.status_code == 406 and r.json()["detailed_error_code"] == code, r.text
    # nothing was left behind by the failed transactions
    r = await api.client.get(
        f"{api.v2}/meetings", headers=api.auth("org1", "u@x.dk", USER), params={"subject": "Consultation"}
    )
    assert r.json() == []


async def test_uri_range_exhausted_is_406_15(api):
    # spec 2.4: redrawn while taken, at most 100 redraws -> 406/15
    await api.add_org("org1")
    tid = await template(api, "org1", uri_number_range_low=5, uri_number_range_high=6)
    first = await _post(api, meeting_body(schedulingTemplateId=tid))
    assert first.status_code == 200
    assert (await scheduling_info_of(api, first.json()["uuid"])).uri_without_domain == "5"
    r = await _post(api, meeting_body(schedulingTemplateId=tid))
    assert r.status_code == 406 and r.json()["detailed_error_code"] == "15"
    assert r.json()["detailed_error"].startswith("The Uri assignment failed. It was not possible")


async def test_explicit_pins(api):
    # spec 2.9 7b, 2.5: given PINs used as given; the other one still generated
    await api.add_org("org1")
    r = await _post(api, meeting_body(hostPin=123456, start=now_utc()))
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert si.host_pin == 123456 and 1000 <= si.guest_pin < 999999
    r = await _post(api, meeting_body(guestPin=4321, hostPin=98765))
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert (si.host_pin, si.guest_pin) == (98765, 4321)
    assert "pin=4321" in si.portal_link
    for bad in (999, 1000000000, "12a4"):
        r = await _post(api, meeting_body(guestPin=bad))
        assert r.status_code == 400 and r.json()["detailed_error_code"] == "10", bad


async def test_custom_uri(api):
    # spec 2.4, 2.9 7a: 400/31 org flag off, 400/33 characters, 400/32 taken; no prefix applied
    await api.add_org("org1")
    await api.add_org("org2")
    await set_org(api, "org2", allow_custom_uri_without_domain=True)
    await template(api, "org2", is_default_template=True, uri_prefix="99", uri_domain="c.test")
    r = await _post(api, meeting_body(uriWithoutDomain="myRoom"))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "31"
    for bad in ("my room", "", "æble", "a-b"):
        r = await _post(api, meeting_body(uriWithoutDomain=bad), "org2")
        assert r.status_code == 400 and r.json()["detailed_error_code"] == "33", bad
    r = await _post(api, meeting_body(uriWithoutDomain="myRoom1"), "org2")
    assert r.status_code == 200
    si = await scheduling_info_of(api, r.json()["uuid"])
    assert (si.uri_without_domain, si.uri_with_domain) == ("myRoom1", "myRoom1@c.test")
    r = await _post(api, meeting_body(uriWithoutDomain="myRoom1"), "org2")
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "32"
    assert r.json()["detailed_error"] == "Supplied URI already used"


async def test_reservation_with_pins_is_400_34(api):
    # spec 2.9 step 4
    await api.add_org("org1")
    r = await _post(api, meeting_body(schedulingInfoReservationId=str(uuid.uuid4()), hostPin=12345))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "34"


async def test_pool_meeting_type_on_non_pool_org_is_400_19(api):
    # spec 2.9 step 5
    await api.add_org("org1")
    r = await _post(api, meeting_body(meetingType="POOL"))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "19"
    assert r.json()["detailed_error"] == "Can not create ad hoc meeting on non ad hoc organization: org1"


async def test_external_id_unique_per_organisation(api):
    # spec 2.9 step 6: 400/21; the same id in another organisation is fine
    await api.add_org("org1")
    await api.add_org("org2")
    assert (await _post(api, meeting_body(externalId="e1"))).status_code == 200
    r = await _post(api, meeting_body(externalId="e1"))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "21"
    assert (await _post(api, meeting_body(externalId="e1"), "org2")).status_code == 200


async def test_additional_info_keys_unique(api):
    # spec 1.2.4: 400/35
    await api.add_org("org1")
    info = [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]
    r = await _post(api, meeting_body(additionalInformation=info))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "35"


async def test_client_uuid(api):
    # spec 1.2.4 uuid; spec 2.17.5: a duplicate uuid is 400/24
    await api.add_org("org1")
    mine = str(uuid.uuid4())
    r = await _post(api, meeting_body(uuid=mine))
    assert r.status_code == 200 and r.json()["uuid"] == mine
    assert (await scheduling_info_of(api, mine)).meeting is not None
    r = await _post(api, meeting_body(uuid=mine))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "24"


async def test_organiser_delegation(api):
    # spec 2.9 step 2: organizedByEmail only for admin/planner, in the caller's org; else caller
    await api.add_org("org1")
    body = meeting_body(organizedByEmail="doctor@x.dk")
    for role in (ADMIN, PLANNER):
        m = (await _post(api, body, "org1", "planner@x.dk", role)).json()
        assert m["organizedBy"] == {"organisationId": "org1", "email": "doctor@x.dk"}, role
        assert m["createdBy"]["email"] == "planner@x.dk"
    for role in (USER, PROVISIONER_USER):
        m = (await _post(api, body, "org1", "me@x.dk", role)).json()
        assert m["organizedBy"]["email"] == "me@x.dk", role
    m = (await _post(api, meeting_body(organizedByEmail=""), "org1", "planner@x.dk", ADMIN)).json()
    assert m["organizedBy"]["email"] == "planner@x.dk"


async def test_guest_microphone_and_pin_required(api):
    # spec 1.2.4 + 2.7: microphone and guestPinRequired stored; portal link carries off/muted
    await api.add_org("org1")
    m = (await _post(api, meeting_body(guestMicrophone="muted", guestPinRequired=True))).json()
    assert m["guestMicrophone"] == "muted" and m["guestPinRequired"] is True
    assert "muteMicrophone=muted" in (await scheduling_info_of(api, m["uuid"])).portal_link


async def test_year_10000_is_400_25(api):
    # spec 1.0.1 code 25
    await api.add_org("org1")
    r = await _post(api, meeting_body() | {"endTime": "10000-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "25"
    assert r.json()["detailed_error"] == "Date format is wrong, year must only have 4 digits"


async def test_bad_input_is_4xx_detailed_error(api):
    # spec 2.15: schema violations 400 with the DetailedError body, never 500
    await api.add_org("org1")
    h = api.auth("org1", "u@x.dk", USER) | {"content-type": "application/json"}
    cases = {
        "missing subject": meeting_body() | {"subject": None},
        "subject too long": meeting_body(subject="x" * 101),
        "wrong type": meeting_body(maxParticipants="many"),
        "unknown enum": meeting_body(vmrQuality="ultra"),
        "unknown meetingType": meeting_body(meetingType="WEIRD"),
        "bad uuid": meeting_body(uuid="not-a-uuid"),
        "no offset": meeting_body() | {"startTime": "2030-01-01T10:00:00"},
        "not a date": meeting_body() | {"startTime": "tomorrow"},
        "labels not list": meeting_body(labels="a"),
        "info value too long": meeting_body(additionalInformation=[{"key": "k", "value": "v" * 101}]),
        # not validated by the reference (spec 2.15), but the columns would overflow -> 400, not 500
        "organiser email too long": meeting_body(organizedByEmail="a" * 95 + "@x.dk1"),
        "label too long": meeting_body(labels=["x" * 1025]),
    }
    for name, body in cases.items():
        r = await api.client.post(f"{api.v2}/meetings", headers=h, json=body)
        assert r.status_code == 400, (name, r.text)
        b = r.json()
        assert (
            b["detailed_error_code"] == "10" and b["status"] == 400 and b["path"] == f"{api.v2}/meetings"
        ), name
    r = await api.client.post(f"{api.v2}/meetings", headers=h, content=b'{"subject": "x",')
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "10"
    r = await api.client.post(f"{api.v2}/meetings", headers=h, content=b"[]")
    assert r.status_code == 400


async def test_past_and_reversed_times_are_accepted(api):
    # spec 1.2.4: no start<end check, past allowed
    await api.add_org("org1")
    start = now_utc() - timedelta(days=3)
    r = await _post(api, meeting_body(start=start) | {"endTime": (start - timedelta(hours=1)).isoformat()})
    assert r.status_code == 200


async def test_create_roles(api):
    # spec 3.3: admin, user, planner, provisioner-user may create; provisioner may not
    await api.add_org("org1")
    for role in (ADMIN, USER, PLANNER, PROVISIONER_USER):
        assert (await _post(api, meeting_body(), "org1", "u@x.dk", role)).status_code == 200, role
    r = await _post(api, meeting_body(), "org1", "u@x.dk", "meeting-provisioner")
    assert r.status_code == 403


async def test_meeting_user_rows_are_shared(api):
    # spec 2.1 meeting_users: one row per (organisation, email)
    from sqlalchemy import func, select

    from vdx.store.models import MeetingUser

    await api.add_org("org1")
    for _ in range(3):
        await _post(api, meeting_body(organizedByEmail="doc@x.dk"), "org1", "p@x.dk", PLANNER)
    async with api.app.state.sessions() as s:
        n = (await s.execute(select(func.count()).select_from(MeetingUser))).scalar_one()
        org = (await s.execute(select(Organisation).where(Organisation.code == "org1"))).scalar_one()
        emails = set(
            (
                await s.execute(select(MeetingUser.email).where(MeetingUser.organisation_id == org.id))
            ).scalars()
        )
    assert n == 2 and emails == {"p@x.dk", "doc@x.dk"}


async def test_token_email_longer_than_the_column_is_400(api):
    await api.add_org("org1")
    r = await _post(api, meeting_body(), "org1", "a" * 95 + "@x.dk1", USER)
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "10"


async def test_text_no_database_can_store_is_400(api):
    # bad input is a 4xx, never a database 500: NUL characters (PostgreSQL) and lone surrogates
    await api.add_org("org1")
    h = api.auth("org1", "u@x.dk", USER) | {"content-type": "application/json"}
    for raw in (b'"a\\u0000b"', b'"\\ud800"'):
        for field in (b'"subject"', b'"description"'):
            content = (
                b'{"subject": "s", "startTime": "3025-01-01T00:00:00Z", "endTime": "3025-01-01T01:00:00Z", '
                + field
                + b": "
                + raw
                + b"}"
            )
            r = await api.client.post(f"{api.v2}/meetings", headers=h, content=content)
            assert r.status_code == 400 and r.json()["detailed_error_code"] == "10", (raw, field, r.text)
    body = meeting_body(labels=["ok", "bad\x00"])
    r = await api.client.post(f"{api.v2}/meetings", headers=h, json=body)
    assert r.status_code == 400
    for params in ({"subject": "a\x00"}, {"search": "\x00"}, {"uriWithDomain": "x\x00y"}):
        r = await api.client.get(f"{api.v2}/meetings", headers=h, params=params)
        assert r.status_code == 400 and r.json()["detailed_error_code"] == "10", params
    r = await api.client.get(f"{api.v2}/meetings/findByUriWithDomain", headers=h, params={"uri": "\x00"})
    assert r.status_code == 400
    assert (await api.client.get("/s/%00")).status_code == 404


async def test_edge_of_calendar(api):
    # spec 1.2.4: any start is accepted; vmrStartTime cannot go below year 1; output keeps 4-digit years
    await api.add_org("org1")
    r = await _post(
        api, meeting_body() | {"startTime": "0001-01-01T00:05:00Z", "endTime": "0886-11-09T04:57:34Z"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["startTime"], r.json()["endTime"]) == ("0001-01-01T00:05:00Z", "0886-11-09T04:57:34Z")
    r = await _post(api, meeting_body() | {"startTime": "0001-01-01T00:00:00+01:00"})
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "10"
