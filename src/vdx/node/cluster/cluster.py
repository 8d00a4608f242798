"""The node's part in the cluster: it announces itself, follows the registry, the placements and
its control entry, places the rooms it provisions, takes over a dead node's rooms, hands off its
idle rooms when drained, and answers ``Locator.route`` from what it last saw.

Faults: while NATS cannot be reached the node keeps the rooms it hosts and places nothing new
(its health says so); when NATS is back it announces itself again and re-reads every bucket. A
node whose own heartbeat lapsed while it could still reach NATS (a paused process) sends no new
caller in until it has caught up, and ends any room it finds placed elsewhere meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from vdx.node.cluster.buckets import Buckets, loads, name_of, open_buckets
from vdx.node.cluster.placement import Candidate, assign, choose, idle_reservation
from vdx.node.cluster.placements import Placement, Placements, placement_from
from vdx.node.cluster.registry import NodeIdTaken, Registry, info_from
from vdx.node.control import answer, control_subject
from vdx.node.rooms import Rooms
from vdx.node.routing import HERE, MOVING, NodeInfo, Route, Where
from vdx.settings import Settings

log = logging.getLogger("vdx.node.cluster")

# A room placed on a dead node is taken first by the node the rule picks; if that one has not
# done it after this many heartbeat intervals, any survivor may.
_FALLBACK_INTERVALS = 3


@dataclass
class _Fresh:
    """What a new watch delivered before it caught up: applied as a whole."""

    nodes: list[NodeInfo] = field(default_factory=list)
    rooms: dict[str, Placement] = field(default_factory=dict)


class ClusterUnavailable(RuntimeError):
    """The cluster cannot place a room now (NATS unreachable, this node's id contested, no node
    takes new rooms): the provisioner tries again later."""


Handler = Callable[[str, bytes | None, int, bool], None]  # (key, value or None, revision, initial)
Listener = Callable[[Placement | None, str], None]  # (placement now or None, alias)


def sip_addresses(settings: Settings) -> dict[str, str]:
    """Where room systems reach this node's SIP listeners (``host:port`` per transport)."""
    if not settings.sip_enabled:
        return {}
    host = settings.sip_advertised_host
    if not host:
        bound = settings.sip_host
        host = bound if bound not in ("", "0.0.0.0", "::") else urlsplit(settings.public_url_clean).hostname
    if not host:
        return {}
    out = {"udp": f"{host}:{settings.sip_port}", "tcp": f"{host}:{settings.sip_port}"}
    if settings.sip_tls_port:
        out["tls"] = f"{host}:{settings.sip_tls_port}"
    return out


