"""Every change emits what spec 4.2 ("messageType": CREATE, UPDATE, DELETE, POOL_DELETE; status
PUTs emit nothing) and spec 4.4 ("Emitted on": meeting create/update/delete; SI create for a
meeting and for the pool, SI update on meeting update, attach, reserve and provisioner PUT) say:
one walk through the operations, checking the outbox rows each step added."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from tests.seed import meeting_body, outbox, scheduling_info_of, set_org, template
from vdx.booking.roles import ADMIN, PROVISIONER_USER, USER
from vdx.store.db import now_utc
from vdx.store.models import Outbox, SchedulingInfo


async def provisioned_a_while_ago(api, uuid: str) -> None:
    """Timestamps are whole seconds: move the report back so the minimum age (0 here) has passed."""
    async with api.app.state.sessions() as s, s.begin():
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == uuid))).scalar_one()
        si.provision_timestamp = now_utc() - timedelta(seconds=2)


async def test_every_operation_emits_its_events(api_factory):
    api = await api_factory(pool_minimum_age_sec=0)
    await api.add_org("node")
    await api.add_org("org1", pool_size=1)
    room = {  # the template defaults of spec 1.4, which the reserve filters default to (1.3.7)
        "vmr_type": "conference",
        "host_view": "one_main_seven_pips",
        "guest_view": "one_main_seven_pips",
        "vmr_quality": "hd",
        "enable_overlay_text": True,
        "guests_can_present": True,
        "force_presenter_into_main": True,
        "force_encryption": False,
        "mute_all_guests": False,
    }
    tid = await template(api, "org1", is_pool_template=True, **room)
    prov = api.auth("node", "prov@node.dk", PROVISIONER_USER)
    user = api.auth("org1", "u@x.dk", USER)
    admin = api.auth("org1", "a@x.dk", ADMIN)
    si_subject, audit_subject = api.settings.nats_subject_scheduling_info, api.settings.nats_subject_audit
    seen = 0

    async def step() -> list[tuple[str, ...]]:
        """Events recorded since the last step: ("si", messageType, uuid) or
        ("audit", resource, operation, identifier)."""
        nonlocal seen
        async with api.app.state.sessions() as s:
            rows = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
        out: list[tuple[str, ...]] = []
        for row in rows[seen:]:
            body = json.loads(row.payload)
            if row.subject == si_subject:
                out.append(("si", body["messageType"], body["uuid"]))
            else:
                assert row.subject == audit_subject
                a = body["auditEvent"]
                out.append(("audit", a["resource"], a["operation"], a["identifier"]))
        seen = len(rows)
        return out

    # scheduled meeting: a new VMR (CREATE, audit SI create) and audit meeting create
    r = await api.client.post(f"{api.v2}/meetings", headers=user, json=meeting_body())
    m1 = r.json()
    uri1 = (await scheduling_info_of(api, m1["uuid"])).uri_with_domain
    assert await step() == [
        ("si", "CREATE", m1["uuid"]),
        ("audit", "schedulingInfo", "create", uri1),
        ("audit", "meeting", "create", m1["uuid"]),
    ]
    # meeting update: UPDATE, audit SI update, audit meeting update (spec 2.10)
    r = await api.client.patch(f"{api.v2}/meetings/{m1['uuid']}", headers=user, json={"subject": "changed"})
    assert r.status_code == 200, r.text
    assert await step() == [
        ("si", "UPDATE", m1["uuid"]),
        ("audit", "schedulingInfo", "update", uri1),
        ("audit", "meeting", "update", m1["uuid"]),
    ]
    # meeting delete: audit meeting delete and DELETE (spec 1.2.7)
    assert (await api.client.delete(f"{api.v2}/meetings/{m1['uuid']}", headers=user)).status_code == 204
    assert sorted(await step()) == sorted(
        [("si", "DELETE", m1["uuid"]), ("audit", "meeting", "delete", m1["uuid"])]
    )
    # pool VMR by a provisioner-user: CREATE and audit create (spec 1.3.2)
    r = await api.client.post(
        f"{api.v2}/scheduling-info",
        headers=prov,
        json={"organizationId": "org1", "schedulingTemplateId": tid},
    )
    pool = r.json()
    assert await step() == [
        ("si", "CREATE", pool["uuid"]),
        ("audit", "schedulingInfo", "create", pool["uriWithDomain"]),
    ]
    # provisioner status report: audit update only, no scheduling-info event (spec 1.3.4)
    r = await api.client.put(
        f"{api.v2}/scheduling-info/{pool['uuid']}", headers=prov, json={"provisionStatus": "PROVISIONED_OK"}
    )
    assert r.status_code == 200, r.text
    assert await step() == [("audit", "schedulingInfo", "update", pool["uriWithDomain"])]
    await provisioned_a_while_ago(api, pool["uuid"])
    # reserve: audit update only (spec 1.3.7)
    r = await api.client.get(f"{api.v2}/scheduling-info-reserve", headers=admin)
    assert r.status_code == 200, r.text
    rid = r.json()["reservationId"]
    assert await step() == [("audit", "schedulingInfo", "update", pool["uriWithDomain"])]
    # meeting on the reservation: attach = UPDATE + audit SI update, then audit meeting create
    r = await api.client.post(
        f"{api.v2}/meetings", headers=admin, json=meeting_body(schedulingInfoReservationId=rid)
    )
    m2 = r.json()
    assert await step() == [
        ("si", "UPDATE", m2["uuid"]),
        ("audit", "schedulingInfo", "update", pool["uriWithDomain"]),
        ("audit", "meeting", "create", m2["uuid"]),
    ]
    # the filler tops the pool up: CREATE + audit create (spec 2.13)
    filler = api.app.state.pool_filler
    await filler.run_once()
    made = await step()
    assert [e[:3] for e in made] == [("si", "CREATE", made[0][2]), ("audit", "schedulingInfo", "create")]
    # the filled VMR provisioned and used ad hoc: UPDATE + audit update + meeting create
    r = await api.client.put(
        f"{api.v2}/scheduling-info/{made[0][2]}", headers=prov, json={"provisionStatus": "PROVISIONED_OK"}
    )
    assert await step() == [("audit", "schedulingInfo", "update", made[1][3])]
    await provisioned_a_while_ago(api, made[0][2])
    body = meeting_body(start=now_utc() - timedelta(seconds=1), meetingType="POOL")
    r = await api.client.post(f"{api.v2}/meetings", headers=user, json=body)
    assert r.status_code == 200, r.text
    m3 = r.json()
    assert await step() == [
        ("si", "UPDATE", m3["uuid"]),
        ("audit", "schedulingInfo", "update", made[1][3]),
        ("audit", "meeting", "create", m3["uuid"]),
    ]
    # the pool shrinks: POOL_DELETE only (no audit for a pool delete in spec 4.4)
    await filler.run_once()
    refill = await step()
    assert [e[:2] for e in refill] == [("si", "CREATE"), ("audit", "schedulingInfo")]
    await set_org(api, "org1", pool_size=0)
    await filler.run_once()
    assert await step() == []  # pool_size 0: not a pool organisation, nothing to do (spec 2.13)
    await set_org(api, "org1", pool_size=1)
    await filler.run_once()
    assert await step() == []  # exactly full
    r = await api.client.post(
        f"{api.v2}/scheduling-info",
        headers=prov,
        json={"organizationId": "org1", "schedulingTemplateId": tid},
    )
    extra = r.json()
    assert [e[:2] for e in await step()] == [("si", "CREATE"), ("audit", "schedulingInfo")]
    await filler.run_once()
    # the oldest beyond the desired count goes: the filler's refill, not the newer extra
    assert await step() == [("si", "POOL_DELETE", refill[0][2])]
    assert extra["uuid"] != refill[0][2]
    assert len(await outbox(api)) == seen
