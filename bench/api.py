"""API benchmark (not a test): create and get throughput and latency beside a trivial endpoint.

For each database (a SQLite file, PostgreSQL) it starts a real ``vdx api`` process (``--workers``
on PostgreSQL, one process on SQLite, as each is deployed), then at 1, 16 and 64 concurrent
clients measures, back to back in one round and for a fixed window each:
  - ``GET /v2/info``                   the trivial authenticated endpoint (token check only)
  - ``POST /v2/meetings``              create (one transaction: meeting, VMR, outbox events)
  - ``GET /v2/meetings/{uuid}``        get a meeting
  - ``GET /v2/scheduling-info/{uuid}`` get a scheduling info with its meeting
Throughput is completed requests per second of wall time; latencies are client-side p50/p99; CPU
per request is the server's (``vdx api`` and its workers), PostgreSQL's and the load generator's
own, from /proc over the window. The round is repeated and each figure reported as min / median
/ max; the trivial endpoint is measured in the same round, so the get/info ratios hold on a noisy
machine.

The load generator is aiohttp: it shares the machine with the server, and costs it far less CPU
per request than httpx, whose pool scales badly with connections.

    python -m bench.api            # full run: BENCHMARKS.md + bench/results/api.*
    python -m bench.api --quick    # SQLite, 1 and 4 clients, writes nothing
    options: --budget S, --repeats N, --workers N, --only sqlite|postgres, --json PATH,
             --pg postgresql://postgres@127.0.0.1/postgres (or VDX_BENCH_DATABASE_URL)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.report import percentile, write_section
from bench.served_node import Served, create_pg_database, postgres_cpu, self_cpu
from vdx.settings import Settings
from vdx.tokens import mint_token

ROOT = Path(__file__).resolve().parents[1]

HEADING = "## API (`bench/api.py`)"
OPS = ("info", "create", "get", "get_si")
OP_LABEL = {
    "info": "GET /v2/info (trivial)",
    "create": "POST /v2/meetings",
    "get": "GET /v2/meetings/{uuid}",
    "get_si": "GET /v2/scheduling-info/{uuid}",
}
# seconds a backend costs besides its measured cells: migrations, two workers starting, warm-up
STARTUP_ALLOWANCE = 20.0

# one request: the HTTP status
Op = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


# Each cell's window is cut into slices, the endpoints' slices of one concurrency taking turns: a
# burst of other work on the shared machine then falls on all of them alike, and the figures that
# matter (each endpoint against the trivial one) are ratios.
SLICES = 3


@dataclass
class Slice:
    """What ``concurrency`` clients did in one slice of a cell's window."""

    latencies_ms: list[float]
    errors: int
    wall: float
    server_cpu: float
    client_cpu: float
    db_cpu: float | None  # None on SQLite, where the database works inside the server


async def run_slice(
    server: Served, client: aiohttp.ClientSession, concurrency: int, op: Op, seconds: float
) -> Slice:
    """``concurrency`` clients issue requests back to back for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors, counter
        while time.perf_counter() < deadline:
            i = counter
            counter += 1
            t0 = time.perf_counter()
            status = await op(client, i)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status >= 400:
                errors += 1

    on_postgres = "VDX_DATABASE_URL" in server.env
    server_cpu, client_cpu = server.cpu_seconds(), self_cpu()
    db_cpu = postgres_cpu() if on_postgres else 0.0
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Slice(
        latencies,
        errors,
        time.perf_counter() - started,
        server.cpu_seconds() - server_cpu,
        self_cpu() - client_cpu,
        postgres_cpu() - db_cpu if on_postgres else None,
    )


def cell(slices: list[Slice]) -> dict[str, Any]:
    """One cell's figures from its slices."""
    latencies = [ms for s in slices for ms in s.latencies_ms]
    n = len(latencies)
    figures = {
        "requests": n,
        "errors": sum(s.errors for s in slices),
        "rps": n / sum(s.wall for s in slices),
        "p50_ms": percentile(latencies, 50),
        "mean_ms": statistics.fmean(latencies),
        "p99_ms": percentile(latencies, 99),
        "server_cpu_ms": sum(s.server_cpu for s in slices) * 1000 / n,
        "client_cpu_ms": sum(s.client_cpu for s in slices) * 1000 / n,
    }
    db = [s.db_cpu for s in slices if s.db_cpu is not None]
    if db:
        figures["db_cpu_ms"] = sum(db) * 1000 / n
    return figures


