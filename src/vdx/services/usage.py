"""Usage per organisation per day in the database: the node's ledger (``vdx.booking.usage``) is
added to the ``usage_day`` table in one transaction per write, periodically and at shutdown, and
the dashboard reads it back. Rooms map to organisations through their scheduling info when the
usage is written (a room number may serve another organisation later); rooms the node hosts
without a booking count as ``(unbooked)``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vdx.booking.usage import DayUsage, UsageLedger
from vdx.store.models import Meeting, Organisation, SchedulingInfo, UsageDay

log = logging.getLogger("vdx.services.usage")

UNBOOKED = "(unbooked)"


async def add(session: AsyncSession, deltas: dict[tuple[str, date], DayUsage]) -> None:
    """Add per-room deltas to the organisations' days, inside the caller's transaction.
    ``INSERT ... ON CONFLICT DO UPDATE`` adds atomically, so several nodes may write at once."""
    if not deltas:
        return
    aliases = {alias for alias, _ in deltas}
    rows = await session.execute(
        select(SchedulingInfo.uri_with_domain, Organisation.code)
        .join(Organisation, Organisation.id == SchedulingInfo.organisation_id)
        .where(SchedulingInfo.uri_with_domain.in_(aliases))
    )
    owners: dict[str | None, str] = {alias: code for alias, code in rows}
    per: dict[tuple[date, str], list[float]] = {}
    for (alias, day), d in deltas.items():
        row = per.setdefault((day, owners.get(alias) or UNBOOKED), [0, 0.0])
        row[0] += d.participants
        row[1] += d.seconds
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(UsageDay).values(
        [
            {"day": day, "organisation_code": org, "participants": int(n), "participant_seconds": round(s)}
            for (day, org), (n, s) in sorted(per.items())
        ]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["day", "organisation_code"],
            set_={
                "participants": UsageDay.participants + stmt.excluded.participants,
                "participant_seconds": UsageDay.participant_seconds + stmt.excluded.participant_seconds,
            },
        )
    )


async def per_day(session: AsyncSession, since: date, until: date, codes: Collection[str]) -> list[UsageDay]:
    """The stored days from ``since`` to ``until``, both included, of the organisations of
    ``codes`` (rooms without a booking, ``UNBOOKED``, belong to none)."""
    query = select(UsageDay).where(
        UsageDay.day >= since, UsageDay.day <= until, UsageDay.organisation_code.in_(sorted(codes))
    )
    return list((await session.execute(query)).scalars())


@dataclass
class DayTotals:
    """One organisation's day: meetings and booked minutes by start time (UTC) from the bookings,
    participants and participant-seconds from what the node wrote down."""

    meetings: int = 0
    minutes: float = 0.0
    participants: int = 0
    participant_seconds: float = 0.0


async def totals_per_day(
    session: AsyncSession, first: date, last: date, ids: Collection[int], codes: Collection[str]
) -> dict[tuple[str, date], DayTotals]:
    """``DayTotals`` by (organisation code, day) from ``first`` to ``last``, both included, of
    the organisations with ``ids`` (and their ``codes``: the usage rows name organisations by
    code); days without bookings or usage are absent."""
    rows = (
        await session.execute(
            select(Organisation.code, Meeting.start_time, Meeting.end_time)
            .join(Organisation, Organisation.id == Meeting.organisation_id)
            .where(
                Meeting.start_time >= datetime.combine(first, time(), UTC),
                Meeting.start_time < datetime.combine(last + timedelta(days=1), time(), UTC),
                Meeting.organisation_id.in_(sorted(ids)),
            )
        )
    ).all()
    per: dict[tuple[str, date], DayTotals] = {}
    for code, start, end in rows:
        day = per.setdefault((code, start.astimezone(UTC).date()), DayTotals())
        day.meetings += 1
        day.minutes += max(0.0, (end - start).total_seconds() / 60)
    for u in await per_day(session, first, last, codes):
        day = per.setdefault((u.organisation_code, u.day), DayTotals())
        day.participants += u.participants
        day.participant_seconds += u.participant_seconds
    return per


async def meetings_total(session: AsyncSession, ids: Collection[int]) -> int:
    """Every meeting booked on this node by the organisations with ``ids``."""
    query = select(func.count()).select_from(Meeting).where(Meeting.organisation_id.in_(sorted(ids)))
    return int(await session.scalar(query) or 0)


@dataclass
class UsageWriter:
    """Writes the ledger every ``interval`` seconds and once more at shutdown (after the rooms
    have closed, so every call is counted to its end). A failed write stays pending and is
    retried; a crash loses at most one interval, never counts twice."""

    sessions: async_sessionmaker[AsyncSession]
    ledger: UsageLedger
    interval: float = 60.0
    _task: asyncio.Task[None] | None = None

    async def write(self, now: datetime | None = None) -> None:
        """Open calls are counted up to ``now`` (default: the clock)."""
        deltas = self.ledger.collect(now)
        if not deltas:
            return
        async with self.sessions() as s, s.begin():
            await add(s, deltas)
        self.ledger.written(deltas)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.write()
            except Exception:
                log.exception("usage not written; retried in %.0f s", self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.write()
        except Exception:
            log.exception("usage of the last %.0f s not written at shutdown", self.interval)
