"""Meetings (spec 1.2, tag "Video Meetings V2") and the short link ``GET /s/{shortId}`` (spec 2.6)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Admitted, Caller, require, require_reading
from vdx.access.sessions import get_read_session, get_session
from vdx.api import representations, schemas
from vdx.booking import commands
from vdx.booking.errors import validation_error
from vdx.booking.roles import ANY, MEETING_WRITERS
from vdx.booking.shortids import is_short_id
from vdx.services import meeting_search, meetings
from vdx.services.vmr_allocation import portal_link
from vdx.settings import Settings

router = APIRouter(tags=["Video Meetings V2"])
short_link_router = APIRouter(tags=["Short links"])

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": schemas.DetailedError, "description": "Bad request"},
    403: {"model": schemas.DetailedError, "description": "Forbidden"},
    404: {"model": schemas.DetailedError, "description": "Not found"},
}
_WRITE_ERRORS = _ERRORS | {406: {"model": schemas.DetailedError, "description": "Not acceptable"}}


def _settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def _blank(value: str | None, name: str) -> str | None:
    """Empty query strings count as absent (spec 1.2.3); unstorable text is a 400."""
    return _query(value, name) if value else None


def _query(value: str, name: str) -> str:
    if not commands.storable_text(value):
        raise validation_error(f"{name}: text must be UTF-8 without NUL characters")
    return value


@router.get(
    "/meetings/findByUriWithDomain",
    response_model=schemas.Meeting,
    summary="find meeting by uri with domain.",
    responses=_ERRORS,
)
async def find_by_uri_with_domain(
    request: Request,
    uri: str = Query(..., description="uri with domain", examples=["123456@video.domain"]),
    caller: Caller = Depends(require(*ANY, reading=True)),
    session: AsyncSession = Depends(get_read_session),
) -> schemas.Meeting:
    m = await meeting_search.find_by_uri(session, caller.actor(), _query(uri, "uri"), with_domain=True)
    return representations.meeting(_settings(request), m)


@router.get(
    "/meetings/findByUriWithoutDomain",
    response_model=schemas.Meeting,
    summary="find meeting by uri without domain.",
    responses=_ERRORS,
)
async def find_by_uri_without_domain(
    request: Request,
    uri: str = Query(..., description="uri without domain", examples=["12345"]),
    caller: Caller = Depends(require(*ANY, reading=True)),
    session: AsyncSession = Depends(get_read_session),
) -> schemas.Meeting:
    m = await meeting_search.find_by_uri(session, caller.actor(), _query(uri, "uri"), with_domain=False)
    return representations.meeting(_settings(request), m)


@router.get(
    "/meetings",
    response_model=list[schemas.Meeting],
    summary="gets a list of meetings",
    description="The first present filter in the order short-id, label, subject, organizedBy, search "
    "(with from/to), from-start-time+to-start-time, uriWithDomain is used; at least one is required.",
    responses=_ERRORS,
)
async def list_meetings(
    request: Request,
    from_start_time: commands.InTimestamp | None = Query(None, alias="from-start-time"),
    to_start_time: commands.InTimestamp | None = Query(None, alias="to-start-time"),
    short_id: str | None = Query(None, alias="short-id", min_length=12, max_length=12),
    subject: str | None = Query(None),
    organized_by: str | None = Query(None, alias="organizedBy"),
    search: str | None = Query(None),
    label: str | None = Query(None),
    uri_with_domain: str | None = Query(None, alias="uriWithDomain"),
    caller: Caller = Depends(require(*ANY, reading=True)),
    session: AsyncSession = Depends(get_read_session),
) -> list[schemas.Meeting]:
    filters = meeting_search.Filters(
        short_id=_blank(short_id, "short-id"),
        label=_blank(label, "label"),
        subject=_blank(subject, "subject"),
        organized_by=_blank(organized_by, "organizedBy"),
        search=_blank(search, "search"),
        from_start=from_start_time,
        to_start=to_start_time,
        uri_with_domain=_blank(uri_with_domain, "uriWithDomain"),
    )
    found = await meeting_search.search(session, caller.actor(), filters)
    s = _settings(request)
    return [representations.meeting(s, m) for m in found]


@router.post(
    "/meetings",
    response_model=schemas.Meeting,
    status_code=200,
    summary="adds a new meeting",
    responses=_WRITE_ERRORS,
)
async def create_meeting(
    request: Request,
    body: commands.CreateMeeting = Body(...),
    caller: Caller = Depends(require(*MEETING_WRITERS)),
    session: AsyncSession = Depends(get_session),
) -> schemas.Meeting:
    s = _settings(request)
    m = await meetings.create(session, s, caller.actor(), body)
    return representations.meeting(s, m)


@router.get(
    "/meetings/{uuid}", response_model=schemas.Meeting, summary="gets a specific meeting", responses=_ERRORS
)
async def get_meeting(
    request: Request,
    uuid: UUID,
    admitted: Admitted[Mapping[str, Any]] = Depends(require_reading(ANY, meetings.find)),
    session: AsyncSession = Depends(get_read_session),
) -> schemas.Meeting:
    key = str(uuid)
    row = await admitted.resource(key)
    m = await meetings.read(session, admitted.caller.actor(), row)
    return representations.meeting(_settings(request), m)


@router.put(
    "/meetings/{uuid}",
    response_model=schemas.Meeting,
    summary="updates a specific meeting (full replacement)",
    responses=_WRITE_ERRORS,
)
async def put_meeting(
    request: Request,
    uuid: UUID,
    body: commands.UpdateMeeting = Body(...),
    caller: Caller = Depends(require(*MEETING_WRITERS)),
    session: AsyncSession = Depends(get_session),
) -> schemas.Meeting:
    s = _settings(request)
    m = await meetings.update(
        session, s, caller.actor(), str(uuid), lambda stored, si: meetings.merge_put(stored, si, body)
    )
    return representations.meeting(s, m)


@router.patch(
    "/meetings/{uuid}",
    response_model=schemas.Meeting,
    summary="updates the given fields of a specific meeting",
    responses=_WRITE_ERRORS,
)
async def patch_meeting(
    request: Request,
    uuid: UUID,
    body: commands.PatchMeeting = Body(...),
    caller: Caller = Depends(require(*MEETING_WRITERS)),
    session: AsyncSession = Depends(get_session),
) -> schemas.Meeting:
    s = _settings(request)
    m = await meetings.update(
        session, s, caller.actor(), str(uuid), lambda stored, si: meetings.merge_patch(stored, si, body)
    )
    return representations.meeting(s, m)


@router.delete(
    "/meetings/{uuid}",
    status_code=204,
    response_class=Response,
    summary="deletes a specific meeting",
    responses=_WRITE_ERRORS,
)
async def delete_meeting(
    request: Request,
    uuid: UUID,
    caller: Caller = Depends(require(*MEETING_WRITERS)),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await meetings.remove(session, _settings(request), caller.actor(), str(uuid))
    return Response(status_code=204)


_NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Meeting not found</title></head>
<body><h1>Meeting not found</h1>
<p>There is no video meeting behind the link <code>{short_id}</code>. Please check the link you were
sent, or ask the person who invited you for a new one.</p></body></html>
"""


@short_link_router.get("/s/{short_id}", include_in_schema=False)
async def follow_short_link(
    request: Request, short_id: str, session: AsyncSession = Depends(get_read_session)
) -> Response:
    """``shortLink`` = ``{public_url}/s/<shortId>`` (spec 2.6): 302 to the portal link, no token."""
    m = await meetings.by_short_id_public(session, short_id) if is_short_id(short_id) else None
    si = m.scheduling_info if m is not None else None
    target = si.portal_link if si is not None else None
    if m is not None and si is not None and target and m.guest_pin_required:
        # spec 2.6: guestPinRequired tells the short-link page to ask for the PIN, so the link a
        # citizen follows must not carry it (the stored portalLink, for the booking system, does)
        target = portal_link(request.app.state.settings, si, m, hide_pin=True)
    if not target:
        return HTMLResponse(_NOT_FOUND_PAGE.format(short_id=html.escape(short_id)), status_code=404)
    return RedirectResponse(target, status_code=302)
