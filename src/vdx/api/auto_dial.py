"""Automatically dialled participants: ``{API_CONTEXT}/node/v1/meetings/{uuid}/auto-dial`` (a vdx
extension beside the VDX booking API, which it leaves as it is) for whoever may change the
meeting, and ``/node/v1/scheduling-info/{uuid}/auto-dial`` for the node that runs its room, which
calls the addresses when the conference starts. Rules: ``vdx.booking.auto_dial``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Caller, node_caller, require
from vdx.access.sessions import get_read_session, get_session
from vdx.booking.auto_dial import AutoDial, to_json
from vdx.booking.errors import VdxError, not_found, validation_error
from vdx.booking.roles import MEETING_WRITERS
from vdx.booking.routing import RoutingError
from vdx.services import auto_dial
from vdx.services.transactions import in_transaction

# Not in the VDX API's OpenAPI document: that one stays the reference's (README documents these).
router = APIRouter(prefix="/node/v1", tags=["Automatically dialled participants"], include_in_schema=False)


class Entry(BaseModel):
    destination: str = Field(..., max_length=512, description="sip:user@host[:port][;transport=tcp|tls]")
    role: str = Field("guest", description="host or guest")
    displayName: str | None = Field(None, max_length=64)
    trunk: str | None = Field(None, max_length=100, description="the outbound trunk to call through")


@router.get("/meetings/{uuid}/auto-dial")
async def read(
    uuid: UUID,
    caller: Caller = Depends(require(*MEETING_WRITERS)),
    session: AsyncSession = Depends(get_read_session),
) -> list[dict[str, Any]]:
    return [to_json(e) for e in await auto_dial.read(session, caller.actor(), str(uuid))]


@router.put("/meetings/{uuid}/auto-dial")
async def replace(
    request: Request,
    uuid: UUID,
    body: list[Entry],
    caller: Caller = Depends(require(*MEETING_WRITERS)),
    session: AsyncSession = Depends(get_session),
) -> list[dict[str, Any]]:
    """Replace the addresses the meeting's room calls when it starts ([] for none)."""
    entries = [AutoDial(e.destination, e.role, e.displayName, e.trunk) for e in body]

    async def work() -> list[AutoDial]:
        return await auto_dial.replace(
            session, request.app.state.settings, caller.actor(), str(uuid), entries
        )

    try:
        stored = await in_transaction(
            session, work, on_exhausted=lambda: VdxError(409, "10", "changed by someone else meanwhile")
        )
    except RoutingError as exc:
        raise validation_error(f"{exc.field}: {exc.message}") from None
    return [to_json(e) for e in stored]


@router.get("/scheduling-info/{uuid}/auto-dial")
async def for_node(
    request: Request, uuid: UUID, session: AsyncSession = Depends(get_read_session)
) -> list[dict[str, Any]]:
    """What the room of a scheduling info calls when it starts: the nodes' own token only."""
    await node_caller(request)
    found = await auto_dial.of_scheduling_info(session, str(uuid))
    if found is None:
        raise not_found("schedulingInfo", "uuid")
    return [to_json(e) for e in found]
