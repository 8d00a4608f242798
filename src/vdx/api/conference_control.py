"""Conference control for hosts and operators: ``{API_CONTEXT}/node/v1/conferences/...``.

Pexip's management "status" and "command" families in small: list live conferences and their
participants with media stats; mute, unmute, disconnect, admit from the lobby; lock and unlock;
mute all guests; change the layout. Changes act on the live conference at once, wherever it is:
in this process, or on the cluster node it is live on (``vdx.node.control``).

Who may call: a ``meeting-admin`` of the conference's organisation or of one of its ancestors
(operators; the room names its organisation, ``RoomConfig.organisation``), or, for one
conference, the participant token a *host* of that conference got in its ``joined`` message (as
Pexip's client API lets hosts control their own meeting). Any other participant token (a guest's,
a host's of another room) is refused with 403, as is an admin of any other organisation.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from vdx.access.callers import bearer_token, node_caller, operator
from vdx.access.http_errors import BasicError
from vdx.booking.errors import VdxError, not_found, validation_error
from vdx.conference.policy import Role
from vdx.events.payloads import ControlOperation
from vdx.node.control import Answer, Command, ControlDesk
from vdx.services import audit

# Not in the VDX API's OpenAPI document: that one stays the reference's (README documents these).
router = APIRouter(prefix="/node/v1", tags=["Conference control"], include_in_schema=False)


def _desk(request: Request) -> ControlDesk:
    desk: ControlDesk | None = getattr(request.app.state, "control", None)
    if desk is None or not desk.reaches_conferences:
        raise VdxError(404, "11", "This server reaches no conferences (no rooms here, no VDX_NATS_URL).")
    return desk


async def _run(request: Request, op: str, alias: str = "", pid: str | None = None, **args: Any) -> Answer:
    """Authenticate the caller and run the command where the conference is live; its refusals
    become the API's errors. A participant token is never read as a JWT: the node that holds it
    judges it, and an operator's organisations go with the command."""
    desk = _desk(request)
    token = bearer_token(request)
    oversees: tuple[str, ...] | None = None
    unauthenticated: BasicError | None = None
    if desk.holds(token):
        if op == "list":
            raise BasicError(403)
    else:
        try:
            oversees = tuple(sorted((await operator(request)).codes))
        except BasicError as exc:
            if exc.status != 401 or op == "list":
                raise
            unauthenticated = exc  # perhaps a host's participant token of a room on another node
    principal = getattr(request.state, "principal", None)
    email = principal.email if principal is not None else None
    answer = await desk.run(Command(op, alias, pid, args, token, oversees, email))
    if answer.status < 300:
        return answer
    if answer.refusal == "unauthenticated" or (answer.refusal == "absent" and unauthenticated):
        raise unauthenticated or BasicError(401)
    if answer.status == 403:
        raise BasicError(403)
    if answer.refusal == "absent":
        raise not_found("conference", "alias")
    if answer.refusal == "participant_not_found":
        raise not_found("participant", "participantId")
    raise VdxError(answer.status, "10", answer.message or answer.refusal)


async def _audited(request: Request, answer: Answer, operation: ControlOperation, **data: Any) -> None:
    """Record who did what to the conference for the audit trail: an operator by e-mail, a host
    by display name and participant id (as the node saw them before it acted)."""
    principal = getattr(request.state, "principal", None)
    actor = principal.email if principal is not None else answer.actor
    await audit.conference_action(
        request.app.state.sessions,
        request.app.state.settings,
        aliases=list(answer.aliases),
        operation=operation,
        actor=actor,
        data=data,
    )


async def _participant_action(request: Request, alias: str, pid: str, operation: ControlOperation) -> None:
    answer = await _run(request, operation, alias, pid)
    await _audited(request, answer, operation, participantId=pid, displayName=answer.target)


class LayoutRequest(BaseModel):
    layout: str | None = Field(None, description="both views (an ordinary room's view)")
    hostView: str | None = None
    guestView: str | None = None


@router.get("/conferences")
async def list_conferences(request: Request) -> list[dict[str, Any]]:
    """The live conferences of the organisations the operator oversees, on every node."""
    rows: list[dict[str, Any]] = (await _run(request, "list")).body
    return rows


