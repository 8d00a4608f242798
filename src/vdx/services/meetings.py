"""Meetings: create, read, update and delete (spec 1.2, 2.9-2.11, 2.17); finding them by URI or
filters is ``meeting_search``.

Create and update each run as one transaction retried on collisions (``transactions``); their
pre-checks then see a committed rival row and answer with the proper 4xx.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, delete, false, insert, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, contains_eager, joinedload, lazyload, raiseload

from vdx.booking import commands, shortids
from vdx.booking.enums import GuestMicrophone, MeetingType, ProvisionStatus
from vdx.booking.errors import not_found, vdx_error
from vdx.events import record
from vdx.services import meeting_users, organisations
from vdx.services.meeting_access import Actor, check_access
from vdx.services.meeting_reads import MEETING_USERS, MeetingColumns, attach_organisations
from vdx.services.template_selection import is_requested, ranked_candidates
from vdx.services.transactions import in_transaction
from vdx.services.vmr_allocation import allocate, portal_link, vmr_start_time
from vdx.settings import Settings
from vdx.store.db import insert_new, now_utc, table_of
from vdx.store.models import (
    Meeting,
    MeetingAdditionalInfo,
    MeetingLabel,
    MeetingUser,
    Organisation,
    SchedulingInfo,
    SchedulingStatus,
    SchedulingTemplate,
)
from vdx.store.records import Record

# ---------------------------------------------------------------------------------------------
# create (spec 2.9)


def _check_additional_info(items: Sequence[commands.AdditionalInformation]) -> None:
    keys = [i.key for i in items]
    if len(keys) != len(set(keys)):
        raise vdx_error("35")


async def _organiser(
    session: AsyncSession, actor: Actor, org: Organisation, caller_user: MeetingUser, email: str | None
) -> MeetingUser:
    """``organizedByEmail`` is honoured for admin/planner when non-empty, in the caller's org;
    otherwise the caller organises (spec 2.9 step 2, 2.10 step 3, quirk 2.17.8)."""
    if email and actor.principal.acts_for_others:
        return await meeting_users.get_or_create(session, org, email)
    return caller_user


def _uniqueness_checks(with_external_id: bool) -> Select[bool, bool, bool]:
    """One round trip for the pre-checks of a create: is the uuid used by a meeting or a VMR, the
    external id by a meeting of the organisation, the drawn short id by any meeting? Parameters
    ``meeting_uuid``, ``short_id`` and (``with_external_id``) ``organisation_id``, ``external_id``."""
    meeting_uuid: BindParameter[str] = bindparam("meeting_uuid")
    uuid_in_use = or_(
        select(Meeting.id).where(Meeting.uuid == meeting_uuid).exists(),
        select(SchedulingInfo.id).where(SchedulingInfo.uuid == meeting_uuid).exists(),
    )
    external_id_in_use = (
        select(Meeting.id)
        .where(
            Meeting.organisation_id == bindparam("organisation_id"),
            Meeting.external_id == bindparam("external_id"),
        )
        .exists()
        if with_external_id
        else false()
    )
    short_id_taken = select(Meeting.id).where(Meeting.short_id == bindparam("short_id")).exists()
    return select(
        uuid_in_use.label("uuid_in_use"),
        external_id_in_use.label("external_id_in_use"),
        short_id_taken.label("short_id_taken"),
    )


# Built once (SQLAlchemy memoises a statement object's cache key; building and keying these per
# booking cost more CPU than running them).
_UNIQUENESS = {False: _uniqueness_checks(False), True: _uniqueness_checks(True)}


def _user_checks_template(
    with_external_id: bool, requested_template: bool
) -> Select[MeetingUser, bool, bool, bool, SchedulingTemplate]:
    """The first query of a create: the caller's meeting user (parameters ``organisation_id``,
    ``email``; no row when there is none), the pre-checks of :func:`_uniqueness_checks`, and the
    template a new VMR would be made from (``template_selection.ranked_candidates``, parameters
    ``org_id`` and ``requested_id``; None when there is none yet): two round trips less per
    booking than three queries."""
    template = aliased(SchedulingTemplate, ranked_candidates(requested_template).subquery("template"))
    return (
        select(MeetingUser, *_uniqueness_checks(with_external_id).selected_columns, template)
        .outerjoin(template, true())
        .options(
            lazyload(template.organisation), lazyload(template.created_by), lazyload(template.updated_by)
        )
        .where(
            MeetingUser.organisation_id == bindparam("organisation_id"),
            MeetingUser.email == bindparam("email"),
        )
    )


# by (with external id, with requested template)
_USER_CHECKS_TEMPLATE = {
    (ext, tmpl): _user_checks_template(ext, tmpl) for ext in (False, True) for tmpl in (False, True)
}


async def _new_short_id(session: AsyncSession, draws: int) -> str:
    """A short id no meeting has, in at most ``draws`` draws (spec 2.6), else 400/24."""
    for _ in range(draws):
        candidate = shortids.new_short_id()
        taken = (await session.execute(select(Meeting.id).where(Meeting.short_id == candidate))).first()
        if taken is None:
            return candidate
    raise vdx_error("24")


def _new_meeting(
    req: commands.CreateMeeting,
    meeting_uuid: str,
    short_id: str,
    creator: MeetingUser,
    organiser: MeetingUser,
) -> Meeting:
    """The meeting ``req`` asks for, in the creator's organisation, not yet inserted."""
    return Meeting(
        uuid=meeting_uuid,
        subject=req.subject,
        organisation=creator.organisation,
        organisation_id=creator.organisation.id,
        created_by=creator,
        created_by_id=creator.id,
        organized_by=organiser,
        organized_by_id=organiser.id,
        updated_by=None,
        updated_by_id=None,
        scheduling_info=None,
        start_time=req.startTime,
        end_time=req.endTime,
        description=req.description,
        project_code=req.projectCode,
        created_time=now_utc(),
        short_id=short_id,
        external_id=req.externalId,
        guest_microphone=req.guestMicrophone or GuestMicrophone.on,
        guest_pin_required=bool(req.guestPinRequired),
        labels=[MeetingLabel(label=lbl) for lbl in (req.labels or [])],
        additional_information=[
            MeetingAdditionalInfo(info_key=a.key, info_value=a.value)
            for a in (req.additionalInformation or [])
        ],
    )