class Cluster:
    def __init__(self, settings: Settings, rooms: Rooms) -> None:
        self.settings = settings
        self.rooms = rooms
        self.me = settings.node_name
        self.interval = settings.node_heartbeat_interval
        self.ttl = settings.node_heartbeat_ttl
        self.registry = Registry(self.me, self.ttl)
        rooms.capacity.others = self.registry.others  # the reserve holds for the cluster too
        self.placements = Placements()
        self.draining = False
        self.started = time.time()
        self.conflict: str | None = None  # another process holds this node's id
        self.outage: str | None = None  # why NATS cannot be used now (None: it can)
        self.outage_since: float | None = None
        self._nc: Client | None = None
        self._answering: Client | None = None  # the connection this node takes control commands on
        self._buckets: Buckets | None = None
        self._watchers: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: asyncio.Task[None] | None = None
        self._last_beat: float | None = None  # monotonic time of this node's last heartbeat written
        self._caught_up_at = 0.0  # monotonic time of the last fresh read of the buckets
        self._orphaned: dict[str, float] = {}  # alias -> monotonic time its node was first seen dead
        self._listeners: list[Listener] = []
        self._caught_up: list[Callable[[], None]] = []
        self._stopping = False
        self._cleanups: set[asyncio.Task[None]] = set()

    # --- who listens ----------------------------------------------------------------------------
    def listen(self, on_placement: Listener, on_caught_up: Callable[[], None]) -> None:
        """``on_placement``: a room's placement changed (or went); ``on_caught_up``: the buckets
        were read afresh (start, end of an outage): check everything against them."""
        self._listeners.append(on_placement)
        self._caught_up.append(on_caught_up)

    # --- life cycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Join now if NATS answers (raises NodeIdTaken when another process holds this id);
        otherwise start anyway and join when it does."""
        try:
            await asyncio.wait_for(self._join(), self.ttl + 10)
        except NodeIdTaken:
            await self._disconnect()
            raise
        except Exception as exc:
            self._lost(exc)
        self._runner = asyncio.create_task(self._run(), name="node-cluster")

    async def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._buckets is not None and self.conflict is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.registry.leave(self._buckets.nodes), 2)
        await self._disconnect()

    async def _disconnect(self) -> None:
        await self._unwatch()
        self._buckets = None
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 2)
            self._nc = None

    async def _connect(self) -> Client:
        if self._nc is None or self._nc.is_closed:
            # Bounded: the first connection is retried by the heartbeat loop, not by nats-py;
            # once connected, nats-py reconnects by itself.
            self._nc = await asyncio.wait_for(
                nats.connect(
                    **self.settings.nats_connect_options,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    name=f"vdx-node {self.me}",
                    error_cb=_quiet,
                    disconnected_cb=_nothing,
                    reconnected_cb=_nothing,
                ),
                3,
            )
        if not self._nc.is_connected:
            raise ConnectionError("NATS is not connected")
        return self._nc

    async def _join(self) -> None:
        """Connect, open the buckets, announce this node, and read every bucket afresh."""
        nc = await self._connect()
        if self._answering is not nc:  # nats-py keeps a subscription across its own reconnects
            await nc.subscribe(control_subject(self.settings, self.me), cb=self._on_command)
            self._answering = nc
        # A write slower than the TTL is as good as none (the others hold this node dead by then).
        js = nc.jetstream(timeout=self.ttl)
        buckets = await open_buckets(js, self.settings)
        await self._unwatch()
        await self._follow(buckets)
        self.registry.nodes.pop(self.me, None)
        await self.registry.join(buckets.nodes, self.announcement(), self.interval)
        self._last_beat = time.monotonic()
        self._buckets = buckets
        self._recovered()
        for hook in self._caught_up:
            hook()

    async def _run(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._turn()
            except asyncio.CancelledError:
                raise
            except NodeIdTaken as exc:
                if self.conflict is None:
                    log.error("%s", exc)
                self.conflict = str(exc)
            except Exception as exc:
                self._lost(exc)
            await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.05))

    async def _turn(self) -> None:
        """One heartbeat: announce (or join again after an outage), then act on what is seen."""
        if self._buckets is None or self._nc is None or not self._nc.is_connected:
            if self._buckets is not None:
                raise ConnectionError("NATS connection lost")
            await self._join()
        else:
            lapsed = self.lapsed()
            await self.registry.beat(self._buckets.nodes, self.announcement())
            if lapsed:
                await self._reread()  # what happened while this node could not beat
            self._last_beat = time.monotonic()
            self.conflict = None
            self._recovered()
        if self.conflict is None:
            await self._take_over()
            await self._hand_off()

    def _lost(self, exc: BaseException) -> None:
        """NATS cannot be used: said once per outage, in the log and on the health page."""
        reason = f"NATS unreachable ({type(exc).__name__}: {exc})".strip()
        if self.outage is None:
            self.outage_since = time.time()
            log.warning(
                "cluster: %s; keeping the %d rooms hosted here, placing nothing new until it is back",
                reason,
                len(self.hosted()),
            )
        self.outage = reason
        if self._buckets is not None:
            self._buckets = None  # join again (announce, re-read) when it is back
            task = asyncio.get_running_loop().create_task(self._unwatch())
            self._cleanups.add(task)
            task.add_done_callback(self._cleanups.discard)

    def _recovered(self) -> None:
        if self.outage is not None:
            log.info("cluster: NATS is back; node %s announced and caught up", self.me)
        self.outage = self.outage_since = None

    # --- following the buckets ----------------------------------------------------------------------
    async def _follow(self, buckets: Buckets) -> None:
        """Watch the three buckets; returns once each has delivered what it holds now."""
        fresh = _Fresh()
        ready = [asyncio.Event() for _ in range(3)]
        handlers: tuple[Handler, ...] = (
            partial(self._on_node, fresh),
            partial(self._on_room, fresh),
            self._on_control,
        )
        for kv, handler, event in zip(
            (buckets.nodes, buckets.rooms, buckets.control), handlers, ready, strict=True
        ):
            watcher = await kv.watch(">")
            self._watchers.append(watcher)
            self._tasks.append(asyncio.create_task(self._pump(watcher, handler, event)))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), self.ttl + 5)
        self._caught_up_at = time.monotonic()
        self.registry.replace_all([i for i in fresh.nodes if i.id != self.me])
        for alias in [a for a in self.placements.by_alias if a not in fresh.rooms]:
            if self.placements.gone(alias) is not None:
                self._changed(None, alias)
        for p in fresh.rooms.values():
            self._apply(p, fresh=True)

    async def _on_command(self, msg: Msg) -> None:
        """Conference control for the rooms live here (``vdx.node.control``)."""
        with contextlib.suppress(Exception):  # the asker gives up after its timeout
            await msg.respond(await answer(self.rooms, msg.data))

    def _on_node(self, fresh: _Fresh, key: str, value: bytes | None, revision: int, initial: bool) -> None:
        info = info_from(loads(value))
        if initial:
            if info is not None:
                fresh.nodes.append(info)
        elif info is None:
            self.registry.gone(name_of(key))
        elif info.id != self.me:
            self.registry.seen(info)

    def _on_room(self, fresh: _Fresh, key: str, value: bytes | None, revision: int, initial: bool) -> None:
        p = placement_from(loads(value), revision)
        if initial:
            if p is not None:
                fresh.rooms[p.alias] = p
        elif p is None:
            old = self.placements.gone(name_of(key))
            if old is not None:
                self._changed(None, old.alias)
        else:
            self._apply(p)

    def _on_control(self, key: str, value: bytes | None, revision: int, initial: bool) -> None:
        if name_of(key) == self.me.lower():
            entry = loads(value) or {}
            self._set_draining(bool(entry.get("drain")))
            self._set_limits(entry)

    def _set_limits(self, entry: dict[str, Any]) -> None:
        """An operator's capacity override (or back to ``measured``) and clinical reserve, for
        the next joins only; a value the node cannot take is logged and changes nothing."""
        if not {"capacity", "measured", "clinicalReserve"} & entry.keys():
            return
        limits = self.rooms.capacity
        override = entry.get("capacity")
        # no capacity given: a measured node stays measured, a set one keeps its figure
        measured = entry.get("measured") is True or (override is None and limits.measured)
        capacity = limits.measured_capacity if measured else (override or limits.capacity)
        reserve = entry.get("clinicalReserve", limits.reserve)
        if (capacity, reserve, measured) == (limits.capacity, limits.reserve, limits.measured):
            return  # a drain or a restart delivers the entry again: nothing new
        try:
            limits.set_limits(capacity=capacity, reserve=reserve, measured=measured)
        except (ValueError, TypeError) as exc:
            log.warning("node %s: capacity control ignored: %s", self.me, exc)

    async def _pump(self, watcher: Any, handler: Handler, ready: asyncio.Event) -> None:
        try:
            async for entry in watcher:
                if entry is None:  # the bucket's current entries are all delivered
                    ready.set()
                    continue
                deleted = entry.operation in ("DEL", "PURGE")
                handler(entry.key, None if deleted else entry.value, entry.revision or 0, not ready.is_set())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("cluster: a bucket watch failed; it is read again with the next heartbeat")
            self._buckets = None

    async def _unwatch(self) -> None:
        watchers, tasks = self._watchers, self._tasks
        self._watchers, self._tasks = [], []
        for task in tasks:
            task.cancel()
        for watcher in watchers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watcher.stop(), 1)

    async def _reread(self) -> None:
        """Read every bucket afresh (after a lapse): placements made meanwhile apply now."""
        assert self._buckets is not None
        await self._unwatch()
        await self._follow(self._buckets)
        for hook in self._caught_up:
            hook()

    def _apply(self, p: Placement, *, fresh: bool = False) -> None:
        """Take an entry the watch delivered; ``fresh``: from a new read of the bucket, which
        holds even at a lower revision (a NATS server that lost its store)."""
        old = self.placements.get(p.alias)
        if old is not None and old.revision >= p.revision and not fresh:
            return
        self.placements.by_alias[p.alias] = p
        if old is None or old.node != p.node:
            self._changed(p, p.alias)

    def _changed(self, p: Placement | None, alias: str) -> None:
        """A room's placement changed: a copy running here of a room placed elsewhere ends (no
        room lives on two nodes), and the provisioner follows."""
        if p is not None and p.node != self.me:
            conf = self.rooms.live_conference(alias)
            if conf is not None and not conf.ended:
                log.warning("room %s was placed on node %s: ending the copy here", alias, p.node)
                asyncio.get_running_loop().create_task(conf.end("moved"))
        for listener in self._listeners:
            listener(p, alias)

    def _set_draining(self, draining: bool) -> None:
        if draining != self.draining:
            log.info(
                "node %s %s",
                self.me,
                "drains: no new rooms, calls go on" if draining else "takes rooms again",
            )
        self.draining = draining

    # --- what this node announces -----------------------------------------------------------------------
    def hosted(self) -> list[str]:
        return sorted(p.alias for p in self.placements.on_node(self.me))

    def announcement(self) -> NodeInfo:
        hosted = self.hosted()
        return NodeInfo(
            id=self.me,
            http_url=self.settings.public_url_clean,
            sip=sip_addresses(self.settings),
            capacity=self.rooms.capacity.capacity,  # as set, measured or changed at run time
            load=round(self.rooms.load_units(), 4),
            rooms=len(hosted),
            live=sum(1 for a in hosted if self.rooms.occupied(a)),
            draining=self.draining,
            started=self.started,
            heartbeat=time.time(),
            instance=self.registry.instance,
            devices=sorted(self.rooms.waiting.waiting),
        )

    # --- where rooms go -------------------------------------------------------------------------------------
    def lapsed(self) -> bool:
        """This node's heartbeat is older than the TTL: the others may hold it dead."""
        return self._last_beat is None or time.monotonic() - self._last_beat > self.ttl

    def can_place(self) -> bool:
        return self._buckets is not None and self.conflict is None and not self.lapsed()

    def _candidates(self, *, without: str | None = None) -> list[Candidate]:
        nodes = {n.id: n for n in self.registry.live_nodes()}
        nodes[self.me] = self.announcement()
        placed: dict[str, list[str]] = {}
        for p in self.placements.by_alias.values():
            placed.setdefault(p.node, []).append(p.quality)
        return [
            Candidate(n.id, n.capacity, n.load, idle_reservation(placed.get(n.id, []), n.live))
            for n in nodes.values()
            if not n.draining and n.id != without
        ]

    def host_of(self, alias: str) -> str | None:
        p = self.placements.get(alias)
        return None if p is None else p.node

    async def place(self, alias: str, quality: str, uuid: str) -> str:
        """The node that hosts the room ``alias``: as placed already, else placed now by the rule
        (a compare-and-set: of nodes placing it at once, the first wins)."""
        known = self.placements.get(alias)
        if known is not None:
            return await self._unless_draining(known)
        if not self.can_place() or self._buckets is None:
            raise ClusterUnavailable(self.outage or self.conflict or "this node's heartbeat lapsed")
        node = choose(alias.lower(), self._candidates())
        if node is None:
            raise ClusterUnavailable("no live node takes new rooms (all draining)")
        wanted = Placement(alias.lower(), node, quality, uuid, time.time())
        try:
            placed = await self.placements.claim(self._buckets.rooms, wanted)
        except Exception as exc:
            self._lost(exc)
            raise ClusterUnavailable(self.outage or str(exc)) from exc
        if placed.placed == wanted.placed:
            log.info("room %s placed on node %s", alias, node)
        return await self._unless_draining(placed)

    async def _unless_draining(self, p: Placement) -> str:
        """The room's host, unless that is this draining node and nobody is in the room yet: a
        node that had not heard of the drain placed it here, so it goes on to another node before
        it is provisioned (a draining node takes no new room)."""
        if p.node != self.me or not self.draining or self._buckets is None or self.rooms.occupied(p.alias):
            return p.node
        target = choose(p.alias, self._candidates(without=self.me))
        if target is None:
            return p.node  # no other node takes rooms: it stays
        try:
            moved = await self.placements.move(self._buckets.rooms, p, target, "drain")
        except Exception as exc:
            self._lost(exc)
            raise ClusterUnavailable(self.outage or str(exc)) from exc
        if moved is not None:
            log.info("room %s handed from draining node %s to node %s", p.alias, self.me, target)
        now = self.placements.get(p.alias) or moved
        return p.node if now is None else now.node

    async def release(self, alias: str) -> None:
        """The room's meeting is over: its placement goes (by its host)."""
        p = self.placements.get(alias)
        if p is None or p.node != self.me or self._buckets is None:
            return
        with contextlib.suppress(Exception):
            await self.placements.release(self._buckets.rooms, p)

    async def _take_over(self) -> None:
        """Rooms placed on dead nodes go to the survivors, spread by the rule."""
        assert self._buckets is not None
        now = time.monotonic()
        if now - self._caught_up_at <= self.ttl + self.interval:
            # Just (re)joined, after an outage all nodes share: the others may not have announced
            # themselves again yet. Absent is not dead until they had a TTL to do so.
            return
        orphans = [
            p
            for p in self.placements.by_alias.values()
            if p.node != self.me and not self.registry.alive(p.node)
        ]
        self._orphaned = {p.alias: self._orphaned.get(p.alias, now) for p in orphans}
        if not orphans:
            return
        plan = assign([(p.alias, p.quality) for p in orphans], self._candidates())
        for p in orphans:
            target = plan.get(p.alias)
            overdue = now - self._orphaned[p.alias] > _FALLBACK_INTERVALS * self.interval
            if target is None or (target != self.me and not overdue):
                continue
            moved = await self.placements.move(
                self._buckets.rooms, p, target if not overdue else self.me, "failover"
            )
            if moved is not None:
                log.warning("room %s of dead node %s taken over by node %s", p.alias, p.node, moved.node)
                self._changed(moved, moved.alias)

    async def _hand_off(self) -> None:
        """A draining node gives its rooms with nobody in them to the others."""
        if not self.draining:
            return
        assert self._buckets is not None
        for p in self.placements.on_node(self.me):
            if self.rooms.occupied(p.alias):
                continue
            target = choose(p.alias, self._candidates(without=self.me))
            if target is None:
                return
            moved = await self.placements.move(self._buckets.rooms, p, target, "drain")
            if moved is not None:
                log.info("room %s handed from draining node %s to node %s", p.alias, self.me, target)
                self._changed(moved, moved.alias)

    # --- Locator -------------------------------------------------------------------------------------------
    def route(self, alias: str) -> Route:
        config = self.rooms.lookup(alias)
        p = self.placements.get(config.alias if config is not None else alias)
        if self.conflict is not None:
            return MOVING
        if p is None:
            # Not placed: a room that is open by now waits for its placement; anything else
            # (unknown, not open yet, over) the local directory answers.
            if config is not None and not self.rooms.retired(config.alias) and _open(config.opens_at):
                return MOVING
            return HERE
        if p.node == self.me:
            # Cut off from NATS: keep the rooms hosted here. Able to reach it but behind with the
            # heartbeat (paused): the others may have moved the room; no new callers until caught up.
            if self.outage is None and self.lapsed():
                return MOVING
            return HERE
        host = self.registry.nodes.get(p.node)
        # Cut off from NATS no heartbeat arrives: the host keeps its rooms as this node does.
        if host is None or (self.outage is None and not self.registry.alive(p.node)):
            return MOVING
        return Route(Where.ELSEWHERE, host)

    def waiting_on(self, device: str) -> NodeInfo | None:
        """Another live node where a page waits as ``device`` (its heartbeat says so)."""
        for node in self.registry.live_nodes():
            if node.id != self.me and device in node.devices:
                return node
        return None

    # --- health ----------------------------------------------------------------------------------------------
    async def probe(self) -> dict[str, object]:
        """The ``cluster`` health component: DOWN (not critical) while NATS cannot be used."""
        detail: dict[str, object] = {
            "node": self.me,
            "draining": self.draining,
            "nodes": sorted({self.me, *(n.id for n in self.registry.live_nodes())}),
            "hosted": self.hosted(),
        }
        if self.conflict is not None:
            raise RuntimeError(self.conflict)
        if self.outage is not None:
            since = time.time() - (self.outage_since or time.time())
            raise RuntimeError(
                f"keeps its {len(self.hosted())} hosted rooms, places nothing new: {self.outage}, "
                f"for {since:.0f} s"
            )
        return detail


async def _quiet(exc: Exception) -> None:
    """nats-py's own error reports: the cluster says once per outage what went wrong."""


async def _nothing() -> None:
    return None


def _open(opens_at: datetime | None) -> bool:
    return opens_at is None or opens_at <= datetime.now(UTC)
