"""Serving the real app in the test's own event loop: one way to pick a free port and to start and
stop an in-process uvicorn, for every suite that needs a live node without a subprocess."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 just now (TCP unless ``kind`` says otherwise)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def served(app: Any, port: int | None = None, start_s: float = 20.0) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan on, WebSockets) on 127.0.0.1; yields its base URL once it listens."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="websockets-sansio"
        )
    )
    task = asyncio.get_running_loop().create_task(server.serve())
    deadline = time.monotonic() + start_s
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("in-process server did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