async def _first_read(
    session: AsyncSession, actor: Actor, req: commands.CreateMeeting, meeting_uuid: str, short_id: str
) -> tuple[MeetingUser, bool, bool, bool, SchedulingTemplate | None]:
    """The caller's meeting user (created when missing), the pre-checks of
    :func:`_uniqueness_checks` and the template a new VMR would be made from, in one query where
    the user exists; the user's row joins its organisation: this transaction's own read of it."""
    with_external_id = req.externalId is not None
    checks: dict[str, object] = {"meeting_uuid": meeting_uuid, "short_id": short_id}
    if with_external_id:
        checks |= {"organisation_id": actor.org_id, "external_id": req.externalId}
    requested_template = is_requested(req.schedulingTemplateId)
    params = checks | {"organisation_id": actor.org_id, "email": actor.email, "org_id": actor.org_id}
    if requested_template:
        params["requested_id"] = req.schedulingTemplateId
    found = (
        await session.execute(_USER_CHECKS_TEMPLATE[with_external_id, requested_template], params)
    ).one_or_none()
    if found is not None:
        caller_user, uuid_in_use, external_id_in_use, short_id_taken, template = found
        return caller_user, uuid_in_use, external_id_in_use, short_id_taken, template
    # not a meeting user yet: created, then the pre-checks on their own
    caller_user = await meeting_users.get_or_create(session, actor.organisation, actor.email)
    uuid_in_use, external_id_in_use, short_id_taken = (
        await session.execute(_UNIQUENESS[with_external_id], checks)
    ).one()
    return caller_user, uuid_in_use, external_id_in_use, short_id_taken, None


async def _check_pool_enabled(session: AsyncSession, org: Organisation) -> None:
    """A POOL meeting needs a pool organisation with a pool (spec 2.9 step 5), else 400/19."""
    pool_org = await organisations.pool_organisation(session, org)
    if not pool_org.pool_size or pool_org.pool_size <= 0:
        raise vdx_error("19", org.code)


