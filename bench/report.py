"""BENCHMARKS.md is written by several benchmarks: each replaces its own section, keeping the rest."""

from __future__ import annotations

from pathlib import Path


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


def fmt_range(s: dict[str, float], digits: int = 0) -> str:
    """``median (min-max)``."""
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
