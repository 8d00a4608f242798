"""Participants and participant-minutes per room per UTC day, for the dashboard's usage charts.

The node notes who joins and leaves (with explicit times); ``collect`` turns that into deltas
per (room, day) since the last collection: a participant counts once on every day they were in
the room (a call across midnight counts on both days) and their seconds are split at midnight.
The deltas stay pending until ``written`` says they are stored (``vdx.services.usage`` adds
them to the database in one transaction), so a failed write is retried and a written delta is
never counted twice, also across a restart: open calls are collected periodically and at shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass
class DayUsage:
    participants: int = 0
    seconds: float = 0.0


@dataclass
class _Call:
    alias: str
    counted_to: datetime  # seconds before this are collected
    last_day: date | None = None  # the last day this call was counted as a participant on


def _utc(when: datetime | None) -> datetime:
    if when is None:
        return datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("usage times must be timezone-aware")
    return when.astimezone(UTC)


class UsageLedger:
    def __init__(self) -> None:
        self._open: dict[str, _Call] = {}
        self._pending: dict[tuple[str, date], DayUsage] = {}

    def joined(self, key: str, alias: str, when: datetime | None = None) -> None:
        """``key`` names one call (a rejoin after a dropped network is a new call)."""
        self._open[key] = _Call(alias, _utc(when))

    def left(self, key: str, when: datetime | None = None) -> None:
        call = self._open.pop(key, None)
        if call is not None:
            self._account(call, _utc(when))

    @property
    def open_calls(self) -> int:
        return len(self._open)

    def collect(self, now: datetime | None = None) -> dict[tuple[str, date], DayUsage]:
        """Everything not yet written, open calls counted up to ``now``: (alias, day) -> usage."""
        at = _utc(now)
        for call in self._open.values():
            self._account(call, at)
        return {k: DayUsage(v.participants, v.seconds) for k, v in self._pending.items()}

    def written(self, deltas: dict[tuple[str, date], DayUsage]) -> None:
        """These deltas are stored: take them off what is pending (calls that ended while they
        were being written stay pending)."""
        for key, d in deltas.items():
            left = self._pending.get(key)
            if left is None:
                continue
            left.participants -= d.participants
            left.seconds -= d.seconds
            if left.participants <= 0 and left.seconds <= 1e-6:
                del self._pending[key]

    def _account(self, call: _Call, until: datetime) -> None:
        start = call.counted_to
        until = max(until, start)
        day = start.date()
        while True:
            day_end = datetime.combine(day + timedelta(days=1), time(), UTC)
            seconds = (min(until, day_end) - max(start, datetime.combine(day, time(), UTC))).total_seconds()
            usage = self._pending.setdefault((call.alias, day), DayUsage())
            usage.seconds += max(0.0, seconds)
            if call.last_day != day:
                usage.participants += 1
                call.last_day = day
            if until <= day_end or until.date() == day:
                break
            day += timedelta(days=1)
        call.counted_to = until