async def create(
    session: AsyncSession, settings: Settings, actor: Actor, req: commands.CreateMeeting
) -> Meeting:
    """POST /v2/meetings (spec 1.2.4, 2.9); the year check (400/25) is the command's own."""
    if req.schedulingInfoReservationId is not None and (req.hostPin is not None or req.guestPin is not None):
        raise vdx_error("34")  # step 4 (checked first: it needs no database)
    _check_additional_info(req.additionalInformation or [])
    meeting_uuid = str(req.uuid or uuidlib.uuid4())

    async def work() -> Meeting:
        short_id = shortids.new_short_id()
        first = await _first_read(session, actor, req, meeting_uuid, short_id)
        caller_user, uuid_in_use, external_id_in_use, short_id_taken, template = first
        org = caller_user.organisation
        organiser = await _organiser(session, actor, org, caller_user, req.organizedByEmail)
        if (req.meetingType or MeetingType.NORMAL) == MeetingType.POOL:  # step 5
            await _check_pool_enabled(session, org)
        # spec 2.17.5: a client uuid already in use is 400/24 (the reference's unique-key mapping)
        if uuid_in_use:
            raise vdx_error("24")
        if external_id_in_use:
            raise vdx_error("21")
        if short_id_taken:
            short_id = await _new_short_id(session, shortids.SHORT_ID_RETRIES)
        meeting = _new_meeting(req, meeting_uuid, short_id, caller_user, organiser)
        await _insert(session, meeting)
        await allocate(
            session, settings, meeting=meeting, org=org, user=caller_user, req=req, template=template
        )
        await record.audit(session, settings, operation="create", obj=meeting, user=actor.email)
        return meeting  # every field the answer shows is in hand: no reload

    return await in_transaction(session, work, on_exhausted=lambda: vdx_error("24"))


# Core statements on the tables (``insert(MeetingLabel)`` would take the ORM's bulk-insert path)
_INSERT_LABELS = insert(table_of(MeetingLabel))
_INSERT_ADDITIONAL_INFO = insert(table_of(MeetingAdditionalInfo))


async def _insert(session: AsyncSession, meeting: Meeting) -> None:
    """INSERT a new meeting with its labels and additional information as Core statements; the
    object stays out of the session (``insert_new``), so answer and events read it as built."""
    await insert_new(session, meeting)
    if meeting.labels:
        for lbl in meeting.labels:
            lbl.meeting_id = meeting.id
        await session.execute(
            _INSERT_LABELS, [{"meeting_id": meeting.id, "label": lbl.label} for lbl in meeting.labels]
        )
    if meeting.additional_information:
        for a in meeting.additional_information:
            a.meeting_id = meeting.id
        await session.execute(
            _INSERT_ADDITIONAL_INFO,
            [
                {"meeting_id": meeting.id, "info_key": a.info_key, "info_value": a.info_value}
                for a in meeting.additional_information
            ],
        )


async def _reload(session: AsyncSession, meeting_id: int) -> Meeting:
    return (
        await session.execute(
            select(Meeting).where(Meeting.id == meeting_id).execution_options(populate_existing=True)
        )
    ).scalar_one()


# ---------------------------------------------------------------------------------------------
# read (spec 1.2.1, 1.2.2, 1.2.5)


# One query: the collections joined rather than a SELECT each (a meeting has few of them). Built
# once: SQLAlchemy memoises a statement's cache key on the object, and building and keying this
# one per request cost more CPU than running it.
_BY_UUID = (
    select(Meeting)
    .where(Meeting.uuid == bindparam("meeting_uuid"))
    .options(joinedload(Meeting.labels), joinedload(Meeting.additional_information))
)


async def get(session: AsyncSession, actor: Actor, meeting_uuid: str) -> Meeting:
    """A meeting to change: 404 unknown, 403 other organisation or not the only-user's own."""
    meeting = (await session.execute(_BY_UUID, {"meeting_uuid": meeting_uuid})).unique().scalar_one_or_none()
    if meeting is None:
        raise not_found("meeting", "uuid")
    check_access(actor, meeting)
    return meeting


# GET /v2/meetings/{uuid}: the meeting as columns (``meeting_reads``) beside the caller's
# organisation (``organisations.Beside``), built once
_READ = MeetingColumns("m_")
_READ_BY_UUID = organisations.Beside.build(
    _READ.columns(), _READ.joined(), _READ.meeting.c.uuid == bindparam("meeting_uuid")
)


