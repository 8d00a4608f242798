"""A real ``vdx api`` process for benchmarks: throwaway data directory and (optionally) PostgreSQL database.

Benchmarks measure the API over HTTP as an integration sees it, so they start the same command an
operator runs, bootstrap organisations with ``vdx org add`` and mint tokens with ``vdx token``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def create_pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on the server of ``admin_url``, and the function that drops it."""
    import asyncpg

    name = f"vdx_bench_{uuid.uuid4().hex[:8]}"

    async def ddl(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(ddl(f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}", lambda: asyncio.run(ddl(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def process_tree_cpu(root: int) -> float:
    """User + system CPU seconds of ``root`` and its live descendants (from /proc)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        # fields[0] is the state (field 3); ppid is field 4, utime 14, stime 15
        stats[int(entry.name)] = (
            int(fields[1]),
            (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"),
        )
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(stats[pid][1] for pid in tree if pid in stats)


class ApiServer:
    """``vdx api --workers N`` on a free port of 127.0.0.1, its CLI bound to the same settings."""

    def __init__(self, data_dir: Path, database_url: str | None, workers: int) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.workers = workers
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
        self.env.update(
            {
                "PYTHONPATH": str(ROOT / "src"),
                "VDX_DATA_DIR": str(data_dir),
                "VDX_HTTP_HOST": "127.0.0.1",
                "VDX_HTTP_PORT": str(self.port),
                "VDX_PUBLIC_URL": self.base,
                "VDX_LOG_LEVEL": "WARNING",
            }
        )
        if database_url:
            self.env["VDX_DATABASE_URL"] = database_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "api.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        """Run ``vdx ARGS`` against this server's data directory and database; its stdout."""
        out = subprocess.run(
            [sys.executable, "-m", "vdx", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if out.returncode != 0:
            raise RuntimeError(f"vdx {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
        return out.stdout.strip()

    def start(self, timeout: float = 120) -> None:
        """Start ``vdx api`` (which migrates the database itself) and wait until it answers."""
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vdx", "api", "--workers", str(self.workers)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vdx api exited with status {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/manage/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"vdx api did not answer /manage/health within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace").strip() if self.log.exists() else ""
        return text[-800:] or "(nothing on its stderr)"

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its worker processes."""
        if self.proc is None:
            return 0.0
        return process_tree_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
