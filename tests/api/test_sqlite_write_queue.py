"""SQLite writers of one process take turns in the order they came (``vdx.store.write_queue``):
SQLite's busy handler lets a late writer overtake one that has waited long, which under a burst of
bookings left some waiting seconds. Runs on a SQLite file of its own in both passes of the suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.waiting import until
from vdx.settings import Settings
from vdx.store.db import create_engine, read_session, session_factory
from vdx.store.write_queue import WriteQueue


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(data_dir=tmp_path, database_url=None))
    async with engine.begin() as c:
        await c.execute(text("CREATE TABLE turn (id INTEGER PRIMARY KEY, who TEXT NOT NULL)"))
    yield engine
    await engine.dispose()


def queue_of(engine: AsyncEngine) -> WriteQueue:
    queue = WriteQueue.of(engine.sync_engine)
    assert queue is not None, "create_engine installs a write queue on SQLite"
    return queue


async def order(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as c:
        return list((await c.execute(text("SELECT who FROM turn ORDER BY id"))).scalars())


def holder(engine: AsyncEngine, who: str) -> tuple[asyncio.Event, asyncio.Event, Awaitable[None]]:
    """A writer that takes the write lock, says so, and keeps it until released."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with engine.begin() as c:
            await c.execute(text("INSERT INTO turn (who) VALUES (:who)"), {"who": who})
            holding.set()
            await release.wait()

    return holding, release, run()


async def write(engine: AsyncEngine, who: str) -> None:
    async with engine.begin() as c:
        await c.execute(text("INSERT INTO turn (who) VALUES (:who)"), {"who": who})


async def test_writers_take_the_write_lock_in_the_order_they_came(engine: AsyncEngine) -> None:
    queue = queue_of(engine)
    holding, release, first = holder(engine, "first")
    task = asyncio.create_task(first)
    await holding.wait()
    early = asyncio.create_task(write(engine, "early"))
    await until(lambda: queue.waiting() == 1, 20.0, "the early writer to queue", poll_s=0.005)
    # long enough for SQLite's busy handler to back "early" off to sleeps of 25-50 ms, so a
    # writer arriving late would retry first and overtake it were the queue not there
    await asyncio.sleep(0.3)
    late = asyncio.create_task(write(engine, "late"))
    await until(lambda: queue.waiting() == 2, 20.0, "the late writer to queue", poll_s=0.005)
    release.set()
    await asyncio.gather(task, early, late)
    assert await order(engine) == ["first", "early", "late"]
    assert queue.waiting() == 0


async def test_a_writer_waiting_past_the_timeout_gets_database_is_locked(engine: AsyncEngine) -> None:
    queue = queue_of(engine)
    queue.timeout = 0.2
    holding, release, first = holder(engine, "first")
    task = asyncio.create_task(first)
    await holding.wait()
    with pytest.raises(OperationalError, match="database is locked"):
        await write(engine, "too late")
    release.set()
    await task
    await write(engine, "next")  # the turn was not lost with the writer that gave up
    assert await order(engine) == ["first", "next"]
    assert queue.waiting() == 0


async def test_a_rolled_back_writer_lets_the_next_in(engine: AsyncEngine) -> None:
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with engine.begin() as c:
            await c.execute(text("INSERT INTO turn (who) VALUES ('undone')"))
            raise Abandon
    await asyncio.wait_for(write(engine, "next"), 10)
    assert await order(engine) == ["next"]


async def test_a_session_that_commits_and_goes_on_writing_takes_a_new_turn(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s:
        async with s.begin():
            await s.execute(text("INSERT INTO turn (who) VALUES ('one')"))
        async with s.begin():
            await s.execute(text("INSERT INTO turn (who) VALUES ('two')"))
    assert await order(engine) == ["one", "two"]


async def test_reads_do_not_queue_behind_a_writer(engine: AsyncEngine) -> None:
    await write(engine, "committed")
    holding, release, first = holder(engine, "uncommitted")
    task = asyncio.create_task(first)
    await holding.wait()
    async with read_session(session_factory(engine)) as s:
        seen = list((await asyncio.wait_for(s.execute(text("SELECT who FROM turn")), 10)).scalars())
    assert seen == ["committed"]
    release.set()
    await task


async def test_a_writer_whose_connection_is_invalidated_lets_the_next_in(engine: AsyncEngine) -> None:
    # a connection found broken mid-transaction is invalidated (closed, not committed or rolled
    # back): its turn must not go with it, or every later writer would wait out the timeout
    queue_of(engine).timeout = 5
    async with engine.connect() as c:
        await c.begin()
        await c.execute(text("INSERT INTO turn (who) VALUES ('lost')"))
        await c.invalidate()
    await asyncio.wait_for(write(engine, "next"), 10)
    assert await order(engine) == ["next"]


async def test_a_cancelled_writer_lets_the_next_in(engine: AsyncEngine) -> None:
    # a request's task cancelled mid-transaction (a server shutting down, a timeout around it)
    queue_of(engine).timeout = 5
    sessions = session_factory(engine)
    holding = asyncio.Event()

    async def cancelled() -> None:
        async with sessions() as s, s.begin():
            await s.execute(text("INSERT INTO turn (who) VALUES ('cancelled')"))
            holding.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(cancelled())
    await holding.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(write(engine, "next"), 10)
    assert await order(engine) == ["next"]
