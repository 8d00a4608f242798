"""``make bench``: run every benchmark within its budget and rewrite BENCHMARKS.md's header and summary.

Each benchmark is a module ``bench.<name>`` (the file ``bench/<name>.py``): it takes
``--json PATH`` and ``--budget SECONDS`` (and ``--quick`` for a smoke run), rewrites its own
``## ...`` section of BENCHMARKS.md on a full run, and writes its raw results as JSON. This script
runs them one after the other as subprocesses, shows which one runs and its elapsed time against
its budget, and then writes the part of BENCHMARKS.md above the first section: the machine, the
date, the command, which benchmarks ran (and which failed, with exit status and stderr tail, or are
missing) and a summary table of the headline figures against their targets.

Headline convention: each benchmark's JSON has a top-level ``"headline"`` list of
``{"figure": str, "value": number|null, "unit": str, "min": number|null, "max": number|null,
"target": str|null, "met": bool|null}`` -- ``value`` is the median, ``min``/``max`` over repeats,
``target`` the target as text, ``met`` judged by the benchmark (null: no target or not
measured). For JSON files written before the convention (bench/api.py), the figures
are read from their own keys here.

    python -m bench.run_all [--only NAME ...] [--quick] [--markdown BENCHMARKS.md]
                            [--results DIR] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

# (name, budget in seconds of a full run, what it measures) in the order they run and appear
BENCHMARKS: list[tuple[str, float, str]] = [
    ("api", 160, "booking API latency and throughput"),
    ("capacity", 370, "MCU capacity, codec floor, audio-only"),
    ("join", 60, "join time: SIP, WebRTC bot, browser"),
    ("latency", 75, "added audio and video latency"),
    ("memory", 50, "resident memory, idle and per participant"),
    ("bookday", 305, "a day of 7,000 meetings booked through the API"),
    ("cluster", 150, "three nodes against one: efficiency, failover, redirected joins"),
]
# benchmarks that exist but are not in `make bench` (run them with --only NAME)
OPTIONAL: dict[str, tuple[float, str]] = {
    # minutes on a thin link cannot fit the 20-minute make bench
    "adapt": (600, "a receiver on a 300 kb/s link: time to adapt, freezes, audio, recovery"),
}
QUICK_BUDGET = 60.0
# Seconds of a benchmark's budget that its own --budget does not count: capacity measures each
# cell's floor right before the cell, apart from the rooms' budget (about 4 s a cell).
OUTSIDE_OWN_BUDGET_S = {"capacity": 100.0}
# a smoke run that must first start several processes (the cluster: an api and three nodes)
QUICK_BUDGETS = {"cluster": 150.0}
TOTAL_LIMIT_S = 19.5 * 60  # issue 7: `make bench` in under 20 minutes
HEADLINE_KEYS = {"figure", "value", "unit", "min", "max", "target", "met"}
SUMMARY_HEADING = "## Summary"


@dataclass
class Outcome:
    """What one benchmark did in this invocation."""

    name: str
    budget: float
    what: str
    status: str = "not run"  # ok | failed | timed out | missing | not run
    returncode: int | None = None
    elapsed_s: float = 0.0
    stderr_tail: list[str] = field(default_factory=list)
    json_path: Path | None = None


# ---------------------------------------------------------------------------------------- machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """The machine the figures were taken on, as the header states it."""
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    osr = re.search(r'^PRETTY_NAME="?([^"\n]+)', _read("/etc/os-release"), re.M)
    debian = _read("/etc/debian_version").strip()
    try:
        import av

        pyav = av.__version__
        ffmpeg = str(getattr(av, "ffmpeg_version_info", "")) or "unknown"
        libs = getattr(av, "library_versions", {})
        if "libavcodec" in libs:
            ffmpeg += " (libavcodec " + ".".join(str(x) for x in libs["libavcodec"]) + ")"
    except ImportError:
        pyav, ffmpeg = "not installed", "unknown"
    return {
        "host": platform.node(),
        "cpu": cpu.group(1).strip() if cpu else platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "ram": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "os": (osr.group(1) if osr else "unknown") + (f", Debian {debian}" if debian else ""),
        "python": platform.python_version(),
        "pyav": pyav,
        "ffmpeg": ffmpeg,
        "aiortc": _version("aiortc"),
    }


# -------------------------------------------------------------------------------------- headlines


def _row(
    figure: str,
    value: float | None,
    unit: str,
    target: str | None = None,
    met: bool | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "min": lo,
        "max": hi,
        "target": target,
        "met": met,
    }


def _api_headline(data: dict[str, Any]) -> list[dict[str, Any]]:
    """bench/api.py's keys: {backend: {clients: {info|create|get: {rps, p50_ms, p99_ms, ...}}}}."""
    rows = []
    pg = data.get("postgres", {}).get("16")
    if pg:
        p99 = pg["create"]["p99_ms"]
        ratio = pg["get"]["rps"] / pg["info"]["rps"] if pg["info"]["rps"] else None
        rows.append(_row("API create p99, 16 clients, PostgreSQL", round(p99, 1), "ms", "< 50 ms", p99 < 50))
        rows.append(
            _row(
                "API get throughput / trivial endpoint, 16 clients, PostgreSQL",
                round(ratio, 2) if ratio is not None else None,
                "x",
                ">= 0.5",
                ratio >= 0.5 if ratio is not None else None,
            )
        )
        rows.append(_row("API creates per second, 16 clients, PostgreSQL", round(pg["create"]["rps"]), "1/s"))
    return rows


