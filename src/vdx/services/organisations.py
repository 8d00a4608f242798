"""Organisations and their tree: look-ups the whole API needs (spec 2.2, 5.1)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.store.db import now_utc
from vdx.store.models import Organisation


class OrganisationExists(Exception):
    pass


class ParentNotFound(Exception):
    pass


async def by_code(session: AsyncSession, code: str) -> Organisation | None:
    return (
        await session.execute(
            select(Organisation).where(Organisation.code == code, Organisation.deleted_time.is_(None))
        )
    ).scalar_one_or_none()


async def create(
    session: AsyncSession,
    code: str,
    *,
    name: str | None = None,
    parent_code: str | None = None,
    pool_size: int | None = None,
    **fields: object,
) -> Organisation:
    """Create an organisation under ``parent_code`` (name defaults to the code, spec 3.5)."""
    if await by_code(session, code) is not None:
        raise OrganisationExists(f"Organisation {code} already exists.")
    parent = None
    if parent_code is not None:
        parent = await by_code(session, parent_code)
        if parent is None:
            raise ParentNotFound(f"Parent organisation {parent_code} not found")
    org = Organisation(
        code=code,
        name=name or code,
        parent_id=parent.id if parent else None,
        pool_size=pool_size,
        created_time=now_utc(),
        **({"allow_custom_uri_without_domain": False} | fields),
    )
    session.add(org)
    await session.flush()
    return org


async def ancestors(session: AsyncSession, org: Organisation) -> list[Organisation]:
    """The organisation's ancestors, nearest first (excluding itself)."""
    out: list[Organisation] = []
    seen = {org.id}
    parent_id = org.parent_id
    while parent_id is not None and parent_id not in seen:
        parent = await session.get(Organisation, parent_id)
        if parent is None:
            break
        out.append(parent)
        seen.add(parent.id)
        parent_id = parent.parent_id
    return out


async def descendant_ids(session: AsyncSession, org: Organisation) -> list[int]:
    """Ids of the organisation and all its descendants (spec 5.1 descendants)."""
    rows = (await session.execute(select(Organisation.id, Organisation.parent_id))).all()
    children: dict[int | None, list[int]] = {}
    for oid, pid in rows:
        children.setdefault(pid, []).append(oid)
    out, stack = [], [org.id]
    seen: set[int] = set()
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        out.append(cur)
        stack.extend(children.get(cur, []))
    return out


async def pool_organisation(session: AsyncSession, org: Organisation) -> Organisation:
    """The pool organisation of ``org``: itself if it has a pool, else the nearest ancestor with
    one, else the tree root (spec 2.2)."""
    if org.pool_size:
        return org
    chain = await ancestors(session, org)
    for anc in chain:
        if anc.pool_size:
            return anc
    return chain[-1] if chain else org
