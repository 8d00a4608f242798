"""The audit trail: changes of templates, organisations and live conferences recorded beside the
booking audit (``vdx.events.record``), and the trail read back by meeting-admins.

A meeting-admin reads the records of their own organisation and its descendants, never a
sibling's or an ancestor's: the tree is the boundary, as in the organisation service (spec 5.1).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vdx.booking.timefmt import format_ts
from vdx.events import record
from vdx.events.payloads import ControlOperation, Operation
from vdx.services import organisations
from vdx.settings import Settings
from vdx.store.db import table_of
from vdx.store.models import (
    AuditRecord,
    Meeting,
    Organisation,
    RoutingRule,
    SchedulingInfo,
    SchedulingTemplate,
    Trunk,
)

# what the trail leaves out of a template's or organisation's columns: who and when are the
# record's own fields; keys are secrets
_NOT_DATA = frozenset(
    {
        "created_by_id",
        "updated_by_id",
        "deleted_by_id",
        "history_api_key",
        "device_webhook_endpoint_key",
        "password",
    }
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def columns_data(obj: SchedulingTemplate | Organisation | RoutingRule | Trunk) -> dict[str, Any]:
    """The row's columns, camelCase as the API spells them (reads only loaded column values)."""
    return {
        _camel(c.key): _value(getattr(obj, c.key))
        for c in table_of(type(obj)).columns
        if c.key not in _NOT_DATA
    }


async def template_changed(
    session: AsyncSession, settings: Settings, template: SchedulingTemplate, operation: Operation, user: str
) -> None:
    """Record a template's create, replace or delete in the caller's transaction."""
    organisation = (
        await session.get(Organisation, template.organisation_id) if template.organisation_id else None
    )
    record.change(
        session,
        settings,
        organisation=organisation,
        resource="schedulingTemplate",
        operation=operation,
        identifier=str(template.id),
        user=user,
        data=columns_data(template),
    )


def organisation_changed(
    session: AsyncSession, settings: Settings, org: Organisation, operation: Operation, user: str | None
) -> None:
    """Record an organisation's creation or update in the caller's transaction (the record
    belongs to the organisation itself, so its admins and those above see it)."""
    record.change(
        session,
        settings,
        organisation=org,
        resource="organisation",
        operation=operation,
        identifier=org.code,
        user=user,
        data=columns_data(org),
    )


async def _room_owner(session: AsyncSession, aliases: list[str]) -> tuple[Organisation | None, str | None]:
    """The organisation and meeting uuid of the newest VMR answering on one of ``aliases``."""
    row = (
        await session.execute(
            select(SchedulingInfo.organisation_id, Meeting.uuid)
            .outerjoin(Meeting, Meeting.id == SchedulingInfo.meeting_id)
            .where(
                or_(
                    SchedulingInfo.uri_with_domain.in_(aliases),
                    SchedulingInfo.uri_without_domain.in_(aliases),
                )
            )
            .order_by(SchedulingInfo.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None, None
    return await session.get(Organisation, row[0]), row[1]


async def conference_action(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    aliases: list[str],
    operation: ControlOperation,
    actor: str | None,
    data: dict[str, Any],
) -> None:
    """Record a conference-control action, in a transaction of its own (the action itself
    changed the live room, not the database). The record belongs to the organisation that
    booked the room; a room unknown to this database is recorded without one."""
    async with sessions() as s, s.begin():
        organisation, meeting_uuid = await _room_owner(s, aliases)
        record.change(
            s,
            settings,
            organisation=organisation,
            resource="conference",
            operation=operation,
            identifier=aliases[0],
            user=actor,
            data=data,
            meeting_uuid=meeting_uuid,
        )


async def node_limits_changed(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    node: str,
    organisation_code: str,
    actor: str | None,
    data: dict[str, Any],
) -> None:
    """Record a change of a node's capacity or clinical reserve, in a transaction of its own,
    as a record of the organisation that operates the nodes."""
    async with sessions() as s, s.begin():
        organisation = await organisations.by_code(s, organisation_code)
        record.change(
            s,
            settings,
            organisation=organisation,
            resource="node",
            operation="update",
            identifier=node,
            user=actor,
            data=data,
        )


@dataclass(frozen=True)
class TrailQuery:
    root: Organisation  # the caller's organisation: records of its subtree only
    organisation: Organisation | None = None  # narrows to this organisation's subtree
    meeting_uuid: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    page: int = 0
    size: int = 50


@dataclass(frozen=True)
class TrailPage:
    total: int
    records: list[AuditRecord]


async def trail(session: AsyncSession, q: TrailQuery) -> TrailPage:
    """A page of audit records, newest first. ``q.organisation`` must lie in ``q.root``'s tree
    (the caller checks it: outside, the answer is a refusal, not an empty page)."""
    ids = [o.id for o in await organisations.subtree(session, q.organisation or q.root)]
    where: list[ColumnElement[bool]] = [AuditRecord.organisation_id.in_(ids)]
    if q.meeting_uuid is not None:
        where.append(AuditRecord.meeting_uuid == q.meeting_uuid)
    if q.start is not None:
        where.append(AuditRecord.at >= q.start)
    if q.end is not None:
        where.append(AuditRecord.at < q.end)
    total = (await session.execute(select(func.count(AuditRecord.id)).where(*where))).scalar_one()
    rows = await session.execute(
        select(AuditRecord)
        .where(*where)
        .order_by(AuditRecord.at.desc(), AuditRecord.id.desc())
        .offset(q.page * q.size)
        .limit(q.size)
    )
    return TrailPage(total=total, records=list(rows.scalars()))


def record_data(row: AuditRecord) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.data)
    return data