LEGACY: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "api": _api_headline,
}


def headline(name: str, data: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The benchmark's headline rows, and a problem to report instead when there are none."""
    rows = data.get("headline")
    if rows is None:
        if name in LEGACY:
            try:
                return LEGACY[name](data), None
            except (KeyError, TypeError, ZeroDivisionError) as exc:
                return [], f"its JSON lacks the expected keys ({type(exc).__name__}: {exc})"
        return [], 'no "headline" in its JSON'
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and {"figure", "value"} <= r.keys() for r in rows
    ):
        return [], '"headline" is not a list of {"figure", "value", ...} objects'
    return [{k: r.get(k) for k in HEADLINE_KEYS} for r in rows], None


# --------------------------------------------------------------------------------------- markdown


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _verdict(met: Any) -> str:
    return "**met**" if met is True else "**missed**" if met is False else "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _summary_rows(o: Outcome) -> list[str]:
    """Its rows of the summary table: one per headline figure, or one saying why there are none."""
    if o.status not in ("ok", "earlier run"):
        state = o.status if o.returncode is None else f"{o.status} (exit status {o.returncode})"
        return [f"| {o.name} | {_cell(o.what)}: **{state}** | - | - | - | - | - |"]
    try:
        data = json.loads(o.json_path.read_text()) if o.json_path else None
    except (OSError, json.JSONDecodeError) as exc:
        data, problem = None, f"its JSON could not be read ({exc})"
    else:
        problem = None if data is not None else "it wrote no JSON"
    rows: list[dict[str, Any]] = []
    if isinstance(data, dict):
        rows, problem = headline(o.name, data)
    elif problem is None:
        problem = "its JSON is not an object"
    if problem or not rows:
        return [
            f"| {o.name} | {_cell(o.what)}: no headline ({_cell(problem or 'empty list')}) | - | - | - | - | - |"
        ]
    when = " (earlier run)" if o.status == "earlier run" else ""
    lines = []
    for r in rows:
        spread = "-" if r["min"] is None or r["max"] is None else f"{_num(r['min'])}-{_num(r['max'])}"
        lines.append(
            f"| {o.name}{when} | {_cell(str(r['figure']))} | {_num(r['value'])} | {spread} | {_cell(str(r['unit'] or ''))} "
            f"| {_cell(str(r['target'] or '-'))} | {_verdict(r['met'])} |"
        )
    return lines


