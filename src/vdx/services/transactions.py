"""Write transactions retried as a whole on collisions (spec 1.2.4).

A generated value (URI, short id) or a get-or-create row may collide with a concurrent transaction
on a unique key, or the database may report a deadlock or serialization failure; the retry's
pre-checks then see the committed rival row and answer with the proper 4xx.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("vdx.meetings")

# spec 1.2.4: the reference retries the create transaction up to 10 times on deadlock.
MAX_ATTEMPTS = 10
# SQLSTATEs worth a retry: deadlock, serialization failure, lock not available.
_RETRY_SQLSTATES = {"40P01", "40001", "55P03"}

T = TypeVar("T")


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if state in _RETRY_SQLSTATES:
            return True
        if isinstance(exc, OperationalError) and "locked" in str(orig).lower():
            return True  # SQLite "database is locked" after the busy timeout
    return False


async def in_transaction(
    session: AsyncSession, work: Callable[[], Awaitable[T]], *, on_exhausted: Callable[[], Exception]
) -> T:
    """Run ``work`` in a transaction on ``session`` (which starts without one), retrying it as a
    whole on collisions; ``on_exhausted`` is raised after the last attempt."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with session.begin():
                return await work()
        except (IntegrityError, DBAPIError) as exc:
            if not _retryable(exc):
                raise
            log.info("transaction retry %d after %s", attempt, exc.orig or exc)
            session.expunge_all()
    raise on_exhausted()
