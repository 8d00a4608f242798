"""Obtaining the VMR (scheduling info) of a new meeting (spec 2.9 step 7, 2.13, 2.4, 2.5, 2.8).

Runs inside the create-meeting transaction. Generated URIs are checked before insert; a race that
still collides on the unique key makes the whole transaction retry (``transactions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from vdx.booking import commands, pins, uris
from vdx.booking.enums import MeetingType, ProvisionStatus
from vdx.booking.errors import vdx_error
from vdx.booking.portal_links import PortalValues, build_portal_link
from vdx.events import record
from vdx.services import organisations
from vdx.services.template_selection import select_template
from vdx.settings import Settings
from vdx.store.db import insert_new, now_utc
from vdx.store.models import (
    ROOM_SETTING_FIELDS,
    Meeting,
    MeetingUser,
    Organisation,
    SchedulingInfo,
    SchedulingTemplate,
)

# spec 2.9 7d: a meeting starting more than this far ahead is "scheduled" and gets its own VMR.
AD_HOC_HORIZON = timedelta(minutes=2)

# request field (create-meeting) for each room setting column (spec 2.8, 2.13)
REQUEST_FIELD = {
    "vmr_type": "vmrType",
    "host_view": "hostView",
    "guest_view": "guestView",
    "vmr_quality": "vmrQuality",
    "enable_overlay_text": "enableOverlayText",
    "guests_can_present": "guestsCanPresent",
    "force_presenter_into_main": "forcePresenterIntoMain",
    "force_encryption": "forceEncryption",
    "mute_all_guests": "muteAllGuests",
}


def portal_link(settings: Settings, si: SchedulingInfo, meeting: Meeting, *, hide_pin: bool = False) -> str:
    """The portal link of ``si`` for ``meeting`` (spec 2.7), from the configured template.
    ``hide_pin`` leaves ``__pin__`` empty, so the join page asks for the PIN."""
    return build_portal_link(
        settings.portal_template,
        PortalValues(
            start_time=meeting.start_time,
            uri_with_domain=si.uri_with_domain,
            uri_domain=si.uri_domain,
            guest_pin=None if hide_pin else si.guest_pin,
            host_pin=None if hide_pin else si.host_pin,
            return_url=si.return_url,
            guest_microphone=meeting.guest_microphone.value if meeting.guest_microphone else None,
            call_type=si.call_type,
        ),
    )


def vmr_start_time(meeting: Meeting, si: SchedulingInfo) -> datetime:
    """``startTime - vmrAvailableBefore`` minutes (spec 2.8); clamped at the representable range
    for meetings at its edges (any start is allowed, spec 1.2.4)."""
    minutes = si.vmr_available_before or 0
    try:
        return meeting.start_time - timedelta(minutes=minutes)
    except OverflowError:
        return (datetime.min if minutes > 0 else datetime.max.replace(microsecond=0)).replace(tzinfo=UTC)


def room_filters(req: commands.CreateMeeting) -> dict[str, Any]:
    """The room settings the request gives; for a pool VMR they are match filters (spec 2.13)."""
    out = {}
    for column in ROOM_SETTING_FIELDS:
        value = getattr(req, REQUEST_FIELD[column])
        if value is not None:
            out[column] = value
    return out


def _uri_query(with_domain: bool) -> Select[int]:
    query = select(SchedulingInfo.id).where(SchedulingInfo.uri_without_domain == bindparam("uri"))
    query = query.where(
        SchedulingInfo.uri_domain == bindparam("domain")
        if with_domain
        else SchedulingInfo.uri_domain.is_(None)
    )
    return query.limit(1)


# the unique key of a VMR's address (SchedulingInfo's uq_scheduling_info_uri)
_URI_KEY = ("uri_without_domain", "uri_domain")

# Built once (SQLAlchemy memoises a statement object's cache key): every booking draws a URI.
_URI_TAKEN = {False: _uri_query(False), True: _uri_query(True)}


async def uri_taken(session: AsyncSession, uri_without_domain: str, domain: str | None) -> bool:
    params = {"uri": uri_without_domain} if domain is None else {"uri": uri_without_domain, "domain": domain}
    return (await session.execute(_URI_TAKEN[domain is not None], params)).first() is not None


@dataclass(frozen=True)
class Allocation:
    scheduling_info: SchedulingInfo
    attached: bool  # True: an existing pool/reserved VMR; False: a new one


async def allocate(
    session: AsyncSession,
    settings: Settings,
    *,
    meeting: Meeting,
    org: Organisation,
    user: MeetingUser,
    req: commands.CreateMeeting,
    template: SchedulingTemplate | None = None,
) -> Allocation:
    """Rules 7a-7e of spec 2.9: the first that matches wins. ``template``: the one a new VMR
    is made from when the caller has selected it already (else it is selected here)."""
    if req.uriWithoutDomain is not None:  # 7a
        if not org.allow_custom_uri_without_domain:
            raise vdx_error("31")
        return Allocation(
            await new_scheduling_info(session, settings, meeting, org, user, req, template), False
        )
    if req.hostPin is not None or req.guestPin is not None:  # 7b
        return Allocation(
            await new_scheduling_info(session, settings, meeting, org, user, req, template), False
        )
    if req.schedulingInfoReservationId is not None:  # 7c
        reserved = (
            await session.execute(
                select(SchedulingInfo).where(
                    SchedulingInfo.reservation_id == str(req.schedulingInfoReservationId),
                    SchedulingInfo.meeting_id.is_(None),
                )
            )
        ).scalar_one_or_none()
        if reserved is None or reserved.organisation_id != org.id:
            raise vdx_error("29")
        await attach(session, settings, reserved, meeting, user, overflow=False)
        return Allocation(reserved, True)
    if meeting.start_time > now_utc() + AD_HOC_HORIZON:  # 7d
        return Allocation(
            await new_scheduling_info(session, settings, meeting, org, user, req, template), False
        )
    # 7e: ad hoc -> a free pool VMR of the pool organisation, then of the overflow organisation
    found, overflow = await _free_pool_vmr(session, settings, org, room_filters(req))
    if found is not None:
        await attach(session, settings, found, meeting, user, overflow=overflow)
        return Allocation(found, True)
    if (req.meetingType or MeetingType.NORMAL) == MeetingType.POOL:
        raise vdx_error("20", org.code)
    return Allocation(await new_scheduling_info(session, settings, meeting, org, user, req, template), False)


async def _free_pool_vmr(
    session: AsyncSession, settings: Settings, org: Organisation, filters: dict[str, Any]
) -> tuple[SchedulingInfo | None, bool]:
    """A free pool VMR for an ad-hoc meeting of ``org`` (spec 2.9 7e): of its pool organisation,
    else of the overflow organisation (then True)."""
    pool_org = org if org.pool_size else await organisations.pool_organisation(session, org)
    found = await find_free_pool_vmr(session, settings, pool_org.id, filters)
    if found is not None or not pool_org.pool_size or not settings.overflow_pool_organisation:
        return found, False
    overflow_org = await organisations.by_code(session, settings.overflow_pool_organisation)
    if overflow_org is None or overflow_org.id == pool_org.id:
        return None, False
    found = await find_free_pool_vmr(session, settings, overflow_org.id, filters)
    return found, found is not None


async def find_free_pool_vmr(
    session: AsyncSession, settings: Settings, organisation_id: int, filters: dict[str, Any]
) -> SchedulingInfo | None:
    """One free pool VMR of the organisation (spec 2.13), locked for this transaction.

    On PostgreSQL the row is taken ``FOR UPDATE SKIP LOCKED`` so concurrent ad-hoc creates each
    get a different VMR; SQLite serialises writers (BEGIN IMMEDIATE) so no lock is needed."""
    cutoff = now_utc() - timedelta(seconds=settings.pool_minimum_age_sec)
    query = select(SchedulingInfo.id).where(
        SchedulingInfo.organisation_id == organisation_id,
        SchedulingInfo.meeting_id.is_(None),
        SchedulingInfo.provision_status == ProvisionStatus.PROVISIONED_OK,
        SchedulingInfo.reservation_id.is_(None),
        SchedulingInfo.provision_timestamp < cutoff,
    )
    for column, value in filters.items():
        query = query.where(getattr(SchedulingInfo, column) == value)
    query = query.order_by(SchedulingInfo.id).limit(1)
    if settings.is_postgres:
        query = query.with_for_update(skip_locked=True)
    si_id = (await session.execute(query)).scalar_one_or_none()
    if si_id is None:
        return None
    return await session.get(SchedulingInfo, si_id)


async def attach(
    session: AsyncSession,
    settings: Settings,
    si: SchedulingInfo,
    meeting: Meeting,
    user: MeetingUser,
    *,
    overflow: bool,
) -> None:
    """Attach an existing (pool or reserved) VMR to ``meeting`` (spec 2.13). Its PINs, template and
    room settings stay as they are."""
    now = now_utc()
    si.uuid = meeting.uuid
    # The new meeting is inserted already, outside the session (``insert_new``): set as loaded,
    # the relationship does not cascade it into the session, whose flush would insert it again.
    set_committed_value(si, "meeting", meeting)
    si.meeting_id = meeting.id
    si.created_by = user
    si.updated_by = user
    si.updated_time = now
    si.vmr_start_time = vmr_start_time(meeting, si)
    si.portal_link = portal_link(settings, si, meeting)
    if si.organisation_id != meeting.organisation_id:
        si.organisation = meeting.organisation
        si.organisation_id = meeting.organisation_id
    si.pool_overflow = overflow
    await session.flush()
    await record.scheduling_info_event(session, settings, si, "UPDATE")
    await record.audit(session, settings, operation="update", obj=si, user=user.email)


@dataclass(frozen=True)
class Identity:
    """PINs and address of a new VMR."""

    host_pin: int | None
    guest_pin: int | None
    uri_without_domain: str
    uri_with_domain: str
    domain: str | None


def _draw_uri(template: SchedulingTemplate) -> tuple[str, str]:
    """A number from the template's range (406/14 when empty) and its address with domain."""
    number = str(uris.draw_number(template.uri_number_range_low, template.uri_number_range_high))
    return number, uris.uri_with_domain(template.uri_prefix, number, template.uri_domain)


