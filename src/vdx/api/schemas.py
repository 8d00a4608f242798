"""Request and response bodies of the VDX API v2, field for field as the reference document names
them (``video-api-v2.yaml`` components), so that existing integrations parse them unchanged.

Python attribute names are the JSON names; only ``_links`` needs an alias.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vdx.booking.timefmt import YearTooLong, format_ts, parse_ts
from vdx.store.models import (
    DirectMedia,
    GuestMicrophone,
    MeetingType,
    ProvisionStatus,
    ViewType,
    VmrQuality,
    VmrType,
)

_DATE_TIME_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time"})


def _parse_input(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_ts(value)
        except YearTooLong:
            raise PydanticCustomError(
                "year_too_long", "Date format is wrong, year must only have 4 digits"
            ) from None
        except ValueError as exc:
            raise PydanticCustomError("datetime_format", str(exc)) from None
    if not isinstance(value, datetime):
        # JSON numbers are not date-times here (the schema says string, format date-time); without
        # this, pydantic would read them as Unix epochs.
        raise PydanticCustomError("datetime_type", "Input should be an RFC 3339 date-time string")
    return value


# A date-time read from a request: RFC 3339, fractions dropped, year > 9999 is error 25 (spec 1.0).
InTimestamp = Annotated[datetime, BeforeValidator(_parse_input), _DATE_TIME_SCHEMA]
# A date-time written in a response: yyyy-MM-dd'T'HH:mm:ssXXX (spec 1.0).
OutTimestamp = Annotated[datetime, PlainSerializer(format_ts, return_type=str), _DATE_TIME_SCHEMA]

# JSON numbers and booleans as the schema types them: a `true` is no integer and 1 no boolean
# (pydantic's lax mode would take them; Jackson and schema-driven clients do not).
JsonInt = Annotated[int, Strict()]
JsonBool = Annotated[bool, Strict()]
Int32Pin = Annotated[int, Strict(), Field(ge=1000, le=999999999)]
# The reference validates neither (spec 2.15) and its database rejects longer values with a 500;
# vdx answers 400/10 at the column limits instead (meeting_user.email 100, meeting_label 1024).
OrganiserEmail = Annotated[str, Field(max_length=100)]
Label = Annotated[str, Field(max_length=1024)]


def storable_text(value: str) -> bool:
    """Text every database can store: no NUL character (PostgreSQL rejects it) and valid UTF-8
    (JSON may carry lone surrogates such as ``"\\ud800"``)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _all_storable(data: Any) -> bool:
    if isinstance(data, str):
        return storable_text(data)
    if isinstance(data, dict):
        return all(_all_storable(k) and _all_storable(v) for k, v in data.items())
    if isinstance(data, list | tuple):
        return all(_all_storable(v) for v in data)
    return True


