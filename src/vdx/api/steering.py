"""``GET /v2/steering/figures`` and ``/v2/steering/figures.csv`` (vdx extensions, meeting-admin):
the figures the steering group decides capacity by, as JSON for the page and as CSV, one table
at a time, built from the same JSON so the two always agree."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Operator, operator
from vdx.access.sessions import get_read_session
from vdx.booking.errors import validation_error
from vdx.booking.timefmt import format_ts
from vdx.services import steering

router = APIRouter(tags=["Steering figures (vdx extension)"])

MAX_DAYS = 366
DEFAULT_DAYS = 28
Table = Literal["days", "busiest-hours", "projection", "refused", "organisations", "sectors", "clinical"]
TABLES: tuple[str, ...] = Table.__args__  # type: ignore[attr-defined]


def _usage(u: steering.Usage) -> dict[str, Any]:
    return {
        "meetings": u.meetings,
        "participantMinutes": u.participant_minutes,
        "peakParticipants": u.peak_participants,
    }


def as_json(f: steering.Figures, today: date) -> dict[str, Any]:
    p = f.projection
    return {
        "from": f.first.isoformat(),
        "to": f.last.isoformat(),
        "today": today.isoformat(),
        "days": [
            {
                "day": d.day.isoformat(),
                "peakUnits": round(d.peak_units, 3),
                "capacity": round(d.capacity, 3),
                "peakAt": format_ts(d.peak_at),
                "busiestHour": d.busiest_hour,
            }
            for d in f.days
        ],
        "busiestHours": [{"hour": h, "meanUnits": round(u, 3)} for h, u in f.busiest_hours],
        "projection": {
            "capacity": round(p.capacity, 3),
            "basisDays": p.basis_days,
            "growthPerDay": None if p.growth_per_day is None else round(p.growth_per_day, 4),
            "fittedToday": None if p.fitted_today is None else round(p.fitted_today, 3),
            "exceedsOn": p.exceeds_on.isoformat() if p.exceeds_on else None,
        },
        "refused": [
            {
                "day": r.day.isoformat(),
                "reason": r.reason,
                "organisation": r.organisation,
                "clinical": r.clinical,
                "count": r.count,
            }
            for r in f.refused
        ],
        "organisations": [
            {
                "organisation": o.organisation,
                "name": o.name,
                "sector": o.sector,
                "clinical": o.clinical,
                **_usage(o.usage),
            }
            for o in f.organisations
        ],
        "sectors": [{"sector": s, **_usage(u)} for s, u in f.sectors.items()],
        "clinical": [{"clinical": c, **_usage(u)} for c, u in sorted(f.clinical.items(), reverse=True)],
    }


def _cell(v: Any) -> str:
    """JSON's spelling of the value, as a page shows it: a whole float without its ``.0``."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def as_csv(figures: dict[str, Any], table: str) -> str:
    """One table of ``as_json``'s figures as CSV: a header of its keys, a row per entry."""
    rows = figures["busiestHours" if table == "busiest-hours" else table]
    if isinstance(rows, dict):
        rows = [rows]
    keys = list(rows[0]) if rows else _EMPTY_HEADERS[table]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(keys)
    for r in rows:
        w.writerow([_cell(r[k]) for k in keys])
    return out.getvalue()


_EMPTY_HEADERS: dict[str, list[str]] = {
    "days": ["day", "peakUnits", "capacity", "peakAt", "busiestHour"],
    "busiest-hours": ["hour", "meanUnits"],
    "refused": ["day", "reason", "organisation", "clinical", "count"],
    "organisations": [
        "organisation",
        "name",
        "sector",
        "clinical",
        "meetings",
        "participantMinutes",
        "peakParticipants",
    ],
    "sectors": ["sector", "meetings", "participantMinutes", "peakParticipants"],
    "clinical": ["clinical", "meetings", "participantMinutes", "peakParticipants"],
}


def _day(name: str, text: str | None) -> date | None:
    """A day as ``YYYY-MM-DD`` exactly (not a timestamp, not a number of seconds)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise validation_error(f"{name} must be a day, YYYY-MM-DD") from None


async def _figures(
    session: AsyncSession, op: Operator, from_text: str | None, to_text: str | None
) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    last = _day("to", to_text) or today
    first = _day("from", from_text) or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise validation_error("from must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise validation_error(f"at most {MAX_DAYS} days at a time")
    scope = steering.Scope(op.codes, op.ids, unbooked=op.caller.org.parent_id is None)
    return as_json(await steering.figures(session, first, last, scope, today), today)


DAY = r"^\d{4}-\d{2}-\d{2}$"
FromDay = Annotated[
    str | None,
    Query(alias="from", pattern=DAY, description="first day (UTC, YYYY-MM-DD), default 4 weeks before `to`"),
]
ToDay = Annotated[
    str | None,
    Query(alias="to", pattern=DAY, description="last day, included (UTC, YYYY-MM-DD), default today"),
]


@router.get(
    "/steering/figures",
    summary="Capacity, refused joins and usage per day (vdx extension)",
    description=(
        "Not part of the reference API. For meeting-admins: peak HD units in use per day against "
        "capacity with the busiest hours (all nodes), a projection of when the peak exceeds the "
        "capacity at the last four weeks' growth, refused joins per day by reason and "
        "organisation, and usage (meetings, participant-minutes, most participants at once) per "
        "organisation, per sector (top-level organisation) and clinical or not, for the caller's "
        "organisation and its descendants."
    ),
)
async def figures(
    from_day: FromDay = None,
    to_day: ToDay = None,
    op: Operator = Depends(operator),
    session: AsyncSession = Depends(get_read_session),
) -> dict[str, Any]:
    return await _figures(session, op, from_day, to_day)


@router.get(
    "/steering/figures.csv",
    summary="One table of the steering figures as CSV (vdx extension)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def figures_csv(
    table: Annotated[Table, Query(description="which table: " + ", ".join(TABLES))],
    from_day: FromDay = None,
    to_day: ToDay = None,
    op: Operator = Depends(operator),
    session: AsyncSession = Depends(get_read_session),
) -> Response:
    body = as_csv(await _figures(session, op, from_day, to_day), table)
    name = f"vdx-{table}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
