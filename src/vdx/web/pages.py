"""The web pages and the few endpoints only they need.

Pages: ``/join/`` (the portal link's target), ``/wait`` (the point-to-point page), ``/booking/`` (staff), ``/dashboard/``
(operators), ``/steering/`` (the steering group's capacity and usage figures); static files under ``/web/static/``. Everything else the pages do goes through the
public APIs (VDX API v2, the signalling WebSocket, conference control), so they show what an
integration sees. The extras here: the page configuration (which sign-in), the demo sign-in
(``vdx serve --demo`` only: mints a dev-key token for a browser on this machine), live participant
counts of one's own meetings, invitations through the pluggable sender, and usage per day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Caller, Operator, bearer_token, operator, require
from vdx.access.http_errors import BasicError
from vdx.access.loopback import from_this_machine
from vdx.access.sessions import get_session
from vdx.booking.errors import validation_error
from vdx.booking.roles import ADMIN, ALL_ROLES, PLANNER, USER
from vdx.booking.shortids import short_link
from vdx.node.rooms import Rooms
from vdx.services import meeting_search, meetings
from vdx.services import usage as usage_service
from vdx.settings import Settings
from vdx.tokens import mint_token
from vdx.web.invitations import Invitation, InvitationSender, invitation_text

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
# What a conferencing node serves of the pages too: the join page (with ``STATIC``), so any node's
# join link works; it needs no database.
join_router = APIRouter(include_in_schema=False)

_NO_CACHE = {"Cache-Control": "no-cache"}

# The booking page's roles: the page endpoints below are not the VDX API, and provisioner tokens
# (which read every organisation's scheduling info there) get nothing here.
STAFF = (PLANNER, USER, ADMIN)


def _settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers=_NO_CACHE)


@cache
def _staff_page(app_part: str, title_key: str, title: str, roles: tuple[str, ...], script: str) -> str:
    """A staff page: the shared shell (header, sign-in) around the page's own app part, so the
    sign-in markup the two staff pages share exists once. Read once per process."""
    fields = {
        "title_key": title_key,
        "title": title,
        "role_options": "".join(f"<option>{role}</option>" for role in roles),
        "script": script,
        "app": (STATIC / app_part).read_text(encoding="utf-8"),
    }
    page = (STATIC / "staff.html").read_text(encoding="utf-8")
    for name, value in fields.items():
        page = page.replace("{{" + name + "}}", value)
    return page


@join_router.get("/join")
async def join_page() -> FileResponse:
    """The citizen's join page; the portal link's query (conference, pin, ...) is read by JS."""
    return _page("join.html")


@join_router.get("/wait")
async def wait_page() -> FileResponse:
    """The point-to-point page: signed in as a device, a browser waits for calls to browser:NAME."""
    return _page("wait.html")


router.include_router(join_router)


@router.get("/booking")
async def booking_page() -> HTMLResponse:
    page = _staff_page(
        "booking.html",
        "booking.title",
        "Video meetings \N{EN DASH} booking",
        STAFF,
        "booking.js",
    )
    return HTMLResponse(page, headers=_NO_CACHE)


@router.get("/dashboard")
async def dashboard_page() -> HTMLResponse:
    page = _staff_page(
        "dashboard.html", "dash.title", "Video node \N{EN DASH} operations", (ADMIN,), "dashboard.js"
    )
    return HTMLResponse(page, headers=_NO_CACHE)


@router.get("/steering")
async def steering_page() -> HTMLResponse:
    page = _staff_page(
        "steering.html",
        "steer.title",
        "Video node \N{EN DASH} capacity and usage (steering group)",
        (ADMIN,),
        "steering.js",
    )
    return HTMLResponse(page, headers=_NO_CACHE)


def has_identity_provider(settings: Settings) -> bool:
    return bool(settings.jwt_jwks_url or settings.jwt_public_key_file or settings.oidc_issuer)


def dev_sign_in_answers(request: Request) -> bool:
    """The demo sign-in answers only in an app made by ``vdx serve --demo`` (``demo_sign_in``; no
    setting turns it on), only without an identity provider (tokens are then checked against the
    dev key, which ``vdx token`` on this machine signs with anyway), and only a browser on this
    machine (``from_this_machine``), so it gives nobody a token they could not make already."""
    return (
        bool(getattr(request.app.state, "demo_sign_in", False))
        and not has_identity_provider(_settings(request))
        and from_this_machine(request)
    )


@router.get("/web/config")
async def page_config(request: Request) -> JSONResponse:
    s = _settings(request)
    oidc = (
        {"issuer": s.oidc_issuer.rstrip("/"), "clientId": s.oidc_client_id, "scope": s.oidc_scope}
        if s.oidc_issuer
        else None
    )
    # no ICE servers here: TURN credentials go only to joiners the room let in (``joined``)
    return JSONResponse(
        {
            "apiBase": f"{s.api_context}/v2",
            "nodeBase": f"{s.api_context}/node/v1",
            "oidc": oidc,
            "devSignIn": dev_sign_in_answers(request),
            "roles": list(ALL_ROLES),
        },
        headers=_NO_CACHE,
    )


class DevTokenRequest(BaseModel):
    organisation: str = Field(min_length=1, max_length=100)
    email: str = Field(min_length=3, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    roles: list[str] = Field(min_length=1)


@router.post("/web/dev-token")
async def dev_token(request: Request, body: DevTokenRequest) -> dict[str, Any]:
    s = _settings(request)
    if not dev_sign_in_answers(request):
        raise BasicError(404)
    unknown = sorted(set(body.roles) - set(ALL_ROLES))
    if unknown:
        raise validation_error(f"roles: unknown role(s) {', '.join(unknown)}")
    ttl = 8 * 3600
    token = mint_token(s, org=body.organisation, email=body.email, roles=body.roles, ttl=ttl)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


@router.get("/web/live")
async def live_counts(
    request: Request,
    alias: list[str] = Query(default_factory=list, max_length=200),
    caller: Caller = Depends(require(*STAFF)),
    session: AsyncSession = Depends(get_session),
) -> dict[str, int]:
    """Participants now in the rooms of the caller's own meetings: of their organisation, and
    theirs alone for a plain meeting-user (aliases of others count as not live, so the numbers
    leak nothing, whatever other role the token holds)."""
    rooms: Rooms | None = getattr(request.app.state, "rooms", None)
    actor = caller.actor()
    out: dict[str, int] = {}
    for a in alias:
        conf = rooms.live_conference(a) if rooms is not None else None
        if conf is None or conf.ended:
            out[a] = 0
            continue
        mine = await meeting_search.search(session, actor, meeting_search.Filters(uri_with_domain=a))
        own = [m for m in mine if m.organisation_id == actor.org_id]
        out[a] = len(conf.participants) if own else 0
    return out


class InvitationRequest(BaseModel):
    meetingUuid: UUID
    channel: Literal["sms", "email"]
    to: str = Field(min_length=3, max_length=200)
    language: Literal["da", "en"] = "da"


@router.post("/web/invitations", status_code=202)
async def send_invitation(
    request: Request,
    body: InvitationRequest,
    caller: Caller = Depends(require(*STAFF)),
    session: AsyncSession = Depends(get_session),
) -> dict[str, str]:
    """Send the meeting's short link (it leaves the PIN out when guests must type it)."""
    s = _settings(request)
    if body.channel == "email" and "@" not in body.to:
        raise validation_error("to: an e-mail address is expected")
    if body.channel == "sms" and not body.to.replace("+", "").replace(" ", "").isdigit():
        raise validation_error("to: a phone number is expected")
    m = await meetings.get(session, caller.actor(), str(body.meetingUuid))
    link = short_link(s.short_link_base, m.short_id)
    start = m.start_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subject, text = invitation_text(body.language, m.subject, start, link)
    sender: InvitationSender = request.app.state.invitation_sender
    await sender.send(Invitation(channel=body.channel, to=body.to, subject=subject, text=text))
    return {"status": "sent", "link": link}


