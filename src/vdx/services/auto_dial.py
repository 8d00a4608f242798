"""The addresses a meeting's room calls when it starts (``vdx.booking.auto_dial``): read and
replaced by those who may change the meeting, audited as a change of the meeting, and read by the
node that runs the room (by its scheduling info)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking.auto_dial import AutoDial, check, to_json
from vdx.booking.routing import RoutingError
from vdx.events import record
from vdx.services import meetings
from vdx.services.meeting_access import Actor
from vdx.settings import Settings
from vdx.store.models import AutoDial as AutoDialRow
from vdx.store.models import Organisation, SchedulingInfo
from vdx.store.models import Trunk as TrunkRow


def _entry(row: AutoDialRow) -> AutoDial:
    return AutoDial(row.destination, row.role, row.display_name, row.trunk)


async def _of_meeting(s: AsyncSession, meeting_id: int) -> list[AutoDial]:
    rows = await s.scalars(
        select(AutoDialRow).where(AutoDialRow.meeting_id == meeting_id).order_by(AutoDialRow.position)
    )
    return [_entry(r) for r in rows]


async def read(s: AsyncSession, actor: Actor, meeting_uuid: str) -> list[AutoDial]:
    """The meeting's addresses, for whoever may change the meeting (else 403/404 as the API)."""
    meeting = await meetings.get(s, actor, meeting_uuid)
    return await _of_meeting(s, meeting.id)


async def replace(
    s: AsyncSession, settings: Settings, actor: Actor, meeting_uuid: str, entries: list[AutoDial]
) -> list[AutoDial]:
    """Replace the meeting's addresses (``RoutingError`` naming the field when one is unusable or
    names a trunk that does not exist)."""
    meeting = await meetings.get(s, actor, meeting_uuid)
    checked = check(entries)
    for i, e in enumerate(checked):
        if e.trunk is not None and await s.get(TrunkRow, e.trunk) is None:
            raise RoutingError(f"autoDial[{i}].trunk", f"no trunk named {e.trunk!r}")
    await s.execute(delete(AutoDialRow).where(AutoDialRow.meeting_id == meeting.id))
    for i, e in enumerate(checked):
        s.add(
            AutoDialRow(
                meeting_id=meeting.id,
                position=i,
                destination=e.destination,
                role=e.role,
                display_name=e.display_name,
                trunk=e.trunk,
            )
        )
    await s.flush()
    record.change(
        s,
        settings,
        organisation=await s.get(Organisation, meeting.organisation_id),
        resource="meeting",
        operation="update",
        identifier=meeting.uuid,
        user=actor.email,
        data={"autoDial": [to_json(e) for e in checked]},
        meeting_uuid=meeting.uuid,
    )
    return list(checked)


async def of_scheduling_info(s: AsyncSession, si_uuid: str) -> list[AutoDial] | None:
    """What the room of that scheduling info calls when it starts (None: no such scheduling info)."""
    si = (await s.execute(select(SchedulingInfo.meeting_id).where(SchedulingInfo.uuid == si_uuid))).first()
    if si is None:
        return None
    return [] if si.meeting_id is None else await _of_meeting(s, si.meeting_id)
