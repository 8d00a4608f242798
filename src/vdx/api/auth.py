"""The request pipeline of spec 3.2: token -> principal -> organisation -> role gate.

401 and 403 come in the reference's order: token defects 401 (no body), unknown organisation 403
(unless the auto-create claim names a parent), empty roles 401, missing e-mail or organisation 401
(except a pure provisioner), then the endpoint's role gate 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.api.errors import BasicError
from vdx.api.session import get_read_session
from vdx.api.tokens import TokenError, TokenVerifier
from vdx.booking.roles import PROVISIONER, Principal
from vdx.services import organisations
from vdx.settings import Settings
from vdx.store.db import read_session
from vdx.store.models import Organisation


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


async def authenticate(request: Request) -> Caller:
    """Authenticate and resolve the caller's organisation in a short session of its own, so that
    the endpoint's session starts clean (services open their own transactions on it); the
    organisation row is returned detached, with its columns loaded."""
    return await _authenticate(request, None)


async def authenticate_reading(request: Request, session: AsyncSession = Depends(get_read_session)) -> Caller:
    """The same for endpoints that only read: the organisation is looked up in the request's read
    session (FastAPI gives the endpoint that same session), one pooled connection per request
    instead of two in turn; the organisation stays in that session."""
    return await _authenticate(request, session)


async def _authenticate(request: Request, session: AsyncSession | None) -> Caller:
    settings: Settings = request.app.state.settings
    verifier: TokenVerifier = request.app.state.verifier
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BasicError(401, headers={"WWW-Authenticate": "Bearer"}, body=False)
    try:
        claims = await verifier.verify(token.strip())
    except TokenError:
        raise _UNAUTHORIZED from None
    principal = principal_from_claims(settings, claims)

    org: Organisation | None = None
    if principal.organisation_code:
        if session is not None:
            org = await organisations.by_code(session, principal.organisation_code)
        else:
            async with read_session(request.app.state.sessions) as own:
                org = await organisations.by_code(own, principal.organisation_code)
        if org is None and principal.parent_org:
            org = await _auto_create(request, principal)
        if org is None:
            raise BasicError(403)
    if not principal.roles:
        raise BasicError(401)
    if not principal.only(PROVISIONER) and (not principal.email or not principal.organisation_code):
        raise BasicError(401)
    request.state.principal = principal
    return Caller(principal=principal, organisation=org)


async def _auto_create(request: Request, principal: Principal) -> Organisation | None:
    """Create the token's organisation under the parent its auto-create claim names (spec 3.5)."""
    factory = request.app.state.sessions
    async with factory() as s, s.begin():
        existing = await organisations.by_code(s, principal.organisation_code or "")
        if existing is not None:
            return existing
        try:
            return await organisations.create(
                s, principal.organisation_code or "", parent_code=principal.parent_org
            )
        except organisations.ParentNotFound:
            return None
        except organisations.OrganisationExists:
            pass
    async with factory() as s:
        return await organisations.by_code(s, principal.organisation_code or "")


def require(*roles: str, reading: bool = False) -> Callable[..., Awaitable[Caller]]:
    """Dependency: an authenticated caller holding one of ``roles`` (spec 3.3), else 403.
    ``reading``: for endpoints that only read, with ``Depends(get_read_session)`` (see
    :func:`authenticate_reading`)."""

    async def dep(caller: Caller = Depends(authenticate_reading if reading else authenticate)) -> Caller:
        if not caller.principal.has(*roles):
            raise BasicError(403)
        return caller

    return dep
