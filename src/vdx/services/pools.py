"""Pool state per organisation, as ``GET /v2/pool`` shows it (spec 1.5, 2.13)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking.enums import ProvisionStatus
from vdx.services.templates import pick_pool_template
from vdx.settings import Settings
from vdx.store.models import Organisation, SchedulingInfo, SchedulingTemplate


@dataclass(frozen=True)
class PoolInfo:
    organisation: Organisation
    available: list[SchedulingInfo]  # newest createdTime first
    template: SchedulingTemplate | None


async def _available(session: AsyncSession, organisation_ids: list[int]) -> list[SchedulingInfo]:
    """Unattached, unreserved, provisioned VMRs, newest first (spec 1.5). Unlike the free-pool
    rule of spec 2.13 (used to attach a meeting) there is no minimum age here."""
    query = (
        select(SchedulingInfo)
        .where(
            SchedulingInfo.organisation_id.in_(organisation_ids),
            SchedulingInfo.meeting_id.is_(None),
            SchedulingInfo.reservation_id.is_(None),
            SchedulingInfo.provision_status == ProvisionStatus.PROVISIONED_OK,
        )
        .order_by(SchedulingInfo.created_time.desc(), SchedulingInfo.id.desc())
    )
    return list((await session.execute(query)).scalars())


async def pool_infos(session: AsyncSession, settings: Settings) -> list[PoolInfo]:
    """One entry per organisation with a pool, except those served by the event-driven
    provisioner (spec 4.2): their pools are filled by vdx itself, not by a polling filler."""
    orgs = [
        org
        for org in (
            await session.execute(
                select(Organisation)
                .where(Organisation.pool_size > 0, Organisation.deleted_time.is_(None))
                .order_by(Organisation.id)
            )
        ).scalars()
        if not settings.uses_events(org.code)
    ]
    if not orgs:
        return []
    ids = [org.id for org in orgs]
    available: dict[int, list[SchedulingInfo]] = {i: [] for i in ids}
    for si in await _available(session, ids):
        available[si.organisation_id].append(si)
    candidates: dict[int, list[SchedulingTemplate]] = {i: [] for i in ids}
    rows = await session.execute(
        select(SchedulingTemplate)
        .where(
            SchedulingTemplate.organisation_id.in_(ids),
            SchedulingTemplate.deleted_time.is_(None),
            SchedulingTemplate.is_pool_template.is_(True) | SchedulingTemplate.is_default_template.is_(True),
        )
        .order_by(SchedulingTemplate.id)
    )
    for t in rows.scalars():
        assert t.organisation_id is not None
        candidates[t.organisation_id].append(t)
    return [
        PoolInfo(
            organisation=org, available=available[org.id], template=pick_pool_template(candidates[org.id])
        )
        for org in orgs
    ]
