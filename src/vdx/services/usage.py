"""Usage per organisation per day in the database: the node's ledger (``vdx.node.usage``) is
added to the ``usage_day`` table in one transaction per write, periodically and at shutdown, and
the dashboard reads it back. Rooms map to organisations through their scheduling info when the
usage is written (a room number may serve another organisation later); rooms the node hosts
without a booking count as ``(unbooked)``."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vdx.node.usage import DayUsage, UsageLedger
from vdx.store.models import Organisation, SchedulingInfo, UsageDay

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


async def per_day(session: AsyncSession, since: date, until: date) -> list[UsageDay]:
    """The stored days from ``since`` to ``until``, both included."""
    query = select(UsageDay).where(UsageDay.day >= since, UsageDay.day <= until)
    return list((await session.execute(query)).scalars())


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
