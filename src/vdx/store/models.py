"""The persistent model (spec 2.1), in SQLAlchemy 2 declarative form.

The reference keeps the organisation tree in a separate ``groups`` table shared with the
organisation service; vdx embeds that service, so the tree is a ``parent_id`` on the organisation.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vdx.booking.enums import (
    DirectMedia,
    GuestMicrophone,
    ProvisionStatus,
    ViewType,
    VmrQuality,
    VmrType,
)
from vdx.store.db import BigId, UTCDateTime


class Base(AsyncAttrs, DeclarativeBase):
    """``AsyncAttrs`` gives ``obj.awaitable_attrs.rel``: load a relationship only if not loaded."""


def _enum(e: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (no native PG enum) so new literals need no type migration.
    return Enum(e, name=name, native_enum=False, length=40, validate_strings=True)


class Organisation(Base):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(250), unique=True)
    name: Mapped[str] = mapped_column(String(250))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    pool_size: Mapped[int | None] = mapped_column(Integer)
    sms_sender_name: Mapped[str | None] = mapped_column(String(11))
    sms_callback_url: Mapped[str | None] = mapped_column(String(100))
    allow_custom_uri_without_domain: Mapped[bool] = mapped_column(Boolean, default=False)
    history_api_key: Mapped[str | None] = mapped_column(String(100))
    device_webhook_endpoint: Mapped[str | None] = mapped_column(String(255))
    device_webhook_endpoint_key: Mapped[str | None] = mapped_column(String(255))
    created_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its meetings are clinical unless labelled ``non-clinical`` (a vdx addition): clinical use
    # has first priority when capacity is short.
    clinical: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    parent: Mapped[Organisation | None] = relationship(remote_side=[id], lazy="raise")


class MeetingUser(Base):
    __tablename__ = "meeting_user"
    __table_args__ = (UniqueConstraint("organisation_id", "email", name="uq_meeting_user_org_email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    email: Mapped[str] = mapped_column(String(100))

    organisation: Mapped[Organisation] = relationship(lazy="joined")


class Meeting(Base):
    __tablename__ = "meeting"
    __table_args__ = (
        UniqueConstraint("organisation_id", "external_id", name="uq_meeting_org_external_id"),
        Index("ix_meeting_org_start", "organisation_id", "start_time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    subject: Mapped[str] = mapped_column(String(100), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("meeting_user.id"))
    organized_by_id: Mapped[int] = mapped_column(ForeignKey("meeting_user.id"), index=True)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_user.id"))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str | None] = mapped_column(String(500))
    project_code: Mapped[str | None] = mapped_column(String(100))
    created_time: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    short_id: Mapped[str] = mapped_column(String(12), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    guest_microphone: Mapped[GuestMicrophone | None] = mapped_column(
        _enum(GuestMicrophone, "guest_microphone")
    )
    guest_pin_required: Mapped[bool] = mapped_column(Boolean, default=False)

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    created_by: Mapped[MeetingUser] = relationship(foreign_keys=[created_by_id], lazy="joined")
    organized_by: Mapped[MeetingUser] = relationship(foreign_keys=[organized_by_id], lazy="joined")
    updated_by: Mapped[MeetingUser | None] = relationship(foreign_keys=[updated_by_id], lazy="joined")
    labels: Mapped[list[MeetingLabel]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="MeetingLabel.id"
    )
    additional_information: Mapped[list[MeetingAdditionalInfo]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="MeetingAdditionalInfo.id"
    )
    scheduling_info: Mapped[SchedulingInfo | None] = relationship(
        back_populates="meeting", lazy="selectin", uselist=False
    )


class MeetingLabel(Base):
    __tablename__ = "meeting_label"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(1024), index=True)


class MeetingAdditionalInfo(Base):
    __tablename__ = "meeting_additional_info"
    __table_args__ = (UniqueConstraint("meeting_id", "info_key", name="uq_meeting_additional_info_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    info_key: Mapped[str] = mapped_column(String(100))
    info_value: Mapped[str] = mapped_column(String(100))


class RoomSettings:
    """Room settings shared by templates and scheduling infos (spec 2.8)."""

    vmr_type: Mapped[VmrType | None] = mapped_column(_enum(VmrType, "vmr_type"))
    host_view: Mapped[ViewType | None] = mapped_column(_enum(ViewType, "view_type"))
    guest_view: Mapped[ViewType | None] = mapped_column(_enum(ViewType, "view_type"))
    vmr_quality: Mapped[VmrQuality | None] = mapped_column(_enum(VmrQuality, "vmr_quality"))
    enable_overlay_text: Mapped[bool | None] = mapped_column(Boolean)
    guests_can_present: Mapped[bool | None] = mapped_column(Boolean)
    force_presenter_into_main: Mapped[bool | None] = mapped_column(Boolean)
    force_encryption: Mapped[bool | None] = mapped_column(Boolean)
    mute_all_guests: Mapped[bool | None] = mapped_column(Boolean)
    direct_media: Mapped[DirectMedia | None] = mapped_column(_enum(DirectMedia, "direct_media"))
    custom_portal_guest: Mapped[str | None] = mapped_column(String(200))
    custom_portal_host: Mapped[str | None] = mapped_column(String(200))
    return_url: Mapped[str | None] = mapped_column(String(200))
    call_type: Mapped[str | None] = mapped_column(String(64))
    ivr_theme: Mapped[str | None] = mapped_column(String(100))
    max_participants: Mapped[int] = mapped_column(Integer, default=0)
    end_meeting_on_end_time: Mapped[bool] = mapped_column(Boolean, default=False)


ROOM_SETTING_FIELDS = (
    "vmr_type",
    "host_view",
    "guest_view",
    "vmr_quality",
    "enable_overlay_text",
    "guests_can_present",
    "force_presenter_into_main",
    "force_encryption",
    "mute_all_guests",
)


class SchedulingTemplate(RoomSettings, Base):
    __tablename__ = "scheduling_template"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    conferencing_sys_id: Mapped[int] = mapped_column(BigId)
    uri_prefix: Mapped[str | None] = mapped_column(String(100))
    uri_domain: Mapped[str | None] = mapped_column(String(100))
    host_pin_required: Mapped[bool] = mapped_column(Boolean, default=False)
    host_pin_range_low: Mapped[int | None] = mapped_column(BigId)
    host_pin_range_high: Mapped[int | None] = mapped_column(BigId)
    guest_pin_required: Mapped[bool] = mapped_column(Boolean, default=False)
    guest_pin_range_low: Mapped[int | None] = mapped_column(BigId)
    guest_pin_range_high: Mapped[int | None] = mapped_column(BigId)
    vmr_available_before: Mapped[int] = mapped_column(Integer, default=0)
    uri_number_range_low: Mapped[int] = mapped_column(BigId)
    uri_number_range_high: Mapped[int] = mapped_column(BigId)
    is_default_template: Mapped[bool] = mapped_column(Boolean, default=False)
    is_pool_template: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_user.id"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_user.id"))
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_user.id"))
    created_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_time: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation | None] = relationship(lazy="joined")
    created_by: Mapped[MeetingUser | None] = relationship(foreign_keys=[created_by_id], lazy="joined")
    updated_by: Mapped[MeetingUser | None] = relationship(foreign_keys=[updated_by_id], lazy="joined")


class SchedulingInfo(RoomSettings, Base):
    """The VMR provisioning record: one per meeting, or an unattached pool VMR."""

    __tablename__ = "scheduling_info"
    __table_args__ = (
        UniqueConstraint("uri_without_domain", "uri_domain", name="uq_scheduling_info_uri"),
        Index("ix_scheduling_info_status", "provision_status", "vmr_start_time"),
        Index("ix_scheduling_info_pool", "organisation_id", "meeting_id", "provision_status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host_pin: Mapped[int | None] = mapped_column(BigId)
    guest_pin: Mapped[int | None] = mapped_column(BigId)
    vmr_available_before: Mapped[int] = mapped_column(Integer, default=0)
    vmr_start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uri_with_domain: Mapped[str | None] = mapped_column(String(200), index=True)
    uri_without_domain: Mapped[str | None] = mapped_column(String(100))
    uri_domain: Mapped[str | None] = mapped_column(String(100))
    scheduling_template_id: Mapped[int | None] = mapped_column(ForeignKey("scheduling_template.id"))
    provision_status: Mapped[ProvisionStatus] = mapped_column(_enum(ProvisionStatus, "provision_status"))
    provision_status_description: Mapped[str | None] = mapped_column(String(200))
    provision_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provision_vmr_id: Mapped[str | None] = mapped_column(String(50))
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meeting.id"), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    portal_link: Mapped[str | None] = mapped_column(String(1000))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_user.id"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_user.id"))
    created_time: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reservation_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    pool_overflow: Mapped[bool] = mapped_column(Boolean, default=False)
    pool: Mapped[bool] = mapped_column(Boolean, default=False)
    new_provisioner: Mapped[bool] = mapped_column(Boolean, default=False)

    meeting: Mapped[Meeting | None] = relationship(back_populates="scheduling_info", lazy="selectin")
    organisation: Mapped[Organisation] = relationship(lazy="joined")
    created_by: Mapped[MeetingUser | None] = relationship(foreign_keys=[created_by_id], lazy="joined")
    updated_by: Mapped[MeetingUser | None] = relationship(foreign_keys=[updated_by_id], lazy="joined")


class SchedulingStatus(Base):
    """Append-only provisioning history (spec 2.1 scheduling_status)."""

    __tablename__ = "scheduling_status"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scheduling_info_id: Mapped[int] = mapped_column(
        ForeignKey("scheduling_info.id", ondelete="CASCADE"), index=True
    )
    meeting_id: Mapped[int | None] = mapped_column(BigId)
    time_stamp: Mapped[datetime] = mapped_column(UTCDateTime)
    provision_status: Mapped[ProvisionStatus] = mapped_column(_enum(ProvisionStatus, "provision_status"))
    provision_status_description: Mapped[str | None] = mapped_column(String(200))


class PoolHistory(Base):
    """Per-minute pool snapshot (spec 2.1 pool_history)."""

    __tablename__ = "pool_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organisation_code: Mapped[str] = mapped_column(String(250), index=True)
    desired_pool_size: Mapped[int] = mapped_column(Integer)
    available_pool_rooms: Mapped[int] = mapped_column(Integer)
    status_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Outbox(Base):
    """Events written in the same transaction as the change they describe; published afterwards."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    ordering_key: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_time: Mapped[datetime] = mapped_column(UTCDateTime)
    published_time: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class JobLock(Base):
    """Cluster lock row for scheduled jobs on SQLite (PostgreSQL uses advisory locks)."""

    __tablename__ = "job_lock"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_by: Mapped[str] = mapped_column(String(100))


