"""The ASGI application: the VDX API under its context path, operations endpoints, web pages.

``create_app(settings)`` is what ``vdx serve``/``vdx api`` run and what tests drive in-process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, cast

from fastapi import APIRouter, Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException

from vdx import __version__, logs
from vdx.access import http_errors
from vdx.api import (
    audit,
    auto_dial,
    conference_control,
    devices,
    info,
    manage,
    meetings,
    node_capacity,
    node_reports,
    organisations,
    pool,
    routing,
    scheduling_info,
    steering,
    templates,
)
from vdx.api.input_guard import reject_nul_characters
from vdx.api.middleware import (
    BodySizeLimit,
    HttpMetrics,
    RequestContext,
    ResponseHeaders,
    StrictCORSMiddleware,
    TrailingSlash,
)
from vdx.api.openapi import declare_validation_errors
from vdx.booking.auto_dial import AutoDial
from vdx.booking.errors import VdxError
from vdx.booking.routing import Trunk
from vdx.booking.usage import UsageLedger
from vdx.bus import Bus, create_bus
from vdx.bus.outbox import OutboxRelay
from vdx.conference.conference import MediaOptions
from vdx.conference.pin_guard import PinGuard, PinRules
from vdx.events.payloads import ControlOperation
from vdx.legs.media_cpu import MediaCpuMetrics
from vdx.legs.webrtc import IceOptions, restrict_host_addresses
from vdx.node import self_test, signalling
from vdx.node.capacity import CapacityMetrics, NodeCapacity
from vdx.node.cluster import status as cluster_status
from vdx.node.cluster.cluster import Cluster
from vdx.node.control import ControlDesk
from vdx.node.dial_out import DialOuts
from vdx.node.gateway import Gateway
from vdx.node.provisioner import NodeToken, Provisioner, ProvisionerApi, api_client
from vdx.node.rooms import Rooms
from vdx.node.sip_calls import SipRoomCalls
from vdx.services import audit as audit_service
from vdx.services import auto_dial as auto_dial_service
from vdx.services import organisations as organisation_service
from vdx.services.pool_filler import PoolFiller
from vdx.services.retention import RetentionJob
from vdx.services.usage import UsageWriter
from vdx.settings import Settings
from vdx.sip import Credentials, SipServer, config_from_settings
from vdx.sip.bfcp_server import BfcpServer
from vdx.sip.sdp import FloorControlPorts
from vdx.store.db import create_engine, read_session, session_factory
from vdx.store.migrate import upgrade_async
from vdx.tokens import TokenVerifier, mint_token
from vdx.web import landing, pages
from vdx.web.api_docs import api_docs_router
from vdx.web.invitations import build_sender
from vdx.web.security_headers import security_headers

log = logging.getLogger("vdx.app")


def api_v2_router() -> APIRouter:
    """All ``/v2/...`` resources of the VDX booking API."""
    router = APIRouter(prefix="/v2")
    router.include_router(info.router)
    router.include_router(meetings.router)
    router.include_router(scheduling_info.router)
    router.include_router(templates.router)
    router.include_router(pool.router)
    router.include_router(audit.router)
    router.include_router(node_reports.router)
    router.include_router(steering.router)
    return router


async def start_capacity(settings: Settings) -> NodeCapacity:
    """The node's admission limits: ``VDX_NODE_CAPACITY``, or unset, the start-up self-test's
    figure (a few seconds of this node's own media work, off the event loop)."""
    if settings.node_capacity is not None:
        log.info(
            "capacity %.2f HD units (VDX_NODE_CAPACITY), clinical reserve %.2f",
            settings.node_capacity,
            settings.clinical_reserve,
        )
        return NodeCapacity(settings.node_capacity, settings.clinical_reserve, node=settings.node_name)
    measured = await asyncio.to_thread(self_test.measure, settings.media_fps)
    log.info(
        "capacity by self-test: %s; clinical reserve %.2f", measured.describe(), settings.clinical_reserve
    )
    return NodeCapacity(measured.capacity, settings.clinical_reserve, measured=True, node=settings.node_name)


def build_rooms(
    settings: Settings, usage: UsageLedger | None = None, capacity: NodeCapacity | None = None
) -> Rooms:
    """The conferencing node's runtime. Nothing runs until a participant joins a room: no
    threads, no tasks (so API-only tests pay nothing for it)."""
    ice = IceOptions(
        stun=tuple(settings.csv(settings.stun_servers)),
        turn=tuple(settings.csv(settings.turn_servers)),
        turn_secret=settings.turn_secret,
        turn_ttl_s=settings.turn_ttl,
        node_uses_turn=settings.node_uses_turn,
    )
    if settings.ice_host_addresses.strip():
        restrict_host_addresses(settings.csv(settings.ice_host_addresses))
    return Rooms(
        MediaOptions(
            fps=settings.media_fps,
            size_cap=settings.media_size_cap_pair,
            keyframe_interval=settings.media_keyframe_interval,
            views=settings.media_views,
            adapt=settings.media_adapt,
            reconnect_grace_s=settings.resume_grace,
        ),
        usage=usage,
        ice=ice,
        pin_guard=PinGuard(
            PinRules(
                backoff_max_s=settings.pin_backoff_max,
                room_failures=settings.pin_room_failures,
                room_window_s=settings.pin_room_window,
            )
        ),
        node_id=settings.node_name,
        capacity=capacity,
    )


async def ensure_node_organisation(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """The organisation of the node's minted provisioner token must exist (a token naming an
    unknown organisation is refused, spec 3.2 step 4): created as a root organisation."""
    async with sessions() as s:
        if await organisation_service.by_code(s, settings.node_organisation) is not None:
            return
    try:
        async with sessions() as s, s.begin():
            await organisation_service.create(s, settings.node_organisation, name="vdx conferencing node")
    except (organisation_service.OrganisationExists, IntegrityError):
        pass  # another process created it first


async def start_cluster(state: Any, settings: Settings, rooms: Rooms) -> Cluster | None:
    """With NATS, a node that provisions joins the cluster (``vdx.node.cluster``): it answers
    where each room is hosted. Raises NodeIdTaken when another process runs under its id."""
    if not settings.nats_url or not settings.node_provisioner:
        return None
    cluster = Cluster(settings, rooms)
    await cluster.start()
    rooms.locator = cluster
    rooms.waiting.elsewhere = cluster.waiting_on  # a call for a page waiting on another node goes there
    state.cluster = cluster
    # Not critical: while NATS is away the node keeps the rooms it hosts.
    state.health_probes["cluster"] = (cluster.probe, False)
    return cluster


async def start_provisioner(
    app: FastAPI | None, settings: Settings, rooms: Rooms, bus: Bus | None, cluster: Cluster | None = None
) -> Provisioner:
    """The node's provisioner; ``app`` is the API in this process (None: ``VDX_NODE_API_URL``)."""
    http = api_client(settings, None if app is None else logs.internal_calls(app))
    provisioner = Provisioner(
        settings, rooms, ProvisionerApi(http, NodeToken(settings, mint_token)), bus, cluster=cluster
    )
    await provisioner.start()
    rooms.waiting.verify = provisioner.api.device_sign_in  # the API checks a waiting page's device
    if rooms.minutes is not None:  # the node's figures, once a minute, to the API that stores them
        rooms.minutes.run_clock(rooms.capacity.minute)
    return provisioner


async def stop_provisioner(provisioner: Provisioner | None) -> None:
    if provisioner is not None:
        await provisioner.stop()
        await provisioner.api.http.aclose()


def node_probe(provisioner: Provisioner) -> Callable[[], Awaitable[dict[str, object]]]:
    """Health of the node: DOWN until its provisioner is in step with the API (not critical:
    rooms already known keep working while the API is away)."""

    async def probe() -> dict[str, object]:
        if not provisioner.ready.is_set():
            raise RuntimeError("not yet in step with the API")
        rooms = provisioner.rooms
        return {"node": provisioner.node_id, "rooms": len(rooms.aliases()), "live": len(rooms.live)}

    return probe


async def start_sip(settings: Settings, rooms: Rooms) -> SipServer:
    """SIP dial-in of the node: the SIP server answering from the room directory."""
    calls = SipRoomCalls(
        rooms,
        prompt_dir=settings.data_dir / "prompts",
        fps=settings.media_fps,
        sip_domain=settings.sip_domain,
    )
    await calls.load_prompts()
    # Floor control of room systems' presentations (RFC 8855): listening before any answer names it.
    bfcp = BfcpServer(settings.sip_host, calls.floor)
    await bfcp.start(settings.sip_bfcp_port, settings.sip_bfcp_port)
    calls.bfcp = bfcp
    config = config_from_settings(settings)
    config.media = replace(config.media, floor_control=FloorControlPorts(bfcp.tcp_port, bfcp.udp_port))
    server = SipServer(config, calls)
    await server.start()
    credentials = None
    if settings.sip_dial_username:
        credentials = Credentials(settings.sip_dial_username, settings.sip_dial_password or "")
    rooms.dial_outs = DialOuts(rooms, server, settings.sip_dial_timeout, credentials, _trunks(rooms))
    rooms.on_started.append(rooms.dial_outs.started)
    rooms.gateway = Gateway(rooms, settings.sip_domain)
    rooms.waiting.ring_timeout = settings.sip_ring_timeout
    log.info(
        "SIP on udp/tcp %s:%s, tls %s, BFCP tcp %s udp %s",
        settings.sip_host,
        server.port,
        server.tls_port or "off",
        bfcp.tcp_port,
        bfcp.udp_port,
    )
    return server


def _trunks(rooms: Rooms) -> Callable[[str], Awaitable[Trunk | None]]:
    """The outbound trunks a dial-out may name: those the node last read from the API."""

    async def lookup(name: str) -> Trunk | None:
        return rooms.call_routing.trunk(name)

    return lookup


async def stop_sip(server: SipServer | None) -> None:
    if server is None:
        return
    if isinstance(server.handler, SipRoomCalls) and server.handler.rooms.dial_outs is not None:
        rooms = server.handler.rooms
        assert rooms.dial_outs is not None
        rooms.on_started.remove(rooms.dial_outs.started)
        if rooms.gateway is not None:
            await rooms.gateway.close_all()
            rooms.gateway = None
        await rooms.dial_outs.close()
        rooms.dial_outs = None
    await server.stop()
    if isinstance(server.handler, SipRoomCalls):
        await server.handler.close()
        if server.handler.bfcp is not None:
            await server.handler.bfcp.close()


async def start_in_process_node(app: FastAPI, settings: Settings, bus: Bus) -> None:
    """The conferencing node inside the API's process: rooms whose usage is written to the
    database, the provisioner talking to this app in memory, and SIP dial-in."""
    rooms = build_rooms(settings, UsageLedger(), await start_capacity(settings))
    app.state.rooms = rooms

    async def report_action(
        aliases: list[str], operation: str, actor: str | None, data: dict[str, Any]
    ) -> None:
        await audit_service.conference_action(
            app.state.sessions,
            settings,
            aliases=aliases,
            operation=cast(ControlOperation, operation),
            actor=actor,
            data=data,
        )

    rooms.report_action = report_action
    app.state.metrics_registry.register(CapacityMetrics(rooms.capacity))
    app.state.metrics_registry.register(MediaCpuMetrics())
    if rooms.usage is not None:
        app.state.usage_writer = UsageWriter(app.state.sessions, rooms.usage, settings.usage_write_seconds)
        app.state.usage_writer.start()
    if settings.node_provisioner:
        if not settings.node_token and not settings.node_api_url:
            await ensure_node_organisation(app.state.sessions, settings)
        cluster = await start_cluster(app.state, settings, rooms)
        app.state.provisioner = await start_provisioner(app, settings, rooms, bus, cluster)
        app.state.health_probes["node"] = (node_probe(app.state.provisioner), False)
    if settings.sip_enabled:
        app.state.sip = await start_sip(settings, rooms)
        assert rooms.dial_outs is not None

        async def automatic(booking: str) -> list[AutoDial]:
            async with read_session(app.state.sessions) as s:
                return await auto_dial_service.of_scheduling_info(s, booking) or []

        rooms.dial_outs.automatic = automatic


async def stop_in_process_node(app: FastAPI) -> None:
    await stop_sip(app.state.sip)
    await stop_provisioner(app.state.provisioner)
    if app.state.cluster is not None:
        await app.state.cluster.stop()
    if app.state.rooms is not None:
        await app.state.rooms.close()
    if app.state.usage_writer is not None:
        await app.state.usage_writer.stop()


def freeze_start_up_heap() -> None:
    """Move what start-up made (modules, ORM mappers, the OpenAPI schema, codec tables) out of
    the cyclic collector's reach, once a served process is ready. Otherwise every full collection
    walks all of it while the event loop waits, a pause in the tail latency of every request.
    Only a process that serves one app until it exits does it (``served``: ``vdx serve``/``api``/
    ``node``): a test process that starts app after app would keep each one's leftovers for good."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings,
    *,
    migrate: bool = True,
    jobs: bool = False,
    served: bool = False,
    demo_sign_in: bool = False,
) -> FastAPI:
    """``jobs`` starts the scheduled jobs (the pool filler and pool history, spec 2.13, unless
    ``pool_fill_disabled``; the retention job): ``vdx serve``/``vdx api`` turn them on; in-process test apps leave
    them off so no pool changes under a test that did not ask for it. ``served``: this process
    serves the app until it exits (see ``freeze_start_up_heap``). ``demo_sign_in``: only
    ``vdx serve --demo`` offers the demo sign-in (``vdx.web.pages.dev_sign_in_answers``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await upgrade_async(settings)
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.verifier = TokenVerifier(settings)
        bus = create_bus(settings)
        await bus.start()
        app.state.bus = bus
        relay = OutboxRelay(engine, app.state.sessions, bus, retention_hours=settings.outbox_retention_hours)
        app.state.outbox = relay
        await relay.start()

        async def bus_probe() -> dict[str, object]:
            detail: dict[str, object] = {"outboxPending": await relay.pending()}
            detail.update(await bus.check())
            return detail

        # Not critical: with the bus down, bookings go on and events wait in the outbox.
        app.state.health_probes["bus"] = (bus_probe, False)
        filler = PoolFiller(app.state.sessions, settings)
        app.state.pool_filler = filler
        if jobs and not settings.pool_fill_disabled:
            await filler.start()
        retention = RetentionJob(app.state.sessions, settings)
        app.state.retention = retention
        if jobs:  # personal data expires whether or not pools are filled
            await retention.start()
        app.state.rooms = app.state.usage_writer = app.state.provisioner = app.state.sip = None
        app.state.cluster = None
        if settings.node_enabled:
            await start_in_process_node(app, settings, bus)
        app.state.control = ControlDesk(settings, app.state.rooms)
        if served:
            freeze_start_up_heap()
        try:
            yield
        finally:
            await app.state.control.close()
            await stop_in_process_node(app)
            await filler.stop()
            await retention.stop()
            await relay.stop()
            await bus.close()
            await engine.dispose()

    ctx = settings.api_context
    app = FastAPI(
        title="vdx — VDX Booking Module API v2",
        version=__version__,
        description="Drop-in implementation of the VDX booking API v2 (MedCom's Videoknudepunkt).",
        lifespan=lifespan,
        openapi_url=f"{ctx}/openapi.json",
        docs_url=None,  # web.api_docs serves Swagger UI from this node
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.demo_sign_in = demo_sign_in
    app.state.metrics_registry = CollectorRegistry()
    app.state.health_probes = {}
    app.state.invitation_sender = build_sender(settings)

    app.add_exception_handler(VdxError, http_errors.handle_vdx_error)
    app.add_exception_handler(http_errors.BasicError, http_errors.handle_basic_error)
    app.add_exception_handler(RequestValidationError, http_errors.handle_validation_error)
    app.add_exception_handler(
        HTTPException,
        organisations.framework_errors_under(f"{ctx}/services/", http_errors.handle_http_exception),
    )

    guards = [Depends(reject_nul_characters)]
    app.include_router(api_v2_router(), prefix=ctx, dependencies=guards)
    # the embedded organisation service (spec 5.1)
    app.include_router(organisations.router, prefix=ctx, dependencies=guards)
    app.include_router(conference_control.router, prefix=ctx)
    app.include_router(node_capacity.router, prefix=ctx)
    app.include_router(routing.router, prefix=ctx)
    app.include_router(devices.router, prefix=ctx)
    app.include_router(auto_dial.router, prefix=ctx)
    app.include_router(signalling.router)
    app.include_router(manage.router)
    app.include_router(cluster_status.router)
    app.include_router(meetings.short_link_router)
    app.include_router(pages.router)
    app.include_router(landing.router)
    app.include_router(api_docs_router(ctx, app.title))
    app.mount("/web/static", StaticFiles(directory=pages.STATIC), name="web-static")
    declare_validation_errors(app, ctx)

    # Middleware runs outermost-last-added: security headers -> context (id, log, metrics) ->
    # body limit -> slashes -> CORS -> app.
    app.add_middleware(
        StrictCORSMiddleware,
        allow_origins=settings.origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[settings.correlation_id_header],
    )
    app.add_middleware(TrailingSlash)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RequestContext,
        header=settings.correlation_id_header,
        metrics=HttpMetrics(app.state.metrics_registry),
        keepalive_requests=settings.http_keepalive_requests,
    )
    app.add_middleware(ResponseHeaders, headers=security_headers(settings))
    return app


def create_node_app(settings: Settings, *, served: bool = False) -> FastAPI:
    """``vdx node``: a conferencing node alone (WebRTC signalling, SIP dial-in, rooms, provisioner)
    that learns its rooms from a remote API (``VDX_NODE_API_URL``) and, with ``VDX_NATS_URL``,
    from the scheduling-info events on NATS JetStream. No database: the API is its only source."""
    if not settings.node_api_url:
        raise ValueError("vdx node needs VDX_NODE_API_URL (the VDX API it provisions from)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus: Bus | None = None
        if settings.nats_url:
            bus = create_bus(settings)
            await bus.start()
            app.state.health_probes["bus"] = (bus.check, False)
        else:
            log.warning(
                "no VDX_NATS_URL: this node learns only polled organisations' rooms (and resyncs at "
                "start); event-driven organisations need NATS or VDX_EVENT_ORGANISATION_FILTER=- on the API"
            )
        rooms = build_rooms(settings, capacity=await start_capacity(settings))
        app.state.rooms = rooms
        app.state.metrics_registry.register(CapacityMetrics(rooms.capacity))
        app.state.metrics_registry.register(MediaCpuMetrics())
        app.state.cluster = None
        cluster = await start_cluster(app.state, settings, rooms)
        provisioner = await start_provisioner(None, settings, rooms, bus, cluster)
        app.state.provisioner = provisioner
        rooms.report_action = provisioner.api.conference_action  # the node has no database
        app.state.health_probes["node"] = (node_probe(provisioner), False)
        app.state.sip = await start_sip(settings, rooms) if settings.sip_enabled else None
        if rooms.dial_outs is not None:
            rooms.dial_outs.automatic = provisioner.api.auto_dial
        if served:
            freeze_start_up_heap()
        try:
            yield
        finally:
            await stop_sip(app.state.sip)
            await stop_provisioner(provisioner)
            if cluster is not None:
                await cluster.stop()
            await rooms.close()
            if bus is not None:
                await bus.close()

    app = FastAPI(title="vdx conferencing node", version=__version__, lifespan=lifespan, docs_url=None)
    app.state.settings = settings
    app.state.metrics_registry = CollectorRegistry()
    app.state.health_probes = {}
    app.include_router(signalling.router)
    app.include_router(manage.router)
    app.include_router(cluster_status.router)
    # the join page, so a node's own join link ({VDX_PUBLIC_URL}/join/?conference=...) works
    app.include_router(pages.join_router)
    app.mount("/web/static", StaticFiles(directory=pages.STATIC), name="web-static")
    app.add_middleware(TrailingSlash)
    app.add_middleware(
        RequestContext, header=settings.correlation_id_header, metrics=HttpMetrics(app.state.metrics_registry)
    )
    app.add_middleware(ResponseHeaders, headers=security_headers(settings))
    return app


def app_from_env() -> FastAPI:
    """Factory for multi-worker servers: each worker reads its settings from the environment."""
    return create_app(Settings(), jobs=True, served=True)
