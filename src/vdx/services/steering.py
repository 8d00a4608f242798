"""The steering group's figures from the database: the nodes' minutes summed per day
(``vdx.booking.steering``), refused joins, and usage per organisation, per sector (the
organisation tree's top level below its root) and clinical or not.

Capacity and load are the whole service's (every node serves every organisation); refused joins
and usage are those of the organisations the reader oversees (their own and its descendants),
and of rooms without a booking only for an admin of a top-level organisation.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking import steering
from vdx.booking.clinical import is_clinical
from vdx.services import organisations
from vdx.store.models import (
    Meeting,
    MeetingLabel,
    NodeMinute,
    NodeMinuteOrganisation,
    Organisation,
    RefusedJoin,
)

UNBOOKED = "(unbooked)"  # the organisation of a room no booking names (as the nodes send it)


@dataclass(frozen=True)
class Scope:
    """Whose refused joins and usage are shown: organisation codes and ids; ``unbooked``: also
    rooms without a booking."""

    codes: frozenset[str]
    ids: frozenset[int]
    unbooked: bool = False

    def names(self) -> list[str]:
        return sorted(self.codes | ({UNBOOKED} if self.unbooked else set()))


@dataclass(frozen=True)
class Refused:
    day: date
    reason: str
    organisation: str
    clinical: bool  # the refused join's own decision
    count: int


@dataclass
class Usage:
    """Meetings booked (by start day), participant-minutes and the most participants at once."""

    meetings: int = 0
    participant_minutes: int = 0
    peak_participants: int = 0


@dataclass(frozen=True)
class OrganisationUsage:
    organisation: str
    name: str
    sector: str
    clinical: bool  # the organisation's own setting now
    usage: Usage


@dataclass
class Figures:
    first: date
    last: date
    days: list[steering.DayPeak]
    busiest_hours: list[tuple[int, float]]
    projection: steering.Projection
    refused: list[Refused]
    organisations: list[OrganisationUsage]
    sectors: dict[str, Usage] = field(default_factory=dict)  # top-level organisation code -> usage
    clinical: dict[bool, Usage] = field(default_factory=dict)  # the joins' clinical decision -> usage


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


async def load(session: AsyncSession, first: date, last: date) -> dict[datetime, steering.Load]:
    """The cluster's load per minute from ``first`` to ``last`` (both included)."""
    # summed over the nodes in the database: one row per minute instead of one per node minute
    rows = await session.execute(
        select(NodeMinute.minute, func.sum(NodeMinute.units_in_use), func.sum(NodeMinute.capacity))
        .where(NodeMinute.minute >= _start(first), NodeMinute.minute < _start(last + timedelta(days=1)))
        .group_by(NodeMinute.minute)
    )
    return steering.cluster_minutes((m, float(u), float(c)) for m, u, c in rows)


async def refused_per_day(session: AsyncSession, first: date, last: date, scope: Scope) -> list[Refused]:
    """Refused joins per day, reason, organisation and clinical decision; by day, the most first."""
    rows = await session.execute(
        select(
            RefusedJoin.minute,
            RefusedJoin.reason,
            RefusedJoin.organisation_code,
            RefusedJoin.clinical,
            RefusedJoin.count,
        ).where(
            RefusedJoin.minute >= _start(first),
            RefusedJoin.minute < _start(last + timedelta(days=1)),
            RefusedJoin.organisation_code.in_(scope.names()),
        )
    )
    per: dict[tuple[date, str, str, bool], int] = {}
    for minute, reason, org, clinical, n in rows:
        key = (minute.date(), reason, org, bool(clinical))
        per[key] = per.get(key, 0) + int(n)
    return [
        Refused(d, r, o, c, n)
        for (d, r, o, c), n in sorted(per.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0]))
    ]


def _sector_of(orgs: list[Organisation]) -> dict[int, Organisation]:
    """Organisation id -> its sector: the ancestor just below the tree's root (regions,
    municipalities, ... under a national root); a root is its own sector."""
    by_id = {o.id: o for o in orgs}
    out: dict[int, Organisation] = {}
    for o in orgs:
        chain, seen = [o], {o.id}
        parent = chain[-1].parent_id
        while parent is not None and parent in by_id and parent not in seen:
            chain.append(by_id[parent])
            seen.add(parent)
            parent = by_id[parent].parent_id
        out[o.id] = chain[-2] if len(chain) > 1 else chain[0]
    return out