async def find(
    session: AsyncSession, meeting_uuid: str, organisation_code: str | None
) -> tuple[Organisation | None, Mapping[str, Any] | None]:
    """GET /v2/meetings/{uuid}: the meeting's row and the caller's organisation, in one query;
    ``read`` then checks and builds it."""
    return await _READ_BY_UUID.fetch(session, {"meeting_uuid": meeting_uuid}, organisation_code, "m_id")


async def read(session: AsyncSession, actor: Actor, row: Mapping[str, Any] | None) -> Record:
    """The meeting of ``row`` (spec 1.2.5): 404 unknown, 403 other organisation or not the
    only-user's own. The users come with the organisation codes the body shows."""
    meeting = _READ.record(row) if row is not None else None
    if meeting is None:
        raise not_found("meeting", "uuid")
    check_access(actor, meeting)
    users = [getattr(meeting, name) for name in MEETING_USERS]
    await attach_organisations(session, users, actor.organisation)
    return meeting


# ---------------------------------------------------------------------------------------------
# update (spec 1.2.6, 2.10)


@dataclass
class MergedUpdate:
    """The update request after PUT/PATCH merging (spec 1.2.6)."""

    subject: str
    start_time: datetime
    end_time: datetime
    description: str | None
    project_code: str | None
    organized_by_email: str | None
    labels: list[str]
    additional_information: list[commands.AdditionalInformation]
    guest_microphone: GuestMicrophone | None
    guest_pin_required: bool
    host_pin: int | None
    guest_pin: int | None
    call_type: str | None


def merge_put(meeting: Meeting, si: SchedulingInfo | None, req: commands.UpdateMeeting) -> MergedUpdate:
    """PUT replaces subject/times/description/projectCode/organiser/labels/additional info;
    microphone, guestPinRequired, PINs and callType stay as stored."""
    return MergedUpdate(
        subject=req.subject,
        start_time=req.startTime,
        end_time=req.endTime,
        description=req.description,
        project_code=req.projectCode,
        organized_by_email=req.organizedByEmail,
        labels=list(req.labels or []),
        additional_information=list(req.additionalInformation or []),
        guest_microphone=meeting.guest_microphone,
        guest_pin_required=meeting.guest_pin_required,
        host_pin=si.host_pin if si else None,
        guest_pin=si.guest_pin if si else None,
        call_type=si.call_type if si else None,
    )


def merge_patch(meeting: Meeting, si: SchedulingInfo | None, req: commands.PatchMeeting) -> MergedUpdate:
    """PATCH starts from the stored values and overlays every present non-null field; an
    explicit null is the same as absent (spec 1.2.6, 2.17.2)."""

    def pick(value: Any, stored: Any) -> Any:
        return stored if value is None else value

    return MergedUpdate(
        subject=pick(req.subject, meeting.subject),
        start_time=pick(req.startTime, meeting.start_time),
        end_time=pick(req.endTime, meeting.end_time),
        description=pick(req.description, meeting.description),
        project_code=pick(req.projectCode, meeting.project_code),
        organized_by_email=pick(req.organizedByEmail, meeting.organized_by.email),
        labels=pick(req.labels, [lbl.label for lbl in meeting.labels]),
        additional_information=pick(
            req.additionalInformation,
            [
                commands.AdditionalInformation(key=a.info_key, value=a.info_value)
                for a in meeting.additional_information
            ],
        ),
        guest_microphone=pick(req.guestMicrophone, meeting.guest_microphone),
        guest_pin_required=pick(req.guestPinRequired, meeting.guest_pin_required),
        host_pin=pick(req.hostPin, si.host_pin if si else None),
        guest_pin=pick(req.guestPin, si.guest_pin if si else None),
        call_type=pick(req.callType, si.call_type if si else None),
    )


