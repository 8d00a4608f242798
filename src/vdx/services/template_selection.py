"""Which scheduling template a new VMR is made from (spec 2.3)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.services import organisations
from vdx.settings import Settings
from vdx.store.db import now_utc
from vdx.store.models import Organisation, SchedulingTemplate

# advisory lock key for creating the shared default template ("vdx-tmpl")
_SHARED_TEMPLATE_LOCK = 0x7664782D746D706C


def _live() -> ColumnElement[bool]:
    return SchedulingTemplate.deleted_time.is_(None)


async def _default_of(session: AsyncSession, organisation_id: int) -> SchedulingTemplate | None:
    return (
        await session.execute(
            select(SchedulingTemplate)
            .where(
                SchedulingTemplate.organisation_id == organisation_id,
                SchedulingTemplate.is_default_template.is_(True),
                _live(),
            )
            .order_by(SchedulingTemplate.id)
            .limit(1)
        )
    ).scalar_one_or_none()


async def select_template(
    session: AsyncSession, settings: Settings, org: Organisation, requested_id: int | None
) -> SchedulingTemplate:
    """The first of: the requested template (if > 0, not deleted and of ``org``); ``org``'s default;
    the nearest ancestor's default; any shared (organisation-less) template; else a new shared
    template made from the ``template_default_*`` settings."""
    if requested_id is not None and requested_id > 0:
        found = (
            await session.execute(
                select(SchedulingTemplate).where(
                    SchedulingTemplate.id == requested_id,
                    SchedulingTemplate.organisation_id == org.id,
                    _live(),
                )
            )
        ).scalar_one_or_none()
        if found is not None:
            return found
        # spec 1.2.4: an unusable schedulingTemplateId is silently ignored
    own = await _default_of(session, org.id)
    if own is not None:
        return own
    for ancestor in await organisations.ancestors(session, org):
        inherited = await _default_of(session, ancestor.id)
        if inherited is not None:
            return inherited
    shared = await _shared(session)
    if shared is not None:
        return shared
    if settings.is_postgres:
        # Concurrent first meetings would each create the shared template: serialise the
        # check-and-create (SQLite writers are serialised already by BEGIN IMMEDIATE).
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SHARED_TEMPLATE_LOCK})
        shared = await _shared(session)
        if shared is not None:
            return shared
    return await create_shared_default(session, settings)


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