async def draw_identity(
    session: AsyncSession,
    template: SchedulingTemplate,
    *,
    host_pin: int | None = None,
    guest_pin: int | None = None,
    custom_uri: str | None = None,
    check: bool = True,
) -> Identity:
    """PINs and URI of a new VMR from ``template`` (spec 2.4, 2.5), honouring the request's own
    PINs and custom URI when given; the drawn URI is free when checked (the unique key catches
    a race). ``check=False``: a drawn URI is not looked up (the caller's insert takes it, see
    ``new_scheduling_info``)."""
    host = (
        host_pin
        if host_pin is not None
        else pins.host_pin(
            template.host_pin_required, template.host_pin_range_low, template.host_pin_range_high
        )
    )
    guest = (
        guest_pin
        if guest_pin is not None
        else pins.guest_pin(
            template.guest_pin_required, template.guest_pin_range_low, template.guest_pin_range_high
        )
    )
    domain = template.uri_domain
    if custom_uri is not None:
        custom = uris.validate_custom_uri(custom_uri)
        if await uri_taken(session, custom, domain):
            raise vdx_error("32")
        return Identity(host, guest, custom, uris.custom_uri_with_domain(custom, domain), domain)
    for _ in range(uris.MAX_URI_DRAWS):
        number, with_domain = _draw_uri(template)
        if not check or not await uri_taken(session, number, domain):
            return Identity(host, guest, number, with_domain, domain)
    raise vdx_error("15")


