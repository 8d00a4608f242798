"""``GET /v2/info`` (spec 1.1): build information with a ``git`` entry."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request

from vdx import __version__
from vdx.access.callers import Caller, require
from vdx.api import schemas
from vdx.booking.roles import ANY

router = APIRouter(tags=["Info V2"])


@lru_cache(maxsize=1)
def git_info() -> dict[str, Any]:
    """Branch and commit of the running code, read once (a VCS-less install says so)."""
    root = Path(__file__).resolve().parents[3]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=True
            )
            return out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    return {
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or "unknown",
        "commit": {
            "id": git("rev-parse", "--short", "HEAD") or "unknown",
            "time": git("log", "-1", "--format=%cI"),
        },
    }


@router.get("/info", response_model=schemas.Info, summary="Build information")
async def get_info(request: Request, caller: Caller = Depends(require(*ANY))) -> schemas.Info:
    return schemas.Info(
        info=[
            schemas.InfoItem(key="git", value=git_info()),
            schemas.InfoItem(key="build", value={"name": "vdx", "version": __version__}),
        ]
    )
