"""``GET /v2/audit`` (vdx extension): the audit trail of the caller's organisation tree, for
meeting-admins, newest first, paged and filtered by time and meeting."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Caller, require
from vdx.access.sessions import get_session
from vdx.api import schemas
from vdx.booking import commands
from vdx.booking.errors import forbidden, validation_error
from vdx.booking.roles import ADMIN_ONLY
from vdx.services import audit, organisations

router = APIRouter(tags=["Audit (vdx extension)"])


class AuditEntry(schemas.Out):
    id: int
    time: schemas.OutTimestamp
    organisationCode: str | None
    resource: str
    operation: str
    identifier: str | None
    meetingUuid: str | None
    user: str | None
    data: dict[str, Any]


class AuditPage(schemas.Out):
    page: int
    size: int
    total: int
    entries: list[AuditEntry]


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Audit trail of the caller's organisation tree (vdx extension)",
    description=(
        "Not part of the reference API. Who changed what, newest first: meetings and their VMRs, "
        "scheduling templates, organisations and conference-control actions of the caller's "
        "organisation and its descendants (meeting-admin only). `organisation` narrows to one "
        "organisation's subtree (403 outside the caller's tree); `meeting` to one meeting uuid; "
        "`from` is inclusive, `to` exclusive; `page` counts from 0, `size` at most 500."
    ),
)
async def get_audit(
    organisation: Annotated[str | None, Query(max_length=250)] = None,
    meeting: Annotated[str | None, Query(max_length=36)] = None,
    from_time: Annotated[commands.InTimestamp | None, Query(alias="from")] = None,
    to_time: Annotated[commands.InTimestamp | None, Query(alias="to")] = None,
    page: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    caller: Caller = Depends(require(*ADMIN_ONLY)),
    session: AsyncSession = Depends(get_session),
) -> AuditPage:
    if meeting is not None:
        try:
            meeting = str(UUID(meeting))
        except ValueError:
            raise validation_error("meeting must be a meeting uuid") from None
    narrowed = None
    if organisation is not None:
        # an unknown code and one outside the caller's tree look the same: no oracle for codes
        narrowed = await organisations.by_code(session, organisation)
        if narrowed is None or not await organisations.is_in_tree_of(session, narrowed, caller.org.id):
            raise forbidden()
    result = await audit.trail(
        session,
        audit.TrailQuery(
            root=caller.org,
            organisation=narrowed,
            meeting_uuid=meeting,
            start=from_time,
            end=to_time,
            page=page,
            size=size,
        ),
    )
    return AuditPage(
        page=page,
        size=size,
        total=result.total,
        entries=[
            AuditEntry(
                id=r.id,
                time=r.at,
                organisationCode=r.organisation_code,
                resource=r.resource,
                operation=r.operation,
                identifier=r.identifier,
                meetingUuid=r.meeting_uuid,
                user=r.actor,
                data=audit.record_data(r),
            )
            for r in result.records
        ],
    )