class Body(BaseModel):
    """Request bodies ignore unknown fields, as the reference (Jackson) does. Text that no database
    can store is a 400, not a database error."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if not _all_storable(data):
            raise PydanticCustomError("text_not_storable", "text must be UTF-8 without NUL characters")
        return data


class Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True, use_enum_values=False)


# ---------------------------------------------------------------------------------------------
# shared parts


class AdditionalInformation(BaseModel):
    key: str = Field(max_length=100)
    value: str = Field(max_length=100)


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


class CreateMeeting(Body):
    subject: str = Field(max_length=100)
    startTime: InTimestamp
    endTime: InTimestamp
    description: str | None = Field(None, max_length=500)
    projectCode: str | None = Field(None, max_length=100)
    organizedByEmail: OrganiserEmail | None = None
    maxParticipants: JsonInt | None = Field(0, ge=-(2**31), le=2**31 - 1)
    endMeetingOnEndTime: JsonBool | None = None
    schedulingTemplateId: JsonInt | None = Field(None, ge=-(2**63), le=2**63 - 1)
    meetingType: MeetingType | None = MeetingType.NORMAL
    uuid: UUID | None = None
    externalId: str | None = Field(None, max_length=200)
    guestMicrophone: GuestMicrophone | None = None
    guestPinRequired: JsonBool | None = False
    schedulingInfoReservationId: UUID | None = None
    labels: list[Label] | None = Field(default_factory=list)
    vmrType: VmrType | None = None
    hostView: ViewType | None = None
    guestView: ViewType | None = None
    vmrQuality: VmrQuality | None = None
    enableOverlayText: JsonBool | None = None
    guestsCanPresent: JsonBool | None = None
    forcePresenterIntoMain: JsonBool | None = None
    forceEncryption: JsonBool | None = None
    muteAllGuests: JsonBool | None = None
    uriWithoutDomain: str | None = Field(None, max_length=100)
    guestPin: Int32Pin | None = None
    hostPin: Int32Pin | None = None
    additionalInformation: list[AdditionalInformation] | None = Field(default_factory=list)
    callType: str | None = Field(None, max_length=64)


class UpdateMeeting(Body):
    subject: str = Field(max_length=100)
    startTime: InTimestamp
    endTime: InTimestamp
    description: str | None = Field(None, max_length=500)
    projectCode: str | None = Field(None, max_length=100)
    organizedByEmail: OrganiserEmail | None = None
    labels: list[Label] | None = Field(default_factory=list)
    additionalInformation: list[AdditionalInformation] | None = Field(default_factory=list)


class PatchMeeting(Body):
    """Every field optional; a present non-null value overrides (null = unchanged, spec 1.2.6)."""

    subject: str | None = Field(None, max_length=100)
    startTime: InTimestamp | None = None
    endTime: InTimestamp | None = None
    description: str | None = Field(None, max_length=500)
    projectCode: str | None = Field(None, max_length=100)
    organizedByEmail: OrganiserEmail | None = None
    labels: list[Label] | None = None
    guestMicrophone: GuestMicrophone | None = None
    guestPinRequired: JsonBool | None = None
    guestPin: Int32Pin | None = None
    hostPin: Int32Pin | None = None
    additionalInformation: list[AdditionalInformation] | None = None
    callType: str | None = Field(None, max_length=64)


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
    customPortalGuest: str | None = None
    customPortalHost: str | None = None
    returnUrl: str | None = None
    callType: str | None = None
    meetingDetails: Meeting | None = None
    directMedia: DirectMedia | None = None
    shortLink: str | None = None
    shortlink: str | None = None
    links: SelfLinks = Field(alias="_links")


class CreateSchedulingInfo(Body):
    organizationId: str = Field(max_length=30)
    schedulingTemplateId: JsonInt = Field(ge=-(2**63), le=2**63 - 1)


class UpdateSchedulingInfo(Body):
    provisionStatus: ProvisionStatus
    provisionStatusDescription: str | None = Field(None, max_length=200)
    provisionVmrId: str | None = Field(None, max_length=50)


# ---------------------------------------------------------------------------------------------
# scheduling templates (spec 1.4, 1.6)


class SchedulingTemplateRequest(Body):
    conferencingSysId: JsonInt = Field(ge=-(2**63), le=2**63 - 1)
    uriPrefix: str = Field(max_length=100)
    uriDomain: str = Field(max_length=100)
    hostPinRequired: JsonBool
    hostPinRangeLow: JsonInt | None = Field(None, ge=-(2**63), le=2**63 - 1)
    hostPinRangeHigh: JsonInt | None = Field(None, ge=-(2**63), le=2**63 - 1)
    guestPinRequired: JsonBool
    guestPinRangeLow: JsonInt | None = Field(None, ge=-(2**63), le=2**63 - 1)
    guestPinRangeHigh: JsonInt | None = Field(None, ge=-(2**63), le=2**63 - 1)
    vMRAvailableBefore: JsonInt | None = Field(0, ge=-(2**31), le=2**31 - 1)
    maxParticipants: JsonInt | None = Field(0, ge=-(2**31), le=2**31 - 1)
    endMeetingOnEndTime: JsonBool | None = False
    uriNumberRangeLow: JsonInt = Field(ge=-(2**63), le=2**63 - 1)
    uriNumberRangeHigh: JsonInt = Field(ge=-(2**63), le=2**63 - 1)
    ivrTheme: str | None = Field(None, max_length=100)
    isDefaultTemplate: JsonBool | None = False
    isPoolTemplate: JsonBool | None = False
    customPortalGuest: str | None = Field(None, max_length=200)
    customPortalHost: str | None = Field(None, max_length=200)
    returnUrl: str | None = Field(None, max_length=200)
    vmrType: VmrType | None = VmrType.conference
    hostView: ViewType | None = ViewType.one_main_seven_pips
    guestView: ViewType | None = ViewType.one_main_seven_pips
    vmrQuality: VmrQuality | None = VmrQuality.hd
    enableOverlayText: JsonBool | None = True
    guestsCanPresent: JsonBool | None = True
    forcePresenterIntoMain: JsonBool | None = True
    forceEncryption: JsonBool | None = False
    muteAllGuests: JsonBool | None = False
    directMedia: DirectMedia | None = DirectMedia.never
    callType: str | None = Field(None, max_length=64)


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
