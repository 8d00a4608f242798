"""Concurrent creates (spec 1.2.4 "one transaction, retried"; 2.13 row locking): no 5xx, no
duplicate URI or short id, no pool VMR handed out twice, one meeting user per (org, email)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.seed import meeting_body, pool_vmr
from vdx.booking.roles import PLANNER, USER
from vdx.store.db import now_utc
from vdx.store.models import Meeting, MeetingUser, SchedulingInfo, SchedulingTemplate


@pytest.mark.slow
async def test_fifty_concurrent_creates_in_one_organisation(api):
    await api.add_org("org1")
    n = 50

    async def create(i: int):
        if i % 2:
            # planners acting for a handful of organisers: concurrent get-or-create of meeting users
            headers = api.auth("org1", f"planner{i % 3}@x.dk", PLANNER)
            body = meeting_body(subject=f"m{i}", organizedByEmail=f"doc{i % 4}@x.dk", externalId=f"e{i}")
        else:
            headers = api.auth("org1", "same@x.dk", USER)
            body = meeting_body(
                subject=f"m{i}", labels=["l"], additionalInformation=[{"key": "k", "value": str(i)}]
            )
        return await api.client.post(f"{api.v2}/meetings", headers=headers, json=body)

    responses = await asyncio.gather(*(create(i) for i in range(n)))
    assert [r.status_code for r in responses] == [200] * n, [
        r.text for r in responses if r.status_code != 200
    ][:3]
    meetings = [r.json() for r in responses]
    assert len({m["uuid"] for m in meetings}) == n
    assert len({m["shortId"] for m in meetings}) == n
    async with api.app.state.sessions() as s:
        sis = (await s.execute(select(SchedulingInfo))).scalars().all()
        users = (await s.execute(select(MeetingUser.email))).scalars().all()
        count = (await s.execute(select(func.count()).select_from(Meeting))).scalar_one()
        templates = (await s.execute(select(func.count()).select_from(SchedulingTemplate))).scalar_one()
    assert count == n and len(sis) == n
    assert templates == 1  # the shared default template is created once (spec 2.3 step 5)
    assert len({si.uri_with_domain for si in sis}) == n
    assert len({(si.uri_without_domain, si.uri_domain) for si in sis}) == n
    # PINs are drawn independently (spec 2.5); the pair identifies each room's access
    assert len({(si.host_pin, si.guest_pin) for si in sis}) == n
    assert all(si.host_pin is not None and si.guest_pin is not None for si in sis)
    expected = (
        {"same@x.dk"}
        | {f"planner{i % 3}@x.dk" for i in range(1, n, 2)}
        | {f"doc{i % 4}@x.dk" for i in range(1, n, 2)}
    )
    assert sorted(users) == sorted(expected)  # one row each, however many requests raced


@pytest.mark.slow
async def test_concurrent_ad_hoc_creates_never_share_a_pool_vmr(api):
    # spec 2.13: LIMIT 1 FOR UPDATE (SKIP LOCKED on PostgreSQL) -> each free VMR goes to one meeting
    await api.add_org("org1", pool_size=6)
    pool = {(await pool_vmr(api, "org1")).id for _ in range(6)}
    headers = api.auth("org1", "u@x.dk", USER)
    body = meeting_body(start=now_utc() + timedelta(seconds=20))
    responses = await asyncio.gather(
        *(api.client.post(f"{api.v2}/meetings", headers=headers, json=body) for _ in range(12))
    )
    assert [r.status_code for r in responses] == [200] * 12, [
        r.text for r in responses if r.status_code != 200
    ][:3]
    async with api.app.state.sessions() as s:
        attached = (
            (await s.execute(select(SchedulingInfo).where(SchedulingInfo.meeting_id.is_not(None))))
            .scalars()
            .all()
        )
    by_meeting = {si.meeting_id for si in attached}
    assert len(attached) == 12 and len(by_meeting) == 12
    assert {si.id for si in attached if si.pool} == pool  # all six used, each once


@pytest.mark.slow
async def test_concurrent_creates_in_a_narrow_uri_range_retry_instead_of_failing(api):
    # spec 2.4 + 1.2.4: on PostgreSQL two transactions can draw the same free number; the loser
    # hits the unique key and the whole create is retried with a fresh draw
    from tests.seed import template

    await api.add_org("org1")
    tid = await template(
        api, "org1", is_default_template=True, uri_number_range_low=1000, uri_number_range_high=1040
    )
    headers = api.auth("org1", "u@x.dk", USER)
    responses = await asyncio.gather(
        *(
            api.client.post(
                f"{api.v2}/meetings", headers=headers, json=meeting_body(schedulingTemplateId=tid)
            )
            for _ in range(30)
        )
    )
    assert [r.status_code for r in responses] == [200] * 30, [
        r.text for r in responses if r.status_code != 200
    ][:3]
    async with api.app.state.sessions() as s:
        numbers = (await s.execute(select(SchedulingInfo.uri_without_domain))).scalars().all()
    assert len(set(numbers)) == 30 and all(1000 <= int(x) < 1040 for x in numbers)


async def _pool_burst(api, org: str, n: int):
    headers = api.auth(org, "u@x.dk", USER)
    body = meeting_body(start=now_utc(), meetingType="POOL")
    return await asyncio.gather(
        *(api.client.post(f"{api.v2}/meetings", headers=headers, json=body) for _ in range(n))
    )


async def _attached(api) -> list[SchedulingInfo]:
    async with api.app.state.sessions() as s:
        return list(
            (await s.execute(select(SchedulingInfo).where(SchedulingInfo.meeting_id.is_not(None)))).scalars()
        )


@pytest.mark.slow
async def test_thirty_concurrent_pool_creates_on_twenty_free_vmrs(api):
    # spec 2.9 7e + 2.13: 20 meetings on 20 distinct VMRs, the other 10 a clean 400/20, no VMR twice
    await api.add_org("org1", pool_size=20)
    pool = {(await pool_vmr(api, "org1")).id for _ in range(20)}
    responses = await _pool_burst(api, "org1", 30)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 20 + [400] * 10, [r.text for r in responses if r.status_code not in (200, 400)][
        :3
    ]
    refused = [r.json() for r in responses if r.status_code == 400]
    assert {(e["detailed_error_code"], e["detailed_error"]) for e in refused} == {
        ("20", "Unused scheduling information not found for organisation tree for org1")
    }
    attached = await _attached(api)
    assert len(attached) == 20 and {si.id for si in attached} == pool
    assert len({si.meeting_id for si in attached}) == 20
    ok_uuids = {r.json()["uuid"] for r in responses if r.status_code == 200}
    assert {si.uuid for si in attached} == ok_uuids


@pytest.mark.slow
async def test_concurrent_pool_creates_spill_into_the_overflow_organisation(api_factory):
    # spec 2.13: nothing free in the pool org -> VMRs of overflow.pool.organisation.id, each once
    api = await api_factory(overflow_pool_organisation="overflow")
    await api.add_org("overflow", pool_size=20)
    await api.add_org("org1", pool_size=20)
    own = {(await pool_vmr(api, "org1")).id for _ in range(5)}
    spare = {(await pool_vmr(api, "overflow")).id for _ in range(20)}
    responses = await _pool_burst(api, "org1", 30)
    assert sorted(r.status_code for r in responses) == [200] * 25 + [400] * 5
    attached = await _attached(api)
    assert {si.id for si in attached} == own | spare and len(attached) == 25
    assert {si.id for si in attached if si.pool_overflow} == spare
    assert {si.organisation_id for si in attached} == {attached[0].meeting.organisation_id}