async def new_scheduling_info(
    session: AsyncSession,
    settings: Settings,
    meeting: Meeting,
    org: Organisation,
    user: MeetingUser,
    req: commands.CreateMeeting,
    template: SchedulingTemplate | None,
) -> SchedulingInfo:
    """A new VMR for the new ``meeting`` (inserted already) from the selected template (end of
    spec 2.9; None: selected here), inserted as the meeting is (``insert_new``)."""
    if template is None:
        template = await select_template(session, settings, org, req.schedulingTemplateId)
    # A drawn address in a domain is taken by the insert itself (ON CONFLICT DO NOTHING on the
    # unique key, then a redraw): looking each one up first cost a round trip per booking. A
    # custom address (400/32 when taken) and one without a domain (the unique key never sees
    # NULLs collide) are looked up first.
    insert_takes_uri = req.uriWithoutDomain is None and template.uri_domain is not None
    ident = await draw_identity(
        session,
        template,
        host_pin=req.hostPin,
        guest_pin=req.guestPin,
        custom_uri=req.uriWithoutDomain,
        check=not insert_takes_uri,
    )
    host_pin, guest_pin = ident.host_pin, ident.guest_pin
    uri_without_domain, uri_with_domain, domain = (
        ident.uri_without_domain,
        ident.uri_with_domain,
        ident.domain,
    )

    settings_values: dict[str, Any] = {}
    for column in ROOM_SETTING_FIELDS:
        requested = getattr(req, REQUEST_FIELD[column])
        settings_values[column] = requested if requested is not None else getattr(template, column)
    now = now_utc()
    si = SchedulingInfo(
        uuid=meeting.uuid,
        host_pin=host_pin,
        guest_pin=guest_pin,
        vmr_available_before=template.vmr_available_before or 0,
        max_participants=(
            req.maxParticipants
            if req.maxParticipants and req.maxParticipants > 0
            else template.max_participants
        ),
        end_meeting_on_end_time=(
            req.endMeetingOnEndTime
            if req.endMeetingOnEndTime is not None
            else template.end_meeting_on_end_time
        ),
        uri_with_domain=uri_with_domain,
        uri_without_domain=uri_without_domain,
        uri_domain=domain,
        scheduling_template_id=template.id,
        provision_status=ProvisionStatus.AWAITS_PROVISION,
        meeting=meeting,
        meeting_id=meeting.id,
        organisation=org,
        organisation_id=org.id,
        ivr_theme=template.ivr_theme,
        direct_media=template.direct_media,
        custom_portal_guest=template.custom_portal_guest,
        custom_portal_host=template.custom_portal_host,
        return_url=template.return_url,
        call_type=req.callType if req.callType is not None else template.call_type,
        created_by=user,
        created_by_id=user.id,
        updated_by=None,
        created_time=now,
        pool=False,
        pool_overflow=False,
        new_provisioner=settings.uses_events(org.code),
        **settings_values,
    )
    si.vmr_start_time = vmr_start_time(meeting, si)
    si.portal_link = portal_link(settings, si, meeting)
    if not insert_takes_uri:
        await insert_new(session, si)
    else:
        draws = 1
        while not await insert_new(session, si, skip_conflict_on=_URI_KEY):
            if draws == uris.MAX_URI_DRAWS:
                raise vdx_error("15")
            draws += 1
            si.uri_without_domain, si.uri_with_domain = _draw_uri(template)
            si.portal_link = portal_link(settings, si, meeting)
    await record.scheduling_info_event(session, settings, si, "CREATE")
    await record.audit(session, settings, operation="create", obj=si, user=user.email)
    return si
