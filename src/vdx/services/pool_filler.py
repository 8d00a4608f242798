"""The pool filler and the pool history (spec 2.13): keeps each event-driven organisation's pool
of unattached VMRs at its desired size, and writes one ``pool_history`` row per pool
organisation per minute.

Both jobs run in every API process and take a cluster lock (``store.job_locks``), so several
processes on one database never fill a pool twice. The filler counts every unattached,
unreserved pool VMR that is provisioned or on its way (awaiting or starting provision): what it
created last run is part of the pool even before the node has provisioned it, otherwise each run
would add another while provisioning is pending.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vdx.booking.enums import ProvisionStatus
from vdx.events import record
from vdx.services import meeting_users, organisations
from vdx.services.periodic import PeriodicJob
from vdx.services.pool_vmrs import create_pool_vmr
from vdx.services.template_selection import select_template
from vdx.services.templates import pick_pool_template
from vdx.settings import Settings
from vdx.store import job_locks
from vdx.store.db import now_utc
from vdx.store.models import Organisation, PoolHistory, SchedulingInfo, SchedulingStatus, SchedulingTemplate

log = logging.getLogger("vdx.pool_filler")

FILL_LOCK = "fillPools"
HISTORY_LOCK = "history"

# an unattached VMR in one of these states is a member of its pool (provisioned, or will be)
POOL_MEMBER_STATES = (
    ProvisionStatus.AWAITS_PROVISION,
    ProvisionStatus.STARTING_TO_PROVISION,
    ProvisionStatus.PROVISIONED_OK,
)


@dataclass
class FillResult:
    created: dict[str, int] = field(default_factory=dict)  # organisation code -> VMRs created
    deleted: dict[str, int] = field(default_factory=dict)  # organisation code -> VMRs deleted


async def _pool_organisations(session: AsyncSession) -> list[Organisation]:
    rows = await session.execute(
        select(Organisation)
        .where(Organisation.pool_size > 0, Organisation.deleted_time.is_(None))
        .order_by(Organisation.id)
    )
    return list(rows.scalars())


async def pool_members(session: AsyncSession, organisation_id: int) -> list[SchedulingInfo]:
    """The organisation's unattached, unreserved pool VMRs, newest first (spec 2.13)."""
    query = (
        select(SchedulingInfo)
        .where(
            SchedulingInfo.organisation_id == organisation_id,
            SchedulingInfo.meeting_id.is_(None),
            SchedulingInfo.reservation_id.is_(None),
            SchedulingInfo.provision_status.in_(POOL_MEMBER_STATES),
        )
        .order_by(SchedulingInfo.created_time.desc(), SchedulingInfo.id.desc())
    )
    return list((await session.execute(query)).scalars())


async def _lock_still_free(session: AsyncSession, settings: Settings, ids: list[int]) -> list[SchedulingInfo]:
    """The VMRs of ``ids`` that are still unattached and unreserved, locked for deletion. On
    PostgreSQL a VMR that an ad-hoc create or a reservation is taking right now is locked by that
    transaction: it is skipped (it is leaving the pool anyway), never deleted under the meeting."""
    if not ids:
        return []
    query = select(SchedulingInfo.id).where(
        SchedulingInfo.id.in_(ids),
        SchedulingInfo.meeting_id.is_(None),
        SchedulingInfo.reservation_id.is_(None),
    )
    if settings.is_postgres:
        query = query.with_for_update(skip_locked=True)
    locked = set((await session.execute(query)).scalars())
    out = []
    for si_id in ids:  # keep the newest-first order of ``ids``
        if si_id in locked:
            si = await session.get(SchedulingInfo, si_id, populate_existing=True)
            assert si is not None
            out.append(si)
    return out


async def _pool_template(session: AsyncSession, settings: Settings, org: Organisation) -> SchedulingTemplate:
    """The organisation's pool template, else its default template, else the usual selection
    (an ancestor's default, the shared template) so a pool can always be filled."""
    rows = await session.execute(
        select(SchedulingTemplate)
        .where(
            SchedulingTemplate.organisation_id == org.id,
            SchedulingTemplate.deleted_time.is_(None),
            SchedulingTemplate.is_pool_template.is_(True) | SchedulingTemplate.is_default_template.is_(True),
        )
        .order_by(SchedulingTemplate.id)
    )
    picked = pick_pool_template(list(rows.scalars()))
    return picked if picked is not None else await select_template(session, settings, org, None)


async def _filler_organisation(session: AsyncSession, settings: Settings) -> Organisation:
    org = await organisations.by_code(session, settings.pool_fill_organisation)
    if org is None:
        org = await organisations.create(session, settings.pool_fill_organisation)
    return org


