"""The ASGI application: the VDX API under its context path, operations endpoints, web pages.

``create_app(settings)`` is what ``vdx serve``/``vdx api`` run and what tests drive in-process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException

from vdx import __version__
from vdx.api import (
    conference_control,
    errors,
    info,
    manage,
    meetings,
    organisations,
    pool,
    scheduling_info,
    signalling,
    templates,
)
from vdx.api.input_guard import reject_nul_characters
from vdx.api.middleware import (
    BodySizeLimit,
    HttpMetrics,
    RequestContext,
    StrictCORSMiddleware,
    TrailingSlash,
)
from vdx.api.openapi import declare_validation_errors
from vdx.api.tokens import TokenVerifier
from vdx.bus import create_bus
from vdx.bus.outbox import OutboxRelay
from vdx.conference.conference import MediaOptions
from vdx.legs.webrtc import IceOptions, restrict_host_addresses
from vdx.node.rooms import Rooms
from vdx.settings import Settings
from vdx.store.db import create_engine, session_factory
from vdx.store.migrate import upgrade_async
from vdx.web import pages
from vdx.web.invitations import build_sender

log = logging.getLogger("vdx.app")


def api_v2_router() -> APIRouter:
    """All ``/v2/...`` resources of the VDX booking API."""
    router = APIRouter(prefix="/v2")
    router.include_router(info.router)
    router.include_router(meetings.router)
    router.include_router(scheduling_info.router)
    router.include_router(templates.router)
    router.include_router(pool.router)
    return router


def build_rooms(settings: Settings) -> Rooms:
    """The conferencing node's runtime. Nothing runs until a participant joins a room: no
    threads, no tasks (so API-only tests pay nothing for it)."""
    ice = IceOptions(
        stun=tuple(settings.csv(settings.stun_servers)),
        turn=tuple(settings.csv(settings.turn_servers)),
        turn_username=settings.turn_username,
        turn_password=settings.turn_password,
    )
    if settings.ice_host_addresses.strip():
        restrict_host_addresses(settings.csv(settings.ice_host_addresses))
    return Rooms(
        MediaOptions(
            fps=settings.media_fps,
            size_cap=settings.media_size_cap_pair,
            keyframe_interval=settings.media_keyframe_interval,
            ice=ice,
        )
    )


def create_app(settings: Settings, *, migrate: bool = True) -> FastAPI:
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
        app.state.rooms = build_rooms(settings) if settings.node_enabled else None
        try:
            yield
        finally:
            if app.state.rooms is not None:
                await app.state.rooms.close()
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
        docs_url=f"{ctx}/docs",
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.metrics_registry = CollectorRegistry()
    app.state.health_probes = {}
    app.state.invitation_sender = build_sender(settings)

    app.add_exception_handler(errors.ApiError, errors.handle_api_error)
    app.add_exception_handler(errors.BasicError, errors.handle_basic_error)
    app.add_exception_handler(RequestValidationError, errors.handle_validation_error)
    app.add_exception_handler(
        HTTPException,
        organisations.framework_errors_under(f"{ctx}/services/", errors.handle_http_exception),
    )

    guards = [Depends(reject_nul_characters)]
    app.include_router(api_v2_router(), prefix=ctx, dependencies=guards)
    # the embedded organisation service (spec 5.1)
    app.include_router(organisations.router, prefix=ctx, dependencies=guards)
    app.include_router(conference_control.router, prefix=ctx)
    app.include_router(signalling.router)
    app.include_router(manage.router)
    app.include_router(meetings.short_link_router)
    app.include_router(pages.router)
    app.mount("/web/static", StaticFiles(directory=pages.STATIC), name="web-static")
    declare_validation_errors(app, ctx)

    # Middleware runs outermost-last-added: context (id, log, metrics) -> body limit -> slashes
    # -> CORS -> app.
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
    )
    return app


def app_from_env() -> FastAPI:
    """Factory for multi-worker servers: each worker reads its settings from the environment."""
    return create_app(Settings())
