"""Scheduling information (spec 1.3): the time-window list, one SI by uuid, and the polling
provisioner's contract (provision/deprovision work lists and the status report PUT)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Admitted, Caller, require, require_reading
from vdx.access.sessions import get_read_session, get_session
from vdx.api import representations, schemas
from vdx.booking import commands
from vdx.booking.enums import ProvisionStatus, ViewType, VmrQuality, VmrType
from vdx.booking.errors import VdxError, forbidden, not_found
from vdx.booking.roles import ADMIN_ONLY, ANY, PROVISIONER_ONLY
from vdx.services import pool_vmrs
from vdx.services import scheduling_info as service
from vdx.settings import Settings
from vdx.store.models import Organisation, SchedulingInfo

router = APIRouter(tags=["Video Scheduling Information V2"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _not_found() -> VdxError:
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
    from_start_time: Annotated[commands.InTimestamp, Query(alias="from-start-time")],
    to_end_time: Annotated[commands.InTimestamp, Query(alias="to-end-time")],
    provision_status: Annotated[ProvisionStatus, Query(alias="provision-status")] = (
        ProvisionStatus.AWAITS_PROVISION
    ),
    caller: Caller = Depends(require(*ANY, reading=True)),
    session: AsyncSession = Depends(get_read_session),
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
    admitted: Admitted[Mapping[str, Any]] = Depends(require_reading(ANY, service.find)),
    session: AsyncSession = Depends(get_read_session),
) -> schemas.SchedulingInfo:
    key, caller = str(uuid), admitted.caller
    row = await admitted.resource(key)
    try:
        si = await service.readable(session, key, row, caller.principal, caller.organisation)
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
    body: commands.UpdateSchedulingInfo,
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


@router.post(
    "/scheduling-info",
    response_model=schemas.SchedulingInfo,
    summary="Create a pool VMR (provisioner-users)",
    responses={406: {"model": schemas.DetailedError, "description": "PIN/URI setup of the template"}},
)
async def create_pool_scheduling_info(
    request: Request,
    body: commands.CreateSchedulingInfo,
    caller: Caller = Depends(require(*PROVISIONER_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> schemas.SchedulingInfo:
    """Spec 1.3.2: an unattached pool VMR of ``organizationId`` from ``schedulingTemplateId``."""
    settings = _settings(request)
    async with session.begin():
        own = await session.get(Organisation, caller.organisation.id) if caller.organisation else None
        si = await pool_vmrs.create_requested(
            session,
            settings,
            organisation_code=body.organizationId,
            template_id=body.schedulingTemplateId,
            caller_organisation=own,
            caller_email=caller.principal.email,
        )
    return representations.scheduling_info(settings, await service.reload(session, si.id))


def _reservation_not_found() -> VdxError:
    return not_found("schedulingInfo", "reservationId")


@router.get(
    "/scheduling-info-reserve",
    response_model=schemas.SchedulingInfo,
    summary="Reserve a pool VMR of the caller's organisation for a later meeting",
)
async def reserve_scheduling_info(
    request: Request,
    vmr_type: Annotated[VmrType, Query(alias="vmrType")] = VmrType.conference,
    host_view: Annotated[ViewType, Query(alias="hostView")] = ViewType.one_main_seven_pips,
    guest_view: Annotated[ViewType, Query(alias="guestView")] = ViewType.one_main_seven_pips,
    vmr_quality: Annotated[VmrQuality, Query(alias="vmrQuality")] = VmrQuality.hd,
    enable_overlay_text: Annotated[bool, Query(alias="enableOverlayText")] = True,
    guests_can_present: Annotated[bool, Query(alias="guestsCanPresent")] = True,
    force_presenter_into_main: Annotated[bool, Query(alias="forcePresenterIntoMain")] = True,
    force_encryption: Annotated[bool, Query(alias="forceEncryption")] = False,
    # the YAML's text says true, its schema false; the schema wins, as in the reference
    mute_all_guests: Annotated[bool, Query(alias="muteAllGuests")] = False,
    caller: Caller = Depends(require(*ADMIN_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> schemas.SchedulingInfo:
    """Spec 1.3.7: a free pool VMR of the caller's own organisation matching the room settings
    (defaults as the reference's), stamped with a random ``reservationId``; 404 when none."""
    settings = _settings(request)
    filters = {
        "vmr_type": vmr_type,
        "host_view": host_view,
        "guest_view": guest_view,
        "vmr_quality": vmr_quality,
        "enable_overlay_text": enable_overlay_text,
        "guests_can_present": guests_can_present,
        "force_presenter_into_main": force_presenter_into_main,
        "force_encryption": force_encryption,
        "mute_all_guests": mute_all_guests,
    }
    try:
        async with session.begin():
            si = await pool_vmrs.reserve(
                session,
                settings,
                organisation=caller.org,
                filters=filters,
                caller_email=caller.principal.email,
            )
    except pool_vmrs.ReservationNotFound:
        raise not_found("schedulingInfo", "organisation") from None
    return representations.scheduling_info(settings, await service.reload(session, si.id))


@router.get(
    "/scheduling-info-reserve/{uuid}",
    response_model=schemas.SchedulingInfo,
    summary="A reserved pool VMR not yet used by a meeting",
)
async def get_reservation(
    request: Request,
    uuid: UUID,
    caller: Caller = Depends(require(*ADMIN_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> schemas.SchedulingInfo:
    """Spec 1.3.8: by reservation id, only while no meeting uses it; no organisation check."""
    try:
        si = await pool_vmrs.by_reservation(session, str(uuid))
    except pool_vmrs.ReservationNotFound:
        raise _reservation_not_found() from None
    return representations.scheduling_info(_settings(request), si)
