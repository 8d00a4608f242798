"""The demo organisation that ``make run`` creates, and the welcome text it prints."""

from __future__ import annotations

from sqlalchemy import select

from vdx.booking.enums import DirectMedia, ViewType, VmrQuality, VmrType
from vdx.services import organisations
from vdx.settings import Settings
from vdx.store.db import create_engine, now_utc, session_factory
from vdx.store.models import SchedulingTemplate

DEMO_ORG = "demo"
DEMO_USER = "clinician@demo.vdx.local"


async def ensure_demo(settings: Settings) -> None:
    """Create organisation ``demo`` with a default template, unless it exists."""
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as s, s.begin():
            org = await organisations.by_code(s, DEMO_ORG)
            if org is None:
                org = await organisations.create(s, DEMO_ORG, name="Demo organisation", pool_size=None)
            has_default = (
                await s.execute(
                    select(SchedulingTemplate.id).where(
                        SchedulingTemplate.organisation_id == org.id,
                        SchedulingTemplate.is_default_template.is_(True),
                        SchedulingTemplate.deleted_time.is_(None),
                    )
                )
            ).first()
            if has_default is None:
                s.add(
                    SchedulingTemplate(
                        organisation_id=org.id,
                        conferencing_sys_id=1,
                        uri_prefix="",
                        uri_domain=settings.sip_domain,
                        host_pin_required=True,
                        host_pin_range_low=100000,
                        host_pin_range_high=999999,
                        guest_pin_required=True,
                        guest_pin_range_low=1000,
                        guest_pin_range_high=9999,
                        vmr_available_before=15,
                        max_participants=25,
                        end_meeting_on_end_time=False,
                        uri_number_range_low=10000000,
                        uri_number_range_high=99999999,
                        is_default_template=True,
                        is_pool_template=False,
                        vmr_type=VmrType.conference,
                        host_view=ViewType.one_main_seven_pips,
                        guest_view=ViewType.one_main_seven_pips,
                        vmr_quality=VmrQuality.hd,
                        enable_overlay_text=True,
                        guests_can_present=True,
                        force_presenter_into_main=True,
                        force_encryption=False,
                        mute_all_guests=False,
                        direct_media=DirectMedia.never,
                        created_time=now_utc(),
                    )
                )
    finally:
        await engine.dispose()


def welcome(settings: Settings) -> str:
    base = settings.public_url_clean
    ctx = settings.api_context
    return f"""
vdx is starting.

  API:   {base}{ctx}/v2/info
  Docs:  {base}{ctx}/docs
  Health {base}/manage/health

A token for a meeting-user of the demo organisation:

  TOKEN=$(vdx token --data-dir {settings.data_dir} --org {DEMO_ORG} --email {DEMO_USER} --role meeting-user)
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"subject":"Video consultation","startTime":"2030-01-01T10:00:00Z","endTime":"2030-01-01T10:30:00Z"}}' \\
       {base}{ctx}/v2/meetings
"""
