"""The demo that ``make run`` sets up (organisation ``demo``, its default template, a meeting open
now) and the banner that tells a newcomer where to go."""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vdx.booking.commands import CreateMeeting
from vdx.booking.enums import DirectMedia, ViewType, VmrQuality, VmrType
from vdx.booking.roles import ADMIN, USER, Principal
from vdx.services import meeting_search, meetings, organisations
from vdx.services.meeting_access import Actor
from vdx.settings import Settings
from vdx.store.db import create_engine, now_utc, session_factory
from vdx.store.models import Meeting, Organisation, SchedulingTemplate
from vdx.web.pages import has_identity_provider

DEMO_ORG = "demo"
DEMO_USER = "clinician@demo.vdx.local"
DEMO_LABEL = "vdx-demo"
# The demo meeting is booked from now for this long, and booked afresh once less than
# DEMO_MEETING_LEFT of it remains, so the printed links work for a whole working session.
DEMO_MEETING_LENGTH = timedelta(hours=12)
DEMO_MEETING_LEFT = timedelta(hours=1)


@dataclass(frozen=True)
class DemoMeeting:
    """The demo meeting's room: its alias and PINs (the host PIN makes a host, the guest PIN a guest)."""

    alias: str
    host_pin: int | None
    guest_pin: int | None

    def join_path(self, pin: int | None) -> str:
        query = {"conference": self.alias} | ({"pin": str(pin)} if pin is not None else {})
        return "/join/?" + urlencode(query)

    @property
    def host_path(self) -> str:
        return self.join_path(self.host_pin)

    @property
    def guest_path(self) -> str:
        return self.join_path(self.guest_pin)


async def ensure_demo(settings: Settings) -> DemoMeeting:
    """Create organisation ``demo`` with a default template unless it exists, and return a demo
    meeting open now and for at least ``DEMO_MEETING_LEFT``, booked when there is none."""
    engine = create_engine(settings)
    try:
        sessions = session_factory(engine)
        org = await _ensure_organisation(sessions, settings)
        actor = Actor(Principal(DEMO_ORG, DEMO_USER, frozenset({USER})), org)
        return await _current_meeting(sessions, actor) or await _book_meeting(sessions, settings, actor)
    finally:
        await engine.dispose()


async def _ensure_organisation(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> Organisation:
    async with sessions() as s, s.begin():
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
        return org


async def _current_meeting(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> DemoMeeting | None:
    now = now_utc()
    async with sessions() as s:
        found = await meeting_search.search(s, actor, meeting_search.Filters(label=DEMO_LABEL))
        open_now = [
            m
            for m in found
            if m.scheduling_info is not None
            and m.scheduling_info.uri_with_domain
            and m.start_time <= now
            and m.end_time >= now + DEMO_MEETING_LEFT
        ]
        return _demo_meeting(max(open_now, key=lambda m: m.end_time)) if open_now else None


async def _book_meeting(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, actor: Actor
) -> DemoMeeting:
    start = now_utc().replace(second=0, microsecond=0)
    request = CreateMeeting.model_validate(
        {
            "subject": "Demo meeting",
            "description": "Booked by vdx serve --demo, so its join links work at once.",
            "startTime": start.isoformat(),
            "endTime": (start + DEMO_MEETING_LENGTH).isoformat(),
            "labels": [DEMO_LABEL],
        }
    )
    async with sessions() as s:
        meeting = await meetings.create(s, settings, actor, request)
        return _demo_meeting(meeting)


def _demo_meeting(meeting: Meeting) -> DemoMeeting:
    si = meeting.scheduling_info
    if si is None or not si.uri_with_domain:
        raise RuntimeError("the demo meeting has no room")
    return DemoMeeting(alias=si.uri_with_domain, host_pin=si.host_pin, guest_pin=si.guest_pin)


def vdx_command(argv0: str, python: str, cwd: Path) -> str:
    """The words that run this same ``vdx`` when typed in ``cwd``: ``vdx`` only when the PATH
    finds this very program (after ``make run`` it does not: the venv is not activated)."""
    if argv0.endswith(".py"):  # python -m vdx
        return f"{_shown_path(Path(python), cwd)} -m vdx"
    program = Path(argv0)
    on_path = shutil.which(program.name)
    if on_path and Path(on_path).resolve() == (cwd / program).resolve():
        return program.name
    return _shown_path(program, cwd)


def _shown_path(path: Path, cwd: Path) -> str:
    """``path`` as short as it stays true from ``cwd``: relative below it, absolute elsewhere."""
    absolute = cwd / path
    try:
        shown = str(absolute.relative_to(cwd))
    except ValueError:
        shown = str(absolute)
    return shlex.quote(shown if os.sep in shown else f".{os.sep}{shown}")


def welcome(settings: Settings, demo: DemoMeeting, vdx: str = "vdx") -> str:
    """The banner of ``vdx serve --demo``: every page a person goes to, and a first API call
    whose commands work as printed from the directory ``vdx`` was started in."""
    base = settings.public_url_clean
    ctx = settings.api_context
    places = [
        ("Start here", f"{base}/"),
        ("Booking (staff)", f"{base}/booking/"),
        ("Dashboard (operators)", f"{base}/dashboard/"),
        ("Demo meeting, as host", f"{base}{demo.host_path}"),
        ("Demo meeting, as guest", f"{base}{demo.guest_path}"),
        ("API docs", f"{base}{ctx}/docs"),
        ("API (token below)", f"{base}{ctx}/v2/info"),
        ("Health", f"{base}/manage/health"),
    ]
    if settings.sip_enabled:
        number = demo.alias.partition("@")[0]
        host = urlsplit(base).hostname or "127.0.0.1"
        places.insert(5, ("Demo meeting by SIP", f"sip:{number}@{host}:{settings.sip_port}"))
    width = max(len(label) for label, _ in places) + 2
    lines = "\n".join(f"  {label + ':':<{width}}{where}" for label, where in places)
    sign_in = (
        f"""
The staff pages offer a demo sign-in, to a browser on this computer only (open them at 127.0.0.1
or localhost): organisation {DEMO_ORG}, e-mail {DEMO_USER}, role {USER} for booking, {ADMIN} for
the dashboard.
"""
        if not has_identity_provider(settings)
        else ""
    )
    data_dir = shlex.quote(str(settings.data_dir))
    return f"""
vdx is starting (Ctrl-C stops it). Where to go:

{lines}
{sign_in}
A token for that meeting-user, and a meeting booked with it (paste both here):

  TOKEN=$({vdx} token --data-dir {data_dir} --org {DEMO_ORG} --email {DEMO_USER} --role {USER})
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"subject":"Video consultation","startTime":"2030-01-01T10:00:00Z","endTime":"2030-01-01T10:30:00Z"}}' \\
       {base}{ctx}/v2/meetings
"""
