"""The request pipeline of spec 3.2: token -> principal -> organisation -> role gate.

401 and 403 come in the reference's order: token defects 401 (no body), unknown organisation 403
(unless the auto-create claim names a parent), empty roles 401, missing e-mail or organisation 401
(except a pure provisioner), then the endpoint's role gate 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.http_errors import BasicError
from vdx.access.sessions import get_read_session
from vdx.booking.errors import forbidden
from vdx.booking.roles import ADMIN, PROVISIONER, PROVISIONER_USER, Principal
from vdx.services import audit, organisations
from vdx.services.meeting_access import Actor
from vdx.settings import Settings
from vdx.store.db import read_session
from vdx.store.models import Organisation
from vdx.tokens import TokenError, TokenVerifier


@dataclass(frozen=True)
class Caller:
    principal: Principal
    organisation: Organisation | None  # detached; None only for a pure provisioner without one

    @property
    def org(self) -> Organisation:
        assert self.organisation is not None
        return self.organisation

    @property
    def email(self) -> str:
        return self.principal.email or ""

    def actor(self) -> Actor:
        """The caller as the meeting rules see it; a pure provisioner token without an
        organisation has no meetings of its own (403)."""
        if self.organisation is None:
            raise forbidden()
        return Actor(principal=self.principal, organisation=self.organisation)


def _claim_list(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list | tuple):
        return frozenset(str(v) for v in value)
    return frozenset()


def principal_from_claims(settings: Settings, claims: dict[str, Any]) -> Principal:
    def text(name: str) -> str | None:
        v = claims.get(name)
        return str(v) if v not in (None, "") else None

    return Principal(
        organisation_code=text(settings.claim_organisation),
        email=text(settings.claim_email),
        roles=_claim_list(claims.get(settings.claim_roles)),
        parent_org=text(settings.claim_parent_org),
    )


_UNAUTHORIZED = BasicError(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}, body=False)


def bearer_token(request: Request) -> str:
    """The request's bearer token, "" when it has none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def token_principal(request: Request) -> Principal:
    """The bearer token's principal; its defects are 401 before anything is read."""
    settings: Settings = request.app.state.settings
    verifier: TokenVerifier = request.app.state.verifier
    token = bearer_token(request)
    if not token:
        raise BasicError(401, headers={"WWW-Authenticate": "Bearer"}, body=False)
    try:
        claims = await verifier.verify(token)
    except TokenError:
        raise _UNAUTHORIZED from None
    return principal_from_claims(settings, claims)


async def admit(
    request: Request, principal: Principal, org: Organisation | None, roles: tuple[str, ...] = ()
) -> Caller:
    """The rest of the pipeline once the token's organisation has been looked up (``org``: its
    row, None where there is none): auto-create or 403, the 401s, then the role gate (``roles``:
    one of them; none given, no gate)."""
    if principal.organisation_code:
        if org is None and principal.parent_org:
            org = await _auto_create(request, principal)
        if org is None:
            raise BasicError(403)
    else:
        org = None
    if not principal.roles:
        raise BasicError(401)
    if not principal.only(PROVISIONER) and (not principal.email or not principal.organisation_code):
        raise BasicError(401)
    if roles and not principal.has(*roles):
        raise BasicError(403)
    request.state.principal = principal
    return Caller(principal=principal, organisation=org)


async def authenticate(request: Request, roles: tuple[str, ...] = ()) -> Caller:
    """Authenticate and resolve the caller's organisation in a short session of its own, so that
    the endpoint's session starts clean (services open their own transactions on it); the
    organisation row is returned detached, with its columns loaded."""
    principal = await token_principal(request)
    org = None
    if principal.organisation_code:
        async with read_session(request.app.state.sessions) as own:
            org = await organisations.by_code(own, principal.organisation_code)
    return await admit(request, principal, org, roles)


@dataclass(frozen=True)
class Operator:
    """A ``meeting-admin`` and the organisations they oversee: their own and its descendants.
    What the node's own endpoints show or change (live conferences, usage) is scoped to these,
    so an admin never reaches a sibling's or a parent's rooms."""

    caller: Caller
    codes: frozenset[str]
    ids: frozenset[int]

    def oversees(self, code: str | None) -> bool:
        """Whether the organisation of ``code`` is in the subtree (None, no organisation: never)."""
        return code is not None and code in self.codes


async def operator(request: Request) -> Operator:
    """Dependency: an authenticated ``meeting-admin`` (else 401/403 as ``authenticate``) with the
    subtree of their organisation, read in a short session of its own."""
    caller = await authenticate(request, (ADMIN,))
    async with read_session(request.app.state.sessions) as own:
        tree = await organisations.subtree(own, caller.org)
    return Operator(caller, frozenset(o.code for o in tree), frozenset(o.id for o in tree))


