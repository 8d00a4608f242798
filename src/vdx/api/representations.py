"""Rows -> response bodies (spec 1.6). One place, so every endpoint shows a resource the same way:
from ORM entities, or from the column records of the hottest reads (``vdx.store.records``).

Links are absolute on ``VDX_PUBLIC_URL`` + context (the reference forces https because it always
sits behind TLS termination; vdx takes the scheme from its public URL instead).
"""

from __future__ import annotations

from uuid import UUID

from vdx.api import schemas
from vdx.booking import commands
from vdx.booking.shortids import short_link
from vdx.settings import Settings
from vdx.store.models import Meeting, MeetingUser, SchedulingInfo, SchedulingTemplate
from vdx.store.records import Record


def api_base(settings: Settings) -> str:
    return f"{settings.public_url_clean}{settings.api_context}/v2"


def meeting_user(user: MeetingUser | Record | None) -> schemas.MeetingUser:
    """``updatedBy`` is an object with null fields when never updated (spec 1.6)."""
    if user is None:
        return schemas.MeetingUser(organisationId=None, email=None)
    return schemas.MeetingUser(organisationId=user.organisation.code, email=user.email)


def meeting(settings: Settings, m: Meeting | Record) -> schemas.Meeting:
    base = api_base(settings)
    link = short_link(settings.short_link_base, m.short_id)
    return schemas.Meeting(
        subject=m.subject,
        uuid=UUID(m.uuid),
        createdBy=meeting_user(m.created_by),
        updatedBy=meeting_user(m.updated_by),
        organizedBy=meeting_user(m.organized_by),
        startTime=m.start_time,
        endTime=m.end_time,
        description=m.description,
        projectCode=m.project_code,
        createdTime=m.created_time,
        updatedTime=m.updated_time,
        shortId=m.short_id,
        shortLink=link,
        shortlink=link,
        externalId=m.external_id,
        guestMicrophone=m.guest_microphone,
        guestPinRequired=m.guest_pin_required,
        labels=[lbl.label for lbl in m.labels],
        additionalInformation=[
            commands.AdditionalInformation(key=a.info_key, value=a.info_value)
            for a in m.additional_information
        ],
        links=schemas.MeetingLinks(
            self=schemas.Href(href=f"{base}/meetings/{m.uuid}"),
            scheduling_info=schemas.Href(href=f"{base}/scheduling-info/{m.uuid}"),
        ),
    )


def scheduling_info(settings: Settings, si: SchedulingInfo | Record) -> schemas.SchedulingInfo:
    m = si.meeting
    link = short_link(settings.short_link_base, m.short_id) if m is not None else None
    return schemas.SchedulingInfo(
        uuid=UUID(si.uuid),
        hostPin=si.host_pin,
        guestPin=si.guest_pin,
        vmrAvailableBefore=si.vmr_available_before,
        maxParticipants=si.max_participants,
        endMeetingOnEndTime=si.end_meeting_on_end_time,
        uriWithDomain=si.uri_with_domain,
        uriWithoutDomain=si.uri_without_domain,
        provisionStatus=si.provision_status,
        provisionStatusDescription=si.provision_status_description,
        portalLink=si.portal_link,
        ivrTheme=si.ivr_theme,
        provisionTimestamp=si.provision_timestamp,
        provisionVmrId=si.provision_vmr_id,
        vmrType=si.vmr_type,
        hostView=si.host_view,
        guestView=si.guest_view,
        vmrQuality=si.vmr_quality,
        enableOverlayText=si.enable_overlay_text,
        guestsCanPresent=si.guests_can_present,
        forcePresenterIntoMain=si.force_presenter_into_main,
        forceEncryption=si.force_encryption,
        muteAllGuests=si.mute_all_guests,
        createdBy=meeting_user(si.created_by),
        updatedBy=meeting_user(si.updated_by),
        createdTime=si.created_time,
        updatedTime=si.updated_time,
        reservationId=UUID(si.reservation_id) if si.reservation_id else None,
        organisationCode=si.organisation.code,
        customPortalGuest=si.custom_portal_guest,
        customPortalHost=si.custom_portal_host,
        returnUrl=si.return_url,
        callType=si.call_type,
        meetingDetails=meeting(settings, m) if m is not None else None,
        directMedia=si.direct_media,
        shortLink=link,
        shortlink=link,
        links=schemas.SelfLinks(self=schemas.Href(href=f"{api_base(settings)}/scheduling-info/{si.uuid}")),
    )


def scheduling_template(settings: Settings, t: SchedulingTemplate) -> schemas.SchedulingTemplate:
    return schemas.SchedulingTemplate(
        id=t.id,
        organisationId=t.organisation.code if t.organisation else None,
        conferencingSysId=t.conferencing_sys_id,
        uriPrefix=t.uri_prefix,
        uriDomain=t.uri_domain,
        hostPinRequired=t.host_pin_required,
        hostPinRangeLow=t.host_pin_range_low,
        hostPinRangeHigh=t.host_pin_range_high,
        guestPinRequired=t.guest_pin_required,
        guestPinRangeLow=t.guest_pin_range_low,
        guestPinRangeHigh=t.guest_pin_range_high,
        vMRAvailableBefore=t.vmr_available_before,
        maxParticipants=t.max_participants,
        endMeetingOnEndTime=t.end_meeting_on_end_time,
        uriNumberRangeLow=t.uri_number_range_low,
        uriNumberRangeHigh=t.uri_number_range_high,
        ivrTheme=t.ivr_theme,
        isDefaultTemplate=t.is_default_template,
        isPoolTemplate=t.is_pool_template,
        customPortalGuest=t.custom_portal_guest,
        customPortalHost=t.custom_portal_host,
        returnUrl=t.return_url,
        vmrType=t.vmr_type,
        hostView=t.host_view,
        guestView=t.guest_view,
        vmrQuality=t.vmr_quality,
        enableOverlayText=t.enable_overlay_text,
        guestsCanPresent=t.guests_can_present,
        forcePresenterIntoMain=t.force_presenter_into_main,
        forceEncryption=t.force_encryption,
        muteAllGuests=t.mute_all_guests,
        directMedia=t.direct_media,
        callType=t.call_type,
        createdBy=meeting_user(t.created_by) if t.created_by else None,
        updatedBy=meeting_user(t.updated_by) if t.updated_by else None,
        createdTime=t.created_time,
        updatedTime=t.updated_time,
        links=schemas.SelfLinks(self=schemas.Href(href=f"{api_base(settings)}/scheduling-templates/{t.id}")),
    )