def _status_rows(outcomes: list[Outcome]) -> tuple[list[str], list[str]]:
    """The table of each benchmark's status and time, and the notes on failed and missing ones."""
    lines = ["", "| benchmark | status | time used / budget |", "|---|---|---|"]
    notes: list[str] = []
    for o in outcomes:
        status = (
            o.status
            if o.returncode is None or o.status == "ok"
            else f"{o.status}, exit status {o.returncode}"
        )
        used = (
            "-"
            if o.status in ("missing", "not run", "earlier run")
            else f"{o.elapsed_s:.0f} s / {o.budget:.0f} s"
        )
        lines.append(f"| {o.name} | {status} | {used} |")
        if o.status in ("failed", "timed out"):
            # an indented block: no stderr line can start a "## " section of the file
            tail = [f"    {line}" for line in o.stderr_tail] or ["    (no stderr)"]
            notes += [
                f"**{o.name} {o.status}** (exit status {o.returncode}); the end of its stderr:",
                "",
                *tail,
                "",
            ]
        elif o.status == "missing":
            notes.append(f"**{o.name} missing**: `bench/{o.name}.py` does not exist yet.")
            notes.append("")
    return lines, notes


def header_markdown(
    info: dict[str, str], started: datetime, command: str, outcomes: list[Outcome], quick: bool
) -> str:
    """The part of BENCHMARKS.md above the benchmarks' own sections."""
    total = sum(o.elapsed_s for o in outcomes)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {started:%Y-%m-%d %H:%M} UTC"
        + (" (**quick smoke run: its figures mean nothing**)" if quick else "")
        + f"; {total / 60:.1f} min in all.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM; {info['kernel']}; {info['os']}; "
        f"Python {info['python']}, PyAV {info['pyav']}, FFmpeg {info['ffmpeg']}, aiortc {info['aiortc']} "
        f"(host `{info['host']}`).",
        "",
        "Each benchmark's section below states the command that reproduces it; its raw results are in "
        "`bench/results/<name>.json` and its plots in `bench/results/<name>*.png`.",
        "",
        SUMMARY_HEADING,
        "",
        "| benchmark | figure | median | min-max | unit | target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines += _summary_rows(o)
    status_lines, notes = _status_rows(outcomes)
    lines += status_lines
    if notes:
        lines += ["", *notes]
    return "\n".join(lines).rstrip("\n") + "\n"


def _sections(text: str) -> tuple[str, list[str]]:
    """Split BENCHMARKS.md into the header (before the first ``## ``) and its ``## `` sections."""
    parts = re.split(r"(?m)^(?=## )", text)
    return parts[0], [p.rstrip("\n") + "\n" for p in parts[1:]]


def write_benchmarks_md(path: Path, header: str) -> None:
    """Replace the header and summary, keep every benchmark's section, ordered as the set runs."""
    text = path.read_text() if path.exists() else ""
    _, sections = _sections(text)
    header_sections = {s.split("\n", 1)[0] for s in _sections(header)[1]}
    sections = [s for s in sections if s.split("\n", 1)[0] not in header_sections]
    order = [name for name, _, _ in BENCHMARKS] + list(OPTIONAL)

    def rank(section: str) -> int:
        m = re.search(r"`bench/(\w+)\.py`", section.split("\n", 1)[0])
        return order.index(m.group(1)) if m and m.group(1) in order else len(order)

    sections.sort(key=rank)  # stable: unknown sections keep their order, after the known ones
    path.write_text("\n".join([header.rstrip("\n") + "\n", *sections]).rstrip("\n") + "\n")


# ------------------------------------------------------------------------------------------ runs


def _accepts(script: Path, option: str) -> bool:
    """Whether the benchmark script declares ``option`` (read from its source: no start-up cost)."""
    return f'"{option}"' in script.read_text()


