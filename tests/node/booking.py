"""Booking as the API does it, for node tests that must not wait for ``POST /v2/meetings``: rows
through the ORM (the shape of tests/seed.py) and, for event-driven organisations, the
scheduling-info event recorded in the same transaction, so the outbox relay delivers it over the
bus exactly as a booking would (spec 2.9, 2.10, 1.2.7, 4.2). And helpers to wait for the node."""

from __future__ import annotations

import itertools
import uuid as uuidlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from harness.waiting import until
from tests.seed import _org, _si_fields, meeting_with_si
from vdx.booking.enums import ProvisionStatus
from vdx.booking.roles import PROVISIONER
from vdx.conference.policy import RoomConfig
from vdx.events import record
from vdx.services import meeting_users
from vdx.store.db import now_utc
from vdx.store.models import Meeting, SchedulingInfo, SchedulingStatus

_numbers = itertools.count(20_000_000)


def whole_seconds(t: datetime) -> datetime:
    """API and event times have whole seconds; tests book with them so comparisons are exact."""
    return t.replace(microsecond=0)


async def book(
    api: Any,
    org_code: str,
    *,
    start: datetime,
    end: datetime,
    vmr_available_before: int = 0,
    events: bool = True,
    guest_microphone: str | None = None,
    **si_fields: Any,
) -> tuple[str, str]:
    """A meeting and its scheduling info (uuid = meeting uuid); with ``events`` the SI is
    event-driven and its CREATE event is recorded. Returns (uuid, uriWithDomain)."""
    number = next(_numbers)
    meeting_uuid = await meeting_with_si(
        api,
        org_code,
        start=start,
        end=end,
        vmr_available_before=vmr_available_before,
        new_provisioner=events,
        subject="Booked for the node",
        uri_number=number,
        description="Awaits provisioning.",
        guest_microphone=guest_microphone,
        create_event=True,
        **si_fields,
    )
    return meeting_uuid, str(si_fields.get("uri_with_domain", f"{number}@vdx.test"))


async def book_pool_vmr(api: Any, org_code: str, **si_fields: Any) -> tuple[str, str]:
    """A pool VMR (spec 1.3.2: no meeting, ``pool``) with its CREATE event."""
    number = next(_numbers)
    si_uuid = str(uuidlib.uuid4())
    fields = _si_fields(number, "vdx.test") | si_fields
    async with api.app.state.sessions() as s, s.begin():
        org = await _org(s, org_code)
        user = await meeting_users.get_or_create(s, org, "pool-filler@example.dk")
        si = SchedulingInfo(
            uuid=si_uuid,
            organisation=org,
            created_by=user,
            created_time=now_utc(),
            vmr_available_before=0,
            provision_status=ProvisionStatus.AWAITS_PROVISION,
            provision_status_description="Pooled awaiting provisioning.",
            pool=True,
            new_provisioner=True,
            **fields,
        )
        s.add(si)
        await record.scheduling_info_event(s, api.settings, si, "CREATE")
    return si_uuid, str(fields["uri_with_domain"])


async def change_meeting(
    api: Any, uuid: str, *, start: datetime | None = None, end: datetime | None = None
) -> None:
    """A meeting update (spec 2.10): times changed, vmrStartTime recomputed while it awaits
    provisioning, and the UPDATE event (also while PROVISIONED_OK, step 5)."""
    async with api.app.state.sessions() as s, s.begin():
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == uuid))).scalar_one()
        meeting = si.meeting
        assert meeting is not None
        if start is not None:
            meeting.start_time = start
        if end is not None:
            meeting.end_time = end
        if si.provision_status == ProvisionStatus.AWAITS_PROVISION:
            si.vmr_start_time = meeting.start_time - timedelta(minutes=si.vmr_available_before)
        await record.scheduling_info_event(s, api.settings, si, "UPDATE")


async def delete_booking(
    api: Any, uuid: str, message_type: str = "DELETE", *, keep_row: bool = False
) -> None:
    """A meeting delete (spec 1.2.7) or pool shrink (2.13): event, then the rows go (unless
    ``keep_row``: a pool filler that keeps the row for the record)."""
    async with api.app.state.sessions() as s, s.begin():
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == uuid))).scalar_one()
        await record.scheduling_info_event(s, api.settings, si, message_type)  # type: ignore[arg-type]
        if keep_row:
            return
        meeting = si.meeting
        await s.execute(delete(SchedulingStatus).where(SchedulingStatus.scheduling_info_id == si.id))
        await s.delete(si)
        await s.flush()
        if meeting is not None:
            await s.delete(meeting)


async def scheduling_info(api: Any, uuid: str) -> dict[str, Any]:
    r = await api.client.get(
        # meeting-provisioner alone: sees every organisation, needs none (spec 3.2, 3.4)
        f"{api.v2}/scheduling-info/{uuid}",
        headers=api.auth(None, None, PROVISIONER),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_for_status(api: Any, uuid: str, status: str, deadline: float = 15.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        si = await scheduling_info(api, uuid)
        return si if si["provisionStatus"] == status else None

    result: dict[str, Any] = await until(check, deadline, f"{uuid} to be {status}")
    return result


async def wait_for_room(api: Any, alias: str, deadline: float = 15.0) -> RoomConfig:
    """The room of ``alias`` provisioned on the app's node (in its directory and reported
    PROVISIONED_OK): what a test that books through the API waits for before joining."""
    provisioner = api.app.state.provisioner

    async def check() -> RoomConfig | None:
        config: RoomConfig | None = provisioner.provisioned(alias)
        return config

    result: RoomConfig = await until(check, deadline, f"room {alias} to be provisioned")
    return result


async def attach_pool_vmr(api: Any, si_uuid: str, *, start: datetime, end: datetime) -> str:
    """An ad-hoc meeting takes a pool VMR (spec 2.13 attach): the SI gets the meeting's uuid and
    times, and the UPDATE event. Returns the new uuid."""
    meeting_uuid = str(uuidlib.uuid4())
    async with api.app.state.sessions() as s, s.begin():
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == si_uuid))).scalar_one()
        user = si.created_by
        meeting = Meeting(
            uuid=meeting_uuid,
            subject="ad hoc",
            organisation=si.organisation,
            created_by=user,
            organized_by=user,
            start_time=start,
            end_time=end,
            created_time=now_utc(),
            short_id=uuidlib.uuid4().hex[:12],
            guest_pin_required=False,
        )
        s.add(meeting)
        si.uuid = meeting_uuid
        si.meeting = meeting
        si.vmr_start_time = start - timedelta(minutes=si.vmr_available_before)
        await record.scheduling_info_event(s, api.settings, si, "UPDATE")
    return meeting_uuid


async def history(api: Any, uuid: str) -> list[str]:
    """The provisioning states reported for ``uuid``, oldest first (scheduling_status rows)."""
    async with api.app.state.sessions() as s:
        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == uuid))).scalar_one()
        rows = await s.execute(
            select(SchedulingStatus.provision_status)
            .where(SchedulingStatus.scheduling_info_id == si.id)
            .order_by(SchedulingStatus.id)
        )
        return [str(r) for r in rows.scalars()]
