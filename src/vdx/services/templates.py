"""Scheduling templates of an organisation: reads scoped to the caller's organisation, admin
writes with the one-default and one-pool-template rules, soft delete (spec 1.4, 2.3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.services import meeting_users
from vdx.store.db import now_utc
from vdx.store.models import Organisation, SchedulingTemplate


class TemplateNotFound(Exception):
    """Unknown, deleted, shared or another organisation's template (all look the same: 404)."""


class PoolTemplateExists(Exception):
    """The organisation already has its one pool template (spec 1.0.1 code 18)."""


def _visible(organisation_id: int) -> Any:
    return (SchedulingTemplate.organisation_id == organisation_id) & SchedulingTemplate.deleted_time.is_(None)


async def list_for_organisation(session: AsyncSession, organisation_id: int) -> list[SchedulingTemplate]:
    """Non-deleted templates of the organisation; shared (org-less) ones are not listed (spec 1.4)."""
    rows = await session.execute(
        select(SchedulingTemplate).where(_visible(organisation_id)).order_by(SchedulingTemplate.id)
    )
    return list(rows.scalars())


async def get_for_organisation(
    session: AsyncSession,
    organisation_id: int,
    template_id: int,
    *,
    for_update: bool = False,
    fresh: bool = False,
) -> SchedulingTemplate:
    """The organisation's non-deleted template ``template_id`` (``fresh`` reloads a row this
    session already holds, with its relationships)."""
    query = select(SchedulingTemplate).where(_visible(organisation_id), SchedulingTemplate.id == template_id)
    if for_update:
        query = query.with_for_update(of=SchedulingTemplate)
    if fresh:
        query = query.execution_options(populate_existing=True)
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise TemplateNotFound(template_id)
    return found


def pick_pool_template(candidates: list[SchedulingTemplate]) -> SchedulingTemplate | None:
    """The pool template among an organisation's templates, else its default template, else None
    (spec 1.5, 2.3); ``candidates`` are its non-deleted templates in id order."""
    for t in candidates:
        if t.is_pool_template:
            return t
    for t in candidates:
        if t.is_default_template:
            return t
    return None


async def _check_pool_template(
    session: AsyncSession, organisation_id: int, *, excluding: int | None = None
) -> None:
    """At most one pool template per organisation (spec 1.4, 406/18)."""
    query = (
        select(func.count())
        .select_from(SchedulingTemplate)
        .where(_visible(organisation_id), SchedulingTemplate.is_pool_template.is_(True))
    )
    if excluding is not None:
        query = query.where(SchedulingTemplate.id != excluding)
    if (await session.execute(query)).scalar_one() > 0:
        raise PoolTemplateExists()


async def _clear_other_defaults(session: AsyncSession, organisation_id: int, keep_id: int) -> None:
    """Only one default template per organisation: setting one clears the others (spec 2.3)."""
    await session.execute(
        update(SchedulingTemplate)
        .where(
            SchedulingTemplate.organisation_id == organisation_id,
            SchedulingTemplate.id != keep_id,
            SchedulingTemplate.is_default_template.is_(True),
        )
        .values(is_default_template=False)
        .execution_options(synchronize_session="fetch")
    )


async def _lock_organisation(session: AsyncSession, organisation_id: int) -> Organisation:
    """Serialise template writes of one organisation, so two concurrent requests cannot both pass
    the one-pool-template check or both keep a default flag (PostgreSQL row lock; SQLite
    transactions are serialised by BEGIN IMMEDIATE already)."""
    query = select(Organisation).where(Organisation.id == organisation_id).with_for_update()
    return (await session.execute(query)).scalar_one()


async def create(
    session: AsyncSession, organisation_id: int, email: str, fields: dict[str, Any]
) -> SchedulingTemplate:
    """Create a template in the organisation. ``fields`` are column values; the range fields are
    stored as given (no sanity checks at save time, spec 1.4: bad ranges surface as 406/14-17)."""
    org = await _lock_organisation(session, organisation_id)
    if fields.get("is_pool_template"):
        await _check_pool_template(session, organisation_id)
    user = await meeting_users.get_or_create(session, org, email)
    template = SchedulingTemplate(
        **fields,
        organisation_id=org.id,
        organisation=org,
        created_by=user,
        created_time=now_utc(),
    )
    session.add(template)
    await session.flush()
    if template.is_default_template:
        await _clear_other_defaults(session, organisation_id, template.id)
    return template


async def replace(
    session: AsyncSession, organisation_id: int, template_id: int, email: str, fields: dict[str, Any]
) -> SchedulingTemplate:
    """Full replacement of the template's settings (spec 1.4 PUT); creation data is kept."""
    org = await _lock_organisation(session, organisation_id)
    template = await get_for_organisation(session, organisation_id, template_id, for_update=True)
    if fields.get("is_pool_template"):
        # spec 2.17.3: the reference counts the template itself here, so re-saving the current pool
        # template with isPoolTemplate=true fails with 406/18. That is a bug against the documented
        # rule "at most one pool template per organisation"; vdx follows the documented rule and
        # does not count the template being replaced.
        await _check_pool_template(session, organisation_id, excluding=template.id)
    user = await meeting_users.get_or_create(session, org, email)
    for name, value in fields.items():
        setattr(template, name, value)
    template.updated_by = user
    template.updated_time = now_utc()
    await session.flush()
    if template.is_default_template:
        await _clear_other_defaults(session, organisation_id, template.id)
    return template


async def soft_delete(
    session: AsyncSession, organisation_id: int, template_id: int, email: str
) -> SchedulingTemplate:
    """Mark the template deleted (``deletedTime``, ``deletedBy``); the row stays (spec 1.4)."""
    template = await get_for_organisation(session, organisation_id, template_id, for_update=True)
    org = await session.get(Organisation, organisation_id)
    assert org is not None
    user = await meeting_users.get_or_create(session, org, email)
    template.deleted_time = now_utc()
    template.deleted_by_id = user.id
    await session.flush()
    return template
