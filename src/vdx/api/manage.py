"""Operations endpoints outside the API context: ``/manage/health`` and ``/manage/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from vdx.store.db import read_session

router = APIRouter(prefix="/manage", tags=["Operations"])


@router.get("/health", summary="Liveness and readiness (database, bus)")
async def health(request: Request) -> Response:
    """503 when the database is down. A bus outage is reported (DEGRADED, 200): bookings go on and
    their events wait in the outbox, so a load balancer should keep sending traffic."""
    checks: dict[str, Any] = {}
    ok = True
    sessions = getattr(request.app.state, "sessions", None)  # a lone node (vdx node) has no database
    if sessions is not None:
        try:
            async with read_session(sessions) as s:
                await s.execute(text("SELECT 1"))
            checks["db"] = {"status": "UP"}
        except Exception as exc:  # health must report, not raise
            ok = False
            checks["db"] = {"status": "DOWN", "error": str(exc)[:200]}
    degraded = False
    for name, (probe, critical) in getattr(request.app.state, "health_probes", {}).items():
        try:
            detail = await probe()
            checks[name] = {"status": "UP", **(detail or {})}
        except Exception as exc:
            checks[name] = {"status": "DOWN", "error": str(exc)[:200]}
            if critical:
                ok = False
            else:
                degraded = True
    status = "DOWN" if not ok else ("DEGRADED" if degraded else "UP")
    body = {"status": status, "components": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
