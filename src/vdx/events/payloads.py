"""Event bodies, pure: scheduling-info events (spec 4.2) and audit envelopes (spec 4.4).

Times are ISO instants in UTC, as the reference's Jackson serialisation writes them.
One deliberate fix (spec 2.17.6): the reference's event mapper copies ``callType`` from itself and
so always sends null; vdx sends the scheduling info's call type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from vdx.booking.timefmt import format_ts
from vdx.store.models import Meeting, MeetingUser, SchedulingInfo

MessageType = Literal["CREATE", "UPDATE", "DELETE", "POOL_DELETE"]
Resource = Literal[
    "meeting",
    "schedulingInfo",
    "schedulingTemplate",
    "organisation",
    "conference",
    "node",
    "routingRule",
    "trunk",
    "device",
]
Operation = Literal["create", "update", "delete"]
# what a conference-control action did (``vdx.api.conference_control``)
ControlOperation = Literal[
    "lock",
    "unlock",
    "mute_guests",
    "unmute_guests",
    "layout",
    "end",
    "mute",
    "unmute",
    "admit",
    "disconnect",
    "dial",
    "dial_outcome",
]
# keys of audit data that never go into the stored trail (``vdx.services.audit``)
SECRET_KEYS = frozenset({"hostPin", "guestPin", "historyApiKey", "deviceWebhookEndpointKey", "password"})


def _ts(value: datetime | None) -> str | None:
    return format_ts(value) if value is not None else None


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


def _email(user: MeetingUser | None) -> str | None:
    return user.email if user is not None else None


def scheduling_info_event(si: SchedulingInfo, message_type: MessageType, org_code: str) -> dict[str, Any]:
    """The payload of spec 4.2 (key spelling as the reference's bean naming)."""
    meeting = si.meeting
    return {
        "messageType": message_type,
        "schedulingInfoIdentifier": si.id,
        "uuid": si.uuid,
        "hostPin": si.host_pin,
        "guestPin": si.guest_pin,
        "vmravailableBefore": si.vmr_available_before,
        "vMRStartTime": _ts(si.vmr_start_time),
        "ivrTheme": si.ivr_theme,
        "ivrThemeProvisionId": None,
        "uriWithoutDomain": si.uri_without_domain,
        "uriDomain": si.uri_domain,
        "uriWithDomain": si.uri_with_domain,
        "organisationCode": org_code,
        "portalLink": si.portal_link,
        "maxParticipants": si.max_participants,
        "endMeetingOnEndTime": si.end_meeting_on_end_time,
        "vmrType": _enum(si.vmr_type),
        "hostView": _enum(si.host_view),
        "guestView": _enum(si.guest_view),
        "vmrQuality": _enum(si.vmr_quality),
        "enableOverlayText": si.enable_overlay_text,
        "guestsCanPresent": si.guests_can_present,
        "forcePresenterIntoMain": si.force_presenter_into_main,
        "forceEncryption": si.force_encryption,
        "muteAllGuests": si.mute_all_guests,
        "meetingUser": _email(si.created_by),
        "createdTime": _ts(si.created_time),
        "customPortalGuest": si.custom_portal_guest,
        "customPortalHost": si.custom_portal_host,
        "returnUrl": si.return_url,
        "meetingEndTime": _ts(meeting.end_time) if meeting is not None else None,
        "directMedia": _enum(si.direct_media),
        "provisionVMRId": si.provision_vmr_id,
        "callType": si.call_type,
    }


def meeting_audit_data(m: Meeting) -> dict[str, Any]:
    return {
        "id": m.id,
        "uuid": m.uuid,
        "subject": m.subject,
        "organisation": m.organisation.code,
        "createdBy": _email(m.created_by),
        "createdTime": _ts(m.created_time),
        "updatedBy": _email(m.updated_by),
        "updatedTime": _ts(m.updated_time),
        "organizedBy": _email(m.organized_by),
        "startTime": _ts(m.start_time),
        "endTime": _ts(m.end_time),
        "description": m.description,
        "projectCode": m.project_code,
        "shortId": m.short_id,
        "externalId": m.external_id,
        "meetingLabels": sorted({lbl.label for lbl in m.labels}),
        "guestMicrophone": _enum(m.guest_microphone),
        "guestPinRequired": m.guest_pin_required,
        "additionalInfo": [{"key": a.info_key, "value": a.info_value} for a in m.additional_information],
    }


def scheduling_info_audit_data(si: SchedulingInfo) -> dict[str, Any]:
    return {
        "id": si.id,
        "uuid": si.uuid,
        "hostPin": si.host_pin,
        "guestPin": si.guest_pin,
        "vMRAvailableBefore": si.vmr_available_before,
        "vMRStartTime": _ts(si.vmr_start_time),
        "maxParticipants": si.max_participants,
        "endMeetingOnEndTime": si.end_meeting_on_end_time,
        "uriWithDomain": si.uri_with_domain,
        "uriWithoutDomain": si.uri_without_domain,
        "uriDomain": si.uri_domain,
        "poolOverflow": si.pool_overflow,
        "pool": si.pool,
        "vmrType": _enum(si.vmr_type),
        "hostView": _enum(si.host_view),
        "guestView": _enum(si.guest_view),
        "vmrQuality": _enum(si.vmr_quality),
        "enableOverlayText": si.enable_overlay_text,
        "guestsCanPresent": si.guests_can_present,
        "forcePresenterIntoMain": si.force_presenter_into_main,
        "forceEncryption": si.force_encryption,
        "muteAllGuests": si.mute_all_guests,
        "schedulingTemplate": si.scheduling_template_id,
        "provisionStatus": _enum(si.provision_status),
        "provisionStatusDescription": si.provision_status_description,
        "provisionTimestamp": _ts(si.provision_timestamp),
        "provisionVMRId": si.provision_vmr_id,
        "organisation": si.organisation.code if si.organisation is not None else None,
        "portalLink": si.portal_link,
        "ivrTheme": si.ivr_theme,
        "createdBy": _email(si.created_by),
        "createdTime": _ts(si.created_time),
        "updatedBy": _email(si.updated_by),
        "updatedTime": _ts(si.updated_time),
        "reservationId": si.reservation_id,
        "directMedia": _enum(si.direct_media),
    }


def audit_envelope(
    *,
    organisation_code: str | None,
    resource: Resource,
    operation: Operation | ControlOperation,
    identifier: str | None,
    user: str | None,
    at: datetime,
    audit_data: dict[str, Any],
) -> dict[str, Any]:
    """Envelope version 1 of the VDX audit library (spec 4.4)."""
    return {
        "version": 1,
        "auditEvent": {
            "organisationCode": organisation_code,
            "resource": resource,
            "operation": operation,
            "auditEventDateTime": format_ts(at),
            "source": "video-api",
            "identifier": identifier,
            "user": user,
            "auditData": audit_data,
        },
    }
