"""Conference control for hosts and operators: ``{API_CONTEXT}/node/v1/conferences/...``.

Pexip's management "status" and "command" families in small: list live conferences and their
participants with media stats; mute, unmute, disconnect, admit from the lobby; lock and unlock;
mute all guests; change the layout. Changes act on the live conference at once.

Who may call: a ``meeting-admin`` of the conference's organisation or of one of its ancestors
(operators; the room names its organisation, ``RoomConfig.organisation``), or, for one
conference, the participant token a *host* of that conference got in its ``joined`` message (as
Pexip's client API lets hosts control their own meeting). Any other participant token (a guest's,
a host's of another room) is refused with 403, as is an admin of any other organisation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from vdx.access.callers import Operator, bearer_token, operator
from vdx.access.http_errors import BasicError
from vdx.booking.errors import VdxError, not_found, validation_error
from vdx.conference.conference import Conference, ConferenceError
from vdx.conference.policy import Role
from vdx.events.payloads import ControlOperation
from vdx.node.rooms import Rooms
from vdx.services import audit

# Not in the VDX API's OpenAPI document: that one stays the reference's (README documents these).
router = APIRouter(prefix="/node/v1", tags=["Conference control"], include_in_schema=False)


def _rooms(request: Request) -> Rooms:
    rooms: Rooms | None = getattr(request.app.state, "rooms", None)
    if rooms is None:
        raise VdxError(404, "11", "This server hosts no conferences (VDX_NODE_ENABLED=false).")
    return rooms


async def _operator(request: Request, rooms: Rooms) -> Operator:
    """An operator. A participant token is refused with 403 before it could be read as a JWT."""
    if rooms.holder(bearer_token(request)) is not None:
        raise BasicError(403)
    return await operator(request)


async def _conference(request: Request, alias: str) -> Conference:
    """The live conference, if the caller is one of its hosts or an operator over its
    organisation; every control endpoint admits its caller here and nowhere else."""
    rooms = _rooms(request)
    conf = rooms.live_conference(alias)
    holder = rooms.holder(bearer_token(request))
    if holder is not None:
        held, p = holder
        if held is not conf or p.role is not Role.HOST:
            raise BasicError(403)
        return held
    op = await operator(request)
    if conf is None:
        raise not_found("conference", "alias")
    if not op.oversees(conf.config.organisation):
        raise BasicError(403)
    return conf


def _act(fn: Callable[..., None], *args: Any, **kw: Any) -> None:
    """Run a conference action; its refusals become VDX error bodies."""
    try:
        fn(*args, **kw)
    except ConferenceError as exc:
        if exc.code == "participant_not_found":
            raise not_found("participant", "participantId") from None
        raise VdxError(409 if exc.code != "bad_layout" else 400, "10", exc.message) from None


async def _audited(
    request: Request, conf: Conference, operation: ControlOperation, pid: str | None = None, **data: Any
) -> None:
    """Record who did what to the conference for the audit trail: an operator by e-mail, a host
    by display name and participant id (called once the action took effect, or just before
    ending or removing, while the host and the target are still in the room)."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        actor = principal.email
    else:
        host = conf.by_token(bearer_token(request))
        actor = f"host {host.display_name} ({host.id})" if host is not None else None
    if pid is not None:
        target = conf.participants.get(pid)
        data |= {"participantId": pid, "displayName": target.display_name if target else None}
    await audit.conference_action(
        request.app.state.sessions,
        request.app.state.settings,
        aliases=[conf.alias, *sorted(conf.config.aliases)],
        operation=operation,
        actor=actor,
        data=data,
    )


class LayoutRequest(BaseModel):
    layout: str | None = Field(None, description="both views (an ordinary room's view)")
    hostView: str | None = None
    guestView: str | None = None


@router.get("/conferences")
async def list_conferences(request: Request) -> list[dict[str, Any]]:
    """The live conferences of the organisations the operator oversees."""
    rooms = _rooms(request)
    op = await _operator(request, rooms)
    return [
        {
            "alias": c.alias,
            "locked": c.locked,
            "startedAt": int(c.started_at),
            "participantCount": len(c.participants),
            "hostView": c.config.host_view,
            "guestView": c.config.guest_view,
        }
        for c in list(rooms.live.values())
        if op.oversees(c.config.organisation)
    ]


@router.get("/conferences/{alias}")
async def conference_status(request: Request, alias: str) -> dict[str, Any]:
    conf = await _conference(request, alias)
    return await conf.status()


@router.post("/conferences/{alias}/lock", status_code=204)
async def lock(request: Request, alias: str) -> None:
    conf = await _conference(request, alias)
    conf.set_locked(True)
    await _audited(request, conf, "lock")


@router.post("/conferences/{alias}/unlock", status_code=204)
async def unlock(request: Request, alias: str) -> None:
    conf = await _conference(request, alias)
    conf.set_locked(False)
    await _audited(request, conf, "unlock")


@router.post("/conferences/{alias}/mute_guests", status_code=204)
async def mute_guests(request: Request, alias: str) -> None:
    conf = await _conference(request, alias)
    conf.mute_guests(True)
    await _audited(request, conf, "mute_guests")


@router.post("/conferences/{alias}/unmute_guests", status_code=204)
async def unmute_guests(request: Request, alias: str) -> None:
    conf = await _conference(request, alias)
    conf.mute_guests(False)
    await _audited(request, conf, "unmute_guests")


@router.post("/conferences/{alias}/layout", status_code=204)
async def change_layout(request: Request, alias: str, body: LayoutRequest) -> None:
    conf = await _conference(request, alias)
    host = body.hostView or body.layout
    guest = body.guestView or body.layout
    if host is None and guest is None:
        raise validation_error("give layout, hostView or guestView")
    _act(conf.set_layout, host, guest)
    await _audited(request, conf, "layout", hostView=host, guestView=guest)


@router.post("/conferences/{alias}/disconnect", status_code=204)
async def end_conference(request: Request, alias: str) -> None:
    conf = await _conference(request, alias)
    await _audited(request, conf, "end")
    await conf.end("ended_by_host")


@router.post("/conferences/{alias}/participants/{pid}/mute", status_code=204)
async def mute(request: Request, alias: str, pid: str) -> None:
    conf = await _conference(request, alias)
    _act(conf.set_muted, pid, True, by_self=False)
    await _audited(request, conf, "mute", pid)


@router.post("/conferences/{alias}/participants/{pid}/unmute", status_code=204)
async def unmute(request: Request, alias: str, pid: str) -> None:
    conf = await _conference(request, alias)
    _act(conf.set_muted, pid, False, by_self=False)
    await _audited(request, conf, "unmute", pid)


@router.post("/conferences/{alias}/participants/{pid}/admit", status_code=204)
async def admit(request: Request, alias: str, pid: str) -> None:
    conf = await _conference(request, alias)
    _act(conf.admit, pid)
    await _audited(request, conf, "admit", pid)


@router.post("/conferences/{alias}/participants/{pid}/disconnect", status_code=204)
async def disconnect(request: Request, alias: str, pid: str) -> None:
    conf = await _conference(request, alias)
    if pid not in conf.participants:
        raise not_found("participant", "participantId")
    await _audited(request, conf, "disconnect", pid)
    await conf.remove(pid, "disconnected_by_host", notify=True)
