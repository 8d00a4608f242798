"""Automatically dialled participants through the API (a vdx extension): whoever may change a
meeting keeps the addresses its room calls when it starts, checked and audited; the node reads
them by the scheduling info; the VDX meeting itself reads exactly as before."""

from __future__ import annotations

from datetime import timedelta

from tests.api.test_audit import trail
from tests.node.booking import book, whole_seconds
from vdx.booking.roles import PLANNER, PROVISIONER_USER
from vdx.store.db import now_utc


async def test_a_meeting_keeps_the_addresses_its_room_calls(api):
    await api.add_org(api.settings.node_organisation)
    await api.add_org("clinic")
    await api.add_org("other")
    now = whole_seconds(now_utc())
    uuid, _ = await book(api, "clinic", start=now + timedelta(hours=1), end=now + timedelta(hours=2))
    node_ctx = f"{api.settings.api_context}/node/v1"
    planner = api.auth("clinic", "planner@clinic.dk", PLANNER)
    before = (await api.client.get(f"{api.v2}/meetings/{uuid}", headers=planner)).json()

    interpreter = {"destination": "sip:interpreter@tolk.example;transport=tls", "displayName": "Tolk"}
    room_system = {"destination": "sip:meetingroom@kommune.example", "role": "host"}
    r = await api.client.put(
        f"{node_ctx}/meetings/{uuid}/auto-dial", json=[interpreter, room_system], headers=planner
    )
    assert r.status_code == 200, r.text
    listed = (await api.client.get(f"{node_ctx}/meetings/{uuid}/auto-dial", headers=planner)).json()
    assert listed == [
        {"destination": interpreter["destination"], "role": "guest", "displayName": "Tolk", "trunk": None},
        {"destination": room_system["destination"], "role": "host", "displayName": None, "trunk": None},
    ]

    # the node reads them by the scheduling info, with its own token only
    node = api.auth(api.settings.node_organisation, api.settings.node_email, PROVISIONER_USER)
    assert (
        await api.client.get(f"{node_ctx}/scheduling-info/{uuid}/auto-dial", headers=node)
    ).json() == listed
    assert (
        await api.client.get(f"{node_ctx}/scheduling-info/{uuid}/auto-dial", headers=planner)
    ).status_code == 403

    # a client of the VDX API sees the meeting exactly as before
    after = (await api.client.get(f"{api.v2}/meetings/{uuid}", headers=planner)).json()
    assert after == before and "autoDial" not in str(after)

    # bad input: a clear 400 naming the entry and field, and the list as it was
    for bad, field in (
        ([{"destination": "not a uri"}], "autoDial[0].destination"),
        ([interpreter, {"destination": "sip:a@b", "role": "boss"}], "autoDial[1].role"),
        ([{"destination": "sip:a@b", "trunk": "ghost"}], "autoDial[0].trunk"),
        ([interpreter] * 11, "autoDial"),
    ):
        r = await api.client.put(f"{node_ctx}/meetings/{uuid}/auto-dial", json=bad, headers=planner)
        assert r.status_code == 400 and r.json()["detailed_error"].startswith(field), r.text
    assert (await api.client.get(f"{node_ctx}/meetings/{uuid}/auto-dial", headers=planner)).json() == listed

    # another organisation's planner neither reads nor changes them; an unknown meeting is 404
    stranger = api.auth("other", "planner@other.dk", PLANNER)
    assert (
        await api.client.get(f"{node_ctx}/meetings/{uuid}/auto-dial", headers=stranger)
    ).status_code == 403
    r = await api.client.put(f"{node_ctx}/meetings/{uuid}/auto-dial", json=[], headers=stranger)
    assert r.status_code == 403
    r = await api.client.get(
        f"{node_ctx}/meetings/00000000-0000-0000-0000-000000000000/auto-dial", headers=planner
    )
    assert r.status_code == 404

    # emptied; each change in the meeting's trail
    assert (
        await api.client.put(f"{node_ctx}/meetings/{uuid}/auto-dial", json=[], headers=planner)
    ).json() == []
    page = await trail(api, org="clinic", email="admin@clinic.dk", meeting=uuid)
    changes = [e["data"].get("autoDial") for e in page["entries"] if "autoDial" in e["data"]]
    assert len(changes) == 2 and [] in changes, changes
