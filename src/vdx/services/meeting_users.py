"""Meeting users: the ``(organisation, email)`` rows that stand for people in created/updated-by
fields. The reference creates them on demand (spec 2.1 meeting_users)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.store.models import MeetingUser, Organisation


async def get_or_create(session: AsyncSession, organisation: Organisation, email: str) -> MeetingUser:
    """The meeting user for ``email`` in ``organisation``, created if missing.

    Runs inside the caller's transaction; a concurrent insert of the same pair is absorbed by a
    savepoint and the row the other transaction created is returned."""
    query = select(MeetingUser).where(
        MeetingUser.organisation_id == organisation.id, MeetingUser.email == email
    )
    found = (await session.execute(query)).scalar_one_or_none()
    if found is not None:
        return found
    user = MeetingUser(organisation_id=organisation.id, email=email, organisation=organisation)
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError:
        return (await session.execute(query)).scalar_one()
    return user
