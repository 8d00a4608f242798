"""The embedded organisation service, v2 (spec 5.1): organisations, their tree, and who owns a URI.

The reference runs this as a separate service (``medcom-vdx-organisation``) in front of the same
database; vdx embeds it under ``{VDX_API_CONTEXT}/services/v2/...`` so that tools written for it
(and the video API's own tree look-ups of spec 2.2) have it at hand.

Its errors have a body of their own, ``{error,path,status,status_text,timestamp}``, different from
the video API's ``DetailedError``; :class:`OrganisationServiceRoute` renders it for this router
only. Token defects stay 401 without a body, as everywhere (spec 1.0 Auth).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException

from vdx.access.callers import Caller, require
from vdx.access.http_errors import BasicError, describe_validation_errors, reason_phrase
from vdx.access.sessions import get_session
from vdx.booking.roles import ADMIN
from vdx.booking.timefmt import format_ts
from vdx.services import audit, organisations
from vdx.store.models import Organisation

# ---------------------------------------------------------------------------------------------
# errors


class OrganisationServiceError(Exception):
    """An error of the organisation service; ``message`` becomes the body's ``error``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OrganisationServiceErrorBody(BaseModel):
    """``basic-error`` of the organisation service's OpenAPI document."""

    error: str
    path: str
    status: int
    status_text: str
    timestamp: str


def error_response(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = OrganisationServiceErrorBody(
        error=message,
        path=request.url.path,
        status=status,
        status_text=reason_phrase(status),
        timestamp=format_ts(datetime.now(UTC)),
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


class OrganisationServiceRoute(APIRoute):
    """Renders every error raised while handling a request of this router (validation, the role
    gate, the service's own errors, unreadable bodies) as the organisation service's body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except OrganisationServiceError as exc:
                return error_response(request, exc.status, exc.message)
            except RequestValidationError as exc:
                return error_response(request, 400, describe_validation_errors(exc))
            except BasicError as exc:
                if not exc.body:
                    raise  # token defects: 401 without a body (spec 1.0 Auth)
                return error_response(request, exc.status, reason_phrase(exc.status), exc.headers)
            except HTTPException as exc:
                return error_response(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

        return route


def framework_errors_under(
    prefix: str, fallback: Callable[[Request, Exception], Coroutine[Any, Any, Response]]
) -> Callable[[Request, Exception], Coroutine[Any, Any, Response]]:
    """An app-wide handler of the framework's own errors (no route matched, wrong method) that
    answers with this service's body below ``prefix`` and leaves the rest to ``fallback``."""

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and request.url.path.startswith(prefix):
            return error_response(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))
        return await fallback(request, exc)

    return handle


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OrganisationServiceErrorBody, "description": reason_phrase(status)}
    for status in (400, 401, 403, 404)
}

router = APIRouter(
    prefix="/services/v2",
    tags=["Organisation V2"],
    route_class=OrganisationServiceRoute,
    responses=_ERRORS,
)

# ---------------------------------------------------------------------------------------------
# bodies (organisation-v2.yaml of the reference)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OrganisationUpdate(_Body):
    """``organisation-update``: the fields PUT replaces (absent = null)."""

    poolSize: int | None = Field(None, ge=0, le=2**31 - 1)
    smsSenderName: str | None = Field(None, max_length=11)
    allowCustomUriWithoutDomain: bool | None = False
    smsCallbackUrl: str | None = Field(None, max_length=100)
    historyApiKey: str | None = Field(None, max_length=36)
    deviceWebhookEndpoint: str | None = Field(None, max_length=100)
    deviceWebhookEndpointKey: str | None = Field(None, max_length=100)
    # vdx addition: whether the organisation's meetings are clinical (they come first when
    # capacity is short). Absent keeps the stored value, so a PUT of a client that knows only
    # the reference's fields never clears it.
    clinical: bool | None = None

    def columns(self) -> dict[str, Any]:
        out = {
            "pool_size": self.poolSize,
            "sms_sender_name": self.smsSenderName,
            "allow_custom_uri_without_domain": bool(self.allowCustomUriWithoutDomain),
            "sms_callback_url": self.smsCallbackUrl,
            "history_api_key": self.historyApiKey,
            "device_webhook_endpoint": self.deviceWebhookEndpoint,
            "device_webhook_endpoint_key": self.deviceWebhookEndpointKey,
        }
        if self.clinical is not None:
            out["clinical"] = self.clinical
        return out


