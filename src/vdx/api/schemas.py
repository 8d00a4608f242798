"""Response bodies of the VDX API v2, field for field as the reference document names them
(``video-api-v2.yaml`` components), so that existing integrations parse them unchanged; the
request bodies are the booking's commands (``vdx.booking.commands``).

Python attribute names are the JSON names; only ``_links`` needs an alias.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from vdx.booking.commands import DATE_TIME_SCHEMA, AdditionalInformation
from vdx.booking.enums import DirectMedia, GuestMicrophone, ProvisionStatus, ViewType, VmrQuality, VmrType
from vdx.booking.timefmt import format_ts

# A date-time written in a response: yyyy-MM-dd'T'HH:mm:ssXXX (spec 1.0).
OutTimestamp = Annotated[datetime, PlainSerializer(format_ts, return_type=str), DATE_TIME_SCHEMA]


class Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True, use_enum_values=False)


# ---------------------------------------------------------------------------------------------
# shared parts


class MeetingUser(Out):
    organisationId: str | None = None
    email: str | None = None


class Href(Out):
    href: str


class MeetingLinks(Out):
    self: Href
    scheduling_info: Href | None = Field(None, alias="scheduling-info")


class SelfLinks(Out):
    self: Href


# ---------------------------------------------------------------------------------------------
# meetings (spec 1.2, 1.6)


class Meeting(Out):
    subject: str
    uuid: UUID
    createdBy: MeetingUser
    updatedBy: MeetingUser
    organizedBy: MeetingUser
    startTime: OutTimestamp
    endTime: OutTimestamp
    description: str | None = None
    projectCode: str | None = None
    createdTime: OutTimestamp | None = None
    updatedTime: OutTimestamp | None = None
    shortId: str
    shortLink: str | None = None
    shortlink: str | None = None
    externalId: str | None = None
    guestMicrophone: GuestMicrophone | None = None
    guestPinRequired: bool | None = None
    labels: list[str] = Field(default_factory=list)
    additionalInformation: list[AdditionalInformation] = Field(default_factory=list)
    links: MeetingLinks = Field(alias="_links")


# ---------------------------------------------------------------------------------------------
# scheduling info (spec 1.3, 1.6)


class SchedulingInfo(Out):
    uuid: UUID
    hostPin: int | None = None
    guestPin: int | None = None
    vmrAvailableBefore: int
    maxParticipants: int
    endMeetingOnEndTime: bool
    uriWithDomain: str | None
    uriWithoutDomain: str | None
    provisionStatus: ProvisionStatus
    provisionStatusDescription: str | None = None
    portalLink: str | None = None
    ivrTheme: str | None = None
    provisionTimestamp: OutTimestamp | None = None
    provisionVmrId: str | None = None
    vmrType: VmrType | None = None
    hostView: ViewType | None = None
    guestView: ViewType | None = None
    vmrQuality: VmrQuality | None = None
    enableOverlayText: bool | None = None
    guestsCanPresent: bool | None = None
    forcePresenterIntoMain: bool | None = None
    forceEncryption: bool | None = None
    muteAllGuests: bool | None = None
    createdBy: MeetingUser | None = None
    updatedBy: MeetingUser | None = None
    createdTime: OutTimestamp | None = None
    updatedTime: OutTimestamp | None = None
    reservationId: UUID | None = None
    organisationCode: str | None = Field(
        None,
        description="vdx extension: the code of the organisation the VMR belongs to (its meeting's), "
        "named as in the scheduling-info event (spec 4.2)",
    )
    customPortalGuest: str | None = None
    customPortalHost: str | None = None
    returnUrl: str | None = None
    callType: str | None = None
    meetingDetails: Meeting | None = None
    directMedia: DirectMedia | None = None
    shortLink: str | None = None
    shortlink: str | None = None
    links: SelfLinks = Field(alias="_links")


# ---------------------------------------------------------------------------------------------
# scheduling templates (spec 1.4, 1.6)


class SchedulingTemplate(Out):
    id: int
    organisationId: str | None
    conferencingSysId: int
    uriPrefix: str | None
    uriDomain: str | None
    hostPinRequired: bool
    hostPinRangeLow: int | None = None
    hostPinRangeHigh: int | None = None
    guestPinRequired: bool
    guestPinRangeLow: int | None = None
    guestPinRangeHigh: int | None = None
    vMRAvailableBefore: int
    maxParticipants: int
    endMeetingOnEndTime: bool
    uriNumberRangeLow: int
    uriNumberRangeHigh: int
    ivrTheme: str | None
    isDefaultTemplate: bool | None = None
    isPoolTemplate: bool
    customPortalGuest: str | None = None
    customPortalHost: str | None = None
    returnUrl: str | None = None
    vmrType: VmrType | None = None
    hostView: ViewType | None = None
    guestView: ViewType | None = None
    vmrQuality: VmrQuality | None = None
    enableOverlayText: bool | None = None
    guestsCanPresent: bool | None = None
    forcePresenterIntoMain: bool | None = None
    forceEncryption: bool | None = None
    muteAllGuests: bool | None = None
    directMedia: DirectMedia | None
    callType: str | None = None
    createdBy: MeetingUser | None = None
    updatedBy: MeetingUser | None = None
    createdTime: OutTimestamp | None = None
    updatedTime: OutTimestamp | None = None
    links: SelfLinks = Field(alias="_links")


# ---------------------------------------------------------------------------------------------
# pool, info, errors


class PoolInfo(Out):
    organisationId: str
    desiredPoolSize: int | None = None
    availablePoolSize: int | None = None
    schedulingTemplate: SchedulingTemplate | None = None
    schedulingInfoList: list[SchedulingInfo] = Field(default_factory=list)


class InfoItem(Out):
    key: str
    value: Any


class Info(Out):
    info: list[InfoItem]


class DetailedError(Out):
    timestamp: str
    status: int
    error: str
    path: str
    detailed_error: str | None
    detailed_error_code: str
