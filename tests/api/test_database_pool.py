"""The PostgreSQL connection pool: a process keeps at most ``VDX_DATABASE_POOL_SIZE`` connections
and reuses them; more concurrent requests wait for one instead of opening a backend that is closed
again on return (each a fork on the server, with its statements prepared anew)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from vdx.settings import Settings
from vdx.store.db import create_engine, session_factory


@pytest.mark.pg
async def test_more_concurrent_sessions_than_the_pool_share_its_connections(
    settings_factory: Callable[..., Settings],
) -> None:
    settings: Settings = settings_factory(database_pool_size=2)
    assert settings.is_postgres
    engine = create_engine(settings)
    sessions = session_factory(engine)

    async def backend() -> Any:
        async with sessions() as s:
            return (await s.execute(text("SELECT pg_backend_pid() FROM pg_sleep(0.05)"))).scalar_one()

    try:
        seen = [await asyncio.wait_for(asyncio.gather(*(backend() for _ in range(8))), 30) for _ in range(3)]
    finally:
        await engine.dispose()
    assert all(len(r) == 8 for r in seen)  # every session was served, waiting its turn
    assert len({pid for r in seen for pid in r}) == 2  # by the same two backends, round after round
