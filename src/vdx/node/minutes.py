"""The node's per-minute counters and how they reach the database.

Once a minute the node takes a ``MinuteSnapshot`` (units in use, capacity, participants by kind
and quality, per organisation, refused joins) and hands it to ``MinuteReporter.report``. The
reporter sends the snapshots to the API (``POST {context}/v2/node-minutes`` with the node's
provisioner token), which stores them; a node has no database of its own. A snapshot stays
queued until the API has answered 2xx, so an API outage delays the figures but loses none (up
to ``PENDING_MAX`` minutes, a day); the API stores by (node, minute), so a resend after a lost
answer replaces the row instead of counting it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vdx.booking.timefmt import format_ts

log = logging.getLogger("vdx.node.minutes")

PENDING_MAX = 24 * 60  # minutes kept while the API is away; older ones are dropped (logged)
BATCH = 60  # minutes per request when catching up
UNBOOKED = "(unbooked)"  # the organisation of a room no booking names
NO_ORGANISATION = ("", "-")  # how else a room without a booking may be named: stored as UNBOOKED


def minute_of(when: datetime) -> datetime:
    """The start of ``when``'s minute, UTC."""
    return when.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class MinuteSnapshot:
    """One minute of one node. ``minute`` is the minute's start (UTC). ``units_in_use``: the HD
    units in use at any moment of the minute; ``capacity`` and ``reserve`` as they were then.
    ``participants``: (kind, quality) -> participants counted (media set up; the lobby counts
    nothing), kind ``webrtc``/``sip``/..., quality ``fullhd``/``hd``/``sd``/``audio``.
    ``organisations``: (organisation code, clinical) -> participants counted, where clinical is
    the join's own decision (labels included); a room without a booking is ``UNBOOKED``.
    ``refused``: (reason, organisation code, clinical) -> joins refused during the minute."""

    minute: datetime
    capacity: float
    units_in_use: float
    reserve: float = 0.0
    participants: Mapping[tuple[str, str], int] = field(default_factory=dict)
    organisations: Mapping[tuple[str, bool], int] = field(default_factory=dict)
    refused: Mapping[tuple[str, str, bool], int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The wire form (one element of the ``minutes`` list of ``POST /v2/node-minutes``)."""
        return {
            "minute": format_ts(minute_of(self.minute)),
            "capacity": self.capacity,
            "unitsInUse": self.units_in_use,
            "reserve": self.reserve,
            "participants": [
                {"kind": k, "quality": q, "count": n} for (k, q), n in sorted(self.participants.items()) if n
            ],
            "organisations": [
                {"organisation": _named(o), "clinical": c, "participants": n}
                for (o, c), n in sorted(self.organisations.items())
                if n
            ],
            "refused": [
                {"reason": r, "organisation": _named(o), "clinical": c, "count": n}
                for (r, o, c), n in sorted(self.refused.items())
                if n
            ],
        }


def _named(code: str | None) -> str:
    """The organisation as stored: a room without a booking is ``UNBOOKED``."""
    return UNBOOKED if code is None or code in NO_ORGANISATION else code


Send = Callable[[str, list[dict[str, Any]]], Awaitable[bool]]


class MinuteReporter:
    """Queues snapshots and sends them to the API in order; ``report`` never blocks a join.

    ``send(node, minutes)``: True stored, False refused as bad (dropped, the sender logs it);
    raises while the API is away (they are sent again).
    ``run_clock(build)`` runs the minute clock: at each minute's end it calls ``build(minute)``
    for the snapshot of the minute that just ended and reports it."""

    def __init__(self, node: str, send: Send, *, retry_max: float = 30.0) -> None:
        self.node = node
        self._send = send
        self._retry_max = retry_max
        self._pending: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._clock: asyncio.Task[None] | None = None
        self.sent = 0  # minutes the API has stored
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def report(self, snapshot: MinuteSnapshot) -> None:
        """Queue one minute for the API (sent by the running sender, or by ``flush``)."""
        if len(self._pending) >= PENDING_MAX:
            self._pending.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 60 == 0:
                log.warning("API away for a day: %d node minutes dropped", self.dropped)
        self._pending.append(snapshot.as_json())
        self._wake.set()

    async def flush(self) -> None:
        """Send everything queued now; raises (and keeps the rest queued) when the API fails."""
        while self._pending:
            batch = list(self._pending)[:BATCH]
            stored = await self._send(self.node, batch)
            for _ in batch:
                self._pending.popleft()
            if stored:
                self.sent += len(batch)
            else:
                self.dropped += len(batch)

    def start(self) -> None:
        """The sender: sends what ``report`` queues, retrying while the API is away."""
        self._sender = asyncio.create_task(self._send_loop(), name="node-minutes")

    def run_clock(self, build: Callable[[datetime], MinuteSnapshot]) -> None:
        """Take a snapshot with ``build(minute start)`` at the end of every minute (one clock:
        a second call replaces the first)."""
        if self._clock is not None:
            self._clock.cancel()
        self._clock = asyncio.create_task(self._clock_loop(build), name="node-minute-clock")

    async def stop(self) -> None:
        """Stops the clock and the sender, then tries once to send what is queued."""
        for task in (self._clock, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._clock = self._sender = None
        try:
            await self.flush()
        except Exception as exc:
            log.warning("%d node minutes not sent at shutdown: %s", len(self._pending), exc)

    async def _send_loop(self) -> None:
        delay = 0.5
        while True:
            self._wake.clear()
            try:
                await self.flush()
                if delay > 0.5:  # one line per outage, when it is over
                    log.info("node minutes sent again: the API is back")
                delay = 0.5
                await self._wake.wait()
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if delay == 0.5:
                    log.warning("node minutes not sent (%s): %d queued, retrying", exc, len(self._pending))
            self._wake.clear()  # a new minute tries again at once, else after the back-off
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = min(delay * 2, self._retry_max)

    async def _clock_loop(self, build: Callable[[datetime], MinuteSnapshot]) -> None:
        """Each minute once, when it has ended on the wall clock: a sleep can end a hair early,
        and a minute taken twice would be sent again empty and replace the first."""
        ends = minute_of(datetime.now(UTC)) + timedelta(minutes=1)
        while True:
            wait = (ends - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            try:
                self.report(build(ends - timedelta(minutes=1)))
            except Exception:
                log.exception("node minute not taken")
            # the next minute to end (a node held up past several takes the one it is in)
            ends = max(ends, minute_of(datetime.now(UTC))) + timedelta(minutes=1)
