"""The node's room directory: which VMRs exist (alias -> RoomConfig) and which are live.

The provisioner (``vdx.node.provisioner``) fills the directory from the booking API's
scheduling-info events or polling; tests and operators put rooms in directly. A conference starts
with its first participant and leaves the directory's live set when it ends. A room whose meeting
is over is *retired*: it stays in the directory for a while as a closed room, so a late join gets
"ended" instead of "no such room".
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from vdx.booking.usage import UsageLedger
from vdx.conference.conference import Conference, MediaOptions
from vdx.conference.participant import Participant
from vdx.conference.pin_guard import PinGuard
from vdx.conference.policy import RoomConfig
from vdx.legs.webrtc import IceOptions

log = logging.getLogger("vdx.node.rooms")

# How long a retired room answers "ended" (its number may be reused by a new booking sooner: a put
# with the same alias replaces it).
RETIRED_FOR = timedelta(hours=12)


class Rooms:
    def __init__(
        self,
        options: MediaOptions,
        workers: int | None = None,
        usage: UsageLedger | None = None,
        ice: IceOptions | None = None,
        pin_guard: PinGuard | None = None,
    ) -> None:
        """``usage``: where joins and leaves are noted, when something writes them down (the
        all-in-one node with its database; a ``vdx node`` has none). ``ice``: the ICE servers
        of the node's WebRTC legs. ``pin_guard``: the PIN throttle WebRTC and SIP share."""
        self.options = options
        self.ice = ice or IceOptions()
        self._configs: dict[str, RoomConfig] = {}
        self._by_alias: dict[str, str] = {}  # every alias -> primary alias
        self.live: dict[str, Conference] = {}
        self._retired: dict[str, datetime] = {}  # primary alias -> when it was retired
        self._workers = workers or os.cpu_count() or 2
        self._executor: ThreadPoolExecutor | None = None
        self.usage = usage
        self.pin_guard = pin_guard or PinGuard()

    @property
    def executor(self) -> ThreadPoolExecutor:
        """Composition and encoding: one worker per core (PyAV releases the GIL). Made with the
        first conference, so a node nobody joins runs no threads."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="vdx-media")
        return self._executor

    def put(self, config: RoomConfig) -> None:
        """Add or replace a room. A live conference keeps running: the new settings apply to
        newcomers (PINs, limits), the layout and the end time change at once."""
        self.remove(config.alias)
        self._configs[config.alias] = config
        for a in {config.alias, *config.aliases}:
            self._by_alias[a.lower()] = config.alias
        live = self.live.get(config.alias)
        if live is not None:
            live.reconfigure(config)

    def remove(self, alias: str) -> RoomConfig | None:
        """Forget a room; a live conference of it runs on until it ends (the provisioner decides
        whether a deleted meeting's conference is ended, see ``Conference.end``)."""
        primary = self._by_alias.get(alias.lower(), alias)
        config = self._configs.pop(primary, None)
        self._retired.pop(primary, None)
        if config is not None:
            for a in {config.alias, *config.aliases}:
                if self._by_alias.get(a.lower()) == primary:  # a reused number may be another's now
                    del self._by_alias[a.lower()]
        return config

    async def retire(self, alias: str, at: datetime | None = None) -> RoomConfig | None:
        """The meeting is over (deprovisioned): the room stays in the directory as closed, so a
        join gets ``ended`` (policy.time_refusal), for ``RETIRED_FOR``. A live conference ends
        now when the meeting ends on its end time; otherwise its participants may stay on (as in
        VDX without ``endMeetingOnEndTime``) but nobody new comes in."""
        at = at or datetime.now(UTC)
        config = self.lookup(alias)
        if config is None:
            return None
        end = min(config.end_time, at) if config.end_time is not None else at
        closed = replace(config, end_meeting_on_end_time=True, end_time=end)
        self._configs[config.alias] = closed
        self._retired[config.alias] = at
        for old, when in list(self._retired.items()):
            if at - when > RETIRED_FOR:
                self.remove(old)
        live = self.live.get(config.alias)
        if live is not None and not live.ended and config.end_meeting_on_end_time:
            await live.end("end_time")
        return config

    def retired(self, alias: str) -> bool:
        config = self.lookup(alias)
        return config is not None and config.alias in self._retired

    async def drop(self, alias: str, reason: str) -> RoomConfig | None:
        """Remove a room at once (its booking was deleted); a live conference ends with ``reason``."""
        config = self.remove(alias)
        live = self.live.get(config.alias if config else alias)
        if live is not None and not live.ended:
            await live.end(reason)
        return config

    def lookup(self, alias: str) -> RoomConfig | None:
        primary = self._by_alias.get(alias.strip().lower())
        return self._configs.get(primary) if primary else None

    def conference(self, config: RoomConfig) -> Conference:
        """The live conference of a room, started if it is not running."""
        conf = self.live.get(config.alias)
        if conf is None or conf.ended:
            conf = Conference(
                config,
                self.options,
                self.executor,
                on_end=self._ended,
                on_join=self._joined,
                on_leave=self._left,
            )
            self.live[config.alias] = conf
            log.info("conference %s started", config.alias)
        return conf

    def live_conference(self, alias: str) -> Conference | None:
        config = self.lookup(alias)
        key = config.alias if config else alias
        return self.live.get(key)

    def holder(self, token: str) -> tuple[Conference, Participant] | None:
        """The live conference and participant whose participant token ``token`` is, if any."""
        if not token:
            return None
        for conf in list(self.live.values()):
            p = conf.by_token(token)
            if p is not None:
                return conf, p
        return None

    def aliases(self) -> list[str]:
        """The primary aliases of every room in the directory (retired ones included)."""
        return list(self._configs)

    def _joined(self, conf: Conference, p: Participant) -> None:
        if self.usage is not None:
            self.usage.joined(f"{conf.alias}/{p.id}", conf.alias)

    def _left(self, conf: Conference, p: Participant) -> None:
        if self.usage is not None:
            self.usage.left(f"{conf.alias}/{p.id}")

    def _ended(self, conf: Conference) -> None:
        if self.live.get(conf.alias) is conf:
            del self.live[conf.alias]

    async def close(self) -> None:
        for conf in list(self.live.values()):
            await conf.end("node_shutdown")
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
            self._executor = None
