"""The node's provisioner: learns VMRs from the booking API like any VDX provisioner (spec 2.12).

The API never calls a node, so nodes scale out without it knowing them. The node
- consumes scheduling-info events (spec 4.2) for organisations driven by events,
- polls ``/v2/scheduling-info-provision`` and ``/v2/scheduling-info-deprovision`` for the others,
- rebuilds its directory on start from ``GET /v2/scheduling-info`` (events are not replayed),
and reports each step with ``PUT /v2/scheduling-info/{uuid}`` (spec 1.3.4) using a
meeting-provisioner-user token. When to act is decided by ``vdx.node.schedule`` (pure); this
module does the I/O. Inside ``vdx serve`` the HTTP client talks to the same process in memory
(``httpx.ASGITransport``); ``vdx node`` uses a real HTTP client against ``VDX_NODE_API_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from vdx.booking.auto_dial import AutoDial, from_json
from vdx.booking.roles import PROVISIONER_USER
from vdx.booking.timefmt import format_ts
from vdx.bus.base import Bus, Message, Subscription
from vdx.conference.policy import RoomConfig
from vdx.node.cluster.cluster import Cluster, ClusterUnavailable
from vdx.node.cluster.placements import Placement
from vdx.node.minutes import MinuteReporter
from vdx.node.refresher import Refresher
from vdx.node.rooms import Rooms
from vdx.node.schedule import (
    Action,
    Booking,
    Phase,
    Schedule,
    booking_from_api,
    booking_from_event,
    event_as_scheduling_info,
    provisioned_by_a_node,
    vmr_id,
)
from vdx.settings import Settings

log = logging.getLogger("vdx.node.provisioner")

# The start-up resync reads scheduling infos whose VMR start or meeting end lies this far around
# now (spec 1.3.1 window): every provisioned meeting that has not been deprovisioned yet, unless it
# started and ends more than this far away.
RESYNC_SPAN = timedelta(days=31)
DESCRIPTION_MAX = 200  # provisionStatusDescription (spec 1.3.4)


class ApiUnavailable(RuntimeError):
    """The API did not answer usefully (down, 5xx, token refused): try again later."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Minter(Protocol):
    """Signs a token with the dev key (``vdx.tokens.mint_token``, given by the app: the node
    does not import the HTTP layer)."""

    def __call__(
        self, settings: Settings, *, org: str | None, email: str | None, roles: list[str], ttl: int
    ) -> str: ...


class NodeToken:
    """The node's meeting-provisioner-user token: ``VDX_NODE_TOKEN`` (from a real IdP), or one
    minted with the dev key for ``VDX_NODE_ORGANISATION`` and renewed before it expires."""

    TTL = 3600

    def __init__(self, settings: Settings, mint: Minter) -> None:
        self.settings = settings
        self._mint = mint
        self._token: str | None = None
        self._renew_at = 0.0

    def __call__(self) -> str:
        if self.settings.node_token:
            return self.settings.node_token
        if self._token is None or time.monotonic() >= self._renew_at:
            self._token = self._mint(
                self.settings,
                org=self.settings.node_organisation,
                email=self.settings.node_email,
                roles=[PROVISIONER_USER],
                ttl=self.TTL,
            )
            self._renew_at = time.monotonic() + self.TTL / 2
        return self._token