async def _meetings(
    session: AsyncSession, first: date, last: date, ids: Collection[int]
) -> list[tuple[int, list[str]]]:
    """(organisation id, labels) of each meeting starting from ``first`` to ``last``."""
    rows = await session.execute(
        select(Meeting.id, Meeting.organisation_id, func.coalesce(MeetingLabel.label, ""))
        .outerjoin(MeetingLabel, MeetingLabel.meeting_id == Meeting.id)
        .where(
            Meeting.start_time >= _start(first),
            Meeting.start_time < _start(last + timedelta(days=1)),
            Meeting.organisation_id.in_(sorted(ids)),
        )
    )
    per: dict[int, tuple[int, list[str]]] = {}
    for mid, org_id, label in rows:
        entry = per.setdefault(mid, (org_id, []))
        if label:
            entry[1].append(label)
    return list(per.values())


async def usage(
    session: AsyncSession, first: date, last: date, scope: Scope
) -> tuple[list[OrganisationUsage], dict[str, Usage], dict[bool, Usage]]:
    """Usage per organisation, per sector and per clinical decision, from ``first`` to ``last``."""
    orgs = await organisations.live_organisations(session)
    sector = _sector_of(orgs)
    by_code = {o.code: o for o in orgs}
    mine = [o for o in orgs if o.id in scope.ids]
    per_org = {o.code: Usage() for o in mine}
    sectors: dict[str, Usage] = {}
    clinical: dict[bool, Usage] = {True: Usage(), False: Usage()}
    by_id = {o.id: o for o in orgs}
    for org_id, labels in await _meetings(session, first, last, scope.ids):
        org = by_id.get(org_id)
        if org is None:
            continue
        per_org[org.code].meetings += 1
        sectors.setdefault(sector[org.id].code, Usage()).meetings += 1
        clinical[is_clinical(labels, bool(org.clinical))].meetings += 1
    rows = (
        await session.execute(
            select(
                NodeMinuteOrganisation.organisation_code,
                NodeMinuteOrganisation.clinical,
                NodeMinuteOrganisation.minute,
                func.sum(NodeMinuteOrganisation.participants),
            )
            .where(
                NodeMinuteOrganisation.minute >= _start(first),
                NodeMinuteOrganisation.minute < _start(last + timedelta(days=1)),
                NodeMinuteOrganisation.organisation_code.in_(scope.names()),
            )
            .group_by(
                NodeMinuteOrganisation.organisation_code,
                NodeMinuteOrganisation.clinical,
                NodeMinuteOrganisation.minute,
            )
        )
    ).all()
    for code, is_c, _, n in rows:
        per_org.setdefault(code, Usage()).participant_minutes += int(n)
        clinical[bool(is_c)].participant_minutes += int(n)
        top = sector[by_code[code].id].code if code in by_code else code
        sectors.setdefault(top, Usage()).participant_minutes += int(n)
    for code, peak in steering.peak_concurrent((c, m, int(n)) for c, _, m, n in rows).items():
        per_org[code].peak_participants = peak
    for is_c, peak in steering.peak_concurrent((bool(c), m, int(n)) for _, c, m, n in rows).items():
        clinical[is_c].peak_participants = peak
    tops = steering.peak_concurrent(
        ((sector[by_code[c].id].code if c in by_code else c), m, int(n)) for c, _, m, n in rows
    )
    for top, peak in tops.items():
        sectors[top].peak_participants = peak
    out = [
        OrganisationUsage(
            code,
            by_code[code].name if code in by_code else code,
            sector[by_code[code].id].code if code in by_code else code,
            bool(by_code[code].clinical) if code in by_code else False,
            u,
        )
        for code, u in sorted(per_org.items())
    ]
    return out, dict(sorted(sectors.items())), clinical


async def figures(session: AsyncSession, first: date, last: date, scope: Scope, today: date) -> Figures:
    """Everything the steering page shows for the days ``first`` to ``last``; the projection
    looks at the four weeks ending ``today``."""
    since = min(first, today - timedelta(days=steering.PROJECTION_DAYS - 1))
    minutes = await load(session, since, max(last, today))
    peaks = steering.day_peaks(minutes)
    latest = max(minutes) if minutes else None
    capacity = minutes[latest].capacity if latest is not None else 0.0
    shown = {m: v for m, v in minutes.items() if first <= m.date() <= last}
    orgs, sectors, clinical = await usage(session, first, last, scope)
    return Figures(
        first=first,
        last=last,
        days=[p for p in peaks if first <= p.day <= last],
        busiest_hours=steering.busiest_hours(shown),
        projection=steering.project([(p.day, p.peak_units) for p in peaks], capacity, today),
        refused=await refused_per_day(session, first, last, scope),
        organisations=orgs,
        sectors=sectors,
        clinical=clinical,
    )