class OrganisationCreate(OrganisationUpdate):
    """``organisation-create``: the code, an optional name (defaults to the code) and the rest."""

    code: str = Field(min_length=1, max_length=250)
    name: str | None = Field(None, max_length=100)


class OrganisationResponse(BaseModel):
    """``organisation-response``; ``groupId`` is the organisation's row id (vdx has no groups)."""

    groupId: int
    code: str
    name: str | None
    poolSize: int
    smsSenderName: str | None = None
    allowCustomUriWithoutDomain: bool
    smsCallbackUrl: str | None = None
    deviceWebhookEndpoint: str | None = None
    clinical: bool = False  # vdx addition (see OrganisationUpdate)


class OrganisationTree(BaseModel):
    """``organisationtree``: a node with its children."""

    code: str
    name: str | None
    poolSize: int
    children: list[OrganisationTree] = Field(default_factory=list)
    smsSenderName: str | None = None
    smsCallbackUrl: str | None = None
    groupId: int
    deviceWebhookEndpoint: str | None = None
    deviceWebhookEndpointKey: str | None = None
    clinical: bool = False  # vdx addition (see OrganisationUpdate)


class OrganisationTreeForApiKey(_Body):
    """``organisation-tree-for-api-key``: an API key and its type (only ``history`` exists)."""

    api_key: str = Field(min_length=1, max_length=100)
    api_key_type: str = Field(max_length=50)


class OrganisationSimple(BaseModel):
    code: str


class OrganisationUri(BaseModel):
    """One answer of ``organisation/uri``; ``booked`` = a provisioned meeting room has the URI."""

    code: str
    name: str | None
    groupId: int
    uri: str
    booked: bool
    groupName: str | None


def _response(org: Organisation) -> OrganisationResponse:
    return OrganisationResponse(
        groupId=org.id,
        code=org.code,
        name=org.name,
        poolSize=org.pool_size or 0,  # spec 5.1: 0 when not set
        smsSenderName=org.sms_sender_name,
        allowCustomUriWithoutDomain=bool(org.allow_custom_uri_without_domain),
        smsCallbackUrl=org.sms_callback_url,
        deviceWebhookEndpoint=org.device_webhook_endpoint,
        clinical=bool(org.clinical),
    )


def _node(org: Organisation, children: list[OrganisationTree]) -> OrganisationTree:
    return OrganisationTree(
        code=org.code,
        name=org.name,
        poolSize=org.pool_size or 0,
        children=children,
        smsSenderName=org.sms_sender_name,
        smsCallbackUrl=org.sms_callback_url,
        groupId=org.id,
        deviceWebhookEndpoint=org.device_webhook_endpoint,
        deviceWebhookEndpointKey=org.device_webhook_endpoint_key,
        clinical=bool(org.clinical),
    )


# ---------------------------------------------------------------------------------------------
# look-ups shared by the endpoints


async def _get(session: AsyncSession, code: str) -> Organisation:
    org = await organisations.by_code(session, code)
    if org is None:
        raise OrganisationServiceError(404, f"Organisation with id: {code} not found")
    return org


async def _check_in_callers_tree(session: AsyncSession, caller: Caller, org: Organisation) -> None:
    if not await organisations.is_in_tree_of(session, org, caller.org.id):
        raise OrganisationServiceError(
            401, "UserContext organisation is not a parent of the requested organisation."
        )


