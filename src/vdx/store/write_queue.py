"""SQLite writers of one process queue here, first come first served.

SQLite admits one writer at a time, and its busy handler is not a queue: a ``BEGIN IMMEDIATE``
that finds the database locked sleeps and retries with growing sleeps, so a writer that happens
to retry just after the lock came free goes ahead of one that has waited long: under a burst of
bookings most wait briefly and a few wait very long. ``asyncio.Lock`` wakes its waiters in the order
they came, so here every writer waits about as long as the writers ahead of it take; SQLite's own
lock is then left to arbitrate between processes only (``vdx api --workers N``).

The queue is entered in the engine's ``begin`` event, before ``BEGIN IMMEDIATE`` (read sessions,
``vdx.store.db.read_session``, begin without it and do not queue), and left when that connection
commits or rolls back, or at the latest when it goes back to the pool or is found broken. A
writer that waits longer than SQLite's own busy timeout gets SQLite's "database is locked", as it
would without the queue.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.util import await_


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holder: Any = None  # the DBAPI connection whose transaction holds the lock
    waiting: int = 0


_QUEUES: weakref.WeakKeyDictionary[Engine, WriteQueue] = weakref.WeakKeyDictionary()


class WriteQueue:
    @staticmethod
    def of(engine: Engine) -> WriteQueue | None:
        """The queue ``install``ed on ``engine`` (a SQLite engine of ``create_engine``)."""
        return _QUEUES.get(engine)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # one lock per event loop: an asyncio.Lock belongs to the loop it first waited on, and an
        # engine may outlive a loop (tests run each in a loop of its own)
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = weakref.WeakKeyDictionary()

    def _turn(self) -> _Turn:
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = _Turn()
        return turn

    def waiting(self) -> int:
        """Writers of the running loop waiting for their turn."""
        turn = self._turns.get(asyncio.get_running_loop())
        return turn.waiting if turn is not None else 0

    async def enter(self, dbapi_connection: Any) -> None:
        turn = self._turn()
        turn.waiting += 1
        try:
            async with asyncio.timeout(self.timeout):
                await turn.lock.acquire()
        except TimeoutError:
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            ) from None
        finally:
            turn.waiting -= 1
        turn.holder = dbapi_connection

    def leave(self, dbapi_connection: Any) -> None:
        """Let the next writer in, if ``dbapi_connection`` holds the lock (else nothing)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a connection closed outside any loop held no turn of a loop
        turn = self._turns.get(loop)
        if turn is not None and turn.holder is dbapi_connection and dbapi_connection is not None:
            turn.holder = None
            turn.lock.release()

    def install(self, engine: Engine) -> None:
        """Queue ``engine``'s writers; ``begin_immediate(conn)`` then starts the transaction."""
        _QUEUES[engine] = self

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _done(conn: Connection) -> None:
            self.leave(_dbapi(conn))

        @event.listens_for(engine, "checkin")
        def _returned(dbapi_connection: Any, _record: Any) -> None:
            self.leave(dbapi_connection)

        @event.listens_for(engine, "invalidate")
        def _invalidated(dbapi_connection: Any, _record: Any, _exc: Any) -> None:
            # a broken connection is closed without a commit or a rollback of its own
            self.leave(dbapi_connection)

    def begin_immediate(self, conn: Connection) -> None:
        """Wait for this process's turn to write, then take SQLite's write lock."""
        dbapi_connection = _dbapi(conn)
        await_(self.enter(dbapi_connection))
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.leave(dbapi_connection)
            raise


def _dbapi(conn: Connection) -> Any:
    """The DBAPI connection under ``conn``; None once it is invalidated (its turn was left in the
    pool's ``invalidate`` event, and asking for it would try to reconnect)."""
    if conn.invalidated:
        return None
    return conn.connection.dbapi_connection
