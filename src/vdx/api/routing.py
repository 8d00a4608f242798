"""Gateway routing rules and outbound trunks: ``{API_CONTEXT}/node/v1/routing-rules`` and
``/trunks`` for the admins of the organisation that operates the nodes (``node_operator``), and
``/routing`` for the nodes themselves (their provisioner token), the only reader of trunk
passwords. Every change is in the audit trail (resources ``routingRule`` and ``trunk``, no
passwords). What makes a rule or trunk valid is ``vdx.booking.routing``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import node_caller, node_operator
from vdx.access.sessions import get_read_session, get_session
from vdx.booking.errors import VdxError, not_found, validation_error
from vdx.booking.routing import RoutingError, Rule, Trunk, rule_json, trunk_json
from vdx.services import routing
from vdx.services.transactions import in_transaction
from vdx.settings import Settings

T = TypeVar("T")

# Not in the VDX API's OpenAPI document: that one stays the reference's (README documents these).
router = APIRouter(prefix="/node/v1", tags=["Gateway routing"], include_in_schema=False)


class RuleBody(BaseModel):
    match: str = Field(description="regular expression the dialled alias must match whole")
    replace: str = Field(description="the destination, with \\1 or \\g<name> from the match")
    priority: int = 100
    target: str = "sip"
    trunk: str | None = None
    sourceDomains: list[str] = Field(default_factory=list)
    sourceNetworks: list[str] = Field(default_factory=list)
    enabled: bool = True


class TrunkBody(BaseModel):
    proxy: str = Field(description="host[:port]")
    transport: str = "udp"
    username: str | None = None
    password: str | None = None
    fromDomain: str | None = None
    maxCalls: int = 0


def _refused(exc: RoutingError) -> VdxError:
    return validation_error(f"{exc.field}: {exc.message}")


async def admin_write(session: AsyncSession, work: Callable[[], Awaitable[T]]) -> T:
    return await in_transaction(
        session,
        work,
        on_exhausted=lambda: VdxError(409, "10", "changed by someone else meanwhile: try again"),
    )


async def admin_remove(
    request: Request,
    session: AsyncSession,
    name: str,
    remove: Callable[[AsyncSession, Settings, str, str | None], Awaitable[object]],
    thing: str,
    missing: type[Exception],
) -> None:
    """An operator's delete of ``name`` by ``remove(session, settings, name, actor)``: 404 naming
    ``thing`` when there is none (``missing``), 409 when something still uses it."""
    await node_operator(request)
    try:
        await admin_write(
            session, lambda: remove(session, request.app.state.settings, name, admin_actor(request))
        )
    except missing:
        raise not_found(thing, "name") from None
    except RoutingError as exc:
        raise VdxError(409, "10", f"{exc.field}: {exc.message}") from None


def admin_actor(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.email if principal is not None else None


@router.get("/routing-rules")
async def list_rules(
    request: Request, session: AsyncSession = Depends(get_read_session)
) -> list[dict[str, Any]]:
    await node_operator(request)
    return [rule_json(r) for r in await routing.rules(session)]


@router.put("/routing-rules/{name}")
async def put_rule(
    request: Request,
    response: Response,
    name: str,
    body: RuleBody,
    session: AsyncSession = Depends(get_session),
) -> dict[str, Any]:
    """Create (201) or replace (200) the rule ``name``."""
    await node_operator(request)
    rule = Rule(
        name=name,
        match=body.match,
        replace=body.replace,
        priority=body.priority,
        target=body.target,
        trunk=body.trunk,
        source_domains=tuple(body.sourceDomains),
        source_networks=tuple(body.sourceNetworks),
        enabled=body.enabled,
    )
    try:
        stored, created = await admin_write(
            session, lambda: routing.put_rule(session, request.app.state.settings, rule, admin_actor(request))
        )
    except RoutingError as exc:
        raise _refused(exc) from None
    response.status_code = 201 if created else 200
    return rule_json(stored)


@router.delete("/routing-rules/{name}", status_code=204)
async def delete_rule(request: Request, name: str, session: AsyncSession = Depends(get_session)) -> None:
    await admin_remove(request, session, name, routing.remove_rule, "routingRule", routing.NotFound)


@router.get("/trunks")
async def list_trunks(
    request: Request, session: AsyncSession = Depends(get_read_session)
) -> list[dict[str, Any]]:
    await node_operator(request)
    return [trunk_json(t) for t in await routing.trunks(session)]


@router.put("/trunks/{name}")
async def put_trunk(
    request: Request,
    response: Response,
    name: str,
    body: TrunkBody,
    session: AsyncSession = Depends(get_session),
) -> dict[str, Any]:
    """Create (201) or replace (200) the trunk ``name``."""
    await node_operator(request)
    trunk = Trunk(
        name=name,
        proxy=body.proxy,
        transport=body.transport,
        username=body.username,
        password=body.password,
        from_domain=body.fromDomain,
        max_calls=body.maxCalls,
    )
    try:
        stored, created = await admin_write(
            session,
            lambda: routing.put_trunk(session, request.app.state.settings, trunk, admin_actor(request)),
        )
    except RoutingError as exc:
        raise _refused(exc) from None
    response.status_code = 201 if created else 200
    return trunk_json(stored)


@router.delete("/trunks/{name}", status_code=204)
async def delete_trunk(request: Request, name: str, session: AsyncSession = Depends(get_session)) -> None:
    await admin_remove(request, session, name, routing.remove_trunk, "trunk", routing.NotFound)


@router.get("/routing")
async def for_nodes(request: Request, session: AsyncSession = Depends(get_read_session)) -> dict[str, Any]:
    """What a node routes calls by: the rules in order and the trunks with their passwords, for
    the nodes' own token only."""
    await node_caller(request)
    return {
        "rules": [rule_json(r) for r in await routing.rules(session)],
        "trunks": [trunk_json(t, secrets=True) for t in await routing.trunks(session)],
    }
