"""Scheduling infos (the VMR provisioning records) as the API reads them, and the provisioner's
status report (spec 1.3.1, 1.3.3-1.3.6, 2.12, 3.4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking.enums import ProvisionStatus
from vdx.booking.roles import ADMIN, PLANNER, Principal
from vdx.events import record
from vdx.services import meeting_users, organisations
from vdx.services.meeting_reads import (
    MEETING_USERS,
    MeetingColumns,
    attach_organisations,
    user_columns,
    user_record,
)
from vdx.settings import Settings
from vdx.store import records
from vdx.store.db import now_utc, table_of
from vdx.store.models import Meeting, MeetingUser, Organisation, SchedulingInfo, SchedulingStatus
from vdx.store.records import Record


class SchedulingInfoNotFound(Exception):
    pass


class AccessDenied(Exception):
    pass


@dataclass(frozen=True)
class Scope:
    """Which organisations' scheduling infos a caller sees (spec 3.4): ``None`` = all."""

    organisation_ids: frozenset[int] | None

    def allows(self, organisation_id: int) -> bool:
        return self.organisation_ids is None or organisation_id in self.organisation_ids


async def scope_for(session: AsyncSession, principal: Principal, organisation: Organisation | None) -> Scope:
    """Provisioner(-user): all organisations; admin/planner: own + descendants; others: own."""
    if principal.sees_all_scheduling_info:
        return Scope(None)
    if organisation is None:
        return Scope(frozenset())
    if principal.has(ADMIN, PLANNER):
        return Scope(frozenset(await organisations.descendant_ids(session, organisation)))
    return Scope(frozenset({organisation.id}))


def _scoped(query: Any, scope: Scope) -> Any:
    if scope.organisation_ids is None:
        return query
    return query.where(SchedulingInfo.organisation_id.in_(sorted(scope.organisation_ids)))


async def in_window(
    session: AsyncSession, scope: Scope, start: datetime, end: datetime, status: ProvisionStatus
) -> list[SchedulingInfo]:
    """SIs with a meeting and ``status`` whose VMR start or meeting end lies strictly inside
    ``(start, end)`` (spec 1.3.1)."""
    query = (
        select(SchedulingInfo)
        .join(Meeting, SchedulingInfo.meeting_id == Meeting.id)
        .where(
            SchedulingInfo.provision_status == status,
            or_(
                and_(SchedulingInfo.vmr_start_time > start, SchedulingInfo.vmr_start_time < end),
                and_(Meeting.end_time > start, Meeting.end_time < end),
            ),
        )
        .order_by(SchedulingInfo.id)
    )
    return list((await session.execute(_scoped(query, scope))).scalars())


async def due_for_provisioning(session: AsyncSession, now: datetime | None = None) -> list[SchedulingInfo]:
    """Polling provisioners' work list (spec 1.3.5): meeting VMRs awaiting provision whose
    ``vmrStartTime <= now <= meeting.endTime``, of organisations not served by events."""
    now = now or now_utc()
    query = (
        select(SchedulingInfo)
        .join(Meeting, SchedulingInfo.meeting_id == Meeting.id)
        .where(
            SchedulingInfo.provision_status == ProvisionStatus.AWAITS_PROVISION,
            SchedulingInfo.vmr_start_time <= now,
            Meeting.end_time >= now,
            SchedulingInfo.new_provisioner.is_(False),
        )
        .order_by(SchedulingInfo.vmr_start_time, SchedulingInfo.id)
    )
    return list((await session.execute(query)).scalars())


async def due_for_deprovisioning(session: AsyncSession, now: datetime | None = None) -> list[SchedulingInfo]:
    """Provisioned meeting VMRs whose meeting has ended (spec 1.3.6), of polling organisations."""
    now = now or now_utc()
    query = (
        select(SchedulingInfo)
        .join(Meeting, SchedulingInfo.meeting_id == Meeting.id)
        .where(
            SchedulingInfo.provision_status == ProvisionStatus.PROVISIONED_OK,
            Meeting.end_time < now,
            SchedulingInfo.new_provisioner.is_(False),
        )
        .order_by(Meeting.end_time, SchedulingInfo.id)
    )
    return list((await session.execute(query)).scalars())


async def by_uuid(
    session: AsyncSession, uuid: str, scope: Scope, *, for_update: bool = False
) -> SchedulingInfo:
    """One SI by uuid: unknown -> not found; outside the caller's scope -> access denied
    (spec 1.3.3). The reference reads the row ``FOR UPDATE``; vdx locks only when it writes."""
    query = select(SchedulingInfo).where(SchedulingInfo.uuid == uuid)
    if for_update:
        query = query.with_for_update(of=SchedulingInfo)
    si = (await session.execute(query)).scalar_one_or_none()
    if si is None:
        raise SchedulingInfoNotFound(uuid)
    if not scope.allows(si.organisation_id):
        raise AccessDenied(uuid)
    return si


