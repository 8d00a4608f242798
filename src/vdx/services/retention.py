"""Personal data that expires: the retention job.

``VDX_RETENTION_DAYS`` after a meeting ends, the people in it become one placeholder meeting user
of its organisation (``ANONYMOUS``) in the meeting and its VMR, and every meeting user no row
refers to any more is deleted: the e-mail address is gone, while the meeting row (its times, so
the booked-minutes counts) stays. Participant counts live in ``usage_day`` without names and are
not touched. ``VDX_AUDIT_RETENTION_DAYS`` after it was written an audit record is deleted, and
``VDX_NODE_MINUTES_RETENTION_DAYS`` after its minute a node's minute figures (they name no one).

Participant display names, invitation recipients and per-call records are never written to the
database (the node keeps them in memory for the life of a call); the audit trail keeps the display
names of participants a host acted on, for its own retention.

Runs in every API process beside the pool filler, under a cluster lock (``store.job_locks``): one
process at a time does a batch, so two never anonymise the same meeting twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from vdx.services import node_minutes
from vdx.services.periodic import PeriodicJob
from vdx.settings import Settings
from vdx.store import job_locks
from vdx.store.db import now_utc
from vdx.store.models import AuditRecord, Meeting, MeetingUser, SchedulingInfo, SchedulingTemplate

log = logging.getLogger("vdx.retention")

LOCK = "retention"
# stands in for the people of an expired meeting; the reserved .invalid domain (RFC 2606) is no
# one's address, so no identity provider issues a token that would own these meetings
ANONYMOUS = "anonymised@retention.invalid"
# meetings per locked transaction: short transactions, bookings never wait long behind one
BATCH = 500


@dataclass
class RetentionResult:
    meetings: int = 0  # meetings whose people were replaced by the placeholder
    users_deleted: int = 0  # meeting users (e-mail addresses) deleted
    audit_deleted: int = 0  # audit records past their retention
    node_minutes_deleted: int = 0  # node minutes past theirs

    def __iadd__(self, other: RetentionResult) -> RetentionResult:
        self.meetings += other.meetings
        self.users_deleted += other.users_deleted
        self.audit_deleted += other.audit_deleted
        self.node_minutes_deleted += other.node_minutes_deleted
        return self

    @property
    def changed(self) -> bool:
        return bool(self.meetings or self.users_deleted or self.audit_deleted or self.node_minutes_deleted)


async def _placeholder(session: AsyncSession, organisation_id: int) -> int:
    found = (
        await session.execute(
            select(MeetingUser.id).where(
                MeetingUser.organisation_id == organisation_id, MeetingUser.email == ANONYMOUS
            )
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    user = MeetingUser(organisation_id=organisation_id, email=ANONYMOUS)
    session.add(user)
    await session.flush()
    return user.id


async def _expired_meetings(session: AsyncSession, cutoff: datetime) -> list[tuple[int, int]]:
    """(meeting id, organisation id) of up to ``BATCH`` meetings that ended before ``cutoff``
    and still name someone other than the placeholder."""
    created, organized, updated = aliased(MeetingUser), aliased(MeetingUser), aliased(MeetingUser)
    rows = await session.execute(
        select(Meeting.id, Meeting.organisation_id)
        .join(created, created.id == Meeting.created_by_id)
        .join(organized, organized.id == Meeting.organized_by_id)
        .outerjoin(updated, updated.id == Meeting.updated_by_id)
        .where(
            Meeting.end_time < cutoff,
            or_(created.email != ANONYMOUS, organized.email != ANONYMOUS, updated.email != ANONYMOUS),
        )
        .order_by(Meeting.id)
        .limit(BATCH)
    )
    return [(r[0], r[1]) for r in rows.all()]


async def _anonymise(session: AsyncSession, meetings: list[tuple[int, int]]) -> None:
    by_org: dict[int, list[int]] = {}
    for meeting_id, org_id in meetings:
        by_org.setdefault(org_id, []).append(meeting_id)
    for org_id, ids in by_org.items():
        nobody = await _placeholder(session, org_id)
        await session.execute(
            update(Meeting).where(Meeting.id.in_(ids)).values(created_by_id=nobody, organized_by_id=nobody)
        )
        for model, column in (
            (Meeting, Meeting.updated_by_id),
            (SchedulingInfo, SchedulingInfo.created_by_id),
            (SchedulingInfo, SchedulingInfo.updated_by_id),
        ):
            owner = Meeting.id if model is Meeting else SchedulingInfo.meeting_id
            await session.execute(
                update(model).where(owner.in_(ids), column.is_not(None)).values({column.key: nobody})
            )


async def _delete_unreferenced_users(session: AsyncSession) -> int:
    """Delete the meeting users no meeting, VMR or template refers to (the placeholders stay)."""
    referenced = union(
        *(
            select(column).where(column.is_not(None))
            for column in (
                Meeting.created_by_id,
                Meeting.organized_by_id,
                Meeting.updated_by_id,
                SchedulingInfo.created_by_id,
                SchedulingInfo.updated_by_id,
                SchedulingTemplate.created_by_id,
                SchedulingTemplate.updated_by_id,
                SchedulingTemplate.deleted_by_id,
            )
        )
    ).subquery()
    result = await session.execute(
        delete(MeetingUser).where(
            MeetingUser.email != ANONYMOUS, MeetingUser.id.not_in(select(referenced.c[0]))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def expire_once(
    session: AsyncSession, settings: Settings, now: datetime | None = None
) -> RetentionResult:
    """One batch, in the caller's (locked) transaction."""
    now = now or now_utc()
    result = RetentionResult()
    meetings = await _expired_meetings(session, now - timedelta(days=settings.retention_days))
    if meetings:
        await _anonymise(session, meetings)
        result.meetings = len(meetings)
    result.users_deleted = await _delete_unreferenced_users(session)
    gone = await session.execute(
        delete(AuditRecord).where(AuditRecord.at < now - timedelta(days=settings.audit_retention_days))
    )
    result.audit_deleted = int(getattr(gone, "rowcount", 0) or 0)
    result.node_minutes_deleted = await node_minutes.expire(
        session, now - timedelta(days=settings.node_minutes_retention_days)
    )
    return result


class RetentionJob(PeriodicJob):
    """Every ``retention_interval`` seconds, batches under the cluster lock until nothing is
    left to expire."""

    name = "retention"

    @property
    def interval(self) -> float:
        return self.settings.retention_interval

    async def run_once(self, now: datetime | None = None) -> RetentionResult | None:
        """Batches until one finds less than a full batch; None when another process held the lock."""
        total: RetentionResult | None = None
        while True:
            ran, result = await job_locks.run_locked(
                self.sessions, self.settings, LOCK, lambda s: expire_once(s, self.settings, now)
            )
            if not ran or result is None:
                return total
            total = total or RetentionResult()
            total += result
            if result.meetings < BATCH or self.stopping:
                return total

    async def tick(self) -> None:
        result = await self.run_once()
        if result is not None and result.changed:
            log.info(
                "retention: %d meetings anonymised, %d meeting users, %d audit records and %d node "
                "minutes deleted",
                result.meetings,
                result.users_deleted,
                result.audit_deleted,
                result.node_minutes_deleted,
            )
