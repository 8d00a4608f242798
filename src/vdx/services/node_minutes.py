"""The nodes' per-minute counters in the database, and the clinical organisations they read.

A node sends its minutes (``POST /v2/node-minutes``; the all-in-one node the same way, to its own
API in memory). A minute is stored whole in one transaction: its ``node_minute`` row and the
rows of its participants and refused joins. Sent again (an answer lost on the way), it replaces
what was stored for that (node, minute), so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.store.models import (
    NodeMinute,
    NodeMinuteOrganisation,
    NodeMinuteParticipants,
    Organisation,
    RefusedJoin,
)

_TABLES = (NodeMinute, NodeMinuteParticipants, NodeMinuteOrganisation, RefusedJoin)


@dataclass(frozen=True)
class Minute:
    """One node minute as received (see ``vdx.node.minutes.MinuteSnapshot``)."""

    minute: datetime
    capacity: float
    units_in_use: float
    reserve: float = 0.0
    participants: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, quality)
    organisations: dict[tuple[str, bool], int] = field(default_factory=dict)  # (code, clinical)
    refused: dict[tuple[str, str, bool], int] = field(default_factory=dict)  # (reason, code, clinical)


async def store(session: AsyncSession, node: str, minutes: Sequence[Minute]) -> None:
    """Store (or replace) ``minutes`` of ``node`` inside the caller's transaction."""
    if not minutes:
        return
    times = sorted({m.minute for m in minutes})
    for table in _TABLES:
        await session.execute(delete(table).where(table.node == node, table.minute.in_(times)))
    latest: dict[datetime, Minute] = {m.minute: m for m in minutes}  # a minute twice: the last wins
    rows: dict[type[Any], list[dict[str, object]]] = {t: [] for t in _TABLES}
    for m in latest.values():
        key = {"node": node, "minute": m.minute}
        rows[NodeMinute].append(
            key
            | {
                "capacity": m.capacity,
                "units_in_use": m.units_in_use,
                "reserve": m.reserve,
                "participants": sum(m.participants.values()),
            }
        )
        rows[NodeMinuteParticipants] += [
            key | {"kind": k, "quality": q, "count": n} for (k, q), n in m.participants.items()
        ]
        rows[NodeMinuteOrganisation] += [
            key | {"organisation_code": o, "clinical": c, "participants": n}
            for (o, c), n in m.organisations.items()
        ]
        rows[RefusedJoin] += [
            key | {"reason": r, "organisation_code": o, "clinical": c, "count": n}
            for (r, o, c), n in m.refused.items()
        ]
    for table, values in rows.items():
        if values:
            await session.execute(insert(table), values)


async def expire(session: AsyncSession, before: datetime) -> int:
    """Delete every node minute before ``before`` (all its rows); how many minutes went."""
    gone = 0
    for table in _TABLES:
        result = await session.execute(delete(table).where(table.minute < before))
        if table is NodeMinute:
            gone = int(getattr(result, "rowcount", 0) or 0)
    return gone


async def clinical_codes(session: AsyncSession) -> list[str]:
    """The codes of every clinical organisation that is not deleted."""
    rows = await session.execute(
        select(Organisation.code)
        .where(and_(Organisation.clinical.is_(True), Organisation.deleted_time.is_(None)))
        .order_by(Organisation.code)
    )
    return list(rows.scalars())