class ProvisionerApi:
    """The VDX API as a provisioner sees it (spec 1.3.1, 1.3.3-1.3.6)."""

    def __init__(self, http: httpx.AsyncClient, token: Callable[[], str]) -> None:
        self.http = http
        self.token = token

    async def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = await self.http.request(
                method, path, headers={"Authorization": f"Bearer {self.token()}"}, **kw
            )
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"{method} {path}: {exc!r}") from exc
        if r.status_code in (401, 403):
            raise ApiUnavailable(
                f"{method} {path}: HTTP {r.status_code}: the API refuses the node's token (a "
                "meeting-provisioner-user of an existing organisation; see VDX_NODE_TOKEN, "
                f"VDX_NODE_ORGANISATION): {r.text[:200]}"
            )
        if r.status_code >= 500:
            raise ApiUnavailable(f"{method} {path}: HTTP {r.status_code} {r.text[:300]}")
        return r

    async def _list(self, path: str, **params: str) -> list[dict[str, Any]]:
        r = await self._call("GET", path, params=params)
        if r.status_code != 200:
            raise ApiUnavailable(f"GET {path}: HTTP {r.status_code} {r.text[:300]}")
        body = r.json()
        return body if isinstance(body, list) else []

    async def scheduling_info(self, uuid: str) -> dict[str, Any] | None:
        """One scheduling info with its meeting (spec 1.3.3); None when it no longer exists."""
        r = await self._call("GET", f"/v2/scheduling-info/{uuid}")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise ApiUnavailable(f"GET scheduling-info {uuid}: HTTP {r.status_code} {r.text[:300]}")
        body: dict[str, Any] = r.json()
        return body

    async def report(
        self, uuid: str, status: str, description: str | None = None, vmr: str | None = None
    ) -> bool:
        """The status report (spec 1.3.4); False when the scheduling info no longer exists."""
        body: dict[str, Any] = {"provisionStatus": status}
        if description is not None:
            body["provisionStatusDescription"] = description[:DESCRIPTION_MAX]
        if vmr is not None:
            body["provisionVmrId"] = vmr
        r = await self._call("PUT", f"/v2/scheduling-info/{uuid}", json=body)
        if r.status_code == 404:
            return False
        if r.status_code != 200:
            raise ApiUnavailable(f"PUT scheduling-info {uuid}: HTTP {r.status_code} {r.text[:300]}")
        return True

    async def clinical_organisations(self) -> list[str]:
        """The codes of the clinical organisations (``GET /v2/clinical-organisations``)."""
        r = await self._call("GET", "/v2/clinical-organisations")
        if r.status_code != 200:
            raise ApiUnavailable(f"GET clinical-organisations: HTTP {r.status_code} {r.text[:300]}")
        codes = r.json().get("clinical")
        if not isinstance(codes, list):
            raise ApiUnavailable("GET clinical-organisations: no list 'clinical' in the answer")
        return [str(c) for c in codes]

    async def conference_action(
        self, aliases: list[str], operation: str, actor: str | None, data: dict[str, Any]
    ) -> None:
        """What the node did to a conference by itself, for the API's audit trail."""
        body = {"aliases": aliases, "operation": operation, "actor": actor, "data": data}
        r = await self._call("POST", "/node/v1/conference-actions", json=body)
        if r.status_code != 204:
            raise ApiUnavailable(f"POST node/v1/conference-actions: HTTP {r.status_code} {r.text[:300]}")

    async def auto_dial(self, booking: str) -> list[AutoDial]:
        """What the room of a scheduling info calls when it starts
        (``GET /node/v1/scheduling-info/{uuid}/auto-dial``)."""
        r = await self._call("GET", f"/node/v1/scheduling-info/{booking}/auto-dial")
        if r.status_code != 200:
            raise ApiUnavailable(f"GET auto-dial of {booking}: HTTP {r.status_code} {r.text[:300]}")
        return [from_json(e) for e in r.json()]

    async def routing(self) -> dict[str, Any]:
        """The gateway routing rules and outbound trunks (``GET /node/v1/routing``)."""
        r = await self._call("GET", "/node/v1/routing")
        if r.status_code != 200:
            raise ApiUnavailable(f"GET node/v1/routing: HTTP {r.status_code} {r.text[:300]}")
        body = r.json()
        if not isinstance(body, dict):
            raise ApiUnavailable("GET node/v1/routing: not an object")
        return body

    async def device_sign_in(self, name: str, secret: str) -> str | None:
        """When the device a waiting browser signs in as was made, if the name and secret are
        its own, else None (``POST /node/v1/device-sign-in``); raises while the API is away."""
        r = await self._call("POST", "/node/v1/device-sign-in", json={"name": name, "secret": secret})
        if r.status_code != 200:
            raise ApiUnavailable(f"POST node/v1/device-sign-in: HTTP {r.status_code} {r.text[:300]}")
        body = r.json()
        return str(body.get("createdTime")) if body.get("valid") is True else None

    async def devices(self) -> dict[str, str]:
        """Each device's name and when it was made (``GET /node/v1/devices``)."""
        r = await self._call("GET", "/node/v1/devices")
        if r.status_code != 200:
            raise ApiUnavailable(f"GET node/v1/devices: HTTP {r.status_code} {r.text[:300]}")
        return {str(d["name"]): str(d.get("createdTime")) for d in r.json()}

    async def node_minutes(self, node: str, minutes: list[dict[str, Any]]) -> bool:
        """Store the node's minute counters (``POST /v2/node-minutes``): True when stored, False
        when the API refuses them as bad (4xx: sending again would not help); raises while the
        API is away."""
        r = await self._call("POST", "/v2/node-minutes", json={"node": node, "minutes": minutes})
        if r.status_code >= 400:
            log.error("node minutes refused by the API: HTTP %s %s", r.status_code, r.text[:300])
            return False
        return True

    async def due_for_provisioning(self) -> list[dict[str, Any]]:
        return await self._list("/v2/scheduling-info-provision")

    async def due_for_deprovisioning(self) -> list[dict[str, Any]]:
        return await self._list("/v2/scheduling-info-deprovision")

    async def in_window(self, start: datetime, end: datetime, status: str) -> list[dict[str, Any]]:
        return await self._list(
            "/v2/scheduling-info",
            **{
                "from-start-time": format_ts(start),
                "to-end-time": format_ts(end),
                "provision-status": status,
            },
        )


