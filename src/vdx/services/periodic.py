"""A background job of an API process: one run every interval until stopped.

Each run takes its own cluster lock (``store.job_locks``), so processes sharing a database take
turns; a failed run is logged and the next one retries, so one bad run never ends the loop.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vdx.settings import Settings

log = logging.getLogger("vdx.jobs")


class PeriodicJob(abc.ABC):
    name: str = "job"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    @abc.abstractmethod
    def interval(self) -> float:
        """Seconds from the end of one run to the start of the next."""

    @abc.abstractmethod
    async def tick(self) -> None:
        """One run (it logs what it changed)."""

    @property
    def started(self) -> bool:
        return self._task is not None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Let the current run finish (cancelling inside a database call would leave the driver's
        thread answering a closed loop), then give up after a few seconds."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.tick()
            except Exception:  # a failed run must not end the loop; the next run retries
                log.exception("%s run failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)
