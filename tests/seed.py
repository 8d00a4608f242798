"""Rows written straight through the ORM, for tests that need state no endpoint of theirs makes
(or must not depend on ``POST /v2/meetings``): meetings with their scheduling info (spec 2.9 "New
SI details"), provisioned pool VMRs (spec 2.13), reservations (spec 1.3.7) and scheduling
templates (spec 2.3). Relationships are set as objects: async SQLAlchemy cannot lazy-load them
later in the same session.

Use from a test module as ``from tests import seed``.
"""

from __future__ import annotations

import itertools
import uuid as uuidlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from vdx.booking.enums import ProvisionStatus, ViewType, VmrQuality, VmrType
from vdx.events import record
from vdx.services import meeting_users, organisations
from vdx.store.db import now_utc
from vdx.store.models import Meeting, Organisation, SchedulingInfo, SchedulingStatus, SchedulingTemplate

# Room settings as the template defaults of spec 1.4 give them.
_ROOM_DEFAULTS: dict[str, Any] = {
    "vmr_type": VmrType.conference,
    "host_view": ViewType.one_main_seven_pips,
    "guest_view": ViewType.one_main_seven_pips,
    "vmr_quality": VmrQuality.hd,
    "enable_overlay_text": True,
    "guests_can_present": True,
    "force_presenter_into_main": True,
    "force_encryption": False,
    "mute_all_guests": False,
    "direct_media": "never",
    "max_participants": 10,
    "end_meeting_on_end_time": False,
}

_counter = iter(range(70000000, 80000000))
_numbers = itertools.count(10_000_000)


async def _org(session: Any, code: str) -> Organisation:
    return (await session.execute(select(Organisation).where(Organisation.code == code))).scalar_one()


def _si_fields(number: int, domain: str) -> dict[str, Any]:
    return {
        "uri_without_domain": str(number),
        "uri_domain": domain,
        "uri_with_domain": f"{number}@{domain}",
        "host_pin": 1_000_000 + number % 1000,
        "guest_pin": 1000 + number % 1000,
    } | _ROOM_DEFAULTS


async def meeting_with_si(
    api: Any,
    org_code: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    vmr_available_before: int = 0,
    status: ProvisionStatus = ProvisionStatus.AWAITS_PROVISION,
    new_provisioner: bool = False,
    email: str = "organiser@example.dk",
    subject: str = "Seeded meeting",
    uri_number: int | None = None,
    domain: str = "vdx.test",
    description: str = "seeded",
    guest_microphone: str | None = None,
    create_event: bool = False,
    **si_fields: Any,
) -> str:
    """A meeting and its scheduling info (uuid = meeting uuid); returns the uuid. Scheduling-info
    columns can be overridden by name (``host_pin=None``); ``create_event`` records its CREATE
    event in the same transaction, as a booking does (spec 4.2)."""
    start = start or now_utc() + timedelta(hours=1)
    end = end or start + timedelta(hours=1)
    number = uri_number if uri_number is not None else next(_numbers)
    meeting_uuid = str(uuidlib.uuid4())
    async with api.app.state.sessions() as s, s.begin():
        org = await _org(s, org_code)
        user = await meeting_users.get_or_create(s, org, email)
        created = now_utc()
        meeting = Meeting(
            uuid=meeting_uuid,
            subject=subject,
            organisation=org,
            created_by=user,
            organized_by=user,
            start_time=start,
            end_time=end,
            created_time=created,
            short_id=uuidlib.uuid4().hex[:12],
            guest_pin_required=False,
            guest_microphone=guest_microphone,
        )
        si = SchedulingInfo(
            uuid=meeting_uuid,
            meeting=meeting,
            organisation=org,
            created_by=user,
            created_time=created,
            vmr_available_before=vmr_available_before,
            vmr_start_time=start - timedelta(minutes=vmr_available_before),
            provision_status=status,
            provision_status_description=description,
            new_provisioner=new_provisioner,
            portal_link=f"https://portal.test/?conference={number}@{domain}",
            **(_si_fields(number, domain) | si_fields),
        )
        s.add_all([meeting, si])
        if create_event:
            await record.scheduling_info_event(s, api.settings, si, "CREATE")
    return meeting_uuid