@router.get("/conferences/{alias}")
async def conference_status(request: Request, alias: str) -> dict[str, Any]:
    status: dict[str, Any] = (await _run(request, "status", alias)).body
    return status


@router.post("/conferences/{alias}/lock", status_code=204)
async def lock(request: Request, alias: str) -> None:
    await _audited(request, await _run(request, "lock", alias), "lock")


@router.post("/conferences/{alias}/unlock", status_code=204)
async def unlock(request: Request, alias: str) -> None:
    await _audited(request, await _run(request, "unlock", alias), "unlock")


@router.post("/conferences/{alias}/mute_guests", status_code=204)
async def mute_guests(request: Request, alias: str) -> None:
    await _audited(request, await _run(request, "mute_guests", alias), "mute_guests")


@router.post("/conferences/{alias}/unmute_guests", status_code=204)
async def unmute_guests(request: Request, alias: str) -> None:
    await _audited(request, await _run(request, "unmute_guests", alias), "unmute_guests")


@router.post("/conferences/{alias}/layout", status_code=204)
async def change_layout(request: Request, alias: str, body: LayoutRequest) -> None:
    host = body.hostView or body.layout
    guest = body.guestView or body.layout
    if host is None and guest is None:
        raise validation_error("give layout, hostView or guestView")
    answer = await _run(request, "layout", alias, hostView=host, guestView=guest)
    await _audited(request, answer, "layout", hostView=host, guestView=guest)


@router.post("/conferences/{alias}/disconnect", status_code=204)
async def end_conference(request: Request, alias: str) -> None:
    await _audited(request, await _run(request, "end", alias), "end")


class DialRequest(BaseModel):
    destination: str = Field(..., max_length=512, description="sip:user@host[:port][;transport=tcp|tls]")
    role: Role = Role.GUEST
    displayName: str | None = Field(None, max_length=64)
    trunk: str | None = Field(None, max_length=64, description="the outbound trunk to call through")


@router.post("/conferences/{alias}/participants/dial", status_code=202)
async def dial(request: Request, alias: str, body: DialRequest) -> dict[str, str]:
    """Call a SIP address into the room, from the node it is live on; the answer comes at once,
    the call's progress shows in the status (``dialOuts``) and its outcome in the audit trail."""
    args = {"destination": body.destination, "role": body.role.value, "displayName": body.displayName}
    answer = await _run(request, "dial", alias, None, **args, trunk=body.trunk)
    pid = str(answer.body["participantId"])
    await _audited(
        request,
        answer,
        "dial",
        destination=body.destination,
        role=body.role.value,
        trunk=body.trunk,
        participantId=pid,
    )
    return {"participantId": pid}


class ConferenceAction(BaseModel):
    aliases: list[str] = Field(..., min_length=1, max_length=50)
    operation: ControlOperation
    actor: str | None = Field(None, max_length=250)
    data: dict[str, Any] = Field(default_factory=dict)


@router.post("/conference-actions", status_code=204)
async def node_conference_action(request: Request, body: ConferenceAction) -> None:
    """What a node did to a conference by itself (a dial-out's outcome), for the audit trail:
    the nodes' own token only."""
    await node_caller(request)
    await audit.conference_action(
        request.app.state.sessions,
        request.app.state.settings,
        aliases=body.aliases,
        operation=body.operation,
        actor=body.actor,
        data=body.data,
    )


@router.post("/conferences/{alias}/participants/{pid}/mute", status_code=204)
async def mute(request: Request, alias: str, pid: str) -> None:
    await _participant_action(request, alias, pid, "mute")


@router.post("/conferences/{alias}/participants/{pid}/unmute", status_code=204)
async def unmute(request: Request, alias: str, pid: str) -> None:
    await _participant_action(request, alias, pid, "unmute")


@router.post("/conferences/{alias}/participants/{pid}/admit", status_code=204)
async def admit(request: Request, alias: str, pid: str) -> None:
    await _participant_action(request, alias, pid, "admit")


@router.post("/conferences/{alias}/participants/{pid}/disconnect", status_code=204)
async def disconnect(request: Request, alias: str, pid: str) -> None:
    await _participant_action(request, alias, pid, "disconnect")
