"""Seeding meetings, scheduling infos and templates straight through the ORM, for tests of the
read and provisioner endpoints that must not depend on ``POST /v2/meetings`` (built elsewhere).

Rows get the values a created meeting would have (spec 2.9 "New SI details"); every helper
returns the uuid (or id) the API exposes. Relationships are set as objects (async SQLAlchemy
cannot lazy-load them later in the same session)."""

from __future__ import annotations

import itertools
import uuid as uuidlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from vdx.services import meeting_users
from vdx.store.db import now_utc
from vdx.store.models import (
    Meeting,
    Organisation,
    ProvisionStatus,
    SchedulingInfo,
    SchedulingTemplate,
    ViewType,
    VmrQuality,
    VmrType,
)

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
        "vmr_type": VmrType.conference,
        "host_view": ViewType.one_main_seven_pips,
        "guest_view": ViewType.one_main_seven_pips,
        "vmr_quality": VmrQuality.hd,
        "enable_overlay_text": True,
        "guests_can_present": True,
        "force_presenter_into_main": True,
        "force_encryption": False,
        "mute_all_guests": False,
        "max_participants": 10,
        "end_meeting_on_end_time": False,
    }


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
) -> str:
    """A meeting and its scheduling info (uuid = meeting uuid); returns the uuid."""
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
        )
        s.add(meeting)
        s.add(
            SchedulingInfo(
                uuid=meeting_uuid,
                meeting=meeting,
                organisation=org,
                created_by=user,
                created_time=created,
                vmr_available_before=vmr_available_before,
                vmr_start_time=start - timedelta(minutes=vmr_available_before),
                provision_status=status,
                provision_status_description="seeded",
                new_provisioner=new_provisioner,
                portal_link=f"https://portal.test/?conference={number}@{domain}",
                **_si_fields(number, domain),
            )
        )
    return meeting_uuid


async def pool_si(
    api: Any,
    org_code: str,
    *,
    status: ProvisionStatus = ProvisionStatus.PROVISIONED_OK,
    reservation_id: str | None = None,
    created_time: datetime | None = None,
    attached: bool = False,
    domain: str = "vdx.test",
) -> str:
    """A pool VMR (spec 1.3.2 shape: no meeting, ``pool`` set); returns its uuid. ``attached``
    links a fresh meeting to it, as an ad-hoc meeting that took it from the pool would."""
    number = next(_numbers)
    si_uuid = str(uuidlib.uuid4())
    async with api.app.state.sessions() as s, s.begin():
        org = await _org(s, org_code)
        user = await meeting_users.get_or_create(s, org, "pool-filler@example.dk")
        meeting = None
        if attached:
            now = now_utc()
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
        s.add(
            SchedulingInfo(
                uuid=si_uuid,
                meeting=meeting,
                organisation=org,
                created_by=user,
                created_time=created_time or now_utc(),
                vmr_available_before=0,
                provision_status=status,
                provision_status_description="Pooled awaiting provisioning.",
                provision_timestamp=now_utc() - timedelta(minutes=5),
                reservation_id=reservation_id,
                pool=True,
                **_si_fields(number, domain),
            )
        )
    return si_uuid


async def template(api: Any, org_code: str | None, **fields: Any) -> int:
    """A scheduling template of ``org_code`` (None = a shared, org-less template); returns its id."""
    values: dict[str, Any] = {
        "conferencing_sys_id": 1,
        "uri_prefix": "",
        "uri_domain": "vdx.test",
        "host_pin_required": False,
        "guest_pin_required": False,
        "uri_number_range_low": 1000,
        "uri_number_range_high": 9999,
        "vmr_available_before": 0,
        "max_participants": 0,
        "end_meeting_on_end_time": False,
        "is_default_template": False,
        "is_pool_template": False,
        "created_time": now_utc(),
    }
    values.update(fields)
    async with api.app.state.sessions() as s, s.begin():
        org = await _org(s, org_code) if org_code is not None else None
        t = SchedulingTemplate(organisation=org, **values)
        s.add(t)
        await s.flush()
        return t.id
