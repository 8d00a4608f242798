"""The audit trail: templates, organisations, bookings and conference control leave a record of
who did what and when; ``GET /v2/audit`` shows a meeting-admin their own organisation tree's."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests import seed
from tests.api.test_organisation_service import svc
from tests.api.test_templates import MINIMAL
from tests.test_cli import vdx
from vdx.booking.roles import ADMIN, USER
from vdx.conference.participant import Participant
from vdx.conference.policy import Role, RoomConfig
from vdx.store.db import now_utc


async def _tree(api):
    """root -> region -> clinic, and root -> sibling."""
    await api.add_org("root")
    await api.add_org("region", parent_code="root")
    await api.add_org("clinic", parent_code="region")
    await api.add_org("sibling", parent_code="root")


async def trail(api, org="clinic", email="admin@clinic.dk", **params):
    r = await api.client.get(f"{api.v2}/audit", params=params, headers=api.auth(org, email, ADMIN))
    assert r.status_code == 200, r.text
    return r.json()


def ops(page):
    return [(e["resource"], e["operation"], e["user"]) for e in page["entries"]]


async def test_template_changes_are_audited_and_read_in_the_tree_only(api):
    await _tree(api)
    h = api.auth("clinic", "admin@clinic.dk", ADMIN)
    url = f"{api.v2}/scheduling-templates"
    before = now_utc().replace(microsecond=0)
    made = (await api.client.post(url, json=MINIMAL, headers=h)).json()
    assert (
        await api.client.put(f"{url}/{made['id']}", json=MINIMAL | {"uriPrefix": "x"}, headers=h)
    ).is_success
    assert (await api.client.delete(f"{url}/{made['id']}", headers=h)).status_code == 204

    page = await trail(api)
    assert page["total"] == 3 and page["page"] == 0
    # newest first; who, what, which and when
    assert ops(page) == [
        ("schedulingTemplate", op, "admin@clinic.dk") for op in ("delete", "update", "create")
    ]
    assert {e["identifier"] for e in page["entries"]} == {str(made["id"])}
    assert all(e["organisationCode"] == "clinic" for e in page["entries"])
    assert all(e["time"] >= before.strftime("%Y-%m-%dT%H:%M:%SZ") for e in page["entries"])
    assert page["entries"][1]["data"]["uriPrefix"] == "x"
    assert page["entries"][0]["data"]["deletedTime"] is not None

    # admins above see it; a sibling's admin sees nothing of it, and may not ask for it
    assert (await trail(api, "root", "admin@root.dk"))["total"] == 3
    assert (await trail(api, "region", "admin@region.dk", organisation="clinic"))["total"] == 3
    assert (await trail(api, "sibling", "admin@sibling.dk"))["total"] == 0
    sib = api.auth("sibling", "admin@sibling.dk", ADMIN)
    for code in ("clinic", "root", "ghost"):
        r = await api.client.get(f"{api.v2}/audit", params={"organisation": code}, headers=sib)
        assert r.status_code == 403, code
    # meeting-admins only
    r = await api.client.get(f"{api.v2}/audit", headers=api.auth("clinic", "u@clinic.dk", USER))
    assert r.status_code == 403
    assert (await api.client.get(f"{api.v2}/audit")).status_code == 401


async def test_organisation_changes_are_audited(api, settings):
    await _tree(api)
    h = api.auth("region", "admin@region.dk", ADMIN)
    r = await api.client.post(f"{svc(api)}/organisation/region", json={"code": "ward"}, headers=h)
    assert r.status_code == 200, r.text
    r = await api.client.put(
        f"{svc(api)}/organisation/ward", json={"poolSize": 2, "historyApiKey": "secret-key"}, headers=h
    )
    assert r.status_code == 200, r.text
    # a token whose organisation is created on first use (spec 3.5) is a change too
    auto = api.auth("auto", "first@auto.dk", USER, parent_org="region")
    assert (await api.client.get(f"{api.v2}/scheduling-templates", headers=auto)).status_code == 200

    page = await trail(api, "region", "admin@region.dk")
    assert ops(page) == [
        ("organisation", "create", "first@auto.dk"),
        ("organisation", "update", "admin@region.dk"),
        ("organisation", "create", "admin@region.dk"),
    ]
    update = page["entries"][1]
    assert update["identifier"] == "ward" and update["data"]["poolSize"] == 2
    assert "historyApiKey" not in update["data"]  # keys are no audit data

    # vdx org add writes its own record, named after the operating-system account (in a thread:
    # the app's outbox relay must go on committing meanwhile, or SQLite stays locked to the command)
    r = await asyncio.to_thread(vdx, settings, "org", "add", "ward-2", "--parent", "region")
    assert r.returncode == 0, r.stderr
    newest = (await trail(api, "region", "admin@region.dk", size=1))["entries"][0]
    assert (newest["resource"], newest["operation"], newest["identifier"]) == (
        "organisation",
        "create",
        "ward-2",
    )
    assert newest["user"].startswith("vdx org add (")

    # the records are published like the booking audit (spec 4.4 envelope)
    events = [e["auditEvent"] for e in await seed.outbox(api, api.settings.nats_subject_audit)]
    assert [(e["resource"], e["operation"], e["identifier"]) for e in events][:2] == [
        ("organisation", "create", "ward"),
        ("organisation", "update", "ward"),
    ]


async def test_bookings_are_in_the_trail_without_pins_and_filter_by_meeting(api):
    await _tree(api)
    await seed.template(
        api,
        "clinic",
        is_default_template=True,
        host_pin_required=True,
        host_pin_range_low=100000,
        host_pin_range_high=999999,
        guest_pin_required=True,
        guest_pin_range_low=1000,
        guest_pin_range_high=9999,
    )
    h = api.auth("clinic", "doc@clinic.dk", USER)
    r = await api.client.post(f"{api.v2}/meetings", json=seed.meeting_body(), headers=h)
    assert r.status_code == 200, r.text
    first = r.json()
    second = (await api.client.post(f"{api.v2}/meetings", json=seed.meeting_body(), headers=h)).json()
    page = await trail(api, meeting=first["uuid"])
    assert {(e["resource"], e["operation"], e["user"]) for e in page["entries"]} == {
        ("meeting", "create", "doc@clinic.dk"),
        ("schedulingInfo", "create", "doc@clinic.dk"),
    }
    assert all(e["meetingUuid"] == first["uuid"] for e in page["entries"])
    si = next(e for e in page["entries"] if e["resource"] == "schedulingInfo")
    assert "hostPin" not in si["data"] and "guestPin" not in si["data"]
    assert si["data"]["uuid"] == first["uuid"] and si["data"]["uriWithDomain"]
    assert (await trail(api, meeting=second["uuid"]))["total"] == 2
    assert (await trail(api, "sibling", "admin@sibling.dk", meeting=first["uuid"]))["total"] == 0
    r = await api.client.get(
        f"{api.v2}/audit", params={"meeting": "not-a-uuid"}, headers=api.auth("clinic", "a@c.dk", ADMIN)
    )
    assert r.status_code == 400


async def test_paging_and_time_range(api):
    await _tree(api)
    h = api.auth("clinic", "admin@clinic.dk", ADMIN)
    ids = []
    for n in range(5):
        r = await api.client.post(
            f"{api.v2}/scheduling-templates", json=MINIMAL | {"uriPrefix": f"p{n}"}, headers=h
        )
        ids.append(r.json()["id"])
    pages = [await trail(api, page=p, size=2) for p in range(3)]
    assert [p["total"] for p in pages] == [5, 5, 5]
    seen = [e["identifier"] for p in pages for e in p["entries"]]
    assert seen == [str(i) for i in reversed(ids)]  # newest first, each once
    assert [len(p["entries"]) for p in pages] == [2, 2, 1]

    # from inclusive, to exclusive: a window after everything is empty, one around it is full
    now = now_utc()
    later = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await trail(api, **{"from": later}))["total"] == 0
    assert (await trail(api, **{"from": earlier, "to": later}))["total"] == 5
    assert (await trail(api, **{"to": earlier}))["total"] == 0
    r = await api.client.get(f"{api.v2}/audit", params={"size": 0}, headers=h)
    assert r.status_code == 400


async def test_conference_control_actions_are_audited(api):
    # who locked, muted, kicked, admitted, changed the layout and ended, by operator or host
    await _tree(api)
    meeting = await seed.meeting_with_si(
        api, "clinic", uri_number=3020, start=now_utc() - timedelta(minutes=5)
    )
    rooms = api.app.state.rooms
    config = RoomConfig(alias="3020@vdx.test", organisation="clinic")
    rooms.put(config)
    conf = rooms.conference(config)

    def join(name, role):
        p = Participant(display_name=name, role=role, notify=lambda _m: None, protocol="webrtc")
        conf.add(p)
        return p

    host = join("Dr. Host", Role.HOST)
    guest = join("Patient P", Role.GUEST)
    operator = api.auth("clinic", "ops@clinic.dk", ADMIN)
    own = {"Authorization": f"Bearer {host.token}"}
    base = f"{api.settings.api_context}/node/v1/conferences/3020@vdx.test"

    async def act(path, headers, **kw):
        r = await api.client.post(base + path, headers=headers, **kw)
        assert r.status_code == 204, (path, r.text)

    await act("/lock", operator)
    late = join("Late L", Role.GUEST)  # waits at the locked room
    await act(f"/participants/{late.id}/admit", own)
    await act("/unlock", own)
    await act("/mute_guests", operator)
    await act("/unmute_guests", operator)
    await act(f"/participants/{guest.id}/mute", own)
    await act(f"/participants/{guest.id}/unmute", own)
    await act("/layout", operator, json={"layout": "one_main_zero_pips"})
    await act(f"/participants/{guest.id}/disconnect", own)
    await act("/disconnect", own)
    assert conf.ended
    # a refused action leaves no record
    r = await api.client.post(f"{base}/lock", headers=api.auth("sibling", "x@s.dk", USER))
    assert r.status_code in (403, 404)

    page = await trail(api, meeting=meeting)
    entries = list(reversed(page["entries"]))
    who = f"host Dr. Host ({host.id})"
    assert [(e["operation"], e["user"]) for e in entries] == [
        ("lock", "ops@clinic.dk"),
        ("admit", who),
        ("unlock", who),
        ("mute_guests", "ops@clinic.dk"),
        ("unmute_guests", "ops@clinic.dk"),
        ("mute", who),
        ("unmute", who),
        ("layout", "ops@clinic.dk"),
        ("disconnect", who),
        ("end", who),
    ]
    assert all(e["resource"] == "conference" and e["identifier"] == "3020@vdx.test" for e in entries)
    assert entries[1]["data"] == {"participantId": late.id, "displayName": "Late L"}
    assert entries[8]["data"] == {"participantId": guest.id, "displayName": "Patient P"}
    assert entries[7]["data"] == {"hostView": "one_main_zero_pips", "guestView": "one_main_zero_pips"}
    assert (await trail(api, "sibling", "admin@sibling.dk"))["total"] == 0