# GET one SI: its columns, its two users', and its meeting's (``meeting_reads``) in one query,
# built once (SQLAlchemy memoises a statement object's cache key; building and keying this one
# per request cost more CPU than running it). The response shows of the SI's and its users'
# organisations only the code (``attach_organisations``, nearly always the caller's own).
_SI = table_of(SchedulingInfo)
_SI_USERS = {name: table_of(MeetingUser).alias(f"si_{name}") for name in ("created_by", "updated_by")}
_SI_MEETING = MeetingColumns("m_")


def _readable() -> organisations.Beside:
    joined = _SI_MEETING.joined(_SI, _SI_MEETING.meeting.c.id == _SI.c.meeting_id)
    cols = records.columns(_SI, "si_")
    for name, user in _SI_USERS.items():
        joined = joined.join(user, user.c.id == _SI.c[f"{name}_id"], isouter=True)
        cols += user_columns(user, f"si_{name}__")
    return organisations.Beside.build(
        [*cols, *_SI_MEETING.columns()], joined, _SI.c.uuid == bindparam("si_uuid")
    )


_READABLE = _readable()


async def find(
    session: AsyncSession, uuid: str, organisation_code: str | None
) -> tuple[Organisation | None, Mapping[str, Any] | None]:
    """GET one SI: its row by uuid with its meeting's, and the caller's organisation, in one
    query (``organisations.Beside``); ``readable`` then checks and builds it."""
    return await _READABLE.fetch(session, {"si_uuid": uuid}, organisation_code, "si_id")


async def readable(
    session: AsyncSession,
    uuid: str,
    row: Mapping[str, Any] | None,
    principal: Principal,
    organisation: Organisation | None,
) -> Record:
    """The SI of ``row`` (from ``find``): unknown -> not found; outside the caller's scope
    (spec 3.4) -> access denied. The scope is checked on the row found, so the usual case, an
    SI of the caller's own organisation, needs no walk of the organisation tree."""
    si = records.record(row, _SI, "si_") if row is not None else None
    if row is None or si is None:
        raise SchedulingInfoNotFound(uuid)
    if not await _may_read(session, si, principal, organisation):
        raise AccessDenied(uuid)
    for name in _SI_USERS:
        setattr(si, name, user_record(row, f"si_{name}__"))
    si.meeting = m = _SI_MEETING.record(row)
    users = [si.created_by, si.updated_by] + ([getattr(m, name) for name in MEETING_USERS] if m else [])
    await attach_organisations(session, [*users, si], organisation)
    return si


async def _may_read(
    session: AsyncSession, si: Record, principal: Principal, organisation: Organisation | None
) -> bool:
    if principal.sees_all_scheduling_info:
        return True
    if organisation is None:
        return False
    if si.organisation_id == organisation.id:
        return True
    if not principal.has(ADMIN, PLANNER):
        return False
    si_organisation = await session.get(Organisation, si.organisation_id)
    return si_organisation is not None and await organisations.is_in_tree_of(
        session, si_organisation, organisation.id
    )


async def reload(session: AsyncSession, si_id: int) -> SchedulingInfo:
    """The row again with every relationship the response shows (after a commit)."""
    query = select(SchedulingInfo).where(SchedulingInfo.id == si_id).execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one()


async def report_status(
    session: AsyncSession,
    settings: Settings,
    *,
    uuid: str,
    scope: Scope,
    caller_organisation_id: int,
    caller_email: str,
    status: ProvisionStatus,
    description: str | None,
    vmr_id: str | None,
) -> SchedulingInfo:
    """The provisioner's status report (spec 1.3.4): any transition is accepted (no state
    machine), history is appended, DEPROVISION_OK releases the number for reuse (spec 2.4),
    an audit ``update`` is recorded; no scheduling-info event is published."""
    si = await by_uuid(session, uuid, scope, for_update=True)
    org = await session.get(Organisation, caller_organisation_id)
    assert org is not None
    user = await meeting_users.get_or_create(session, org, caller_email)
    now = now_utc()
    si.provision_status = status
    si.provision_status_description = description
    si.provision_vmr_id = vmr_id
    si.provision_timestamp = now
    si.updated_by = user
    si.updated_time = now
    if status == ProvisionStatus.DEPROVISION_OK:
        si.uri_without_domain = None
        si.uri_domain = None
    session.add(
        SchedulingStatus(
            scheduling_info_id=si.id,
            meeting_id=si.meeting_id,
            time_stamp=now,
            provision_status=status,
            provision_status_description=description,
        )
    )
    await record.audit(session, settings, operation="update", obj=si, user=caller_email)
    return si