async def delete_pool_vmr(session: AsyncSession, settings: Settings, si: SchedulingInfo) -> None:
    """Remove a surplus pool VMR; the node deprovisions it on ``POOL_DELETE`` (spec 4.2)."""
    await record.scheduling_info_event(session, settings, si, "POOL_DELETE")
    await session.execute(delete(SchedulingStatus).where(SchedulingStatus.scheduling_info_id == si.id))
    await session.delete(si)
    await session.flush()


async def fill_once(session: AsyncSession, settings: Settings) -> FillResult:
    """One run of the filler (spec 2.13), in the caller's (locked) transaction: for each pool
    organisation driven by events, one VMR more when short, the surplus removed when over."""
    result = FillResult()
    filler_user = None
    for org in await _pool_organisations(session):
        if not settings.uses_events(org.code):
            continue  # polling organisations are filled by their own provisioner (spec 1.5)
        desired = org.pool_size or 0
        members = await pool_members(session, org.id)
        if len(members) < desired:
            if filler_user is None:
                filler_org = await _filler_organisation(session, settings)
                filler_user = await meeting_users.get_or_create(
                    session, filler_org, settings.pool_fill_organisation_user
                )
            template = await _pool_template(session, settings, org)
            await create_pool_vmr(session, settings, org, template, filler_user)
            result.created[org.code] = 1
        elif len(members) > desired:
            # newest first: the oldest beyond the desired count go
            surplus = await _lock_still_free(session, settings, [si.id for si in members[desired:]])
            for si in surplus:
                await delete_pool_vmr(session, settings, si)
            if surplus:
                result.deleted[org.code] = len(surplus)
    return result


def minute_of(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


async def record_history(session: AsyncSession, settings: Settings, now: datetime | None = None) -> int:
    """One ``pool_history`` row per pool organisation for the current minute, unless that minute
    has one already (spec 2.13); ``available`` counts VMRs ready to use (provisioned, as
    ``GET /v2/pool``). Returns the rows written."""
    now = now or now_utc()
    minute = minute_of(now)
    done = set(
        (
            await session.execute(
                select(PoolHistory.organisation_code).where(
                    PoolHistory.status_time >= minute, PoolHistory.status_time < minute + timedelta(minutes=1)
                )
            )
        ).scalars()
    )
    written = 0
    for org in await _pool_organisations(session):
        if org.code in done:
            continue
        available = (
            await session.execute(
                select(func.count(SchedulingInfo.id)).where(
                    SchedulingInfo.organisation_id == org.id,
                    SchedulingInfo.meeting_id.is_(None),
                    SchedulingInfo.reservation_id.is_(None),
                    SchedulingInfo.provision_status == ProvisionStatus.PROVISIONED_OK,
                )
            )
        ).scalar_one()
        session.add(
            PoolHistory(
                organisation_code=org.code,
                desired_pool_size=org.pool_size or 0,
                available_pool_rooms=available,
                status_time=minute,
            )
        )
        written += 1
    return written


async def history_between(
    session: AsyncSession, organisation_code: str | None, start: datetime | None, end: datetime | None
) -> list[PoolHistory]:
    query = select(PoolHistory)
    if organisation_code is not None:
        query = query.where(PoolHistory.organisation_code == organisation_code)
    if start is not None:
        query = query.where(PoolHistory.status_time >= start)
    if end is not None:
        query = query.where(PoolHistory.status_time < end)
    query = query.order_by(PoolHistory.status_time, PoolHistory.organisation_code, PoolHistory.id).limit(
        10_000
    )
    return list((await session.execute(query)).scalars())


class PoolFiller(PeriodicJob):
    """Every ``pool_fill_interval`` seconds a fill run and the history minute, each under its
    cluster lock."""

    name = "pool-filler"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        super().__init__(sessions, settings)
        self.runs = 0

    @property
    def interval(self) -> float:
        return self.settings.pool_fill_interval

    async def run_once(self) -> FillResult | None:
        """A fill run and a history run; None when another process held the fill lock."""
        ran, result = await job_locks.run_locked(
            self.sessions, self.settings, FILL_LOCK, lambda s: fill_once(s, self.settings)
        )
        await job_locks.run_locked(
            self.sessions, self.settings, HISTORY_LOCK, lambda s: record_history(s, self.settings)
        )
        self.runs += 1
        return result if ran else None

    async def tick(self) -> None:
        result = await self.run_once()
        if result and (result.created or result.deleted):
            log.info("pool fill: created %s deleted %s", result.created, result.deleted)
