"""The pool filler and the pool history (spec 2.13), in-process: one run at a time through the
app's ``PoolFiller`` (the background loop is off in in-process apps)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.seed import meeting_body, outbox, pool_vmr, set_org, template
from vdx.booking.roles import USER
from vdx.services import organisations, pool_filler
from vdx.store import job_locks
from vdx.store.db import now_utc
from vdx.store.models import JobLock, PoolHistory, SchedulingInfo


async def _members(api, code):
    async with api.app.state.sessions() as s:
        rows = await s.execute(
            select(SchedulingInfo)
            .join(SchedulingInfo.organisation)
            .where(SchedulingInfo.meeting_id.is_(None))
            .order_by(SchedulingInfo.id)
        )
        return [si for si in rows.scalars() if si.organisation.code == code]


async def test_filler_grows_one_per_run_and_shrinks_the_oldest(api_factory):
    # spec 2.13: event-driven pool orgs only; +1 per run with the pool template, createdBy the
    # configured user in the configured organisation (created if missing); surplus deleted,
    # oldest beyond the desired count, with POOL_DELETE (spec 4.2)
    api = await api_factory(event_organisation_filter="org1")
    await api.add_org("org1", pool_size=3)
    await api.add_org("poll", pool_size=2)  # polling organisation: its provisioner fills it
    await template(api, "org1", is_default_template=True, uri_number_range_low=100, uri_number_range_high=199)
    pool_tid = await template(
        api,
        "org1",
        is_pool_template=True,
        uri_number_range_low=300,
        uri_number_range_high=399,
        vmr_quality="sd",
    )
    filler = api.app.state.pool_filler
    sizes = []
    for _ in range(4):
        result = await filler.run_once()
        assert result is not None
        sizes.append(len(await _members(api, "org1")))
    assert sizes == [1, 2, 3, 3]
    assert await _members(api, "poll") == []
    made = await _members(api, "org1")
    assert all(si.scheduling_template_id == pool_tid and si.vmr_quality == "sd" for si in made)
    assert all(300 <= int(si.uri_without_domain) <= 399 and si.pool for si in made)
    assert {(si.created_by.email, si.created_by.organisation.code) for si in made} == {
        ("pool-filler@vdx.local", "vdx")
    }
    events = await outbox(api, api.settings.nats_subject_scheduling_info)
    assert [(e["messageType"], e["uuid"]) for e in events] == [("CREATE", si.uuid) for si in made]
    audits = [e["auditEvent"] for e in await outbox(api, api.settings.nats_subject_audit)]
    assert [(a["operation"], a["user"]) for a in audits] == [("create", "pool-filler@vdx.local")] * 3

    # a used or reserved VMR is no pool member: the filler replaces it
    async with api.app.state.sessions() as s, s.begin():
        (await s.get(SchedulingInfo, made[0].id)).reservation_id = "r-1"
    await filler.run_once()
    assert len(await _members(api, "org1")) == 4  # 3 members + the reserved one

    await set_org(api, "org1", pool_size=1)
    result = await filler.run_once()
    assert result is not None and result.deleted == {"org1": 2}
    left = await _members(api, "org1")
    # newest-first order keeps the newest member; the reserved VMR is not touched
    assert [si.id for si in left] == [made[0].id, max(si.id for si in made[1:]) + 1]
    deleted = {made[1].uuid, made[2].uuid}
    pool_deletes = [
        e
        for e in await outbox(api, api.settings.nats_subject_scheduling_info)
        if e["messageType"] == "POOL_DELETE"
    ]
    assert {e["uuid"] for e in pool_deletes} == deleted


async def test_filler_skips_when_another_process_holds_the_lock(api_factory):
    # spec 2.13 (ShedLock fillPools): one process at a time
    api = await api_factory()
    await api.add_org("org1", pool_size=2)
    filler = api.app.state.pool_filler
    if api.settings.is_postgres:
        async with api.app.state.sessions() as other, other.begin():
            key = job_locks.advisory_key(pool_filler.FILL_LOCK)
            await other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            assert await filler.run_once() is None
    else:
        async with api.app.state.sessions() as s, s.begin():
            s.add(
                JobLock(
                    name=pool_filler.FILL_LOCK,
                    locked_until=now_utc() + timedelta(minutes=1),
                    locked_by="elsewhere",
                )
            )
        assert await filler.run_once() is None
        assert await _members(api, "org1") == []
        # an expired lock (its holder died) is taken over
        async with api.app.state.sessions() as s, s.begin():
            (await s.get(JobLock, pool_filler.FILL_LOCK)).locked_until = now_utc() - timedelta(seconds=1)
        assert await job_locks.holder(api.app.state.sessions, pool_filler.FILL_LOCK) is None
    assert await filler.run_once() is not None
    assert len(await _members(api, "org1")) == 1


async def test_pool_history_one_row_per_pool_org_per_minute_and_report(api):
    # spec 2.13 pool history job; GET /v2/pool/history is a vdx extension
    await api.add_org("org1", pool_size=3)
    await api.add_org("org2", pool_size=1)
    await api.add_org("nopool")
    await pool_vmr(api, "org1")
    await pool_vmr(api, "org1", reservation_id="r-9")  # reserved: not available
    filler = api.app.state.pool_filler
    minute = pool_filler.minute_of(now_utc())
    async with api.app.state.sessions() as s, s.begin():
        assert await pool_filler.record_history(s, api.settings, minute + timedelta(seconds=1)) == 2
    async with api.app.state.sessions() as s, s.begin():
        assert await pool_filler.record_history(s, api.settings, minute + timedelta(seconds=50)) == 0
    async with api.app.state.sessions() as s, s.begin():
        assert await pool_filler.record_history(s, api.settings, minute + timedelta(minutes=1)) == 2
    await filler.run_once()  # same minute as the first rows (or the next): never a second row
    async with api.app.state.sessions() as s:
        rows = (await s.execute(select(PoolHistory))).scalars().all()
    per_minute = {(r.organisation_code, r.status_time) for r in rows}
    assert len(per_minute) == len(rows)
    h = api.auth("org1", "u@x.dk", USER)
    r = await api.client.get(
        f"{api.v2}/pool/history",
        headers=h,
        params={
            "organisation": "org1",
            "from": minute.isoformat(),
            "to": (minute + timedelta(minutes=1)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == [
        {
            "organisationId": "org1",
            "desiredPoolSize": 3,
            "availablePoolSize": 1,
            "statusTime": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    ]
    r = await api.client.get(f"{api.v2}/pool/history", headers=h)
    assert {e["organisationId"] for e in r.json()} == {"org1", "org2"}
    r = await api.client.get(f"{api.v2}/pool/history", headers=h, params={"from": "yesterday"})
    assert r.status_code == 400
    assert (await api.client.get(f"{api.v2}/pool/history")).status_code == 401


async def test_filled_vmr_serves_an_ad_hoc_meeting_once_provisioned(api_factory):
    # spec 2.13 end to end: filler creates, the node reports PROVISIONED_OK, an ad-hoc meeting
    # attaches it (UPDATE event), and the next run tops the pool up again
    api = await api_factory(pool_minimum_age_sec=0)
    await api.add_org("org1", pool_size=1)
    filler = api.app.state.pool_filler
    await filler.run_once()
    (vmr,) = await _members(api, "org1")
    async with api.app.state.sessions() as s, s.begin():
        si = await s.get(SchedulingInfo, vmr.id)
        si.provision_status = "PROVISIONED_OK"
        si.provision_timestamp = now_utc() - timedelta(seconds=1)
    body = meeting_body(start=now_utc(), meetingType="POOL")
    r = await api.client.post(f"{api.v2}/meetings", headers=api.auth("org1", "u@x.dk", USER), json=body)
    assert r.status_code == 200, r.text
    await filler.run_once()
    members = await _members(api, "org1")
    assert len(members) == 1 and members[0].id != vmr.id
    kinds = [
        (e["messageType"], e["uuid"]) for e in await outbox(api, api.settings.nats_subject_scheduling_info)
    ]
    assert kinds == [("CREATE", vmr.uuid), ("UPDATE", r.json()["uuid"]), ("CREATE", members[0].uuid)]


@pytest.mark.pg
async def test_shrink_never_deletes_a_vmr_a_meeting_is_taking(api_factory):
    # spec 2.13: the free-pool rule locks the VMR it attaches (FOR UPDATE); a concurrent shrink
    # skips that VMR instead of deleting it from under the meeting (PostgreSQL row locks; SQLite
    # serialises writers, so the race cannot happen there: the SQLite pass deselects `pg` tests)
    api = await api_factory()
    assert api.settings.is_postgres
    await api.add_org("org1", pool_size=2)
    vmrs = [await pool_vmr(api, "org1") for _ in range(2)]
    await set_org(api, "org1", pool_size=1)
    oldest = vmrs[0]
    async with api.app.state.sessions() as taker, taker.begin():
        await taker.execute(select(SchedulingInfo.id).where(SchedulingInfo.id == oldest.id).with_for_update())
        result = await api.app.state.pool_filler.run_once()
        assert result is not None and result.deleted == {}  # the surplus one is being taken
    result = await api.app.state.pool_filler.run_once()
    assert result is not None and result.deleted == {"org1": 1}
    assert [si.id for si in await _members(api, "org1")] == [vmrs[1].id]


async def test_background_filler_runs_only_as_a_node_job_and_can_be_disabled(settings_factory):
    # spec 2.13: pool.fill.interval / pool.fill.disabled; in-process apps run no jobs unless asked
    from vdx.app import create_app

    for jobs, disabled in ((False, False), (True, True)):
        app = create_app(settings_factory(pool_fill_disabled=disabled), migrate=False, jobs=jobs)
        async with app.router.lifespan_context(app):
            assert not app.state.pool_filler.started
    app = create_app(settings_factory(pool_fill_interval=0.05), migrate=False, jobs=True)
    async with app.router.lifespan_context(app):
        assert app.state.pool_filler.started
        async with app.state.sessions() as session, session.begin():
            await organisations.create(session, "org1", pool_size=2)

        async def filled() -> bool:
            async with app.state.sessions() as session:
                return (
                    len(
                        await pool_filler.pool_members(
                            session, (await organisations.by_code(session, "org1")).id
                        )
                    )
                    == 2
                )

        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while not await filled():
            assert loop.time() < end, "the background filler did not fill the pool"
            await asyncio.sleep(0.05)
