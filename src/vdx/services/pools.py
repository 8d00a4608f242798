"""Pool state per organisation, as ``GET /v2/pool`` shows it (spec 1.5, 2.13)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.services import templates
from vdx.settings import Settings
from vdx.store.models import Organisation, ProvisionStatus, SchedulingInfo, SchedulingTemplate


@dataclass(frozen=True)
class PoolInfo:
    organisation: Organisation
    available: list[SchedulingInfo]  # newest createdTime first
    template: SchedulingTemplate | None


async def available_pool_vmrs(session: AsyncSession, organisation_id: int) -> list[SchedulingInfo]:
    """Unattached, unreserved, provisioned VMRs of the organisation, newest first (spec 1.5).
    Unlike the free-pool rule of spec 2.13 there is no minimum age here."""
    query = (
        select(SchedulingInfo)
        .where(
            SchedulingInfo.organisation_id == organisation_id,
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
    orgs = (
        await session.execute(
            select(Organisation)
            .where(Organisation.pool_size > 0, Organisation.deleted_time.is_(None))
            .order_by(Organisation.id)
        )
    ).scalars()
    out = []
    for org in orgs:
        if settings.uses_events(org.code):
            continue
        out.append(
            PoolInfo(
                organisation=org,
                available=await available_pool_vmrs(session, org.id),
                template=await templates.pool_template(session, org.id),
            )
        )
    return out
