"""Organisations and their tree: look-ups the whole API needs (spec 2.2, 5.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from vdx.booking.enums import ProvisionStatus
from vdx.store import records
from vdx.store.db import now_utc, table_of
from vdx.store.models import Organisation, SchedulingInfo, SchedulingTemplate

_ORGANISATION = table_of(Organisation)


class OrganisationExists(Exception):
    pass


class ParentNotFound(Exception):
    pass


# Built once: every authenticated request runs it, and SQLAlchemy memoises the cache key of a
# statement object (building and keying it per call cost more CPU than running it).
_BY_CODE = select(Organisation).where(
    Organisation.code == bindparam("code"), Organisation.deleted_time.is_(None)
)


async def by_code(session: AsyncSession, code: str) -> Organisation | None:
    return (await session.execute(_BY_CODE, {"code": code})).scalar_one_or_none()


@dataclass(frozen=True)
class Beside:
    """A read of ``columns`` from ``source`` where ``where`` holds (at most one row), built once
    twice: alone, and beside the organisation of code ``:code``, which then comes in the same
    query even where no row matches. The hottest reads take their caller's organisation this
    way: one round trip instead of two (``vdx.access.callers.require_reading``). The
    organisation is built from its columns, detached as if loaded, so it skips the ORM's loader."""

    alone: Select[Any]
    with_organisation: Select[Any]

    @classmethod
    def build(cls, columns: list[Any], source: FromClause, where: ColumnElement[bool]) -> Beside:
        alone = select(*columns).select_from(source).where(where)
        beside = (
            select(*records.columns(_ORGANISATION, "org__"), *columns)
            .select_from(_ORGANISATION.outerjoin(source, where))
            .where(_ORGANISATION.c.code == bindparam("code"), _ORGANISATION.c.deleted_time.is_(None))
        )
        return cls(alone, beside)

    async def fetch(
        self, session: AsyncSession, params: dict[str, Any], code: str | None, key: str
    ) -> tuple[Organisation | None, Mapping[str, Any] | None]:
        """(the organisation of ``code``, None if there is none; the row, None if none matched:
        its column ``key`` is null)."""
        if code is None:
            return None, (await session.execute(self.alone, params)).mappings().first()
        row = (await session.execute(self.with_organisation, params | {"code": code})).mappings().first()
        if row is None:
            return None, None
        org = Organisation(**{c.key: row["org__" + c.key] for c in _ORGANISATION.c})
        make_transient_to_detached(org)
        return org, (row if row[key] is not None else None)


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


# --- the embedded organisation service (spec 5.1) ---------------------------------------------


async def by_id(session: AsyncSession, org_id: int) -> Organisation | None:
    """The organisation whose group id (vdx: row id) is ``org_id``."""
    return (
        await session.execute(
            select(Organisation).where(Organisation.id == org_id, Organisation.deleted_time.is_(None))
        )
    ).scalar_one_or_none()


async def by_history_api_key(session: AsyncSession, api_key: str) -> Organisation | None:
    """The organisation holding a history-service API key (the oldest, should several share it)."""
    rows = await session.execute(
        select(Organisation)
        .where(Organisation.history_api_key == api_key, Organisation.deleted_time.is_(None))
        .order_by(Organisation.id)
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def live_organisations(session: AsyncSession) -> list[Organisation]:
    """Every organisation that is not deleted; the tree is small enough to walk in memory."""
    rows = await session.execute(
        select(Organisation).where(Organisation.deleted_time.is_(None)).order_by(Organisation.id)
    )
    return list(rows.scalars())


def children_index(orgs: list[Organisation]) -> dict[int | None, list[Organisation]]:
    out: dict[int | None, list[Organisation]] = {}
    for o in orgs:
        out.setdefault(o.parent_id, []).append(o)
    return out


async def subtree(session: AsyncSession, org: Organisation) -> list[Organisation]:
    """The organisation and all its (live) descendants, parents before children."""
    index = children_index(await live_organisations(session))
    out: list[Organisation] = []
    seen: set[int] = set()
    queue = [org]
    while queue:
        cur = queue.pop(0)
        if cur.id in seen:
            continue
        seen.add(cur.id)
        out.append(cur)
        queue.extend(index.get(cur.id, []))
    return out


async def is_in_tree_of(session: AsyncSession, org: Organisation, root_id: int) -> bool:
    """Whether ``org`` is the organisation ``root_id`` or one of its descendants (spec 5.1: the
    organisation service's tree endpoints answer only inside the caller's own tree)."""
    if org.id == root_id:
        return True
    return any(a.id == root_id for a in await ancestors(session, org))


async def update(session: AsyncSession, org: Organisation, **fields: object) -> Organisation:
    """Full replace of the updatable fields (spec 5.1 PUT): every field given is set, None included."""
    for name, value in fields.items():
        setattr(org, name, value)
    await session.flush()
    return org


async def owner_by_provisioned_uri(session: AsyncSession, uris: list[str]) -> dict[str, Organisation]:
    """URI -> organisation of a PROVISIONED_OK scheduling info with that ``uriWithDomain`` (the most
    recent when history shares a URI), the first look-up of spec 5.1 ``organisation/uri``."""
    if not uris:
        return {}
    rows = await session.execute(
        select(SchedulingInfo)
        .where(
            SchedulingInfo.uri_with_domain.in_(uris),
            SchedulingInfo.provision_status == ProvisionStatus.PROVISIONED_OK,
        )
        .order_by(SchedulingInfo.id)
    )
    out: dict[str, Organisation] = {}
    for si in rows.scalars():
        if si.uri_with_domain is not None and si.organisation.deleted_time is None:
            out[si.uri_with_domain] = si.organisation  # later (newer) rows win
    return out


async def owner_by_domain(session: AsyncSession, uris: list[str]) -> dict[str, Organisation]:
    """URI -> organisation whose scheduling templates use the URI's domain: an exact (case-blind)
    match first, then the nearest parent domain (``a.rooms.example`` -> ``rooms.example``).

    The reference reads domains from a ``groups_domains`` table of its own; vdx organisations
    declare their SIP domains through their templates' ``uriDomain``. Where several organisations
    share a domain, the oldest one (lowest id) answers, so the result is stable."""
    rows = await session.execute(
        select(SchedulingTemplate.uri_domain, Organisation)
        .join(Organisation, SchedulingTemplate.organisation_id == Organisation.id)
        .where(
            SchedulingTemplate.deleted_time.is_(None),
            SchedulingTemplate.uri_domain.is_not(None),
            Organisation.deleted_time.is_(None),
        )
        .order_by(Organisation.id)
    )
    by_domain: dict[str, Organisation] = {}
    for domain, org in rows.all():
        if domain:
            by_domain.setdefault(domain.strip().lower(), org)
    out: dict[str, Organisation] = {}
    for uri in uris:
        domain = uri.rpartition("@")[2].strip().lower()
        candidates = [domain]
        while "." in domain:  # parent domains, never a bare top-level label
            domain = domain.partition(".")[2]
            if "." in domain:
                candidates.append(domain)
        for candidate in candidates:
            if candidate in by_domain:
                out[uri] = by_domain[candidate]
                break
    return out