async def bench_backend(
    server: Served, concurrency: tuple[int, ...], repeats: int, window: float
) -> list[dict[str, dict[str, dict[str, Any]]]]:
    """Rounds of [clients][op] -> one window's figures."""
    settings = Settings(data_dir=server.data_dir)
    token = mint_token(settings, org="bench", email="bench@vdx.local", roles=["meeting-planner"], ttl=7200)
    headers = {"Authorization": f"Bearer {token}"}
    start = datetime.now(UTC) + timedelta(days=3)
    created: list[str] = []
    serial = iter(range(10**9))

    async def status(c: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> int:
        async with c.request(method, server.base_url + path, headers=headers, **kw) as r:
            await r.read()
            return r.status

    async def info(c: aiohttp.ClientSession, i: int) -> int:
        return await status(c, "GET", "/api/v2/info")

    async def create(c: aiohttp.ClientSession, i: int) -> int:
        n = next(serial)
        body = {
            "subject": f"bench {n}",
            "startTime": (start + timedelta(minutes=n)).isoformat(timespec="seconds"),
            "endTime": (start + timedelta(minutes=n + 30)).isoformat(timespec="seconds"),
            "uuid": str(uuid.uuid4()),
            "labels": ["bench"],
        }
        async with c.post(server.base_url + "/api/v2/meetings", json=body, headers=headers) as r:
            answer = await r.json()
            if r.status == 200:
                created.append(answer["uuid"])
            return r.status

    async def get(c: aiohttp.ClientSession, i: int) -> int:
        return await status(c, "GET", f"/api/v2/meetings/{created[i % len(created)]}")

    async def get_si(c: aiohttp.ClientSession, i: int) -> int:
        return await status(c, "GET", f"/api/v2/scheduling-info/{created[i % len(created)]}")

    ops: dict[str, Op] = {"info": info, "create": create, "get": get, "get_si": get_si}
    rounds: list[dict[str, dict[str, dict[str, Any]]]] = []
    connector = aiohttp.TCPConnector(limit=max(concurrency))
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        # warm up connections, both workers' caches and the database's plans
        for op in ops.values():
            await run_slice(server, client, 4, op, min(window, 1.0))
        for rep in range(repeats):
            round_: dict[str, dict[str, dict[str, Any]]] = {}
            for conc in concurrency:
                slices: dict[str, list[Slice]] = {name: [] for name in ops}
                for _ in range(SLICES):
                    for name, op in ops.items():
                        slices[name].append(await run_slice(server, client, conc, op, window / SLICES))
                round_[str(conc)] = {name: cell(s) for name, s in slices.items()}
                c = round_[str(conc)]
                print(
                    f"  round {rep + 1} c={conc:>2}  "
                    + " | ".join(f"{k} {c[k]['rps']:6.0f}/s p99 {c[k]['p99_ms']:7.1f} ms" for k in OPS),
                    flush=True,
                )
            rounds.append(round_)
    return rounds


def summarise(rounds: list[dict[str, dict[str, dict[str, Any]]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """[clients][op] -> min/median/max over the rounds of throughput, p50, p99 and (for the
    others) the throughput ratio to the trivial endpoint within each round."""

    def mmm(values: list[float]) -> dict[str, float]:
        return {"min": min(values), "median": statistics.median(values), "max": max(values)}

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for conc in rounds[0]:
        out[conc] = {}
        for op in OPS:
            cells = [r[conc][op] for r in rounds]
            entry: dict[str, Any] = {
                "rps": mmm([c["rps"] for c in cells]),
                "p50_ms": mmm([c["p50_ms"] for c in cells]),
                "p99_ms": mmm([c["p99_ms"] for c in cells]),
                "p99_to_mean": mmm([c["p99_ms"] / c["mean_ms"] for c in cells]),
                "server_cpu_ms": mmm([c["server_cpu_ms"] for c in cells]),
                "client_cpu_ms": mmm([c["client_cpu_ms"] for c in cells]),
                "requests": sum(c["requests"] for c in cells),
                "errors": sum(c["errors"] for c in cells),
            }
            if "db_cpu_ms" in cells[0]:
                entry["db_cpu_ms"] = mmm([c["db_cpu_ms"] for c in cells])
            if op != "info":
                entry["ratio_to_info"] = mmm([r[conc][op]["rps"] / r[conc]["info"]["rps"] for r in rounds])
            out[conc][op] = entry
    return out


def fmt(m: dict[str, float], digits: int = 0) -> str:
    return f"{m['median']:.{digits}f} ({m['min']:.{digits}f} to {m['max']:.{digits}f})"


def verdicts(summary: dict[str, Any]) -> list[str]:
    """The booking-API issue's targets, judged on the medians of this run."""
    lines = []
    pg = summary.get("postgres")
    if pg and "16" in pg:
        p99 = pg["16"]["create"]["p99_ms"]["median"]
        lines.append(
            f"- create p99 under 50 ms at 16 clients on PostgreSQL: **{'met' if p99 < 50 else 'missed'}** "
            f"(median p99 {p99:.1f} ms)."
        )
        lines.append(create_budget(pg["16"], clients=16))
    worst: list[tuple[float, str]] = []
    for backend, per_c in summary.items():
        for conc, ops in per_c.items():
            for op in ("get", "get_si"):
                worst.append((ops[op]["ratio_to_info"]["median"], f"{backend}, {conc} clients, {op}"))
    if worst:
        low = min(worst)
        ok = all(r >= 0.5 for r, _ in worst)
        lines.append(
            f"- gets at no less than half the trivial endpoint's throughput: **{'met' if ok else 'missed'}** "
            f"(lowest median ratio {low[0]:.2f}: {low[1]})."
        )
    return lines


def create_budget(cells: dict[str, Any], clients: int, target_ms: float = 50.0) -> str:
    """What the create target asks, from the PostgreSQL cells of ``clients`` clients: the
    throughput a p99 under ``target_ms`` needs, beside what the measured CPU per create lets the
    machine do."""
    create, info = cells["create"], cells["info"]
    tail = create["p99_to_mean"]["median"]
    # closed loop: mean latency = clients / throughput, and p99 = tail x mean
    needed = clients * tail * 1000 / target_ms
    cpu = {k: create[k]["median"] for k in ("server_cpu_ms", "db_cpu_ms", "client_cpu_ms") if k in create}
    cores = os.cpu_count() or 1
    ceiling = cores * 1000 / sum(cpu.values())
    gets = max(cells[op]["ratio_to_info"]["median"] for op in ("get", "get_si"))
    return (
        f"- What that target asks of this machine: {clients} clients that never pause see a mean "
        f"latency of {clients} / throughput, and a create's p99 was {tail:.1f}x its mean (the trivial "
        f"endpoint's {info['p99_to_mean']['median']:.1f}x), so p99 under {target_ms:.0f} ms needs about "
        f"{needed:.0f} creates/s: {needed / info['rps']['median']:.2f}x the trivial endpoint's "
        f"throughput in the same rounds, where the gets (one SELECT each) reach {gets:.2f}x. A create "
        f"costs {cpu.get('server_cpu_ms', 0):.2f} ms of CPU in the server, "
        f"{cpu.get('db_cpu_ms', 0):.2f} ms in PostgreSQL and {cpu.get('client_cpu_ms', 0):.2f} ms in the "
        f"load generator; at that cost the {cores} cores allow at most {ceiling:.0f} creates/s."
    )


def headline(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows bench/run_all.py puts in BENCHMARKS.md's summary (its headline convention)."""

    def row(
        figure: str, m: dict[str, float], unit: str, target: str | None, met: bool | None
    ) -> dict[str, Any]:
        return {
            "figure": figure,
            "value": round(m["median"], 2),
            "unit": unit,
            "min": round(m["min"], 2),
            "max": round(m["max"], 2),
            "target": target,
            "met": met,
        }

    rows = []
    pg = summary.get("postgres", {}).get("16")
    if pg:
        p99 = pg["create"]["p99_ms"]
        rows.append(row("API create p99, 16 clients, PostgreSQL", p99, "ms", "< 50 ms", p99["median"] < 50))
        rows.append(
            row("API creates per second, 16 clients, PostgreSQL", pg["create"]["rps"], "1/s", None, None)
        )
        rows.append(
            row(
                "API server CPU per create, 16 clients, PostgreSQL",
                pg["create"]["server_cpu_ms"],
                "ms",
                None,
                None,
            )
        )
    ratios = [
        (ops[op]["ratio_to_info"], f"{backend}, {conc} clients, {op}")
        for backend, per_c in summary.items()
        for conc, ops in per_c.items()
        for op in ("get", "get_si")
    ]
    if ratios:
        low, where = min(ratios, key=lambda r: r[0]["median"])
        rows.append(
            row(
                f"API get throughput / trivial endpoint, lowest cell ({where})",
                low,
                "x",
                ">= 0.5",
                low["median"] >= 0.5,
            )
        )
    return rows


def _load(values: list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def markdown(summary: dict[str, Any], meta: dict[str, Any], plot: str | None) -> str:
    lines = [
        HEADING,
        "",
        f"Run {meta['date']} on {meta['host']} ({meta['cores']} cores, Python {meta['python']}), "
        f"`vdx api --workers {meta['workers']}` on PostgreSQL and `vdx api --workers 1` on SQLite (one "
        "process, as SQLite is deployed: its writers take turns within a process), and the load "
        "generator (aiohttp) on the same machine; "
        f"{meta['repeats']} rounds, each cell a {meta['window']:.1f}-{meta['window_max']:.1f} s window in "
        f"{SLICES} slices, the endpoints' slices taking turns; "
        "figures are the median (min to max) over the rounds. The trivial endpoint runs in the same "
        "round as the others, so compare the ratios rather than absolute figures across runs. CPU per "
        "request: the server (`vdx api` and its workers), PostgreSQL (all its processes on this machine) and "
        "the load generator, from /proc over each window.",
        "",
        f"Load average (1/5/15 min) before the run {_load(meta['load_before'])}, after it "
        f"{_load(meta['load_after'])}: a load above the core count means other work shared the "
        "machine and the figures are lower than the API can do.",
        "",
        f"Command: `{meta['command']}`",
        "",
        "| database | clients | endpoint | req/s | p50 ms | p99 ms | throughput / trivial | server CPU ms/req | database CPU ms/req | load generator CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, per_c in summary.items():
        for conc, ops in per_c.items():
            for op in OPS:
                e = ops[op]
                ratio = fmt(e["ratio_to_info"], 2) if "ratio_to_info" in e else "1"
                db = fmt(e["db_cpu_ms"], 2) if "db_cpu_ms" in e else "in the server"
                lines.append(
                    f"| {backend} | {conc} | `{OP_LABEL[op]}` | {fmt(e['rps'])} | {fmt(e['p50_ms'], 1)} | "
                    f"{fmt(e['p99_ms'], 1)} | {ratio} | {fmt(e['server_cpu_ms'], 2)} | {db} | "
                    f"{fmt(e['client_cpu_ms'], 2)} |"
                )
    errors = sum(e["errors"] for per_c in summary.values() for ops in per_c.values() for e in ops.values())
    lines += ["", f"Errors (HTTP >= 400) over all cells: {errors}.", ""]
    judged = verdicts(summary)
    if judged:
        lines += ["Against the targets of the booking-API issue:", "", *judged, ""]
    if plot:
        lines += [f"![API throughput and p99 latency]({plot})", ""]
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(summary)
    fig, axes = plt.subplots(len(backends), 2, figsize=(11, 4 * len(backends)), squeeze=False)
    for row, backend in enumerate(backends):
        per_c = summary[backend]
        xs = [int(c) for c in per_c]
        for col, (key, title) in enumerate((("rps", "requests/s"), ("p99_ms", "p99 latency, ms"))):
            ax = axes[row][col]
            for op in OPS:
                med = [per_c[str(x)][op][key]["median"] for x in xs]
                lo = [m - per_c[str(x)][op][key]["min"] for m, x in zip(med, xs, strict=True)]
                hi = [per_c[str(x)][op][key]["max"] - m for m, x in zip(med, xs, strict=True)]
                ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=3, label=OP_LABEL[op])
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(x) for x in xs])
            if key == "p99_ms":
                ax.set_yscale("log")
                ax.axhline(50, color="grey", linestyle=":", linewidth=1)
            ax.set_title(f"{backend}: {title}")
            ax.set_xlabel("concurrent clients")
            ax.grid(True, alpha=0.3)
        axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def command(args: argparse.Namespace) -> str:
    parts = ["python -m bench.api"]
    if args.quick:
        parts.append("--quick")
    if args.budget != 180:
        parts.append(f"--budget {args.budget:g}")
    if args.repeats is not None:
        parts.append(f"--repeats {args.repeats}")
    if args.workers != 2:
        parts.append(f"--workers {args.workers}")
    if args.only:
        parts.append(f"--only {args.only}")
    return " ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run (SQLite, 1 and 4 clients)")
    ap.add_argument("--budget", type=float, default=180.0, help="soft time budget of a full run, seconds")
    ap.add_argument("--repeats", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--workers", type=int, default=2, help="API worker processes on PostgreSQL (SQLite: 1)")
    ap.add_argument(
        "--pg", default=os.environ.get("VDX_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
    )
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    ap.add_argument(
        "--json", type=Path, help="raw results (default: bench/results/api.json; none with --quick)"
    )
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (default: it; none with --quick)")
    args = ap.parse_args()

    if args.quick:
        backends = [args.only or "sqlite"]
        concurrency: tuple[int, ...] = (1, 4)
        repeats = args.repeats or 1
        window = 0.3
        workers = 1
    else:
        backends = [b for b in ("sqlite", "postgres") if args.only in (None, b)]
        concurrency = (1, 16, 64)
        repeats = args.repeats or 3
        workers = args.workers
        window = 0.0  # sized per backend from what the budget has left
    started = time.monotonic()
    load_before = os.getloadavg()
    rounds_by_backend: dict[str, Any] = {}
    windows: list[float] = []
    startup = STARTUP_ALLOWANCE
    for n, backend in enumerate(backends):
        with tempfile.TemporaryDirectory() as tmp:
            drop: Callable[[], None] | None = None
            url = None
            t0 = time.monotonic()
            if backend == "postgres":
                url, drop = create_pg_database(args.pg)
            # SQLite as it is deployed: one process, whose writers queue for SQLite's one write
            # lock in turn (vdx.store.write_queue); across processes SQLite's busy handler decides
            server = Served(Path(tmp), api_workers=workers if url else 1, database_url=url)
            print(f"{backend}:", flush=True)
            try:
                server.prepare()
                server.start()
                if not args.quick:
                    startup = max(startup, time.monotonic() - t0)
                    left = args.budget - (time.monotonic() - started) - startup * (len(backends) - n - 1)
                    cells = (len(backends) - n) * repeats * len(concurrency) * (len(OPS) + 1)  # + warm-up
                    # 75 %: a window's last requests finish after it, and shutdowns take time too
                    window = max(0.5, min(5.0, 0.75 * left / cells))
                windows.append(window)
                rounds_by_backend[backend] = asyncio.run(bench_backend(server, concurrency, repeats, window))
            finally:
                server.stop()
                if drop:
                    drop()
    summary = {b: summarise(r) for b, r in rounds_by_backend.items()}
    meta = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "host": platform.node(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "workers": workers,
        "repeats": repeats,
        "window": min(windows),
        "window_max": max(windows),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "concurrency": list(concurrency),
        "seconds": round(time.monotonic() - started, 1),
        "command": command(args),
        "quick": args.quick,
    }
    result = {"meta": meta, "headline": headline(summary), "summary": summary, "rounds": rounds_by_backend}
    json_path = args.json or (None if args.quick else ROOT / "bench/results/api.json")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
    plot_rel = "bench/results/api.png"
    if not args.quick:
        plot(summary, ROOT / plot_rel)
    md = markdown(summary, meta, None if args.quick else plot_rel)
    md_path = args.markdown or (None if args.quick else ROOT / "BENCHMARKS.md")
    if md_path:
        write_section(md_path, HEADING, md)
    print(md)
    print(f"({meta['seconds']} s)")


if __name__ == "__main__":
    main()