def _command(name: str, bench_dir: Path) -> list[str]:
    """How to start benchmark ``name``: a module of this package, or a stand-alone script in
    another ``bench_dir`` (the orchestrator's own tests bring scripts of their own)."""
    if bench_dir.resolve() == BENCH.resolve():
        return [sys.executable, "-m", f"bench.{name}"]
    return [sys.executable, str(bench_dir / f"{name}.py")]


def _echo(
    proc: subprocess.Popen[str], name: str, log: Callable[[str], None]
) -> tuple[list[threading.Thread], list[str]]:
    """Threads that log the benchmark's stdout and stderr line by line as they come; the list
    they fill keeps the last 40 stderr lines (what a failure is reported with)."""
    stderr: list[str] = []

    def pump(stream: Any, keep: list[str] | None) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if keep is not None:
                keep.append(line)
                del keep[:-40]
            log(f"[{name}] {line}")

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, None), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, stderr), daemon=True),
    ]
    for t in threads:
        t.start()
    return threads, stderr


def _supervise(
    proc: subprocess.Popen[str], o: Outcome, started: float, hard_limit: float, log: Callable[[str], None]
) -> bool:
    """Wait for the benchmark, noting its elapsed time every 30 s; past ``hard_limit`` its whole
    session is stopped (TERM, then KILL). Whether it was stopped."""
    next_note = 30.0
    while proc.poll() is None:
        elapsed = time.monotonic() - started
        if elapsed > hard_limit:
            log(f"[{o.name}] over its hard limit of {hard_limit:.0f} s: stopping it")
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return True
        if elapsed >= next_note:
            log(f"[{o.name}] running: {elapsed:.0f} s of its {o.budget:.0f} s budget")
            next_note += 30
        time.sleep(0.5)
    return False


