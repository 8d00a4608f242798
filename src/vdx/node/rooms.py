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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vdx.booking.usage import UsageLedger
from vdx.conference.conference import Conference, MediaOptions
from vdx.conference.participant import Participant
from vdx.conference.pin_guard import PinGuard
from vdx.conference.policy import RoomConfig
from vdx.legs.webrtc import IceOptions
from vdx.node.call_routing import CallRouting
from vdx.node.capacity import NodeCapacity
from vdx.node.clinical import ClinicalDirectory
from vdx.node.minutes import MinuteReporter
from vdx.node.routing import HERE, MOVING, LocalOnly, Locator, Route, Where
from vdx.node.waiting import WaitingBrowsers

if TYPE_CHECKING:
    from vdx.node.dial_out import DialOuts
    from vdx.node.gateway import Gateway

log = logging.getLogger("vdx.node.rooms")

# (the conference's aliases, the operation, who asked for it, its data)
ActionReporter = Callable[[list[str], str, str | None, dict[str, Any]], Awaitable[None]]

# How long a retired room answers "ended" (its number may be reused by a new booking sooner: a put
# with the same alias replaces it).
RETIRED_FOR = timedelta(hours=12)
# A directory built by hand (tests, tools) without a capacity limits nothing it could reach.
UNLIMITED = 1_000_000.0


class Rooms:
    def __init__(
        self,
        options: MediaOptions,
        workers: int | None = None,
        usage: UsageLedger | None = None,
        ice: IceOptions | None = None,
        pin_guard: PinGuard | None = None,
        locator: Locator | None = None,
        node_id: str = "",
        capacity: NodeCapacity | None = None,
    ) -> None:
        """``usage``: where joins and leaves are noted, when something writes them down (the
        all-in-one node with its database; a ``vdx node`` has none). ``ice``: the ICE servers
        of the node's WebRTC legs. ``pin_guard``: the PIN throttle WebRTC and SIP share.
        ``locator``: which node hosts a room (``vdx.node.routing``); alone, this one. ``node_id``:
        this node's id in the cluster's registry, so a route back to it is taken as here.
        ``capacity``: the admission decision every join passes (``vdx.node.capacity``)."""
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
        self.locator: Locator = locator or LocalOnly()
        self.node_id = node_id
        # Which organisations are clinical now (kept in step by ``vdx.node.clinical``).
        self.clinical_directory = ClinicalDirectory()
        # The gateway routing rules and trunks (kept in step by the provisioner's refresher).
        self.call_routing = CallRouting()
        # Where the minute's counters go (``vdx.node.minutes``); None: nowhere (a bare test node).
        self.minutes: MinuteReporter | None = None
        self.capacity = capacity or NodeCapacity(UNLIMITED, 0.0)
        self.capacity.conferences = lambda: self.live.values()
        self.capacity.clinical = self.clinical_directory.of_room  # decided at each join
        self.dial_outs: DialOuts | None = None  # calls out of the rooms, with SIP (``vdx.node.dial_out``)
        # Calls to aliases that are no room, bridged by the routing rules (``vdx.node.gateway``);
        # None: such calls find no room.
        self.gateway: Gateway | None = None
        # Pages waiting on the point-to-point page for calls to ``browser:NAME`` (``vdx.node.waiting``).
        self.waiting = WaitingBrowsers(self.pin_guard)
        # Where what the node does to a conference by itself (a dial-out's outcome) goes into the
        # audit trail: set by the process (``vdx.app``); None: nowhere.
        self.report_action: ActionReporter | None = None
        # Called with each conference as it starts (the dial-outs call its automatic participants)
        # and as someone leaves one (a gateway call's bridge ends with either side).
        self.on_started: list[Callable[[Conference], None]] = []
        self.on_left: list[Callable[[Conference, Participant], None]] = []

    def load_units(self) -> float:
        """HD units this node carries now (participants whose media is set up, lobby excluded)."""
        return self.capacity.units_in_use()

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

    def route(self, alias: str) -> Route:
        """Where a caller of ``alias`` must go: the locator asked with the room's primary alias
        when this node knows the room. A route to this node itself is here (no redirect loop);
        one elsewhere without an address to send the caller to is moving."""
        config = self.lookup(alias)
        route = self.locator.route(config.alias if config is not None else alias.strip())
        if route.where is not Where.ELSEWHERE:
            return route
        if route.node is None:
            return MOVING
        return HERE if route.node.id == self.node_id else route

    def clinical(self, alias: str) -> bool:
        """Whether a join of room ``alias`` counts as clinical at this moment: the meeting's
        ``clinical``/``non-clinical`` label, else its organisation's current setting. A room
        the directory does not know is not clinical."""
        config = self.lookup(alias)
        return config is not None and self.clinical_directory.of_room(config)

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
            for started in self.on_started:
                started(conf)
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

    def occupied(self, alias: str) -> bool:
        """Whether a live conference of the room has anyone in it (lobby included)."""
        conf = self.live_conference(alias)
        return conf is not None and not conf.ended and bool(conf.participants)

    def _joined(self, conf: Conference, p: Participant) -> None:
        if self.usage is not None:
            self.usage.joined(f"{conf.alias}/{p.id}", conf.alias)

    def _left(self, conf: Conference, p: Participant) -> None:
        if self.usage is not None:
            self.usage.left(f"{conf.alias}/{p.id}")
        for left in self.on_left:
            left(conf, p)

    def _ended(self, conf: Conference) -> None:
        if self.live.get(conf.alias) is conf:
            del self.live[conf.alias]
        if self.dial_outs is not None:
            self.dial_outs.room_ended(conf)

    async def close(self) -> None:
        for conf in list(self.live.values()):
            await conf.end("node_shutdown")
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
            self._executor = None