async def pool_vmr(
    api: Any,
    org_code: str,
    *,
    status: ProvisionStatus = ProvisionStatus.PROVISIONED_OK,
    provisioned_at: datetime | None = None,
    reservation_id: str | None = None,
    uri_without_domain: str | None = None,
    domain: str | None = None,
    host_pin: int | None = 11112222,
    guest_pin: int | None = 3333,
    new_provisioner: bool = False,
    created_time: datetime | None = None,
    attached: bool = False,
    **fields: Any,
) -> SchedulingInfo:
    """A pool VMR of ``org_code`` (spec 1.3.2 shape: ``pool`` set), provisioned 10 minutes ago
    unless told otherwise (old enough for the default ``pool_minimum_age_sec`` of 60 s). Room
    settings default to the template defaults of spec 1.4 and can be overridden by column name
    (``vmr_quality="sd"``). ``attached`` links a fresh meeting to it, as an ad-hoc meeting that
    took it from the pool would."""
    number = uri_without_domain or str(next(_counter))
    dom = domain or api.settings.sip_domain
    si_uuid = str(uuidlib.uuid4())
    async with api.app.state.sessions() as s, s.begin():
        org = await organisations.by_code(s, org_code)
        assert org is not None, f"no organisation {org_code}"
        now = now_utc()
        meeting = None
        if attached:
            user = await meeting_users.get_or_create(s, org, "pool-filler@example.dk")
            meeting = Meeting(
                uuid=si_uuid,
                subject="attached",
                organisation=org,
                created_by=user,
                organized_by=user,
                start_time=now,
                end_time=now + timedelta(hours=1),
                created_time=now,
                short_id=uuidlib.uuid4().hex[:12],
                guest_pin_required=False,
            )
            s.add(meeting)
        si = SchedulingInfo(
            uuid=si_uuid,
            meeting=meeting,
            host_pin=host_pin,
            guest_pin=guest_pin,
            vmr_available_before=0,
            uri_with_domain=f"{number}@{dom}",
            uri_without_domain=number,
            uri_domain=dom,
            provision_status=status,
            provision_status_description="Pooled and provisioned."
            if status == ProvisionStatus.PROVISIONED_OK
            else None,
            provision_timestamp=provisioned_at or now - timedelta(minutes=10),
            provision_vmr_id=f"vmr-{number}",
            organisation_id=org.id,
            created_time=created_time or now - timedelta(minutes=15),
            reservation_id=reservation_id,
            pool=True,
            pool_overflow=False,
            new_provisioner=new_provisioner,
            **(_ROOM_DEFAULTS | {"direct_media": "never"} | fields),
        )
        s.add(si)
        await s.flush()
        s.add(
            SchedulingStatus(
                scheduling_info_id=si.id,
                time_stamp=si.provision_timestamp,
                provision_status=status,
                provision_status_description=si.provision_status_description,
            )
        )
    return si


async def template(api: Any, org_code: str | None, **fields: Any) -> int:
    """A scheduling template of ``org_code`` (None = shared); returns its id."""
    values: dict[str, Any] = {
        "conferencing_sys_id": 1,
        "uri_prefix": "",
        "uri_domain": api.settings.sip_domain,
        "host_pin_required": False,
        "guest_pin_required": False,
        "vmr_available_before": 0,
        "max_participants": 0,
        "end_meeting_on_end_time": False,
        "uri_number_range_low": 1000,
        "uri_number_range_high": 9999,
        "is_default_template": False,
        "is_pool_template": False,
        "created_time": now_utc(),
    } | fields
    async with api.app.state.sessions() as s, s.begin():
        org_id = None
        if org_code is not None:
            org = await organisations.by_code(s, org_code)
            assert org is not None
            org_id = org.id
        t = SchedulingTemplate(organisation_id=org_id, **values)
        s.add(t)
        await s.flush()
        return t.id


async def scheduling_info_of(api: Any, meeting_uuid: str) -> SchedulingInfo | None:
    """The stored scheduling info with that uuid (scheduling-info endpoints are not ours)."""
    async with api.app.state.sessions() as s:
        return (
            await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == meeting_uuid))
        ).scalar_one_or_none()


async def set_status(api: Any, meeting_uuid: str, status: ProvisionStatus) -> None:
    """Move a meeting's VMR to ``status`` as a provisioner's report would (spec 1.3.4)."""
    async with api.app.state.sessions() as s, s.begin():
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == meeting_uuid))).scalar_one()
        si.provision_status = status
        si.provision_timestamp = now_utc()


def meeting_body(start: datetime | None = None, minutes: int = 60, **fields: Any) -> dict[str, Any]:
    """A create-meeting body; by default a scheduled meeting a day ahead (spec 1.2.4)."""
    start = start or now_utc() + timedelta(days=1)
    return {
        "subject": "Consultation",
        "startTime": start.isoformat(),
        "endTime": (start + timedelta(minutes=minutes)).isoformat(),
    } | fields


async def outbox(api: Any, subject: str | None = None) -> list[dict[str, Any]]:
    """Events recorded so far (decoded payloads), oldest first; ``subject`` filters."""
    import json

    from vdx.store.models import Outbox

    async with api.app.state.sessions() as s:
        rows = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
    return [json.loads(r.payload) for r in rows if subject is None or r.subject == subject]


async def set_org(api: Any, code: str, **fields: Any) -> None:
    """Change organisation columns directly (e.g. ``allow_custom_uri_without_domain=True``)."""
    async with api.app.state.sessions() as s, s.begin():
        org = await organisations.by_code(s, code)
        assert org is not None
        for k, v in fields.items():
            setattr(org, k, v)
