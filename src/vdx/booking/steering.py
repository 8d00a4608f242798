"""The figures a steering group decides capacity by, from the nodes' minutes. Pure: no I/O.

Units and capacity are summed over the nodes minute by minute (the cluster's load at that
minute), then summed per UTC day: the day's peak and the capacity at that minute, the hour of
the day with the highest mean load. The projection fits a straight line through the last four
weeks' daily peaks and says on which day that line crosses the capacity.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

PROJECTION_DAYS = 28  # the growth is measured over the last four weeks
HORIZON_DAYS = 3650  # a crossing further away than this is "not foreseeable"


@dataclass(frozen=True)
class Load:
    """The cluster at one minute: HD units in use and capacity, each summed over the nodes."""

    units: float = 0.0
    capacity: float = 0.0


def cluster_minutes(rows: Iterable[tuple[datetime, float, float]]) -> dict[datetime, Load]:
    """(minute, units, capacity) of every node minute -> the cluster's load per minute."""
    out: dict[datetime, Load] = {}
    for minute, units, capacity in rows:
        have = out.get(minute, Load())
        out[minute] = Load(have.units + units, have.capacity + capacity)
    return out


@dataclass(frozen=True)
class DayPeak:
    day: date
    peak_units: float  # the most units in use at any minute of the day
    capacity: float  # the capacity at that minute
    peak_at: datetime  # the first minute the peak was reached
    busiest_hour: int  # the UTC hour (0-23) with the highest mean load


def day_peaks(minutes: Mapping[datetime, Load]) -> list[DayPeak]:
    """One ``DayPeak`` per day that has minutes, oldest first."""
    by_day: dict[date, list[tuple[datetime, Load]]] = {}
    for minute, load in sorted(minutes.items()):
        by_day.setdefault(minute.date(), []).append((minute, load))
    out = []
    for day, rows in sorted(by_day.items()):
        at, top = max(rows, key=lambda r: (r[1].units, -r[0].timestamp()))
        hours: dict[int, list[float]] = {}
        for minute, load in rows:
            hours.setdefault(minute.hour, []).append(load.units)
        busiest = max(sorted(hours), key=lambda h: sum(hours[h]) / len(hours[h]))
        out.append(DayPeak(day, top.units, top.capacity, at, busiest))
    return out


def busiest_hours(minutes: Mapping[datetime, Load], top: int = 3) -> list[tuple[int, float]]:
    """The ``top`` UTC hours of the day with the highest mean load over all the days,
    (hour, mean units), busiest first."""
    hours: dict[int, list[float]] = {}
    for minute, load in minutes.items():
        hours.setdefault(minute.hour, []).append(load.units)
    means = [(h, sum(v) / len(v)) for h, v in hours.items()]
    return sorted(means, key=lambda hv: (-hv[1], hv[0]))[:top]


def peak_concurrent(rows: Iterable[tuple[K, datetime, int]]) -> dict[K, int]:
    """(key, minute, participants) rows of several nodes -> the most participants of each key at
    any one minute (a key's participants on all nodes at that minute added up)."""
    per_minute: dict[tuple[K, datetime], int] = {}
    for key, minute, n in rows:
        per_minute[key, minute] = per_minute.get((key, minute), 0) + n
    out: dict[K, int] = {}
    for (key, _), n in per_minute.items():
        out[key] = max(out.get(key, 0), n)
    return out


@dataclass(frozen=True)
class Projection:
    """``growth_per_day``: units per day of the fitted line (None with fewer than two days);
    ``exceeds_on``: the first day the fitted peak exceeds ``capacity`` (today when it does
    already; None when it does not grow, or not within the horizon)."""

    capacity: float
    basis_days: int
    growth_per_day: float | None
    fitted_today: float | None
    exceeds_on: date | None


def project(peaks: Sequence[tuple[date, float]], capacity: float, today: date) -> Projection:
    """Least squares through the daily peaks of the ``PROJECTION_DAYS`` days ending ``today``."""
    since = today - timedelta(days=PROJECTION_DAYS - 1)
    points = [((d - today).days, p) for d, p in peaks if since <= d <= today]
    if len(points) < 2:
        return Projection(capacity, len(points), None, None, None)
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return Projection(capacity, n, None, None, None)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    now = my - slope * mx  # the line at x = 0, today
    if capacity <= 0:
        return Projection(capacity, n, slope, now, None)
    if now > capacity:
        return Projection(capacity, n, slope, now, today)
    if slope <= 0:
        return Projection(capacity, n, slope, now, None)
    # the first whole day on which the line is above the capacity
    days = math.floor((capacity - now) / slope) + 1
    exceeds = today + timedelta(days=days) if days <= HORIZON_DAYS else None
    return Projection(capacity, n, slope, now, exceeds)
