"""``GET /v2/pool`` (spec 1.5): what the legacy pool filler reads to keep each polling
organisation's pool of ready VMRs at its desired size."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Caller, require
from vdx.access.sessions import get_session
from vdx.api import representations, schemas
from vdx.booking import commands
from vdx.booking.roles import ANY
from vdx.services import pool_filler, pools
from vdx.settings import Settings

router = APIRouter(tags=["Pool V2"])


@router.get("/pool", response_model=list[schemas.PoolInfo], summary="Pool information per organisation")
async def get_pool(
    request: Request,
    caller: Caller = Depends(require(*ANY)),
    session: AsyncSession = Depends(get_session),
) -> list[schemas.PoolInfo]:
    settings: Settings = request.app.state.settings
    out = []
    for p in await pools.pool_infos(session, settings):
        out.append(
            schemas.PoolInfo(
                organisationId=p.organisation.code,
                desiredPoolSize=p.organisation.pool_size,
                availablePoolSize=len(p.available),
                schedulingTemplate=(
                    representations.scheduling_template(settings, p.template) if p.template else None
                ),
                schedulingInfoList=[representations.scheduling_info(settings, si) for si in p.available],
            )
        )
    return out


class PoolHistoryEntry(schemas.Out):
    organisationId: str
    desiredPoolSize: int
    availablePoolSize: int
    statusTime: schemas.OutTimestamp


@router.get(
    "/pool/history",
    response_model=list[PoolHistoryEntry],
    summary="Per-minute pool history (vdx extension)",
    description=(
        "Not part of the reference API: a read-only report of the per-minute pool snapshots "
        "(spec 2.13's pool history job) - desired and available (provisioned, unattached, "
        "unreserved) VMRs per pool organisation, oldest first, at most 10000 rows. "
        "`from` is inclusive, `to` exclusive; `organisation` filters by organisation code."
    ),
)
async def get_pool_history(
    organisation: Annotated[str | None, Query(max_length=250)] = None,
    from_time: Annotated[commands.InTimestamp | None, Query(alias="from")] = None,
    to_time: Annotated[commands.InTimestamp | None, Query(alias="to")] = None,
    caller: Caller = Depends(require(*ANY)),
    session: AsyncSession = Depends(get_session),
) -> list[PoolHistoryEntry]:
    rows = await pool_filler.history_between(session, organisation, from_time, to_time)
    return [
        PoolHistoryEntry(
            organisationId=r.organisation_code,
            desiredPoolSize=r.desired_pool_size,
            availablePoolSize=r.available_pool_rooms,
            statusTime=r.status_time,
        )
        for r in rows
    ]
