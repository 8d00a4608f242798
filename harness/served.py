"""A node to test or measure, served on free ports of 127.0.0.1: the app in this event loop
(``served``) or ``vdx <command>`` in its own process (``ServedProcess``, for signals, kills and
several processes)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from harness.ports import free_port
from vdx.settings import Settings
from vdx.tokens import mint_token

ROOT = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def served(
    app: Any, port: int | None = None, start_s: float = 20.0, host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan on, WebSockets) on ``host``; yields its base URL once it listens."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", ws="websockets-sansio")
    )
    task = asyncio.get_running_loop().create_task(server.serve())
    deadline = time.monotonic() + start_s
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("in-process server did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


class ServedProcess:
    """``vdx COMMAND`` in its own process on a free HTTP port, importing this checkout's src/ and
    configured by ``env`` (VDX_* variables) alone: the caller's VDX_* are left out so they cannot
    leak in. Its CLI and tokens use the same data directory and database.

        server = ServedProcess(data_dir, ["api"], {"VDX_LOG_LEVEL": "WARNING"})
        server.cli("org", "add", "clinic")
        server.start()              # seconds until /manage/health answers
        ...
        server.stop()
    """

    def __init__(
        self,
        data_dir: Path,
        command: Sequence[str] = ("serve",),
        env: Mapping[str, str] | None = None,
        *,
        database_url: str | None = None,
        settings: Settings | None = None,
        log_dir: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host  # where it listens (HTTP); another than loopback to be reached from a namespace
        self.port = free_port()
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.command = [sys.executable, "-m", "vdx", *command]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
        self.env.update(
            {
                "PYTHONPATH": str(ROOT / "src"),
                "VDX_DATA_DIR": str(data_dir),
                "VDX_HTTP_HOST": host,
                "VDX_HTTP_PORT": str(self.port),
                "VDX_PUBLIC_URL": self.base_url,
            }
        )
        if database_url:
            self.env["VDX_DATABASE_URL"] = database_url
        self.env.update(env or {})
        # tokens are signed with the data directory's dev key, which the process trusts
        base = settings or Settings(data_dir=data_dir)
        self.settings = base.model_copy(update={"public_url": self.base_url})
        self.log = (log_dir or data_dir) / f"{command[0]}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``python -m vdx ARGS`` on this process's data directory and database; with ``check``
        a non-zero exit is a RuntimeError carrying its stderr."""
        out = subprocess.run(
            [sys.executable, "-m", "vdx", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"vdx {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
        return out

    def token(self, org: str | None, email: str | None, *roles: str, ttl: int = 3600) -> str:
        """What ``vdx token`` prints for these claims, without a Python start-up."""
        return mint_token(self.settings, org=org, email=email, roles=list(roles), ttl=ttl)

    def start(self, timeout_s: float = 180.0) -> float:
        """Spawn and wait until healthy; returns the seconds that took."""
        t0 = time.monotonic()
        self.spawn()
        self.wait_ready(timeout_s)
        return time.monotonic() - t0

    def spawn(self) -> None:
        """Start the process (several start side by side: spawn each, then wait for each)."""
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=fh, stderr=fh)

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Until /manage/health answers 200 (a busy shared machine starts slowly); a RuntimeError
        with the tail of its log when it exits or does not answer in time."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.describe()} exited ({self.proc.returncode}): {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/manage/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.describe()} did not answer /manage/health in {timeout_s:.0f} s: {self.log_tail()}"
        )

    def describe(self) -> str:
        return "vdx " + " ".join(self.command[3:])

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace").strip() if self.log.exists() else ""
        return text[-chars:] or "(nothing in its log)"

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing; what a power cut looks like to the process."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
