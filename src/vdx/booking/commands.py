"""What a client asks of the booking (spec 1.2-1.4): the request bodies of the VDX API v2, field for
field as the reference names them, so that existing integrations send them unchanged.

Services take these; their validation (types, limits, storable text) is a booking rule, not HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from vdx.booking.enums import (
    DirectMedia,
    GuestMicrophone,
    MeetingType,
    ProvisionStatus,
    ViewType,
    VmrQuality,
    VmrType,
)
from vdx.booking.timefmt import YearTooLong, parse_ts

DATE_TIME_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time"})


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
InTimestamp = Annotated[datetime, BeforeValidator(_parse_input), DATE_TIME_SCHEMA]

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


class AdditionalInformation(BaseModel):
    key: str = Field(max_length=100)
    value: str = Field(max_length=100)


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


class CreateSchedulingInfo(Body):
    organizationId: str = Field(max_length=30)
    schedulingTemplateId: JsonInt = Field(ge=-(2**63), le=2**63 - 1)


class UpdateSchedulingInfo(Body):
    provisionStatus: ProvisionStatus
    provisionStatusDescription: str | None = Field(None, max_length=200)
    provisionVmrId: str | None = Field(None, max_length=50)


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