class UsageDay(Base):
    """Participants and participant-seconds per organisation per UTC day, added to by the
    conferencing node (``vdx.services.usage``) for the operator dashboard."""

    __tablename__ = "usage_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    organisation_code: Mapped[str] = mapped_column(String(250), primary_key=True)
    participants: Mapped[int] = mapped_column(Integer, default=0)
    participant_seconds: Mapped[int] = mapped_column(Integer, default=0)


class AuditRecord(Base):
    """One change, kept for the audit trail (``vdx.services.audit``): who did what to which
    resource of which organisation, and when. Written in the change's own transaction (bookings,
    templates, organisations) or right after the action (conference control); no PINs."""

    __tablename__ = "audit_record"
    __table_args__ = (Index("ix_audit_record_org_at", "organisation_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # no foreign key: the trail outlives what it describes (organisations are only soft-deleted)
    organisation_id: Mapped[int | None] = mapped_column(BigId)
    organisation_code: Mapped[str | None] = mapped_column(String(250))
    resource: Mapped[str] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(40))
    identifier: Mapped[str | None] = mapped_column(String(250))
    meeting_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    actor: Mapped[str | None] = mapped_column(String(250))
    data: Mapped[str] = mapped_column(Text)


class NodeMinute(Base):
    """One minute of one conferencing node (``vdx.services.node_minutes``): the most HD units in
    use during it, the capacity and clinical reserve then. Its children below hold the minute's
    participants and refused joins; a minute is stored whole, replaced when sent again."""

    __tablename__ = "node_minute"

    node: Mapped[str] = mapped_column(String(100), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    capacity: Mapped[float] = mapped_column(Float)
    units_in_use: Mapped[float] = mapped_column(Float)
    reserve: Mapped[float] = mapped_column(Float)
    participants: Mapped[int] = mapped_column(Integer)


class NodeMinuteParticipants(Base):
    """Participants counted in a node's minute by leg kind and meeting quality."""

    __tablename__ = "node_minute_participants"

    node: Mapped[str] = mapped_column(String(100), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    quality: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class NodeMinuteOrganisation(Base):
    """Participants counted in a node's minute per organisation and clinical decision."""

    __tablename__ = "node_minute_organisation"

    node: Mapped[str] = mapped_column(String(100), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    organisation_code: Mapped[str] = mapped_column(String(250), primary_key=True)
    clinical: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    participants: Mapped[int] = mapped_column(Integer)


class RefusedJoin(Base):
    """Joins a node refused in a minute, by reason, organisation and clinical decision."""

    __tablename__ = "refused_join"

    node: Mapped[str] = mapped_column(String(100), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    organisation_code: Mapped[str] = mapped_column(String(250), primary_key=True)
    clinical: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class RoutingRule(Base):
    """A gateway routing rule (``vdx.booking.routing``): where a call to an alias that is no room
    goes. Lists are stored as comma-separated text (domains and networks hold no commas)."""

    __tablename__ = "routing_rule"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer)
    match: Mapped[str] = mapped_column(String(500))
    replace: Mapped[str] = mapped_column(String(500))
    target: Mapped[str] = mapped_column(String(20))
    trunk: Mapped[str | None] = mapped_column(String(100))
    source_domains: Mapped[str] = mapped_column(Text, default="")
    source_networks: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_time: Mapped[datetime] = mapped_column(UTCDateTime)


class Trunk(Base):
    """An outbound SIP trunk (``vdx.booking.routing.Trunk``); its password never leaves the API
    except to the nodes, which answer the trunk's digest challenges with it."""

    __tablename__ = "trunk"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    proxy: Mapped[str] = mapped_column(String(300))
    transport: Mapped[str] = mapped_column(String(10))
    username: Mapped[str | None] = mapped_column(String(200))
    password: Mapped[str | None] = mapped_column(String(200))
    from_domain: Mapped[str | None] = mapped_column(String(253))
    max_calls: Mapped[int] = mapped_column(Integer, default=0)
    updated_time: Mapped[datetime] = mapped_column(UTCDateTime)


class AutoDial(Base):
    """An address a meeting's room calls when its conference starts (``vdx.booking.auto_dial``,
    a vdx extension of the booking API, kept apart from every VDX field)."""

    __tablename__ = "auto_dial"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    destination: Mapped[str] = mapped_column(String(512))
    role: Mapped[str] = mapped_column(String(10))
    display_name: Mapped[str | None] = mapped_column(String(64))
    trunk: Mapped[str | None] = mapped_column(String(100))


class Device(Base):
    """A device a browser may wait under on the point-to-point page (``vdx.booking.devices``):
    only its secret's salted hash is kept; the secret is shown once, when it is made."""

    __tablename__ = "device"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    created_time: Mapped[datetime] = mapped_column(UTCDateTime)
