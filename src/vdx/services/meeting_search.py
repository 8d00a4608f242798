"""Finding meetings: by URI (spec 1.2.1, 1.2.2) and the search of GET /v2/meetings (spec 1.2.3),
each scoped to what the caller may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking.errors import not_found, vdx_error
from vdx.booking.roles import ADMIN, PROVISIONER_USER, USER
from vdx.services.meeting_access import Actor, check_access
from vdx.store.models import Meeting, MeetingLabel, MeetingUser, SchedulingInfo


async def find_by_uri(session: AsyncSession, actor: Actor, uri: str, *, with_domain: bool) -> Meeting:
    """findByUriWithDomain / findByUriWithoutDomain (spec 1.2.1, 1.2.2).

    URIs are reused once released (spec 2.4), so several meetings can match. The reference then
    fails with 500 (spec 2.17.4); vdx answers the current one: a VMR still holding the address
    first, then the latest start time."""
    column = SchedulingInfo.uri_with_domain if with_domain else SchedulingInfo.uri_without_domain
    query = (
        select(Meeting)
        .join(SchedulingInfo, SchedulingInfo.meeting_id == Meeting.id)
        .where(column == uri, Meeting.organisation_id == actor.org_id)
    )
    if actor.principal.only_user:
        query = query.join(MeetingUser, MeetingUser.id == Meeting.organized_by_id).where(
            MeetingUser.email == actor.email
        )
    query = query.order_by(
        SchedulingInfo.uri_without_domain.is_(None), Meeting.start_time.desc(), Meeting.id.desc()
    ).limit(1)
    meeting = (await session.execute(query)).scalar_one_or_none()
    if meeting is None:
        raise not_found("meeting", "uriWithDomain")
    return meeting


@dataclass(frozen=True)
class Filters:
    short_id: str | None = None
    label: str | None = None
    subject: str | None = None
    organized_by: str | None = None
    search: str | None = None
    from_start: datetime | None = None
    to_start: datetime | None = None
    uri_with_domain: str | None = None


def _own_or_org(actor: Actor, query: Any) -> Any:
    """Scoping of most filters: only-user -> meetings the caller organises; else the caller's org."""
    query = query.where(Meeting.organisation_id == actor.org_id)
    if actor.principal.only_user:
        query = query.join(MeetingUser, MeetingUser.id == Meeting.organized_by_id).where(
            MeetingUser.email == actor.email
        )
    return query


def _uri_scope(actor: Actor, query: Any) -> Any:
    """uriWithDomain scoping: provisioner-user -> all orgs; any meeting-user -> own; else org."""
    if actor.principal.has(PROVISIONER_USER):
        return query
    query = query.where(Meeting.organisation_id == actor.org_id)
    if actor.principal.has(USER):
        query = query.join(MeetingUser, MeetingUser.id == Meeting.organized_by_id).where(
            MeetingUser.email == actor.email
        )
    return query


async def _all(session: AsyncSession, query: Any) -> list[Meeting]:
    return list((await session.execute(query.order_by(Meeting.id))).unique().scalars())


async def search(session: AsyncSession, actor: Actor, f: Filters) -> list[Meeting]:
    """GET /v2/meetings: the first present filter in precedence order is used (spec 1.2.3)."""
    base = select(Meeting).distinct()
    half_window = (f.from_start is None) != (f.to_start is None)
    if f.short_id:
        return [await _by_short_id(session, actor, f.short_id)]
    if f.label:
        q = base.join(MeetingLabel, MeetingLabel.meeting_id == Meeting.id).where(
            MeetingLabel.label == f.label
        )
        return await _all(session, _own_or_org(actor, q))
    if f.subject:
        return await _all(session, _own_or_org(actor, base.where(Meeting.subject == f.subject)))
    if f.organized_by:
        return await _organised_by(session, actor, f.organized_by)
    if f.search:
        if half_window:
            raise vdx_error("28")  # spec 2.17.1: the reference answers 500 here
        return await _generic_search(session, actor, f)
    if f.from_start is not None and f.to_start is not None:
        q = base.where(Meeting.start_time >= f.from_start, Meeting.start_time <= f.to_start)
        return await _all(session, _own_or_org(actor, q))
    # A half window on its own is no filter (the reference falls through to uriWithDomain / 36).
    if f.uri_with_domain:
        q = base.join(SchedulingInfo, SchedulingInfo.meeting_id == Meeting.id).where(
            SchedulingInfo.uri_with_domain == f.uri_with_domain
        )
        return await _all(session, _uri_scope(actor, q))
    raise vdx_error("36")


async def _by_short_id(session: AsyncSession, actor: Actor, short_id: str) -> Meeting:
    """Only a caller whose sole role is meeting-admin sees any organisation's meeting (the
    short-link service's lookup, spec 2.6); others need the same org, an only-user the organiser."""
    meeting = (
        await session.execute(select(Meeting).where(Meeting.short_id == short_id))
    ).scalar_one_or_none()
    if meeting is None:
        raise not_found("meeting", "shortId")
    if not actor.principal.only(ADMIN):
        check_access(actor, meeting)
    return meeting


async def _organised_by(session: AsyncSession, actor: Actor, email: str) -> list[Meeting]:
    """Meetings organised by ``email`` in the caller's org; an only-user gets only their own.
    (The reference also get-or-creates a meeting user for the queried e-mail; a read has no
    need to write, so vdx only looks it up.)"""
    if actor.principal.only_user and email != actor.email:
        return []
    q = (
        select(Meeting)
        .join(MeetingUser, MeetingUser.id == Meeting.organized_by_id)
        .where(
            Meeting.organisation_id == actor.org_id,
            MeetingUser.organisation_id == actor.org_id,
            MeetingUser.email == email,
        )
    )
    return await _all(session, q)


async def _generic_search(session: AsyncSession, actor: Actor, f: Filters) -> list[Meeting]:
    """Union of organiser email, label, subject/description LIKE and uriWithDomain matches, each
    scoped as its own filter; with both bounds only ``from < start < to`` (strict) is kept.

    The LIKE part ignores case, as the reference's MariaDB (case-insensitive collation) does, on
    SQLite and PostgreSQL alike; ``%`` and ``_`` in the search text are literal."""
    s = f.search or ""
    found: dict[int, Meeting] = {}
    parts: list[list[Meeting]] = [
        await _organised_by(session, actor, s),
        await _all(
            session,
            _own_or_org(
                actor,
                select(Meeting)
                .distinct()
                .join(MeetingLabel, MeetingLabel.meeting_id == Meeting.id)
                .where(MeetingLabel.label == s),
            ),
        ),
        await _all(
            session,
            _own_or_org(
                actor,
                select(Meeting).where(
                    or_(
                        Meeting.subject.icontains(s, autoescape=True),
                        Meeting.description.icontains(s, autoescape=True),
                    )
                ),
            ),
        ),
        await _all(
            session,
            _uri_scope(
                actor,
                select(Meeting)
                .join(SchedulingInfo, SchedulingInfo.meeting_id == Meeting.id)
                .where(SchedulingInfo.uri_with_domain == s),
            ),
        ),
    ]
    for part in parts:
        for m in part:
            found.setdefault(m.id, m)
    out = list(found.values())
    if f.from_start is not None and f.to_start is not None:
        lo, hi = f.from_start, f.to_start
        out = [m for m in out if lo < m.start_time < hi]
    return out
