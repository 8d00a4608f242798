"""API benchmark (not a test): create and get throughput and latency beside a trivial endpoint.

For each database (SQLite file, PostgreSQL) it starts a real ``vdx api`` process, then, at 1, 16
and 64 concurrent clients, measures for a fixed number of requests:
  - ``GET /v2/info``            the trivial authenticated endpoint (token check, no database work)
  - ``POST /v2/meetings``       create (one transaction: meeting, scheduling info, events)
  - ``GET /v2/meetings/{uuid}`` get
Throughput is requests per second of wall time; latencies are client-side p50/p99. The trivial
endpoint is measured in the same run so that the ratios hold on a noisy shared machine.

    .venv/bin/python bench/api.py [--requests 400] [--workers 2] [--pg postgresql://postgres@127.0.0.1/postgres]
                                  [--only sqlite|postgres] [--json out.json] [--markdown BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from report import write_section  # noqa: E402

from vdx.api.tokens import mint_token  # noqa: E402
from vdx.settings import Settings  # noqa: E402

CONCURRENCY = (1, 16, 64)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class Server:
    def __init__(self, data_dir: Path, database_url: str | None, workers: int) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
        self.env.update(
            {
                "PYTHONPATH": str(ROOT / "src"),
                "VDX_DATA_DIR": str(data_dir),
                "VDX_HTTP_HOST": "127.0.0.1",
                "VDX_HTTP_PORT": str(self.port),
                "VDX_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
                "VDX_LOG_LEVEL": "WARNING",
            }
        )
        if database_url:
            self.env["VDX_DATABASE_URL"] = database_url
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "vdx", *args], env=self.env, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    def start(self) -> None:
        self.cli("migrate")
        self.cli("org", "add", "bench", "--name", "Benchmark")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vdx", "api", "--workers", str(self.workers)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/manage/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)


async def run_load(
    n: int, concurrency: int, op: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]], base: str
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                t0 = time.perf_counter()
                r = await op(client, i)
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code >= 400:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "requests": n,
        "errors": errors,
        "rps": n / wall,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": statistics.fmean(latencies),
    }


async def bench_backend(server: Server, requests: int) -> dict[str, Any]:
    settings = Settings(data_dir=server.data_dir)
    token = mint_token(settings, org="bench", email="bench@vdx.local", roles=["meeting-planner"], ttl=7200)
    headers = {"Authorization": f"Bearer {token}"}
    start = datetime.now(UTC) + timedelta(days=3)
    created: list[str] = []

    async def info(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.get("/api/v2/info", headers=headers)

    async def create(c: httpx.AsyncClient, i: int) -> httpx.Response:
        body = {
            "subject": f"bench {i}",
            "startTime": (start + timedelta(minutes=i)).isoformat(timespec="seconds"),
            "endTime": (start + timedelta(minutes=i + 30)).isoformat(timespec="seconds"),
            "uuid": str(uuid.uuid4()),
        }
        r = await c.post("/api/v2/meetings", json=body, headers=headers)
        if r.status_code == 200:
            created.append(r.json()["uuid"])
        return r

    async def get(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.get(f"/api/v2/meetings/{created[i % len(created)]}", headers=headers)

    # warm up connections, caches and the database's plans
    await run_load(50, 4, info, server.base)
    await run_load(20, 4, create, server.base)
    out: dict[str, Any] = {}
    for conc in CONCURRENCY:
        out[str(conc)] = {
            "info": await run_load(requests, conc, info, server.base),
            "create": await run_load(requests, conc, create, server.base),
            "get": await run_load(requests, conc, get, server.base),
        }
        c = out[str(conc)]
        print(
            f"  c={conc:>2}  info {c['info']['rps']:7.0f}/s p99 {c['info']['p99_ms']:6.1f} ms | "
            f"create {c['create']['rps']:6.0f}/s p99 {c['create']['p99_ms']:6.1f} ms | "
            f"get {c['get']['rps']:6.0f}/s p99 {c['get']['p99_ms']:6.1f} ms",
            flush=True,
        )
    return out


def create_pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    import asyncpg

    name = f"vdx_bench_{uuid.uuid4().hex[:8]}"
    dsn = admin_url

    async def ddl(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(ddl(f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}", lambda: asyncio.run(ddl(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "## API (`bench/api.py`)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}), `vdx api --workers {args.workers}`, "
        f"{args.requests} requests per cell, load generator on the same machine.",
        "",
        f"Command: `.venv/bin/python bench/api.py --requests {args.requests} --workers {args.workers}`",
        "",
        "| database | clients | info req/s | info p99 ms | create req/s | create p50 ms | create p99 ms "
        "| get req/s | get p99 ms | get / info throughput |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, per_c in results.items():
        for conc, c in per_c.items():
            lines.append(
                f"| {backend} | {conc} | {c['info']['rps']:.0f} | {c['info']['p99_ms']:.1f} | "
                f"{c['create']['rps']:.0f} | {c['create']['p50_ms']:.1f} | {c['create']['p99_ms']:.1f} | "
                f"{c['get']['rps']:.0f} | {c['get']['p99_ms']:.1f} | {c['get']['rps'] / c['info']['rps']:.2f} |"
            )
    errors = sum(c[k]["errors"] for per_c in results.values() for c in per_c.values() for k in c)
    lines += ["", f"Errors (HTTP >= 400) over all cells: {errors}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--pg", default=os.environ.get("VDX_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
    )
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--markdown", type=Path, default=ROOT / "BENCHMARKS.md", help="file whose API section is rewritten"
    )
    args = ap.parse_args()

    results: dict[str, Any] = {}
    backends = [b for b in ("sqlite", "postgres") if args.only in (None, b)]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            drop: Callable[[], None] | None = None
            url = None
            if backend == "postgres":
                url, drop = create_pg_database(args.pg)
            server = Server(Path(tmp), url, args.workers)
            print(f"{backend}:", flush=True)
            try:
                server.start()
                results[backend] = asyncio.run(bench_backend(server, args.requests))
            finally:
                server.stop()
                if drop:
                    drop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    md = markdown(results, args)
    if args.markdown:
        write_section(args.markdown, "## API", md)
    print(md)


if __name__ == "__main__":
    main()
