"""Cluster locks for scheduled jobs, so that with several API processes on one database a job
runs in one of them at a time (the reference uses ShedLock, spec 2.13).

PostgreSQL: a transaction-scoped advisory lock (``pg_try_advisory_xact_lock``) taken in the job's
own transaction: released by commit, rollback or a dead connection, never left behind.
SQLite: a row of ``job_lock`` with an expiry, taken in a short transaction of its own (writers
are serialised by BEGIN IMMEDIATE) and released after the job; a holder that died frees it when
``locked_until`` passes.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vdx.settings import Settings
from vdx.store.db import now_utc
from vdx.store.models import JobLock

T = TypeVar("T")

# who holds a lock: host, process and a per-process nonce (pids repeat across hosts)
HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``name``."""
    return int.from_bytes(hashlib.sha256(f"vdx-job:{name}".encode()).digest()[:8], "big", signed=True)


async def _take_row(sessions: async_sessionmaker[AsyncSession], name: str, ttl: timedelta) -> bool:
    async with sessions() as s, s.begin():
        now = now_utc()
        row = await s.get(JobLock, name)
        if row is None:
            s.add(JobLock(name=name, locked_until=now + ttl, locked_by=HOLDER))
            return True
        if row.locked_until > now and row.locked_by != HOLDER:
            return False
        row.locked_until = now + ttl
        row.locked_by = HOLDER
        return True


async def _release_row(sessions: async_sessionmaker[AsyncSession], name: str) -> None:
    async with sessions() as s, s.begin():
        await s.execute(
            update(JobLock)
            .where(JobLock.name == name, JobLock.locked_by == HOLDER)
            .values(locked_until=now_utc())
        )


async def run_locked(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    name: str,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    ttl: timedelta = timedelta(seconds=60),
) -> tuple[bool, T | None]:
    """Run ``work(session)`` in one transaction while holding the cluster lock ``name``.
    Returns ``(False, None)`` without running it when another process holds the lock. ``ttl``
    (SQLite) bounds how long a process that died holding the lock blocks the others; a run is
    one short transaction, and SQLite serialises writers anyway, so an overrun is harmless."""
    if settings.is_postgres:
        async with sessions() as s, s.begin():
            got = (
                await s.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": advisory_key(name)})
            ).scalar_one()
            if not got:
                return False, None
            return True, await work(s)
    if not await _take_row(sessions, name, ttl):
        return False, None
    try:
        async with sessions() as s, s.begin():
            return True, await work(s)
    finally:
        await _release_row(sessions, name)


async def holder(sessions: async_sessionmaker[AsyncSession], name: str) -> str | None:
    """Who holds the SQLite lock row ``name`` now (None when free); for diagnostics and tests."""
    async with sessions() as s:
        row = (await s.execute(select(JobLock).where(JobLock.name == name))).scalar_one_or_none()
        if row is None or row.locked_until <= now_utc():
            return None
        return row.locked_by