async def _in_callers_tree(
    session: AsyncSession, caller: Caller, code: str | None, group_id: int | None
) -> Organisation:
    """The requested organisation, by code or group id (exactly one), inside the caller's tree:
    unknown -> 404, outside the caller's organisation and its descendants -> 401 (spec 5.1)."""
    if (code is None) == (group_id is None):
        raise OrganisationServiceError(400, "Exactly one of organisationCode and groupId must be set.")
    if code is not None:
        org = await organisations.by_code(session, code)
        if org is None:
            raise OrganisationServiceError(404, f"Organisation with code {code} not found.")
    else:
        assert group_id is not None
        org = await organisations.by_id(session, group_id)
        if org is None:
            raise OrganisationServiceError(404, f"Group with id {group_id} not found.")
    await _check_in_callers_tree(session, caller, org)
    return org


async def _ancestor_tree(session: AsyncSession, org: Organisation) -> OrganisationTree:
    """The path from the root down to ``org`` as nested single-child nodes (spec 5.1)."""
    node = _node(org, [])
    for ancestor in await organisations.ancestors(session, org):
        node = _node(ancestor, [node])
    return node


async def _subtree(session: AsyncSession, org: Organisation) -> OrganisationTree:
    members = await organisations.subtree(session, org)
    index = organisations.children_index(members)

    def build(o: Organisation, depth: int) -> OrganisationTree:
        kids = index.get(o.id, []) if depth < len(members) else []  # a cycle cannot recurse forever
        return _node(o, [build(k, depth + 1) for k in kids])

    return build(org, 0)


Admin = Depends(require(ADMIN))

# ---------------------------------------------------------------------------------------------
# organisation


@router.get("/organisation", response_model=OrganisationResponse, summary="Read organisation")
async def read_by_query(
    organisationCode: str = Query(),
    caller: Caller = Admin,
    session: AsyncSession = Depends(get_session),
) -> OrganisationResponse:
    return _response(await _get(session, organisationCode))


async def _create(
    request: Request, caller: Caller, session: AsyncSession, parent_code: str, body: OrganisationCreate
) -> OrganisationResponse:
    try:
        async with session.begin():
            org = await organisations.create(
                session, body.code, name=body.name, parent_code=parent_code, **body.columns()
            )
            audit.organisation_changed(session, request.app.state.settings, org, "create", caller.email)
            return _response(org)
    except (organisations.OrganisationExists, organisations.ParentNotFound) as exc:
        raise OrganisationServiceError(400, str(exc)) from None
    except IntegrityError:  # a concurrent create of the same code won the race
        raise OrganisationServiceError(400, f"Organisation {body.code} already exists.") from None


@router.post("/organisation", response_model=OrganisationResponse, summary="Create organisation")
async def create_by_query(
    request: Request,
    body: OrganisationCreate,
    parent_code: str = Query(),
    caller: Caller = Admin,
    session: AsyncSession = Depends(get_session),
) -> OrganisationResponse:
    return await _create(request, caller, session, parent_code, body)


@router.post("/organisation/uri", response_model=list[OrganisationUri], summary="Get organisations by URIs")
async def organisations_by_uri(
    uris: list[str] = Body(),
    caller: Caller = Admin,
    session: AsyncSession = Depends(get_session),
) -> list[OrganisationUri]:
    """Which organisation owns each URI: a provisioned meeting room first (``booked``), else the
    organisation whose templates use the URI's domain. vdx has no permanent meeting rooms or
    registered clients, the reference's two middle look-ups. Unknown URIs are left out."""
    wanted = list(dict.fromkeys(uris))
    booked = await organisations.owner_by_provisioned_uri(session, wanted)
    by_domain = await organisations.owner_by_domain(session, [u for u in wanted if u not in booked])
    out = []
    for uri in wanted:
        org = booked.get(uri) or by_domain.get(uri)
        if org is not None:
            out.append(
                OrganisationUri(
                    code=org.code,
                    name=org.name,
                    groupId=org.id,
                    uri=uri,
                    booked=uri in booked,
                    groupName=org.name,
                )
            )
    return out


