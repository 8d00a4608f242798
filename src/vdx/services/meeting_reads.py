"""A meeting as the read endpoints show it, selected as columns in the reader's one query: the
meeting, its three users, its labels and additional information (see ``vdx.store.records`` for
why columns rather than ORM entities). GET meeting selects it on its own, GET scheduling info
outer-joins it to the scheduling info.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import FromClause, Label, select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.store.db import table_of
from vdx.store.models import Meeting, MeetingAdditionalInfo, MeetingLabel, MeetingUser, Organisation
from vdx.store.records import Record, columns, json_rows, json_rows_list, record

_MEETING = table_of(Meeting)
_USER = table_of(MeetingUser)
_LABEL = table_of(MeetingLabel)
_INFO = table_of(MeetingAdditionalInfo)

# the meeting's user relationships and their foreign-key columns
MEETING_USERS = ("created_by", "organized_by", "updated_by")


def user_columns(user: FromClause, prefix: str) -> list[Label[Any]]:
    """A user's columns as :func:`user_record` reads them (their organisation comes apart);
    ``prefix`` ends in ``__``, which no column name of a table has."""
    return [
        user.c.id.label(prefix + "id"),
        user.c.organisation_id.label(prefix + "organisation_id"),
        user.c.email.label(prefix + "email"),
    ]


def user_record(row: Mapping[Any, Any], prefix: str) -> Record | None:
    if row[prefix + "id"] is None:
        return None
    return Record(
        {
            "id": row[prefix + "id"],
            "organisation_id": row[prefix + "organisation_id"],
            "email": row[prefix + "email"],
        }
    )


class MeetingColumns:
    """The columns and joins of a meeting read under ``prefix``, joined to ``meeting``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.meeting = _MEETING.alias(prefix + "meeting")
        self.users = {name: _USER.alias(f"{prefix}{name}") for name in MEETING_USERS}

    def columns(self) -> list[Label[Any]]:
        m, p = self.meeting, self.prefix
        labels = (
            select(json_rows(_LABEL.c.id, _LABEL.c.label))
            .where(_LABEL.c.meeting_id == m.c.id)
            .scalar_subquery()
        )
        infos = (
            select(json_rows(_INFO.c.id, _INFO.c.info_key, _INFO.c.info_value))
            .where(_INFO.c.meeting_id == m.c.id)
            .scalar_subquery()
        )
        out = columns(m, p)  # type: ignore[arg-type]
        for name, user in self.users.items():
            out += user_columns(user, f"{p}{name}__")
        return [*out, labels.label(p + "labels"), infos.label(p + "infos")]

    def joined(self, left: FromClause | None = None, on: Any = None) -> FromClause:
        """The meeting and its users; outer-joined to ``left`` (``on``, in terms of
        :attr:`meeting`) where given."""
        m = self.meeting
        joined = m if left is None else left.join(m, on, isouter=True)
        for name, user in self.users.items():
            joined = joined.join(user, user.c.id == m.c[f"{name}_id"], isouter=True)
        return joined

    def record(self, row: Mapping[Any, Any]) -> Record | None:
        p = self.prefix
        meeting = record(row, _MEETING, p)
        if meeting is None:
            return None
        for name in MEETING_USERS:
            setattr(meeting, name, user_record(row, f"{p}{name}__"))
        meeting.labels = [Record({"label": label}) for _, label in json_rows_list(row[p + "labels"])]
        meeting.additional_information = [
            Record({"info_key": key, "info_value": value})
            for _, key, value in json_rows_list(row[p + "infos"])
        ]
        return meeting


async def attach_organisations(
    session: AsyncSession, users: Iterable[Record | None], known: Organisation | None
) -> None:
    """Give user records the organisation a response shows (its code). They are nearly always of
    the caller's organisation, which the request has already read, so the others, if any, come
    in one more query (joining each user's organisation cost a join and its columns per user)."""
    by_id = {known.id: known} if known is not None else {}
    loaded = [u for u in users if u is not None]
    missing = {u.organisation_id for u in loaded} - by_id.keys()
    if missing:
        rows = await session.execute(select(Organisation).where(Organisation.id.in_(sorted(missing))))
        by_id.update((o.id, o) for o in rows.scalars())
    for user in loaded:
        user.organisation = by_id[user.organisation_id]
