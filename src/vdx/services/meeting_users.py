"""Meeting users: the ``(organisation, email)`` rows that stand for people in created/updated-by
fields. The reference creates them on demand (spec 2.1 meeting_users)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from vdx.api.errors import validation_error
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


async def attach_organisations(
    session: AsyncSession, users: Iterable[MeetingUser | None], known: Organisation | None
) -> None:
    """Give users loaded without their organisation (``raiseload``) the organisation a response
    shows (its code). Joining each user's organisation in a read query cost a join and an
    Organisation entity per user (up to five in a scheduling info's); they are nearly always the
    caller's own organisation, which the request has already read, so the others, if any, come in
    one more query."""
    by_id = {known.id: known} if known is not None else {}
    loaded = [u for u in users if u is not None]
    missing = {u.organisation_id for u in loaded} - by_id.keys()
    if missing:
        rows = await session.execute(select(Organisation).where(Organisation.id.in_(sorted(missing))))
        by_id.update((o.id, o) for o in rows.scalars())
    for user in loaded:
        set_committed_value(user, "organisation", by_id[user.organisation_id])
