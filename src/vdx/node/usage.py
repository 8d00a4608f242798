"""Participants per room per day, for the operator dashboard's usage chart.

Counted in the node's memory as people join (each join counts; a rejoin after a dropped network
counts again), per UTC day, for the last ``keep_days`` days. The dashboard maps rooms to
organisations through the booking database. Kept in memory on purpose: it is an operator's
view of this node, not billing data (a restart starts the count afresh).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta


class UsageLedger:
    def __init__(self, keep_days: int = 92) -> None:
        self.keep_days = keep_days
        self._joins: Counter[tuple[str, date]] = Counter()

    def joined(self, alias: str, when: datetime | None = None) -> None:
        day = (when or datetime.now(UTC)).astimezone(UTC).date()
        self._joins[(alias, day)] += 1
        oldest = day - timedelta(days=self.keep_days)
        for key in [k for k in self._joins if k[1] < oldest]:
            del self._joins[key]

    def joins(self, since: date) -> dict[tuple[str, date], int]:
        """(alias, day) -> joins, for days from ``since``."""
        return {k: n for k, n in self._joins.items() if k[1] >= since}