@router.get(
    "/organisation/{code:path}/descendants",
    response_model=list[OrganisationSimple],
    tags=["Organisation Tree V2"],
    summary="Codes of the organisation and all its descendants",
)
async def descendants(
    code: str, caller: Caller = Admin, session: AsyncSession = Depends(get_session)
) -> list[OrganisationSimple]:
    org = await _in_callers_tree(session, caller, code, None)
    return [OrganisationSimple(code=o.code) for o in await organisations.subtree(session, org)]


@router.get("/organisation/{code:path}", response_model=OrganisationResponse, summary="Read organisation")
async def read_by_path(
    code: str, caller: Caller = Admin, session: AsyncSession = Depends(get_session)
) -> OrganisationResponse:
    return _response(await _get(session, code))


@router.put("/organisation/{code:path}", response_model=OrganisationResponse, summary="Update organisation")
async def update(
    request: Request,
    code: str,
    body: OrganisationUpdate,
    caller: Caller = Admin,
    session: AsyncSession = Depends(get_session),
) -> OrganisationResponse:
    # Not tree-scoped: the reference lets any meeting-admin update any organisation (spec 5.1).
    async with session.begin():
        org = await _get(session, code)
        await organisations.update(session, org, **body.columns())
        audit.organisation_changed(session, request.app.state.settings, org, "update", caller.email)
        return _response(org)


@router.post(
    "/organisation/{parent_code:path}", response_model=OrganisationResponse, summary="Create organisation"
)
async def create_by_path(
    request: Request,
    parent_code: str,
    body: OrganisationCreate,
    caller: Caller = Admin,
    session: AsyncSession = Depends(get_session),
) -> OrganisationResponse:
    return await _create(request, caller, session, parent_code, body)


# ---------------------------------------------------------------------------------------------
# organisation tree

GroupId = Query(None, ge=-(2**31), le=2**31 - 1)


@router.get(
    "/organisationtree",
    response_model=OrganisationTree,
    tags=["Organisation Tree V2"],
    summary="The path from the root to the organisation",
)
async def tree_by_query(
    organisationCode: str | None = Query(None),
    groupId: int | None = GroupId,
    caller: Caller = Admin,
    session: AsyncSession = Depends(get_session),
) -> OrganisationTree:
    org = await _in_callers_tree(session, caller, organisationCode, groupId)
    return await _ancestor_tree(session, org)


@router.get(
    "/organisationtree-children",
    response_model=OrganisationTree,
    tags=["Organisation Tree V2"],
    summary="The organisation and all its descendants",
)
async def tree_children(
    organisationCode: str | None = Query(None),
    groupId: int | None = GroupId,
    caller: Caller = Admin,
    session: AsyncSession = Depends(get_session),
) -> OrganisationTree:
    org = await _in_callers_tree(session, caller, organisationCode, groupId)
    return await _subtree(session, org)


@router.get(
    "/organisationtree/{code:path}",
    response_model=OrganisationTree,
    tags=["Organisation Tree V2"],
    summary="The path from the root to the organisation",
)
async def tree_by_path(
    code: str, caller: Caller = Admin, session: AsyncSession = Depends(get_session)
) -> OrganisationTree:
    org = await _in_callers_tree(session, caller, code, None)
    return await _ancestor_tree(session, org)


@router.post(
    "/organisation-tree-for-api-key",
    response_model=OrganisationTree,
    tags=["Organisation Tree V2"],
    summary="The path from the root to the organisation holding an API key",
)
async def tree_for_api_key(
    body: OrganisationTreeForApiKey,
    caller: Caller = Admin,
    session: AsyncSession = Depends(get_session),
) -> OrganisationTree:
    """Which organisation a history-service API key belongs to, as its ancestor path (spec 5.1);
    key types other than ``history`` find nothing, as in the reference."""
    org = None
    if body.api_key_type == "history":
        org = await organisations.by_history_api_key(session, body.api_key)
    if org is None:
        raise OrganisationServiceError(404, "Organisation not found for the api key.")
    await _check_in_callers_tree(session, caller, org)
    return await _ancestor_tree(session, org)