async def usage_operator(request: Request) -> Operator:
    """An operator; a participant token (of a live room) is refused with 403, as by conference
    control, before it could be read as a JWT."""
    rooms: Rooms | None = getattr(request.app.state, "rooms", None)
    if rooms is not None and rooms.holder(bearer_token(request)) is not None:
        raise BasicError(403)
    return await operator(request)


@router.get("/web/usage")
async def usage(
    request: Request,
    days: int = Query(14, ge=1, le=92),
    until: date | None = Query(None, description="the last day shown (UTC); default today"),
    op: Operator = Depends(usage_operator),
    session: AsyncSession = Depends(get_session),
) -> dict[str, Any]:
    """Per organisation per day, for ``days`` days ending ``until``: the totals of
    ``vdx.services.usage``; plus the capacity in use now. All of it only for the organisations
    the admin oversees (their own and its descendants)."""
    last = until or datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    per = await usage_service.totals_per_day(session, first, last, op.ids, op.codes)
    rooms: Rooms | None = getattr(request.app.state, "rooms", None)
    everywhere = list(rooms.live.values()) if rooms is not None else []
    live = [c for c in everywhere if op.oversees(c.config.organisation)]
    return {
        "days": [(first + timedelta(days=i)).isoformat() for i in range(days)],
        "usage": [
            {
                "organisation": code,
                "day": day.isoformat(),
                "meetings": int(v.meetings),
                "minutes": round(v.minutes),
                "participants": int(v.participants),
                "participantMinutes": round(v.participant_seconds / 60),
            }
            for (code, day), v in sorted(per.items())
        ],
        "capacity": {
            "conferences": len(live),
            "participants": sum(len(c.participants) for c in live),
        },
        "meetingsTotal": await usage_service.meetings_total(session, op.ids),
    }