def run_one(
    o: Outcome,
    results: Path,
    markdown: Path,
    quick: bool,
    hard_limit: float,
    log: Callable[[str], None],
    bench_dir: Path = BENCH,
) -> None:
    """Run benchmark ``o.name`` of ``bench_dir`` with its budget, echoing its output, stopping it
    past ``hard_limit``."""
    script = bench_dir / f"{o.name}.py"
    if not script.exists():
        o.status = "missing"
        log(f"[{o.name}] MISSING: bench/{o.name}.py does not exist; skipped")
        return
    o.json_path = results / f"{o.name}.json"
    o.json_path.unlink(missing_ok=True)  # an old file must not pass for this run's results
    own = o.budget if quick else o.budget - OUTSIDE_OWN_BUDGET_S.get(o.name, 0.0)
    cmd = [*_command(o.name, bench_dir), "--json", str(o.json_path), "--budget", f"{own:g}"]
    if quick:
        cmd.append("--quick")
    if _accepts(script, "--markdown"):
        cmd += ["--markdown", str(markdown)]
    log(f"[{o.name}] start ({o.what}); budget {o.budget:.0f} s: {' '.join(cmd[1:])}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    threads, stderr = _echo(proc, o.name, log)
    timed_out = _supervise(proc, o, started, hard_limit, log)
    for t in threads:
        t.join(5)
    o.elapsed_s = time.monotonic() - started
    o.returncode = proc.returncode
    o.stderr_tail = stderr[-15:]
    o.status = "timed out" if timed_out else "failed" if proc.returncode != 0 else "ok"
    log(
        f"[{o.name}] {o.status.upper()} in {o.elapsed_s:.0f} s (budget {o.budget:.0f} s), exit status {o.returncode}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [n for n, _, _ in BENCHMARKS] + list(OPTIONAL)
    ap.add_argument(
        "--only", nargs="+", choices=names, metavar="NAME", help=f"run these ({', '.join(names)})"
    )
    ap.add_argument(
        "--quick", action="store_true", help="pass --quick to each (smoke run; temp results and file)"
    )
    ap.add_argument(
        "--markdown", type=Path, help="BENCHMARKS.md to rewrite (default the repo's; --quick: a temp file)"
    )
    ap.add_argument(
        "--results", type=Path, help="JSON directory (default bench/results; --quick: a temp dir)"
    )
    ap.add_argument(
        "--scale", type=float, default=1.0, help="multiply every budget (e.g. 0.5 for a shorter run)"
    )
    ap.add_argument(
        "--bench-dir", type=Path, default=BENCH, help="where the <name>.py scripts are (default bench/)"
    )
    args = ap.parse_args(argv)
    if args.scale <= 0:
        ap.error("--scale must be positive")
    chosen = args.only or [n for n, _, _ in BENCHMARKS]
    table = {n: (b, w) for n, b, w in BENCHMARKS} | OPTIONAL
    # a quick run leaves the repo's files alone: it writes to a temporary directory it names at the end
    need_tmp = args.quick and (args.results is None or args.markdown is None)
    tmp = Path(tempfile.mkdtemp(prefix="vdx-bench-")) if need_tmp else None
    results = args.results or (tmp / "results" if tmp else BENCH / "results")
    markdown = args.markdown or (tmp / "BENCHMARKS.md" if tmp else ROOT / "BENCHMARKS.md")
    results.mkdir(parents=True, exist_ok=True)
    outcomes = [
        Outcome(
            n, QUICK_BUDGETS.get(n, QUICK_BUDGET) if args.quick else table[n][0] * args.scale, table[n][1]
        )
        for n in names
        if n in chosen
    ]
    # the rest of the set keeps its sections in BENCHMARKS.md, so the summary keeps its figures
    earlier = [Outcome(n, b, w, status="earlier run") for n, b, w in BENCHMARKS if n not in chosen]
    earlier += [
        Outcome(n, b, w, status="earlier run")
        for n, (b, w) in OPTIONAL.items()
        if n not in chosen and (results / f"{n}.json").exists()
    ]
    for o in earlier:
        if (results / f"{o.name}.json").exists():
            o.json_path = results / f"{o.name}.json"
        else:
            o.status = "not run"
    command = (
        "make bench"
        if argv is None and len(sys.argv) == 1
        else "python -m bench.run_all " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    started = datetime.now(UTC)
    t0 = time.monotonic()

    def log(line: str) -> None:
        print(f"{time.monotonic() - t0:6.0f}s {line}", flush=True)

    total_budget = sum(o.budget for o in outcomes)
    log(f"benchmarks: {', '.join(o.name for o in outcomes)}; budgets add up to {total_budget / 60:.1f} min")
    missing = [o.name for o in outcomes if not (args.bench_dir / f"{o.name}.py").exists()]
    if missing:
        log(f"MISSING (will be reported, not run): {', '.join(f'bench/{m}.py' for m in missing)}")
    cap = TOTAL_LIMIT_S * args.scale
    for o in outcomes:
        # a benchmark that overruns is stopped (a quarter over its budget plus start-up), and the
        # whole set keeps to its 20 minutes: what would start past that is reported, not run
        left = cap - (time.monotonic() - t0)
        if not args.quick and left < min(o.budget, 60):
            o.status = "skipped (20-minute total used up)"
            log(f"[{o.name}] SKIPPED: only {left:.0f} s of the {cap / 60:.0f}-minute total left")
            continue
        limit = o.budget * 1.25 + 30 if args.quick else min(o.budget * 1.25 + 30, left)
        run_one(o, results, markdown, args.quick, limit, log, args.bench_dir)
    order = {n: i for i, n in enumerate(names)}
    everything = sorted(outcomes + earlier, key=lambda o: order[o.name])
    header = header_markdown(machine(), started, command, everything, args.quick)
    write_benchmarks_md(markdown, header)
    log(f"wrote the header and summary of {markdown}")
    print(header)
    bad = [o for o in outcomes if o.status != "ok"]
    for o in bad:
        log(
            f"NOT OK: {o.name}: {o.status}"
            + (f" (exit status {o.returncode})" if o.returncode is not None else "")
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