class Provisioner:
    """Keeps the node's room directory in step with the bookings (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        rooms: Rooms,
        api: ProvisionerApi,
        bus: Bus | None,
        *,
        clock: Callable[[], datetime] = utc_now,
        cluster: Cluster | None = None,
    ) -> None:
        """``cluster``: where rooms are placed when several nodes share the bookings; None: this
        node hosts every room it provisions."""
        self.settings = settings
        self.cluster = cluster
        if cluster is not None:
            cluster.listen(self.placement_changed, self.reconcile)
        self.rooms = rooms
        self.api = api
        self.bus = bus
        self.clock = clock
        self.node_id = settings.node_name
        self.schedule = Schedule()
        # Set once a resync has completed after the event subscription was in place: from then
        # on nothing booked is missed (an event published before the subscription existed is
        # covered by that resync).
        self.ready = asyncio.Event()
        self._resync_needed = True
        self._subscribed = bus is None
        self.polls = 0  # completed polls of the provisioning lists
        self.failures = 0  # steps that found the API unavailable
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._next_poll = 0.0  # event-loop times, set when the worker starts
        self._next_look = 0.0
        # The node's other links to the API: which organisations are clinical, and where the
        # minute counters go.
        self.clinical = Refresher(
            "clinical organisations",
            api.clinical_organisations,
            rooms.clinical_directory.replace,
            interval=settings.node_clinical_refresh,
            resources=("organisation",),
            bus=bus,
            audit_subject=settings.nats_subject_audit,
        )
        self.routing = Refresher(
            "routing rules and trunks",
            api.routing,
            rooms.call_routing.apply,
            interval=settings.node_routing_refresh,
            resources=("routingRule", "trunk"),
            bus=bus,
            audit_subject=settings.nats_subject_audit,
        )
        # A page waiting as a device removed (or made anew, with a new secret) is let go.
        self.devices = Refresher(
            "devices",
            lambda: rooms.waiting.read(api.devices),
            rooms.waiting.keep,
            interval=settings.node_routing_refresh,
            resources=("device",),
            bus=bus,
            audit_subject=settings.nats_subject_audit,
        )
        rooms.minutes = MinuteReporter(self.node_id, api.node_minutes)

    # --- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self.bus is not None:
            self._subscriber = asyncio.create_task(self._subscribe(), name="node-events")
        self._task = asyncio.create_task(self._run(), name="node-provisioner")
        await self.clinical.start()
        await self.routing.start()
        await self.devices.start()
        if self.rooms.minutes is not None:
            self.rooms.minutes.start()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await self.clinical.stop()
        await self.routing.stop()
        await self.devices.stop()
        if self.rooms.minutes is not None:
            await self.rooms.minutes.stop()
        for task in (self._subscriber, self._task):
            if task is None:
                continue
            try:
                await asyncio.wait_for(asyncio.shield(task), 5)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    def wake(self) -> None:
        self._wake.set()

    def provisioned(self, alias: str) -> RoomConfig | None:
        """The room of ``alias`` when this node has provisioned it (reported PROVISIONED_OK)."""
        b = self.schedule.get(alias)
        if b is None or b.phase is not Phase.PROVISIONED:
            return None
        return self.rooms.lookup(alias)

    @property
    def durable_name(self) -> str:
        """The JetStream consumer of this node (one per node: each node sees every event)."""
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.node_id)
        return f"vdx-node-{safe}"[:64]

    async def _subscribe(self) -> None:
        assert self.bus is not None
        delay = 0.5
        while not self._stopping:
            try:
                self._subscription = await self.bus.subscribe(
                    self.settings.nats_subject_scheduling_info, self.on_event, durable=self.durable_name
                )
                log.info("node %s listens for scheduling-info events", self.node_id)
                self._subscribed = True
                self._resync_needed = True
                self.wake()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("scheduling-info events: cannot subscribe (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.5
        self._next_poll = loop.time()
        self._next_look = loop.time() + self.settings.node_resync_interval
        while not self._stopping:
            try:
                await self._step(loop)
            except asyncio.CancelledError:
                raise
            except ClusterUnavailable as exc:
                log.debug("provisioner: cannot place rooms now (%s); retrying in %.1fs", exc, backoff)
            except ApiUnavailable as exc:
                self.failures += 1
                log.warning("provisioner: API unavailable (%s); retrying in %.1fs", exc, backoff)
            except Exception:
                log.exception("provisioner step failed; retrying in %.1fs", backoff)
            else:
                backoff = 0.5
                await self._sleep(self._idle(loop))
                continue
            await self._sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _step(self, loop: asyncio.AbstractEventLoop) -> None:
        """Resync when needed, act on what is due, and poll when the poll interval is up."""
        if self._resync_needed:
            await self._resync_once()
        await self.work()
        if loop.time() >= self._next_poll:
            await self.poll()
            self._next_poll = loop.time() + self.settings.node_poll_interval
            if loop.time() >= self._next_look:
                await self.look_ahead()
                self._next_look = loop.time() + self.settings.node_resync_interval
            await self.work()

    async def _resync_once(self) -> None:
        """A resync that completes after the subscription was in place makes the node ready."""
        self._resync_needed = False
        subscribed = self._subscribed
        try:
            await self.resync()
        except BaseException:
            self._resync_needed = True
            raise
        if subscribed:
            self.ready.set()

    def _idle(self, loop: asyncio.AbstractEventLoop) -> float:
        """Until the next poll or the next booking due, at most a minute."""
        now = self.clock()
        timeout = max(self._next_poll - loop.time(), 0.0)
        wake = self.schedule.next_wake(now)
        if wake is not None:
            timeout = min(timeout, max((wake - now).total_seconds(), 0.0))
        return min(timeout, 60.0)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # --- what the node learns -------------------------------------------------------------------
    async def on_event(self, msg: Message) -> None:
        """A scheduling-info event (spec 4.2): remember it and let the worker act on it. No I/O
        here, so the bus is never held up by the API."""
        try:
            event = json.loads(msg.data)
            kind = event.get("messageType")
            if kind in ("DELETE", "POOL_DELETE"):
                alias, uuid = event.get("uriWithDomain"), event.get("uuid")
                if alias and uuid:
                    self.schedule.delete(str(alias), str(uuid))
            elif kind in ("CREATE", "UPDATE"):
                b = self.schedule.learn(booking_from_event(event))
                if b.phase is Phase.WAITING:
                    self._announce(event_as_scheduling_info(event))
            else:
                log.warning("scheduling-info event of unknown type %r ignored", kind)
                return
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("bad scheduling-info event ignored (%s): %.300r", exc, msg.data)
            return
        self.wake()

    def _announce(self, si: dict[str, Any]) -> None:
        """A booked room not yet due goes into the directory at once, so a join before its
        window gets "not open yet" (policy.time_refusal) rather than "no such room". It is
        provisioned (and reported) when its ``vmrStartTime`` arrives."""
        with contextlib.suppress(ValueError):  # reported as PROVISION_PROBLEMS when it is due
            self.rooms.put(RoomConfig.from_scheduling_info(si))

    async def poll(self) -> None:
        """The polling provisioner's lists (spec 1.3.5, 1.3.6): organisations not served by events."""
        for si in await self.api.due_for_provisioning():
            with contextlib.suppress(ValueError):
                self.schedule.learn(booking_from_api(si), authoritative=True)
        for si in await self.api.due_for_deprovisioning():
            if not _ours(si):
                continue
            with contextlib.suppress(ValueError):
                self.schedule.learn(booking_from_api(si), authoritative=True)
        self.polls += 1

    async def resync(self) -> None:
        """Rebuild the directory after a start: meetings provisioned by a vdx node come back as
        they were (not those of another provisioner), awaiting ones are scheduled (spec 1.3.1
        window; a provisioner sees all organisations).
        Pool VMRs have no meeting and are not listed there; they come back with the ``UPDATE``
        event that attaches them to a meeting."""
        now = self.clock()
        start, end = now - RESYNC_SPAN, now + RESYNC_SPAN
        restored = 0
        for si in await self.api.in_window(start, end, "PROVISIONED_OK"):
            if not _ours(si):
                continue
            try:
                b = booking_from_api(si)
                self.rooms.put(RoomConfig.from_scheduling_info(si))
            except ValueError as exc:
                log.warning("resync: provisioned scheduling info %s unusable: %s", si.get("uuid"), exc)
                continue
            self.schedule.learn(self._resynced(b, si), authoritative=True)
            restored += 1
        waiting = 0
        for si in await self.api.in_window(start, end, "AWAITS_PROVISION"):
            try:
                b = booking_from_api(si)
            except ValueError:
                continue
            self.schedule.learn(b, authoritative=True)
            self._announce(si)
            waiting += 1
        log.info("node %s resynced: %d provisioned rooms, %d awaiting", self.node_id, restored, waiting)

    async def look_ahead(self) -> None:
        """Every ``VDX_NODE_RESYNC_INTERVAL``: the bookings still awaiting their VMR start. Polled
        organisations get no events, so this is how their rooms answer "not open yet" before
        their window, and how a deleted or moved one leaves the directory before its time; for
        event-driven ones it is a safety net for a lost event."""
        before = dict(self.schedule.bookings)
        now = self.clock()
        horizon = now + RESYNC_SPAN
        seen: set[str] = set()
        for si in await self.api.in_window(now, horizon, "AWAITS_PROVISION"):
            try:
                b = booking_from_api(si)
            except ValueError:
                continue
            seen.add(b.key)
            known = self.schedule.get(b.alias)
            if known is None or (known.phase is Phase.WAITING and not known.deleted):
                if known is None or (known.vmr_start, known.end, known.uuid) != (b.vmr_start, b.end, b.uuid):
                    self.schedule.learn(b, authoritative=True)
                self._announce(si)
        for key, b in before.items():
            if (
                key not in seen
                and self.schedule.bookings.get(key) is b  # no news of it while we asked
                and b.phase is Phase.WAITING
                and not b.deleted
                and b.vmr_start is not None
                and now < b.vmr_start < horizon
            ):
                log.info("%s (%s) is no longer booked for then: dropped", b.alias, b.uuid)
                self.schedule.drop(b.alias)
                if not self.rooms.retired(b.alias):
                    self.rooms.remove(b.alias)

    # --- the cluster's placements ------------------------------------------------------------------
    def _resynced(self, b: Booking, si: dict[str, Any]) -> Booking:
        """A provisioned room found at start, as the placements have it: a node that comes back
        does not take back rooms that moved while it was away."""
        if self.cluster is None:
            return b
        host = self.cluster.host_of(b.alias)
        named_here = si.get("provisionVmrId") == self._vmr_id(b.alias)
        if host is None:  # not placed (yet): place it now, or, cut off from NATS, trust the API
            if self.cluster.can_place():
                return replace(b, phase=Phase.WAITING)
            return b if named_here else replace(b, phase=Phase.ELSEWHERE)
        if host != self.node_id:
            return replace(b, phase=Phase.ELSEWHERE)
        return b if named_here else replace(b, phase=Phase.WAITING)  # report its host

    def _hosts(self, b: Booking) -> bool:
        """Whether this node hosts ``b`` (reports it, releases its placement)."""
        if self.cluster is None:
            return True
        host = self.cluster.host_of(b.alias)
        return b.phase is Phase.PROVISIONED if host is None else host == self.node_id

    def placement_changed(self, p: Placement | None, alias: str) -> None:
        """A room was placed on this node (taken over, handed over): provision and report it;
        placed elsewhere: its new host reports it."""
        if p is None:
            return
        b = self.schedule.get(alias)
        if p.node == self.node_id:
            if b is None and p.uuid:
                self.schedule.learn(Booking(p.uuid, alias, None, None))  # fetched when provisioned
            elif b is not None and b.phase is Phase.ELSEWHERE:
                self.schedule.set(replace(b, phase=Phase.WAITING))
            else:
                return
            self.wake()
        elif b is not None and b.phase is Phase.PROVISIONED:
            self.schedule.set(replace(b, phase=Phase.ELSEWHERE))

    def reconcile(self) -> None:
        """The placements were read afresh: every provisioned room follows them, and one whose
        placement is missing (lost with the bucket) is placed again."""
        assert self.cluster is not None
        now = self.clock()
        for b in list(self.schedule.bookings.values()):
            if b.phase not in (Phase.PROVISIONED, Phase.ELSEWHERE) or b.deleted:
                continue
            p = self.cluster.placements.get(b.alias)
            if p is not None:
                self.placement_changed(p, b.alias)
            elif (b.end is None or now <= b.end) and self.cluster.can_place():
                self.schedule.set(replace(b, phase=Phase.WAITING))
        for p in self.cluster.placements.on_node(self.node_id):
            if self.schedule.get(p.alias) is None:
                self.placement_changed(p, p.alias)
        self.wake()

    # --- what the node does ---------------------------------------------------------------------
    async def work(self) -> None:
        """Do everything due now, once each (an action always leaves its booking not due)."""
        deferred: ClusterUnavailable | None = None
        for act, b in self.schedule.due(self.clock()):
            if self._stopping:
                return
            if self.schedule.get(b.alias) is not b:
                continue  # changed by an event meanwhile: the next pass sees the new state
            handler = {
                Action.PROVISION: self._provision,
                Action.REFRESH: self._refresh,
                Action.DEPROVISION: self._deprovision,
                Action.REMOVE: self._remove,
                Action.FORGET: self._forget,
            }[act]
            try:
                await handler(b)
            except ClusterUnavailable as exc:
                deferred = exc  # the others still get their turn; this one when the cluster is back
        if deferred is not None:
            raise deferred

    def _settle(self, old: Booking, new: Booking | None) -> None:
        """Record the outcome unless an event changed the booking while we talked to the API."""
        if self.schedule.get(old.alias) is old:
            if new is None:
                self.schedule.drop(old.alias)
            else:
                self.schedule.set(new)

    def _vmr_id(self, alias: str) -> str:
        return vmr_id(self.node_id, alias)

    async def _provision(self, b: Booking) -> None:
        si = await self.api.scheduling_info(b.uuid)
        if si is None or str(si.get("uriWithDomain") or "").lower() != b.key:
            if not self.rooms.retired(b.alias):
                self.rooms.remove(b.alias)
            self._settle(b, None)
            return
        if si.get("provisionStatus") in ("DEPROVISION_OK", "STARTING_TO_DEPROVISION", "DEPROVISION_PROBLEMS"):
            self._settle(b, None)  # its life is over; not for this node to bring back
            return
        fresh = replace(booking_from_api(si), phase=Phase.WAITING)
        now = self.clock()
        if fresh.end is not None and now > fresh.end:
            self._settle(b, fresh)  # ended meanwhile: FORGET next
            return
        if fresh.vmr_start is not None and fresh.vmr_start > now:
            self._settle(b, fresh)  # moved later (a polling organisation's update)
            self._announce(si)
            return
        try:
            config = RoomConfig.from_scheduling_info(si)
        except ValueError as exc:
            log.warning("scheduling info %s (%s) cannot be provisioned: %s", b.uuid, b.alias, exc)
            self.rooms.remove(b.alias)
            await self.api.report(b.uuid, "PROVISION_PROBLEMS", f"vdx node {self.node_id}: {exc}")
            self._settle(b, replace(fresh, phase=Phase.PROBLEM))
            return
        self.rooms.put(config)
        if self.cluster is not None:
            host = await self.cluster.place(config.alias, config.vmr_quality, b.uuid)
            if host != self.node_id:  # its host reports it; this node keeps it to route callers
                self._settle(b, replace(fresh, phase=Phase.ELSEWHERE, stale=False))
                return
        # In step before the report, so whoever reads PROVISIONED_OK finds the node so too.
        done = replace(fresh, phase=Phase.PROVISIONED, stale=False)
        self._settle(b, done)
        try:
            ok = await self.api.report(
                b.uuid,
                "PROVISIONED_OK",
                f"Provisioned on vdx node {self.node_id}.",
                self._vmr_id(config.alias),
            )
        except ApiUnavailable:
            self._settle(done, b)  # report on the next try
            raise
        if not ok:
            self.rooms.remove(config.alias)
            self._settle(done, None)
            return
        log.info("provisioned %s (%s) until %s", config.alias, b.uuid, fresh.end or "the pool shrinks")

    async def _refresh(self, b: Booking) -> None:
        """A provisioned room changed (spec 2.10 step 5: the end time of a running meeting, or a
        pool VMR attached to a meeting): the live room follows."""
        si = await self.api.scheduling_info(b.uuid)
        if si is None:
            await self.rooms.drop(b.alias, "deleted")
            self._settle(b, None)
            return
        try:
            config = RoomConfig.from_scheduling_info(si)
            fresh = booking_from_api(si)
        except ValueError as exc:
            log.warning("update of %s unusable, the room keeps its settings: %s", b.alias, exc)
            self._settle(b, replace(b, stale=False))
            return
        self.rooms.put(config)
        self._settle(b, replace(fresh, phase=b.phase, stale=False))

    async def _deprovision(self, b: Booking) -> None:
        si = await self.api.scheduling_info(b.uuid)
        now = self.clock()
        if si is not None:
            with contextlib.suppress(ValueError):
                fresh = booking_from_api(si)
                if fresh.end is None or now <= fresh.end:
                    # Extended (polling organisations get no event for it): keep the room.
                    self.rooms.put(RoomConfig.from_scheduling_info(si))
                    self._settle(b, replace(fresh, phase=b.phase, stale=False))
                    return
        await self.rooms.retire(b.alias, now)
        self._settle(b, None)  # in step before the report, as in _provision
        if not self._hosts(b):
            return  # its host reports it and releases its placement
        if self.cluster is not None:
            await self.cluster.release(b.alias)
        if si is not None and si.get("provisionStatus") != "DEPROVISION_OK":
            try:
                await self.api.report(
                    b.uuid,
                    "DEPROVISION_OK",
                    f"Deprovisioned on vdx node {self.node_id}.",
                    self._vmr_id(b.alias),
                )
            except ApiUnavailable:
                if self.schedule.get(b.alias) is None:
                    self.schedule.set(b)  # report on the next try
                raise
        log.info("deprovisioned %s (%s)", b.alias, b.uuid)

    async def _remove(self, b: Booking) -> None:
        """The booking was deleted (meeting DELETE, pool shrink): the room goes at once."""
        await self.rooms.drop(b.alias, "deleted")
        self._settle(b, None)
        if self._hosts(b) and self.cluster is not None:
            await self.cluster.release(b.alias)
        if b.phase is Phase.PROVISIONED and self._hosts(b):
            # The row may be gone already (a deleted pool VMR); report where it still exists.
            try:
                await self.api.report(b.uuid, "DEPROVISION_OK", f"Removed from vdx node {self.node_id}.")
            except ApiUnavailable:
                if self.schedule.get(b.alias) is None:
                    self.schedule.set(b)  # report on the next try
                raise
        log.info("removed %s (%s)", b.alias, b.uuid)

    async def _forget(self, b: Booking) -> None:
        """Ended before it was ever provisioned (or after provision problems)."""
        if not self.rooms.retired(b.alias):
            self.rooms.remove(b.alias)
        self._settle(b, None)
        if self.cluster is not None and self.cluster.host_of(b.alias) == self.node_id:
            await self.cluster.release(b.alias)  # taken over after its end: nothing to host


def _ours(si: dict[str, Any]) -> bool:
    return provisioned_by_a_node(si.get("provisionVmrId"), str(si.get("uriWithDomain") or ""))


def api_client(settings: Settings, app: Any | None = None) -> httpx.AsyncClient:
    """The node's HTTP client for the API: ``VDX_NODE_API_URL`` when set; otherwise, inside the
    all-in-one process, the app itself in memory (no socket, no wait for the server to listen)."""
    if settings.node_api_url:
        return httpx.AsyncClient(base_url=settings.node_api_url.rstrip("/"), timeout=10.0)
    if app is None:
        raise ValueError("VDX_NODE_API_URL is required for a node without its own API")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=f"http://vdx-node.internal{settings.api_context}",
        timeout=10.0,
    )
