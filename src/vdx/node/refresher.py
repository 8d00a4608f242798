"""What the node reads from the API beside its rooms, kept in step: read on start, every
``interval`` seconds, and at once when an audit event of one of ``resources`` arrives on the bus
(every change of them is audited). While the API is away the last read holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, TypeVar

from vdx.bus.base import Bus, Message, Subscription

log = logging.getLogger("vdx.node.refresher")

T = TypeVar("T")


class Refresher(Generic[T]):
    """Reads ``what`` with ``read`` and hands each result to ``apply``."""

    def __init__(
        self,
        what: str,
        read: Callable[[], Awaitable[T]],
        apply: Callable[[T], None],
        *,
        interval: float,
        resources: Collection[str],
        bus: Bus | None = None,
        audit_subject: str = "",
    ) -> None:
        self.what = what
        self._read = read
        self._apply = apply
        self.interval = interval
        self.resources = frozenset(resources)
        self.bus = bus
        self.audit_subject = audit_subject
        self.refreshes = 0  # completed reads
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"node-refresh {self.what}")
        if self.bus is not None and self.audit_subject:
            self._subscriber = asyncio.create_task(self._subscribe(), name=f"node-refresh {self.what} events")

    async def _subscribe(self) -> None:
        """Ephemeral: an event missed while the bus is away is caught by the next read."""
        assert self.bus is not None
        try:
            self._subscription = await self.bus.subscribe(self.audit_subject, self.on_event)
        except Exception as exc:
            log.warning(
                "%s: cannot subscribe to audit events (%s); reading every %.0fs",
                self.what,
                exc,
                self.interval,
            )

    async def stop(self) -> None:
        for task in (self._subscriber, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._subscriber = None
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    async def on_event(self, msg: Message) -> None:
        """An audit event of one of the resources: read again now."""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            if json.loads(msg.data).get("auditEvent", {}).get("resource") in self.resources:
                self._wake.set()

    async def refresh(self) -> None:
        self._apply(await self._read())
        self.refreshes += 1

    async def _run(self) -> None:
        failing = False
        while True:
            self._wake.clear()
            try:
                await self.refresh()
                if failing:
                    log.info("%s read again", self.what)
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:  # one line per outage, not per try
                    log.warning("%s not read (%s); keeping the last ones", self.what, exc)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
