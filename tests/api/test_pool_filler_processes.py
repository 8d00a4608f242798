"""Two API processes on one database run the pool filler at once (spec 2.13, ShedLock
``fillPools``): the pool never holds more VMRs than its desired size.

The served processes are the only writers; this test reads the database with a plain engine of
its own (no BEGIN IMMEDIATE on SQLite, so it never holds the write lock they need)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from vdx.store.models import Organisation, PoolHistory, SchedulingInfo

POOL_SIZE = 5


@pytest.mark.slow
async def test_two_processes_filling_never_overfill_a_pool(live_server_factory):
    env = {"VDX_POOL_FILL_INTERVAL": "0.05", "VDX_EVENT_ORGANISATION_FILTER": ""}
    first = live_server_factory("api", extra_env=env)
    second = live_server_factory("api", extra_env=env)
    created = first.cli("org", "add", "adhoc", "--pool-size", str(POOL_SIZE))
    assert created.returncode == 0, created.stderr
    engine = create_async_engine(first.settings.database_url_effective)
    # every pool VMR without a meeting, whatever its status: what the filler creates
    count = (
        select(func.count(SchedulingInfo.id))
        .join(Organisation, SchedulingInfo.organisation_id == Organisation.id)
        .where(Organisation.code == "adhoc", SchedulingInfo.meeting_id.is_(None))
    )
    seen: list[int] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            async with engine.connect() as conn:
                seen.append((await conn.execute(count)).scalar_one())
            if seen[-1] >= POOL_SIZE:
                break
            assert loop.time() < deadline, f"pool not filled: {seen[-20:]}"
            await asyncio.sleep(0.02)
        # keep watching while both processes run many more fill runs (interval 0.05 s each)
        for _ in range(100):
            async with engine.connect() as conn:
                seen.append((await conn.execute(count)).scalar_one())
            await asyncio.sleep(0.02)
        async with engine.connect() as conn:
            history = (
                await conn.execute(select(PoolHistory.organisation_code, PoolHistory.status_time))
            ).all()
    finally:
        await engine.dispose()
    # the history job under its own lock: one row per pool organisation per minute
    assert history and len(set(history)) == len(history), history
    assert max(seen) == POOL_SIZE, seen
    assert seen == sorted(seen), "the pool only grows while nobody uses it"
    assert first.proc.poll() is None and second.proc.poll() is None
    for server in (first, second):
        log = server.log.read_text()
        assert "pool-filler run failed" not in log, log[-2000:]
