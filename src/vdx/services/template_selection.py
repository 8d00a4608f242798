"""Which scheduling template a new VMR is made from (spec 2.3)."""

from __future__ import annotations

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from vdx.settings import Settings
from vdx.store.db import now_utc
from vdx.store.models import Organisation, SchedulingTemplate

# advisory lock key for creating the shared default template ("vdx-tmpl")
_SHARED_TEMPLATE_LOCK = 0x7664782D746D706C


def _live() -> ColumnElement[bool]:
    return SchedulingTemplate.deleted_time.is_(None)


# Deeper than any real organisation tree; bounds the ancestor walk should the tree hold a cycle.
_MAX_DEPTH = 64
_SHARED_RANK = _MAX_DEPTH + 2


async def select_template(
    session: AsyncSession, settings: Settings, org: Organisation, requested_id: int | None
) -> SchedulingTemplate:
    """The first of: the requested template (if > 0, not deleted and of ``org``); ``org``'s default;
    the nearest ancestor's default; any shared (organisation-less) template; else a new shared
    template made from the ``template_default_*`` settings.

    The first four are one query (ranked candidates, the ancestors by a recursive CTE): a create
    paid a round trip per step of the chain before."""
    requested = is_requested(requested_id)
    params = {"org_id": org.id, "requested_id": requested_id} if requested else {"org_id": org.id}
    found = (await session.execute(_RANKED[requested], params)).scalar_one_or_none()
    if found is not None:
        return found
    return await _shared_template(session, settings)


def is_requested(requested_id: int | None) -> bool:
    """Whether the request names a template to consider (ids up to 0 count as none)."""
    return requested_id is not None and requested_id > 0


async def _shared_template(session: AsyncSession, settings: Settings) -> SchedulingTemplate:
    """No ranked candidate: a new shared template from the settings (spec 2.3 step 5), or the one
    a concurrent first booking made meanwhile."""
    if settings.is_postgres:
        # Concurrent first meetings would each create the shared template: serialise the
        # check-and-create (SQLite writers are serialised already by BEGIN IMMEDIATE).
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SHARED_TEMPLATE_LOCK})
        shared = await _shared(session)
        if shared is not None:
            return shared
    return await create_shared_default(session, settings)


def ranked_candidates(requested_id: bool) -> Select[SchedulingTemplate]:
    """Rank 0 the requested template (an unusable one is silently ignored, spec 1.2.4), 1 + depth
    the default of the organisation (depth 0) or of an ancestor, then the shared templates; lowest
    id first within a rank. Parameters ``org_id`` and (with ``requested_id``) ``requested_id``."""
    org_id: BindParameter[int] = bindparam("org_id")
    chain = (
        select(Organisation.id, Organisation.parent_id, literal(0).label("depth"))
        .where(Organisation.id == org_id)
        .cte("org_chain", recursive=True)
    )
    chain = chain.union_all(
        select(Organisation.id, Organisation.parent_id, (chain.c.depth + 1).label("depth")).where(
            Organisation.id == chain.c.parent_id, chain.c.depth < _MAX_DEPTH
        )
    )
    # the nearest occurrence of each organisation (a cycle in the tree repeats them)
    depth = (
        select(chain.c.id, func.min(chain.c.depth).label("depth")).group_by(chain.c.id).subquery("org_depth")
    )
    requested = (
        and_(
            SchedulingTemplate.id == bindparam("requested_id"),
            SchedulingTemplate.organisation_id == org_id,
        )
        if requested_id
        else false()
    )
    inherited = and_(SchedulingTemplate.is_default_template.is_(True), depth.c.depth.is_not(None))
    shared = SchedulingTemplate.organisation_id.is_(None)
    rank = case((requested, 0), (inherited, depth.c.depth + 1), else_=_SHARED_RANK)
    # a new VMR copies the template's columns; its organisation and users (joined by default)
    # are not read, so they are not loaded
    return (
        select(SchedulingTemplate)
        .options(
            lazyload(SchedulingTemplate.organisation),
            lazyload(SchedulingTemplate.created_by),
            lazyload(SchedulingTemplate.updated_by),
        )
        .outerjoin(depth, depth.c.id == SchedulingTemplate.organisation_id)
        .where(_live(), or_(requested, inherited, shared))
        .order_by(rank, SchedulingTemplate.id)
        .limit(1)
    )


# Built once, with and without a requested template: SQLAlchemy memoises a statement object's
# cache key, and building and keying this one per booking cost more CPU than running it.
_RANKED = {False: ranked_candidates(False), True: ranked_candidates(True)}


async def _shared(session: AsyncSession) -> SchedulingTemplate | None:
    return (
        await session.execute(
            select(SchedulingTemplate)
            .where(SchedulingTemplate.organisation_id.is_(None), _live())
            .order_by(SchedulingTemplate.id)
            .limit(1)
        )
    ).scalar_one_or_none()


async def create_shared_default(session: AsyncSession, settings: Settings) -> SchedulingTemplate:
    """Persist the shared template of spec 2.3 step 5 from the configuration."""
    t = SchedulingTemplate(
        organisation_id=None,
        conferencing_sys_id=settings.template_default_conferencing_sys_id,
        uri_prefix=settings.template_default_uri_prefix,
        uri_domain=settings.template_default_uri_domain or settings.sip_domain,
        host_pin_required=settings.template_default_host_pin_required,
        host_pin_range_low=settings.template_default_host_pin_range_low,
        host_pin_range_high=settings.template_default_host_pin_range_high,
        guest_pin_required=settings.template_default_guest_pin_required,
        guest_pin_range_low=settings.template_default_guest_pin_range_low,
        guest_pin_range_high=settings.template_default_guest_pin_range_high,
        vmr_available_before=settings.template_default_vmr_available_before,
        max_participants=settings.template_default_max_participants,
        end_meeting_on_end_time=settings.template_default_end_meeting_on_end_time,
        uri_number_range_low=settings.template_default_uri_number_range_low,
        uri_number_range_high=settings.template_default_uri_number_range_high,
        ivr_theme=settings.template_default_ivr_theme,
        is_default_template=False,
        is_pool_template=False,
        created_time=now_utc(),
    )
    session.add(t)
    await session.flush()
    return t
