"""Operations endpoints outside the API context: ``/manage/health`` and ``/manage/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

router = APIRouter(prefix="/manage", tags=["Operations"])


@router.get("/health", summary="Liveness and readiness (database, bus)")
async def health(request: Request) -> Response:
    checks: dict[str, Any] = {}
    ok = True
    try:
        async with request.app.state.sessions() as s:
            await s.execute(text("SELECT 1"))
        checks["db"] = {"status": "UP"}
    except Exception as exc:  # health must report, not raise
        ok = False
        checks["db"] = {"status": "DOWN", "error": str(exc)[:200]}
    for name, probe in getattr(request.app.state, "health_probes", {}).items():
        try:
            detail = await probe()
            checks[name] = {"status": "UP", **(detail or {})}
        except Exception as exc:
            ok = False
            checks[name] = {"status": "DOWN", "error": str(exc)[:200]}
    body = {"status": "UP" if ok else "DOWN", "components": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
