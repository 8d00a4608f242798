"""Pool VMRs: creating them (spec 1.3.2, the pool filler of 2.13), reserving one (1.3.7) and
reading a reservation (1.3.8). Attaching a pool or reserved VMR to a meeting is
``vmr_allocation``'s job; the free-pool rule used here is its ``find_free_pool_vmr``."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking.enums import ProvisionStatus
from vdx.booking.errors import vdx_error
from vdx.events import record
from vdx.services import meeting_users, organisations
from vdx.services.vmr_allocation import draw_identity, find_free_pool_vmr
from vdx.settings import Settings
from vdx.store.db import now_utc
from vdx.store.models import (
    ROOM_SETTING_FIELDS,
    MeetingUser,
    Organisation,
    SchedulingInfo,
    SchedulingTemplate,
)

POOLED_DESCRIPTION = "Pooled awaiting provisioning."


class ReservationNotFound(Exception):
    pass


async def create_pool_vmr(
    session: AsyncSession,
    settings: Settings,
    org: Organisation,
    template: SchedulingTemplate,
    user: MeetingUser,
) -> SchedulingInfo:
    """A new unattached pool VMR of ``org`` made from ``template`` (spec 1.3.2): random uuid,
    ``pool=true``, ``AWAITS_PROVISION``, PINs and URI drawn from the template, every room setting
    copied from it; no ``vmrStartTime`` and no portal link. Event ``CREATE``, audit ``create``."""
    ident = await draw_identity(session, template)
    copied: dict[str, Any] = {column: getattr(template, column) for column in ROOM_SETTING_FIELDS}
    si = SchedulingInfo(
        uuid=str(uuidlib.uuid4()),
        host_pin=ident.host_pin,
        guest_pin=ident.guest_pin,
        vmr_available_before=template.vmr_available_before or 0,
        max_participants=template.max_participants,
        end_meeting_on_end_time=template.end_meeting_on_end_time,
        uri_with_domain=ident.uri_with_domain,
        uri_without_domain=ident.uri_without_domain,
        uri_domain=ident.domain,
        scheduling_template_id=template.id,
        provision_status=ProvisionStatus.AWAITS_PROVISION,
        provision_status_description=POOLED_DESCRIPTION,
        organisation=org,
        organisation_id=org.id,
        ivr_theme=template.ivr_theme,
        direct_media=template.direct_media,
        custom_portal_guest=template.custom_portal_guest,
        custom_portal_host=template.custom_portal_host,
        return_url=template.return_url,
        call_type=template.call_type,
        created_by=user,
        created_time=now_utc(),
        pool=True,
        pool_overflow=False,
        new_provisioner=settings.uses_events(org.code),
        **copied,
    )
    session.add(si)
    await session.flush()
    await record.scheduling_info_event(session, settings, si, "CREATE")
    await record.audit(session, settings, operation="create", obj=si, user=user.email)
    return si


async def create_requested(
    session: AsyncSession,
    settings: Settings,
    *,
    organisation_code: str,
    template_id: int,
    caller_organisation: Organisation | None,
    caller_email: str | None,
) -> SchedulingInfo:
    """``POST /v2/scheduling-info`` (spec 1.3.2): checks in the reference's order (400/22, 23, 26,
    27), then a pool VMR created by the caller."""
    org = await organisations.by_code(session, organisation_code)
    if org is None:
        raise vdx_error("22", organisation_code)
    if org.pool_size is None:
        raise vdx_error("23", organisation_code)
    template = await session.get(SchedulingTemplate, template_id)
    if template is None:
        raise vdx_error("26", template_id)
    if template.organisation_id is not None and template.organisation_id != org.id:
        raise vdx_error("27", template_id, organisation_code)
    # createdBy is the caller's meeting user, in the caller's organisation when the token names
    # one (the reference's user context), else in the pool's organisation.
    user_org = caller_organisation or org
    user = await meeting_users.get_or_create(
        session, user_org, caller_email or settings.pool_fill_organisation_user
    )
    return await create_pool_vmr(session, settings, org, template, user)


async def reserve(
    session: AsyncSession,
    settings: Settings,
    *,
    organisation: Organisation,
    filters: dict[str, Any],
    caller_email: str | None,
) -> SchedulingInfo:
    """Reserve one free pool VMR of ``organisation`` itself (spec 1.3.7): no tree walk, no
    overflow; the free-pool rule of spec 2.13 with ``filters``. Stamps a random reservation id
    and records an audit ``update``."""
    si = await find_free_pool_vmr(session, settings, organisation.id, filters)
    if si is None:
        raise ReservationNotFound()
    si.reservation_id = str(uuidlib.uuid4())
    await session.flush()
    await record.audit(session, settings, operation="update", obj=si, user=caller_email)
    return si


async def by_reservation(session: AsyncSession, reservation_id: str) -> SchedulingInfo:
    """The reserved VMR not yet attached to a meeting (spec 1.3.8); no organisation check."""
    si = (
        await session.execute(
            select(SchedulingInfo).where(
                SchedulingInfo.reservation_id == reservation_id, SchedulingInfo.meeting_id.is_(None)
            )
        )
    ).scalar_one_or_none()
    if si is None:
        raise ReservationNotFound(reservation_id)
    return si
