"""The database session of one request."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.store.db import read_session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """For endpoints that only read: on SQLite they then do not queue behind every booking for
    the write lock (``vdx.store.db.read_session``)."""
    async with read_session(request.app.state.sessions) as session:
        yield session
