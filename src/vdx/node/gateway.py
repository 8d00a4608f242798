"""Gateway calls: a SIP call to an alias that is no room, routed by the rules the node reads
(``Rooms.call_routing``, rules of ``vdx.booking.routing``), is bridged to its destination.

The bridge is a room of the two alone: the caller is answered into it, and when it starts the
room dials the destination (a dial-out, through the rule's trunk). The room's media path
transcodes whatever the two sides send (H.264 and VP8, G.711, G.722 and Opus), both legs pass
admission like every join, and each side sees the other whole (one main tile, no self-view). When
the dialled side does not answer, or either side hangs up, the bridge ends and the other side is
hung up; nothing of it is left.

A rule whose destination is ``browser:NAME`` rings the page waiting as that device instead
(``vdx.node.waiting``): nothing is dialled; once the page answers, the caller and the page both
enter the bridge.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from vdx.booking.routing import Decision, Route, browser_name
from vdx.conference.conference import Conference
from vdx.conference.participant import Participant
from vdx.conference.policy import Role, RoomConfig
from vdx.node.capacity import Refused, Ticket
from vdx.node.dial_out import DialOutError
from vdx.node.rooms import Rooms
from vdx.node.waiting import Outcome

log = logging.getLogger("vdx.node.gateway")

LAYOUT = "one_main_zero_pips"  # the other side, whole
# After a page answers, both sides are in by then (a SIP answer is acknowledged within 32 s,
# RFC 3261 Timer H).
BOTH_WITHIN_S = 40.0


class Gateway:
    def __init__(self, rooms: Rooms, sip_domain: str) -> None:
        self.rooms = rooms
        self.sip_domain = sip_domain
        self.bridges: dict[str, Route] = {}  # the bridge room's alias -> its route
        self._tasks: set[asyncio.Task[None]] = set()
        rooms.on_started.append(self._started)
        rooms.on_left.append(self._left)

    def decide(self, aliases: tuple[str, ...], caller_domain: str | None, source_ip: str | None) -> Decision:
        """The route of the first way of writing the dialled alias that a rule matches."""
        refused = False
        for alias in aliases:
            decision = self.rooms.call_routing.decide(alias, caller_domain, source_ip)
            if decision.route is not None:
                return decision
            refused = refused or decision.refused
        return Decision(None, refused)

    def open(self, route: Route) -> RoomConfig:
        """The bridge's room, for the caller to be answered into (``close`` if it never is)."""
        config = RoomConfig(
            f"gw-{uuid.uuid4().hex[:12]}@{self.sip_domain}",
            max_participants=2,
            host_view=LAYOUT,
            guest_view=LAYOUT,
        )
        self.rooms.put(config)
        self.bridges[config.alias] = route
        log.info("gateway call to %s by rule %s: bridge %s", route.destination, route.rule.name, config.alias)
        return config

    def close(self, alias: str) -> None:
        if self.bridges.pop(alias, None) is not None:
            self.rooms.remove(alias)

    def abandon(self, alias: str, reason: str) -> None:
        """A bridge one side never reached: closed, and whoever is in it hung up."""
        live = self.rooms.live_conference(alias)
        if live is not None and alias in self.bridges:
            self._spawn(self._end(live, reason))
        else:
            self.close(alias)

    async def ring(
        self, route: Route, caller: str, video: bool
    ) -> tuple[RoomConfig, Ticket] | Refused | Outcome:
        """A call to ``browser:NAME``: rings the page waiting as that device; once it answers, the
        bridge (for the caller, with its admission) or why there is none. The page is told the
        bridge, or that the call is gone."""
        rung = await self.rooms.waiting.ring(browser_name(route.destination), caller)
        if isinstance(rung, Outcome):
            log.info("gateway call to %s by rule %s: %s", route.destination, route.rule.name, rung.value)
            return rung
        config = self.open(route)
        admitted = self.rooms.capacity.admit(config, video=video)
        if isinstance(admitted, Refused):
            self.close(config.alias)
            rung.connect(None)
            return admitted
        rung.connect(config)
        self._spawn(self._expect_both(config.alias))
        return config, admitted

    async def _expect_both(self, alias: str) -> None:
        """A bridge to a page that one side never reached (the caller never acknowledged the
        answer, the page went away) ends rather than hold the other alone."""
        await asyncio.sleep(BOTH_WITHIN_S)
        live = self.rooms.live_conference(alias)
        if alias in self.bridges and (live is None or len(live.participants) < 2):
            self.abandon(alias, "the other side never joined")

    def _started(self, conf: Conference) -> None:
        route = self.bridges.get(conf.alias)
        if route is not None and route.rule.target == "sip":  # the caller is in: call the other side
            self._spawn(self._dial(conf, route))

    async def _dial(self, conf: Conference, route: Route) -> None:
        dial_outs = self.rooms.dial_outs
        if route.rule.target != "sip" or dial_outs is None:
            await self._end(conf, "this node cannot reach that destination")
            return

        async def outcome(state: str, detail: str) -> None:
            if state != "connected":
                log.info("gateway %s: %s %s (%s)", conf.alias, route.destination, state, detail)
                await self._end(conf, f"{route.destination}: {state}")

        try:
            await dial_outs.dial(conf, route.destination, Role.HOST, None, outcome, route.rule.trunk)
        except DialOutError as exc:
            log.info("gateway %s: %s refused: %s", conf.alias, route.destination, exc.message)
            await self._end(conf, exc.message)

    def _left(self, conf: Conference, p: Participant) -> None:
        if conf.alias in self.bridges:  # one side hung up: so does the other
            self._spawn(self._end(conf, "the other side hung up"))

    async def _end(self, conf: Conference, reason: str) -> None:
        self.close(conf.alias)
        await conf.end(reason)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway: a bridge failed", exc_info=task.exception())

    async def close_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for alias in list(self.bridges):
            self.close(alias)
