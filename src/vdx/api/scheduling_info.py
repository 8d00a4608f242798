"""Scheduling information (spec 1.3): the time-window list, one SI by uuid, and the polling
provisioner's contract (provision/deprovision work lists and the status report PUT)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.api import representations, schemas
from vdx.api.auth import Caller, require
from vdx.api.errors import ApiError, forbidden, not_found
from vdx.api.session import get_session
from vdx.booking.roles import ANY, PROVISIONER_ONLY
from vdx.services import scheduling_info as service
from vdx.settings import Settings
from vdx.store.models import ProvisionStatus, SchedulingInfo

router = APIRouter(tags=["Video Scheduling Information V2"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _not_found() -> ApiError:
    return not_found("schedulingInfo", "uuid")


def _out(request: Request, rows: list[SchedulingInfo]) -> list[schemas.SchedulingInfo]:
    settings = _settings(request)
    return [representations.scheduling_info(settings, si) for si in rows]


@router.get(
    "/scheduling-info",
    response_model=list[schemas.SchedulingInfo],
    summary="Scheduling infos of meetings starting or ending inside a time window",
)
async def list_scheduling_info(
    request: Request,
    # Annotated form: with ``= Query(...)`` FastAPI would drop InTimestamp's own parser (and with
    # it the fraction dropping and the year check of spec 1.0).
    from_start_time: Annotated[schemas.InTimestamp, Query(alias="from-start-time")],
    to_end_time: Annotated[schemas.InTimestamp, Query(alias="to-end-time")],
    provision_status: Annotated[ProvisionStatus, Query(alias="provision-status")] = (
        ProvisionStatus.AWAITS_PROVISION
    ),
    caller: Caller = Depends(require(*ANY)),
    session: AsyncSession = Depends(get_session),
) -> list[schemas.SchedulingInfo]:
    scope = await service.scope_for(session, caller.principal, caller.organisation)
    rows = await service.in_window(session, scope, from_start_time, to_end_time, provision_status)
    return _out(request, rows)


@router.get(
    "/scheduling-info-provision",
    response_model=list[schemas.SchedulingInfo],
    summary="Meeting VMRs due to be provisioned (polling provisioners)",
)
async def list_to_provision(
    request: Request,
    caller: Caller = Depends(require(*PROVISIONER_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> list[schemas.SchedulingInfo]:
    return _out(request, await service.due_for_provisioning(session))


@router.get(
    "/scheduling-info-deprovision",
    response_model=list[schemas.SchedulingInfo],
    summary="Provisioned meeting VMRs whose meeting has ended (polling provisioners)",
)
async def list_to_deprovision(
    request: Request,
    caller: Caller = Depends(require(*PROVISIONER_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> list[schemas.SchedulingInfo]:
    return _out(request, await service.due_for_deprovisioning(session))


@router.get(
    "/scheduling-info/{uuid}",
    response_model=schemas.SchedulingInfo,
    summary="One scheduling info, with its meeting",
)
async def get_scheduling_info(
    request: Request,
    uuid: UUID,
    caller: Caller = Depends(require(*ANY)),
    session: AsyncSession = Depends(get_session),
) -> schemas.SchedulingInfo:
    scope = await service.scope_for(session, caller.principal, caller.organisation)
    try:
        si = await service.by_uuid(session, str(uuid), scope)
    except service.SchedulingInfoNotFound:
        raise _not_found() from None
    except service.AccessDenied:
        raise forbidden() from None
    return representations.scheduling_info(_settings(request), si)


@router.put(
    "/scheduling-info/{uuid}",
    response_model=schemas.SchedulingInfo,
    summary="Provisioner status report",
)
async def report_status(
    request: Request,
    uuid: UUID,
    body: schemas.UpdateSchedulingInfo,
    caller: Caller = Depends(require(*PROVISIONER_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> schemas.SchedulingInfo:
    scope = await service.scope_for(session, caller.principal, caller.organisation)
    try:
        async with session.begin():
            si = await service.report_status(
                session,
                _settings(request),
                uuid=str(uuid),
                scope=scope,
                caller_organisation_id=caller.org.id,
                caller_email=caller.email,
                status=body.provisionStatus,
                description=body.provisionStatusDescription,
                vmr_id=body.provisionVmrId,
            )
    except service.SchedulingInfoNotFound:
        raise _not_found() from None
    except service.AccessDenied:
        raise forbidden() from None
    return representations.scheduling_info(_settings(request), await service.reload(session, si.id))
