"""The transactional outbox relay: publishes recorded events after commit, in order, at least once.

Why not publish inside the transaction, as the reference does (spec 4.2)? There a bus outage fails
the booking (500) and a rollback after publishing leaks an event for a change that never happened.
Here the event row commits with the change; this relay sends it when the bus is reachable, marks it
published, and JetStream drops a resend of the same message id (``Nats-Msg-Id``), so a consumer
receives each event once, in the order the changes committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import BigInteger, Row, any_, bindparam, delete, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from vdx.bus.base import Bus
from vdx.store.db import now_utc, read_session, table_of
from vdx.store.models import Outbox

log = logging.getLogger("vdx.outbox")

_RELAYS: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()
_PG_RELAY_LOCK = 7_710_002

# PostgreSQL: the relay lock, taken before the read (a statement reads the snapshot of its start:
# a read in the locking statement could miss the marks of the relay that just released it). The
# same statement lets the mark's commit not wait for its WAL flush (synchronous_commit off for
# this transaction only; bookings' transactions keep waiting for theirs): a database crash can
# lose the mark of the last moment, and those rows are then published again with their message
# ids. That is harmless: JetStream drops a message whose Nats-Msg-Id it has within its duplicate
# window (bus/jetstream.py), and the one consumer in vdx, the node's provisioner, applies a
# scheduling-info event as state (it learns the booking), so one delivered twice changes nothing.
# A relay that dies between publishing and committing re-publishes the same way.
_PG_LOCK = text("SELECT pg_try_advisory_xact_lock(:key), set_config('synchronous_commit', 'off', true)")
# ``id = ANY(:ids)``: one statement text whatever the batch size (``IN`` expands to a text per
# size, and asyncpg prepares each text anew on every pooled connection).
_OUTBOX = table_of(Outbox)
_PG_MARK = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(BigInteger))))
    .values(published_time=bindparam("now"), attempts=_OUTBOX.c.attempts + 1)
)


@sa_event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    """Wake relays as soon as a transaction that recorded events commits (no polling delay)."""
    if session.info.pop("outbox", False):
        for relay in list(_RELAYS):
            relay.wake()


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        retention_hours: float = 24.0,
        idle_poll: float = 1.0,
        batch: int = 200,
        linger: float = 0.02,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.bus = bus
        self.retention = timedelta(hours=retention_hours)
        self.idle_poll = idle_poll
        self.batch = batch
        self.linger = linger
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._stopping = False
        self.published = 0
        self.failures = 0
        _RELAYS.add(self)

    def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Let the loop finish its current step (cancelling inside a database call would leave the
        driver's worker thread answering a closed loop), then give up after a few seconds."""
        self._stopping = True
        self.wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        """Drain, then wait for a wake-up. The wake-up flag is cleared before each drain, so a
        commit during a drain is drained next; a drain that filled a whole batch goes on at once.
        Otherwise the relay lingers a moment after a wake-up: under load the commits of that
        moment go out in one batch, each batch costing a transaction."""
        backoff = 0.2
        while not self._stopping:
            self._wakeup.clear()
            try:
                sent = await self.drain()
                backoff = 0.2
                if sent >= self.batch:
                    continue
                await self._prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                log.warning("outbox: publish failed (%s); retrying in %.1fs", exc, backoff)
                self._wakeup.clear()  # bookings during an outage do not cut the back-off short
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if await self._sleep(self.idle_poll) and not self._stopping:
                await asyncio.sleep(self.linger)

    async def _sleep(self, seconds: float) -> bool:
        """Wait for a wake-up (commit with events, stop) or the timeout; True when woken."""
        if self._stopping:
            return False
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def drain(self) -> int:
        """Publish the oldest unpublished events (a batch); returns how many were sent.

        PostgreSQL: the batch is read, published and marked in one transaction that holds a
        transaction-scoped advisory lock, taken without waiting: one relay at a time across
        processes keeps the publish order, and a relay that does not get the lock leaves the work
        to the one that has it (BEGIN, lock, SELECT, UPDATE, COMMIT: the session-level lock and
        separate read and mark before cost eight round trips a batch, and a second empty pass).
        SQLite: read, publish, then mark in a short write transaction (writers are serialised,
        so bookings must not wait for the bus)."""
        if self.engine.dialect.name == "postgresql":
            async with self.sessions() as s, s.begin():
                if not (await s.execute(_PG_LOCK, {"key": _PG_RELAY_LOCK})).scalar():
                    return 0
                sent, failure = await self._publish(await self._pending(s))
                if sent:
                    await s.execute(_PG_MARK, {"ids": sent, "now": now_utc()})
        else:
            async with read_session(self.sessions) as s:
                rows = await self._pending(s)
                await s.commit()
            sent, failure = await self._publish(rows)
            if sent:
                async with self.sessions() as s, s.begin():
                    await self._mark(s, sent)
        self.published += len(sent)
        if failure is not None:
            raise failure  # what was sent before it is marked
        return len(sent)

    async def _pending(self, s: AsyncSession) -> Sequence[Row[int, str, str, str]]:
        return (
            await s.execute(
                select(Outbox.id, Outbox.subject, Outbox.payload, Outbox.message_id)
                .where(Outbox.published_time.is_(None))
                .order_by(Outbox.id)
                .limit(self.batch)
            )
        ).all()

    async def _publish(self, rows: Sequence[Row[int, str, str, str]]) -> tuple[list[int], Exception | None]:
        """Publish in order until the first failure: the ids sent, and that failure."""
        sent: list[int] = []
        for row in rows:
            try:
                await self.bus.publish(row.subject, row.payload.encode(), row.message_id)
            except Exception as exc:
                return sent, exc
            sent.append(row.id)
        return sent, None

    @staticmethod
    async def _mark(s: AsyncSession, sent: list[int]) -> None:
        await s.execute(
            update(Outbox)
            .where(Outbox.id.in_(sent))
            .values(published_time=now_utc(), attempts=Outbox.attempts + 1)
        )

    async def _prune(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_prune < 60:
            return
        self._last_prune = loop.time()
        async with self.sessions() as s, s.begin():
            await s.execute(
                delete(Outbox).where(
                    Outbox.published_time.is_not(None), Outbox.published_time < now_utc() - self.retention
                )
            )

    async def pending(self) -> int:
        async with read_session(self.sessions) as s:
            from sqlalchemy import func

            return int(
                (await s.execute(select(func.count()).where(Outbox.published_time.is_(None)))).scalar() or 0
            )