async def node_operator(request: Request) -> Operator:
    """Dependency: a ``meeting-admin`` of the organisation that operates the nodes
    (``VDX_NODE_ORGANISATION``) or of an ancestor of it, else 403: what the nodes run by (their
    capacity, the routing rules, the trunks) is theirs to change."""
    op = await operator(request)
    settings: Settings = request.app.state.settings
    if not op.oversees(settings.node_organisation):
        raise BasicError(403)
    return op


async def node_caller(request: Request) -> Caller:
    """Dependency: the nodes' own token, a ``meeting-provisioner-user`` of the organisation that
    operates them (``VDX_NODE_ORGANISATION``) or a ``meeting-provisioner``, else 403: what only
    the nodes read or report (trunk passwords, what a node did by itself)."""
    caller = await authenticate(request, (PROVISIONER_USER, PROVISIONER))
    settings: Settings = request.app.state.settings
    principal = caller.principal
    if principal.organisation_code != settings.node_organisation and not principal.only(PROVISIONER):
        raise BasicError(403)
    return caller


def require(*roles: str, reading: bool = False) -> Callable[..., Awaitable[Caller]]:
    """Dependency: an authenticated caller holding one of ``roles`` (spec 3.3), else 403 (at
    least one role is named: the endpoints of this API each admit some).
    ``reading``: for endpoints that only read, with ``Depends(get_read_session)``: the
    organisation is looked up in the request's read session (FastAPI gives the endpoint that
    same session), one pooled connection per request instead of two in turn."""

    if not reading:

        async def dep(request: Request) -> Caller:
            return await authenticate(request, roles)

        return dep

    async def reading_dep(
        request: Request,
        principal: Principal = Depends(token_principal),
        session: AsyncSession = Depends(get_read_session),
    ) -> Caller:
        return await _admit_reader(request, principal, session, roles)

    return reading_dep


async def _admit_reader(
    request: Request, principal: Principal, session: AsyncSession, roles: tuple[str, ...]
) -> Caller:
    code = principal.organisation_code
    return await admit(
        request, principal, await organisations.by_code(session, code) if code else None, roles
    )


T = TypeVar("T")

# find(session, uuid, organisation code) -> (the organisation row or None, the resource's or None)
Finder = Callable[[AsyncSession, str, str | None], Awaitable[tuple[Organisation | None, T | None]]]


@dataclass(frozen=True)
class Admitted(Generic[T]):
    """The caller, and what ``find`` read for the path's uuid ``key`` (None: it did not parse)."""

    caller: Caller
    key: str | None
    found: T | None
    find: Finder[T]
    session: AsyncSession

    async def resource(self, key: str) -> T | None:
        """The resource of the path's uuid as the endpoint validated it (``key``, canonical):
        the one read beside the organisation, or read alone where the dependency's own parse of
        the path gave another key (a uuid spelling only one of the two parsers accepts)."""
        if key == self.key:
            return self.found
        return (await self.find(self.session, key, None))[1]


def require_reading(roles: tuple[str, ...], find: Finder[T]) -> Callable[..., Awaitable[Admitted[T]]]:
    """``require(*roles, reading=True)`` for the hottest reads, GET a resource by the ``uuid`` of
    its path: the caller's organisation comes in the resource's own query, one round trip
    instead of two. The checks and their order are ``admit``'s, ahead of the path's validation
    as with ``require``; a path uuid that does not parse is left to that validation's 400."""

    async def dep(
        request: Request,
        principal: Principal = Depends(token_principal),
        session: AsyncSession = Depends(get_read_session),
    ) -> Admitted[T]:
        code = principal.organisation_code
        try:
            key: str | None = str(UUID(str(request.path_params.get("uuid", ""))))
        except ValueError:
            key = None
        if key is None:
            return Admitted(
                await _admit_reader(request, principal, session, roles), None, None, find, session
            )
        org, found = await find(session, key, code)
        caller = await admit(request, principal, org, roles)
        if caller.organisation is not None and org is None:
            # auto-created just now, in a session of its own: read the resource alone (this
            # session's snapshot may predate the new organisation, on SQLite)
            _, found = await find(session, key, None)
        return Admitted(caller, key, found, find, session)

    return dep


async def _auto_create(request: Request, principal: Principal) -> Organisation | None:
    """Create the token's organisation under the parent its auto-create claim names (spec 3.5)."""
    factory = request.app.state.sessions
    async with factory() as s, s.begin():
        existing = await organisations.by_code(s, principal.organisation_code or "")
        if existing is not None:
            return existing
        try:
            org = await organisations.create(
                s, principal.organisation_code or "", parent_code=principal.parent_org
            )
            audit.organisation_changed(s, request.app.state.settings, org, "create", principal.email)
            return org
        except organisations.ParentNotFound:
            return None
        except organisations.OrganisationExists:
            pass
    async with factory() as s:
        return await organisations.by_code(s, principal.organisation_code or "")