async def update(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    meeting_uuid: str,
    merge: Callable[[Meeting, SchedulingInfo | None], MergedUpdate],
) -> Meeting:
    """PUT/PATCH /v2/meetings/{uuid} (spec 2.10)."""

    async def work() -> Meeting:
        meeting = await get(session, actor, meeting_uuid)
        si = meeting.scheduling_info
        status = si.provision_status if si is not None else None
        if status not in (ProvisionStatus.AWAITS_PROVISION, ProvisionStatus.PROVISIONED_OK):
            raise vdx_error("12")
        assert si is not None
        req = merge(meeting, si)
        _check_additional_info(req.additional_information)
        org = await session.get(Organisation, actor.org_id)
        assert org is not None
        caller_user = await meeting_users.get_or_create(session, org, actor.email)
        awaiting = status == ProvisionStatus.AWAITS_PROVISION
        if awaiting or (si.organisation.pool_size or 0) > 0:  # step 3
            meeting.subject = req.subject
            meeting.start_time = req.start_time
            meeting.description = req.description
            meeting.project_code = req.project_code
            meeting.organized_by = await _organiser(session, actor, org, caller_user, req.organized_by_email)
        # step 4
        meeting.end_time = req.end_time
        meeting.updated_time = now_utc()
        meeting.updated_by = caller_user
        meeting.guest_microphone = req.guest_microphone
        meeting.guest_pin_required = req.guest_pin_required
        # Old rows go first: the unit of work would insert the new ones before deleting orphans,
        # and (meeting, info_key) is unique.
        meeting.labels.clear()
        meeting.additional_information.clear()
        await session.flush()
        meeting.labels = [MeetingLabel(label=lbl) for lbl in req.labels]
        meeting.additional_information = [
            MeetingAdditionalInfo(info_key=a.key, info_value=a.value) for a in req.additional_information
        ]
        await session.flush()
        if awaiting:  # step 5
            si.host_pin = req.host_pin
            si.guest_pin = req.guest_pin
            si.call_type = req.call_type
            si.vmr_start_time = vmr_start_time(meeting, si)
            si.portal_link = portal_link(settings, si, meeting)
            si.updated_by = caller_user
            si.updated_time = now_utc()
            await session.flush()
            await record.scheduling_info_event(session, settings, si, "UPDATE")
            await record.audit(session, settings, operation="update", obj=si, user=actor.email)
        else:
            # PROVISIONED_OK: the VMR row is unchanged, but the event carries the new end time so
            # an event-driven provisioner can extend or shorten the live room (spec 2.10 step 5).
            await record.scheduling_info_event(session, settings, si, "UPDATE")
        await record.audit(session, settings, operation="update", obj=meeting, user=actor.email)  # step 6
        return await _reload(session, meeting.id)

    return await in_transaction(session, work, on_exhausted=lambda: vdx_error("24"))


# ---------------------------------------------------------------------------------------------
# delete (spec 1.2.7, 2.11)


async def remove(session: AsyncSession, settings: Settings, actor: Actor, meeting_uuid: str) -> None:
    """DELETE /v2/meetings/{uuid}: only while AWAITS_PROVISION (406/13); audit first, then the
    scheduling info (event DELETE) with its status history, labels, additional info, meeting."""
    async with session.begin():
        meeting = await get(session, actor, meeting_uuid)
        si = meeting.scheduling_info
        if si is not None and si.provision_status != ProvisionStatus.AWAITS_PROVISION:
            raise vdx_error("13")
        await record.audit(session, settings, operation="delete", obj=meeting, user=actor.email)
        if si is not None:
            await record.scheduling_info_event(session, settings, si, "DELETE")
            await session.execute(
                delete(SchedulingStatus).where(SchedulingStatus.scheduling_info_id == si.id)
            )
            await session.delete(si)
            await session.flush()
        await session.delete(meeting)


async def by_short_id_public(session: AsyncSession, short_id: str) -> Meeting | None:
    """The meeting behind a short link (no caller: the link itself is the key), with its scheduling
    info and nothing else: every citizen's first request, so one query instead of the six a whole
    meeting takes (users, labels, additional information, the SI's own relations)."""
    return (await session.execute(_BY_SHORT_ID_PUBLIC, {"short_id": short_id})).scalar_one_or_none()


# Built once (SQLAlchemy memoises a statement object's cache key): every citizen's link runs it.
_BY_SHORT_ID_PUBLIC = (
    select(Meeting)
    .outerjoin(Meeting.scheduling_info)
    .options(raiseload("*"), contains_eager(Meeting.scheduling_info).raiseload("*"))
    .where(Meeting.short_id == bindparam("short_id"))
)
