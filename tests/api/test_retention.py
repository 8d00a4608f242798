"""Personal data that expires: the retention job anonymises the people of meetings that ended
beyond ``VDX_RETENTION_DAYS``, deletes e-mail addresses nothing refers to any more and audit
records beyond ``VDX_AUDIT_RETENTION_DAYS``; counts stay. Runs on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from harness.waiting import until
from tests import seed
from tests.conftest import Api
from vdx.app import create_app
from vdx.booking.usage import DayUsage
from vdx.services import meeting_users, usage
from vdx.services.retention import ANONYMOUS, RetentionJob
from vdx.store.db import now_utc
from vdx.store.models import AuditRecord, Meeting, MeetingUser, Organisation, SchedulingInfo


async def _people(api, meeting_uuid):
    """(created by, organised by, VMR created by) e-mail addresses of a meeting."""
    async with api.app.state.sessions() as s:
        m = (await s.execute(select(Meeting).where(Meeting.uuid == meeting_uuid))).scalar_one()
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == meeting_uuid))).scalar_one()
        return m.created_by.email, m.organized_by.email, si.created_by.email if si.created_by else None


async def _emails(api):
    async with api.app.state.sessions() as s:
        return set((await s.execute(select(MeetingUser.email))).scalars())


async def _seed(api):
    """In org1: a meeting that ended 100 days ago by old@, one 91 days ago by both@, one that
    ended yesterday by both@ and one ending tomorrow by recent@; org2 has an old one too."""
    await api.add_org("org1")
    await api.add_org("org2")
    now = now_utc()
    ago = lambda days: now - timedelta(days=days)  # noqa: E731
    meetings = {
        "old": await seed.meeting_with_si(api, "org1", start=ago(100), end=ago(100) + timedelta(hours=1), email="old@org1.dk"),
        "both-old": await seed.meeting_with_si(api, "org1", start=ago(91), end=ago(91) + timedelta(minutes=30), email="both@org1.dk"),
        "both-new": await seed.meeting_with_si(api, "org1", start=ago(1), end=ago(1) + timedelta(hours=1), email="both@org1.dk"),
        "recent": await seed.meeting_with_si(api, "org1", start=now, end=now + timedelta(days=1), email="recent@org1.dk"),
        "other": await seed.meeting_with_si(api, "org2", start=ago(200), end=ago(200) + timedelta(hours=2), email="x@org2.dk"),
    }  # fmt: skip
    # a meeting updated by someone else: that address goes too
    async with api.app.state.sessions() as s, s.begin():
        m = (await s.execute(select(Meeting).where(Meeting.uuid == meetings["old"]))).scalar_one()
        m.updated_by = await meeting_users.get_or_create(s, m.organisation, "editor@org1.dk")
        await usage.add(s, {("org1", ago(100).date()): DayUsage(3, 3 * 3600)})
    return meetings


async def test_retention_anonymises_expired_meetings_and_keeps_counts(api):
    meetings = await _seed(api)
    first, last = (now_utc() - timedelta(days=210)).date(), (now_utc() + timedelta(days=2)).date()
    async with api.app.state.sessions() as s:
        orgs = (await s.execute(select(Organisation.id, Organisation.code))).all()
        ids, codes = [o.id for o in orgs], [o.code for o in orgs]
        counts_before = await usage.totals_per_day(s, first, last, ids, codes)
    async with api.app.state.sessions() as s, s.begin():
        # audit records: one past the audit retention, one within it (past the personal-data one)
        for days in (api.settings.audit_retention_days + 1, api.settings.retention_days + 30):
            s.add(
                AuditRecord(
                    at=now_utc() - timedelta(days=days), resource="meeting", operation="create", data="{}"
                )
            )

    result = await api.app.state.retention.run_once()
    assert result is not None
    assert (result.meetings, result.users_deleted, result.audit_deleted) == (3, 3, 1)

    for key in ("old", "both-old", "other"):
        assert await _people(api, meetings[key]) == (ANONYMOUS, ANONYMOUS, ANONYMOUS), key
    assert await _people(api, meetings["both-new"]) == ("both@org1.dk",) * 3
    assert await _people(api, meetings["recent"]) == ("recent@org1.dk",) * 3
    # the addresses of the expired meetings are gone; one placeholder per organisation
    assert await _emails(api) == {"both@org1.dk", "recent@org1.dk", ANONYMOUS}
    async with api.app.state.sessions() as s:
        placeholders = (
            await s.execute(
                select(func.count()).select_from(MeetingUser).where(MeetingUser.email == ANONYMOUS)
            )
        ).scalar_one()
        assert placeholders == 2
        # booked meetings and minutes, participants and minutes per day: unchanged
        assert await usage.totals_per_day(s, first, last, ids, codes) == counts_before
        assert (await s.execute(select(func.count()).select_from(Meeting))).scalar_one() == 5
        kept = (await s.execute(select(AuditRecord.at))).scalars().all()
        assert len(kept) == 1

    # the anonymised meeting still reads through the API (by the placeholder)
    r = await api.client.get(
        f"{api.v2}/meetings/{meetings['old']}", headers=api.auth("org1", "a@org1.dk", "meeting-admin")
    )
    assert r.status_code == 200 and r.json()["organizedBy"]["email"] == ANONYMOUS

    # a second run finds nothing more to do
    again = await api.app.state.retention.run_once()
    assert again is not None and (again.meetings, again.users_deleted, again.audit_deleted) == (0, 0, 0)


async def test_two_jobs_racing_do_the_work_once(api_factory):
    # two API processes on one database (two apps here): the cluster lock lets one do each batch
    api = await api_factory()
    other = await api_factory()
    meetings = await _seed(api)
    jobs = [RetentionJob(a.app.state.sessions, a.settings) for a in (api, other)]
    results = await asyncio.gather(*(j.run_once() for j in jobs))
    done = [r for r in results if r is not None]
    assert sum(r.meetings for r in done) == 3
    assert sum(r.users_deleted for r in done) == 3
    assert await _people(api, meetings["old"]) == (ANONYMOUS,) * 3
    assert await _emails(api) == {"both@org1.dk", "recent@org1.dk", ANONYMOUS}


async def test_retention_days_are_configurable(api_factory):
    # with 150 days of retention only the org2 meeting (ended 200 days ago) has expired
    api = await api_factory(retention_days=150)
    meetings = await _seed(api)
    result = await api.app.state.retention.run_once()
    assert result is not None and result.meetings == 1
    assert await _people(api, meetings["old"]) == ("old@org1.dk", "old@org1.dk", "old@org1.dk")
    assert await _people(api, meetings["other"]) == (ANONYMOUS,) * 3


async def test_served_processes_run_the_job_in_the_background(settings_factory):
    # vdx serve / vdx api (jobs=True) run it every VDX_RETENTION_INTERVAL seconds
    settings = settings_factory(retention_interval=0.05)
    app = create_app(settings, migrate=False, jobs=True)
    async with app.router.lifespan_context(app):
        api = Api(app=app, client=None, settings=settings)  # the seed helpers need no client
        meetings = await _seed(api)

        async def anonymised() -> bool:
            return await _people(api, meetings["old"]) == (ANONYMOUS,) * 3

        await until(anonymised, 20, "the background job anonymised the expired meeting")
