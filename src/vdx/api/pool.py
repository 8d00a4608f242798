"""``GET /v2/pool`` (spec 1.5): what the legacy pool filler reads to keep each polling
organisation's pool of ready VMRs at its desired size."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.api import representations, schemas
from vdx.api.auth import Caller, require
from vdx.api.session import get_session
from vdx.booking.roles import ANY
from vdx.services import pools
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
