"""Meeting users: the ``(organisation, email)`` rows that stand for people in created/updated-by
fields. The reference creates them on demand (spec 2.1 meeting_users)."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking.errors import validation_error
from vdx.store.models import MeetingUser, Organisation

EMAIL_MAX = 100  # meeting_user.email column


# Built once: SQLAlchemy memoises a statement object's cache key (every booking runs this).
_FIND = select(MeetingUser).where(
    MeetingUser.organisation_id == bindparam("organisation_id"), MeetingUser.email == bindparam("email")
)


async def get_or_create(session: AsyncSession, organisation: Organisation, email: str) -> MeetingUser:
    """The meeting user for ``email`` in ``organisation``, created if missing, inside the caller's
    transaction. ``INSERT ... ON CONFLICT DO NOTHING`` never fails on a rival insert of the same
    pair (it waits for it), so concurrent bookings by a new user need no retry."""
    if len(email) > EMAIL_MAX:
        raise validation_error(f"email: {email[:20]}... is longer than {EMAIL_MAX} characters")
    params = {"organisation_id": organisation.id, "email": email}
    found = (await session.execute(_FIND, params)).scalar_one_or_none()
    if found is not None:
        return found
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(MeetingUser)
        .values(organisation_id=organisation.id, email=email)
        .on_conflict_do_nothing(index_elements=["organisation_id", "email"])
    )
    return (await session.execute(_FIND, params)).scalar_one()
