"""What the benchmarks have in common in their results: BENCHMARKS.md (each benchmark replaces its
own section, keeping the rest), the machine a run was taken on, min/median/max and percentiles,
the ``"headline"`` rows bench/run_all.py reads, and the JSON file."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def summarise(values: list[float]) -> dict[str, float]:
    """min, median and max of a non-empty list (what every figure reports)."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def machine(load_at: str = "end") -> dict[str, Any]:
    """The machine a benchmark ran on, for its JSON and its section; the load average is taken
    now and stored as ``load_avg_at_<load_at>`` ("start" or "end" of the run)."""
    import av

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "av": av.__version__,
        f"load_avg_at_{load_at}": os.getloadavg(),
    }


def command(name: str, quick: bool, *options: str) -> str:
    """The command that reproduces a run, as its JSON and its section state it."""
    return " ".join([f"python -m bench.{name}", *(["--quick"] if quick else []), *options])


def run_info(name: str, args: Any, started: float, *options: str) -> dict[str, Any]:
    """What a result states about its run, taken at its end: the machine (``load_avg_at_end``),
    the date, the command that reproduces it (``options`` after --quick) and its seconds
    (``started``: its ``time.monotonic()``)."""
    return {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command(name, args.quick, *options),
        "duration_s": time.monotonic() - started,
    }


def section_head(heading: str, result: dict[str, Any]) -> list[str]:
    """A section's first lines: its heading; when, where and how long (``result`` has "date",
    "duration_s" and a ``machine(load_at="end")``); the command that reproduces it."""
    m = result["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_avg_at_end"])
    return [
        heading,
        "",
        f"Run {result['date'][:16].replace('T', ' ')} UTC on {m['host']} ({m['cpus']} vCPU, {m['cpu_model']}), "
        f"Python {m['python']}, PyAV {m['av']}; {result['duration_s']:.0f} s (load average {load} at the end).",
        "",
        f"Command: `{result['command']}`",
        "",
    ]


def output_args(ap: argparse.ArgumentParser, name: str) -> None:
    """--json, --plot and --from-json of a benchmark with one plot (``--markdown`` each script
    declares itself: bench/run_all.py looks for it in the script's source)."""
    ap.add_argument(
        "--json", type=Path, help=f"raw results (default bench/results/{name}.json; none with --quick)"
    )
    ap.add_argument("--plot", type=Path, help=f"PNG (default bench/results/{name}.png; none with --quick)")
    ap.add_argument("--from-json", type=Path, help="render the section and plot of an earlier run")


def default_outputs(args: Any, name: str) -> None:
    """A full run's files where none were named: bench/results/<name>.json and .png, and the
    repository's BENCHMARKS.md (``args`` has json, markdown and plot)."""
    args.json = args.json or ROOT / f"bench/results/{name}.json"
    args.markdown = args.markdown or BENCHMARKS_MD
    args.plot = args.plot or ROOT / f"bench/results/{name}.png"


def conclude(args: Any, result: dict[str, Any], publish: Callable[[dict[str, Any], Any, Any], None]) -> None:
    """The end of a run: its JSON where ``args.json`` names a file, then ``publish(result,
    args.markdown, args.plot)`` (its section and plot)."""
    if args.json:
        write_json(args.json, result)
    publish(result, args.markdown, args.plot)


def republish(args: Any, publish: Callable[[dict[str, Any], Any, Any], None]) -> None:
    """``--from-json``: the section and plot of an earlier run (BENCHMARKS.md unless named)."""
    publish(json.loads(args.from_json.read_text()), args.markdown or BENCHMARKS_MD, args.plot)


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (plots are PNG files; no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: int = 110) -> None:
    """Lay ``fig`` out, write it as a PNG (making its folder) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section whose ``## `` heading starts with ``heading`` (or append it)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "\n".join([*lines[:start], *section.rstrip("\n").splitlines(), "", *lines[end:]])
    path.write_text(new.rstrip("\n") + "\n")


def fmt_range(s: dict[str, float] | None, digits: int = 0) -> str:
    """``median (min-max)``; "-" when there is no figure."""
    if not s:
        return "-"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def headline_row(
    figure: str,
    stats: dict[str, float] | None,
    unit: str,
    target: float | None = None,
    below: bool = True,
    digits: int = 1,
) -> dict[str, object]:
    """One row of a benchmark's top-level ``"headline"`` (bench/run_all.py's summary): the median
    as value, min and max over repeats, issue 7's target as text and whether it was met."""
    value = None if stats is None else round(stats["median"], digits)
    met = None
    if target is not None and value is not None:
        met = value < target if below else value >= target
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "min": None if stats is None else round(stats["min"], digits),
        "max": None if stats is None else round(stats["max"], digits),
        "target": None if target is None else f"{'<' if below else '>='} {target:g} {unit}",
        "met": met,
    }


def section_end(lines: list[str], failed: str, failures: list[str], picture: str, refs: list[str]) -> str:
    """A section's last lines: what failed (``failed`` introduces the list), then its plots."""
    if failures:
        lines += [f"{failed}: " + "; ".join(failures), ""]
    for ref in refs:
        lines += [f"![{picture}]({ref})", ""]
    return "\n".join(lines)


def render(
    result: dict[str, Any],
    heading: str,
    markdown: Callable[[dict[str, Any], list[str]], str],
    plot: Callable[..., None],
    md: Path | None,
    pngs: list[Path],
    drawable: bool = True,
) -> None:
    """Plots to ``pngs`` (when given and there is something ``drawable``), the section into
    ``md`` (when given) and on stdout, where bench/run_all.py and the smoke tests read it."""
    refs: list[str] = []
    if pngs and drawable:
        plot(result, *pngs)
        base = (md or BENCHMARKS_MD).parent
        refs = [os.path.relpath(png, base) for png in pngs]
    section = markdown(result, refs)
    if md:
        write_section(md, heading.split(" (")[0], section)
    print(section)
