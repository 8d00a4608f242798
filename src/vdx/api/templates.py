"""``/v2/scheduling-templates`` (spec 1.4): any role reads its own organisation's templates;
meeting-admin creates, replaces and soft-deletes them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Caller, require
from vdx.access.sessions import get_session
from vdx.api import representations, schemas
from vdx.booking import commands
from vdx.booking.errors import VdxError, not_found, vdx_error
from vdx.booking.roles import ADMIN_ONLY, ANY
from vdx.services import audit, templates
from vdx.settings import Settings
from vdx.store.models import SchedulingTemplate

router = APIRouter(tags=["Scheduling Template Administration V2"])

TemplateId = Path(ge=-(2**63), le=2**63 - 1, description="scheduling template id")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _not_found() -> VdxError:
    return not_found("schedulingTemplate", "id")


def template_fields(body: commands.SchedulingTemplateRequest) -> dict[str, Any]:
    """Request -> column values. Every field is written (PUT is a full replacement, spec 1.4):
    omitted optionals take the request schema's defaults, nullable ones may become null; the
    columns that cannot be null fall back to their documented default."""
    return {
        "conferencing_sys_id": body.conferencingSysId,
        "uri_prefix": body.uriPrefix,
        "uri_domain": body.uriDomain,
        "host_pin_required": body.hostPinRequired,
        "host_pin_range_low": body.hostPinRangeLow,
        "host_pin_range_high": body.hostPinRangeHigh,
        "guest_pin_required": body.guestPinRequired,
        "guest_pin_range_low": body.guestPinRangeLow,
        "guest_pin_range_high": body.guestPinRangeHigh,
        "vmr_available_before": body.vMRAvailableBefore or 0,
        "max_participants": body.maxParticipants or 0,
        "end_meeting_on_end_time": bool(body.endMeetingOnEndTime),
        "uri_number_range_low": body.uriNumberRangeLow,
        "uri_number_range_high": body.uriNumberRangeHigh,
        "ivr_theme": body.ivrTheme,
        "is_default_template": bool(body.isDefaultTemplate),
        "is_pool_template": bool(body.isPoolTemplate),
        "custom_portal_guest": body.customPortalGuest,
        "custom_portal_host": body.customPortalHost,
        "return_url": body.returnUrl,
        "vmr_type": body.vmrType,
        "host_view": body.hostView,
        "guest_view": body.guestView,
        "vmr_quality": body.vmrQuality,
        "enable_overlay_text": body.enableOverlayText,
        "guests_can_present": body.guestsCanPresent,
        "force_presenter_into_main": body.forcePresenterIntoMain,
        "force_encryption": body.forceEncryption,
        "mute_all_guests": body.muteAllGuests,
        "direct_media": body.directMedia,
        "call_type": body.callType,
    }


async def _reload(session: AsyncSession, organisation_id: int, template_id: int) -> SchedulingTemplate:
    """The committed template with its relationships loaded for the response."""
    return await templates.get_for_organisation(session, organisation_id, template_id, fresh=True)


@router.get(
    "/scheduling-templates",
    response_model=list[schemas.SchedulingTemplate],
    response_model_by_alias=True,
    summary="Scheduling templates of the caller's organisation",
)
async def list_templates(
    request: Request,
    caller: Caller = Depends(require(*ANY)),
    session: AsyncSession = Depends(get_session),
) -> list[schemas.SchedulingTemplate]:
    if caller.organisation is None:  # a pure provisioner without organisation owns no templates
        return []
    rows = await templates.list_for_organisation(session, caller.org.id)
    return [representations.scheduling_template(_settings(request), t) for t in rows]


@router.get(
    "/scheduling-templates/{id}",
    response_model=schemas.SchedulingTemplate,
    response_model_by_alias=True,
    summary="One scheduling template of the caller's organisation",
)
async def get_template(
    request: Request,
    id: int = TemplateId,
    caller: Caller = Depends(require(*ANY)),
    session: AsyncSession = Depends(get_session),
) -> schemas.SchedulingTemplate:
    if caller.organisation is None:
        raise _not_found()
    try:
        t = await templates.get_for_organisation(session, caller.org.id, id)
    except templates.TemplateNotFound:
        raise _not_found() from None
    return representations.scheduling_template(_settings(request), t)


@router.post(
    "/scheduling-templates",
    response_model=schemas.SchedulingTemplate,
    response_model_by_alias=True,
    summary="Create a scheduling template in the caller's organisation",
)
async def create_template(
    request: Request,
    body: commands.SchedulingTemplateRequest,
    caller: Caller = Depends(require(*ADMIN_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> schemas.SchedulingTemplate:
    try:
        async with session.begin():
            t = await templates.create(session, caller.org.id, caller.email, template_fields(body))
            await audit.template_changed(session, _settings(request), t, "create", caller.email)
    except templates.PoolTemplateExists:
        raise vdx_error("18") from None
    return representations.scheduling_template(
        _settings(request), await _reload(session, caller.org.id, t.id)
    )


@router.put(
    "/scheduling-templates/{id}",
    response_model=schemas.SchedulingTemplate,
    response_model_by_alias=True,
    summary="Replace a scheduling template of the caller's organisation",
)
async def replace_template(
    request: Request,
    body: commands.SchedulingTemplateRequest,
    id: int = TemplateId,
    caller: Caller = Depends(require(*ADMIN_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> schemas.SchedulingTemplate:
    try:
        async with session.begin():
            t = await templates.replace(session, caller.org.id, id, caller.email, template_fields(body))
            await audit.template_changed(session, _settings(request), t, "update", caller.email)
    except templates.TemplateNotFound:
        raise _not_found() from None
    except templates.PoolTemplateExists:
        raise vdx_error("18") from None
    return representations.scheduling_template(
        _settings(request), await _reload(session, caller.org.id, t.id)
    )


@router.delete(
    "/scheduling-templates/{id}",
    status_code=204,
    response_class=Response,
    summary="Soft-delete a scheduling template of the caller's organisation",
)
async def delete_template(
    request: Request,
    id: int = TemplateId,
    caller: Caller = Depends(require(*ADMIN_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> Response:
    try:
        async with session.begin():
            t = await templates.soft_delete(session, caller.org.id, id, caller.email)
            await audit.template_changed(session, _settings(request), t, "delete", caller.email)
    except templates.TemplateNotFound:
        raise _not_found() from None
    return Response(status_code=204)
