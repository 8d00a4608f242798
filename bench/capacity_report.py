"""The capacity benchmark's results: the JSON of a run (cells, issue 7's targets, headline rows),
its section of BENCHMARKS.md and its plots."""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.capacity_plan import (
    FPS,
    FPS_OK,
    LAYERS,
    LOSS_OK,
    MODES,
    ONE_PLUS_SEVEN,
    TARGETS,
    UTILISATION,
    Cell,
)
from bench.capacity_plots import plot
from bench.capacity_search import cell_result

HEADING = "## MCU capacity (`bench/capacity.py`)"


def assemble(
    cells: list[Cell],
    results: dict[str, list[dict[str, Any]]],
    idle: list[float],
    failures: list[str],
    started: float,
    host: dict[str, Any],
    args: argparse.Namespace,
    complete: bool,
) -> dict[str, Any]:
    out_cells = [cell_result(c, results[c.key]) for c in cells if results[c.key]]
    goals = targets(out_cells)
    return {
        "machine": host,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command(args),
        "fps": FPS,
        "fps_ok": FPS_OK,
        "loss_ok_pct": 100 * LOSS_OK,
        "window_s": args.window,
        "windows": args.windows,
        "budget_s": args.budget,
        "duration_s": time.monotonic() - started,
        "idle_node_cpu_pct": report.summarise(idle or [0.0]),
        "complete": complete,
        "failures": failures,
        "cells": out_cells,
        "targets": goals,
        "headline": headline(out_cells, goals),
    }


def targets(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 7's targets against the best searched 360p cell of each mode, and MCU / floor."""
    out: dict[str, Any] = {}
    for mode in ("shared", "own"):
        got = [
            c["participants_per_core"]["median"]
            for c in cells
            if c["mode"] == mode
            and c["size"] == "360p"
            and c.get("leg", "sip") == "sip"
            and "participants_per_core" in c
            and c.get("basis_passed")
        ]
        best = max(got) if got else None
        goal = TARGETS[f"{mode}_360p"]
        out[f"{mode}_360p_per_core"] = {
            "target": goal,
            "best": best,
            "met": best is not None and best >= goal,
        }
    for key, ratio in (("mcu_over_floor", "ratio_full"), ("mcu_over_paced_floor", "ratio_paced")):
        ratios = video_ratios(cells, ratio)
        worst = max(ratios) if ratios else None
        out[key] = {
            "target": TARGETS["mcu_over_floor"],
            "worst": worst,
            "median": statistics.median(ratios) if ratios else None,
            "met": worst is not None and worst <= TARGETS["mcu_over_floor"],
        }
    return out


def video_ratios(cells: list[dict[str, Any]], ratio: str) -> list[float]:
    """MCU / floor (``ratio``: against the tight floor, ``ratio_full``, or the paced one) of the
    video cells."""
    return [c[ratio] for c in cells if c.get(ratio) and c["codec"] != "audio"]


def headline(cells: list[dict[str, Any]], goals: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures ``bench/run_all.py`` puts in BENCHMARKS.md's summary (its headline convention):
    participants per core of the best 360p cell of each mode (where a load point passed), HD
    units per core, audio-only per core, and MCU / floor (median and range over video cells)."""

    def row(
        figure: str, stats: dict[str, float] | None, unit: str, target: str | None, met: bool | None
    ) -> dict[str, Any]:
        return {
            "figure": figure,
            "value": None if stats is None else round(stats["median"], 2),
            "min": None if stats is None else round(stats["min"], 2),
            "max": None if stats is None else round(stats["max"], 2),
            "unit": unit,
            "target": target,
            "met": met,
        }

    rows = []
    for mode, label in MODES.items():
        passed = [
            c
            for c in cells
            if c["mode"] == mode and c["size"] == "360p" and c["leg"] == "sip" and c.get("basis_passed")
        ]
        best = max(passed, key=lambda c: c["participants_per_core"]["median"]) if passed else None
        where = f" (rooms of {best['room']}, {best['codec']})" if best else ""
        goal = goals.get(f"{mode}_360p_per_core")
        rows.append(
            row(
                f"SIP participants per core, 360p, {label}{where}",
                best["participants_per_core"] if best else None,
                "per core",
                f">= {goal['target']:g}" if goal else None,
                goal["met"] if best and goal else None,
            )
        )
        if best:
            rows.append(
                row(
                    f"HD units per core, 360p, {label}{where}",
                    best["hd_units_per_core"],
                    "HD/core",
                    None,
                    None,
                )
            )
    audio = next((c for c in cells if c["codec"] == "audio" and "participants_per_core" in c), None)
    if audio is not None:
        rows.append(
            row(
                f"audio-only participants per core (rooms of {audio['room']}"
                + (", estimated)" if audio.get("estimated") else ")"),
                audio["participants_per_core"],
                "per core",
                None,
                None,
            )
        )
    for key, ratio, label in (
        ("mcu_over_paced_floor", "ratio_paced", "paced"),
        ("mcu_over_floor", "ratio_full", "tight"),
    ):
        ratios = video_ratios(cells, ratio)
        rows.append(
            row(
                f"MCU cost / PyAV floor ({label}), video cells (median, min-max over cells)",
                report.summarise(ratios) if ratios else None,
                "x",
                f"<= {goals['mcu_over_floor']['target']:g}",
                goals[key]["met"] if ratios and key in goals else None,
            )
        )
    return rows


def rederive(result: dict[str, Any]) -> dict[str, Any]:
    """Cells and targets computed again from an earlier run's load points (the raw data)."""
    cells = []
    for c in result["cells"]:
        cell = Cell(
            c["codec"],
            c["size"],
            c["room"],
            c["mode"],
            c["searched"],
            c.get("leg", "sip"),
            c.get("layout") == ONE_PLUS_SEVEN,
        )
        cells.append(cell_result(cell, c["points"]))
    goals = targets(cells)
    return {**result, "cells": cells, "targets": goals, "headline": headline(cells, goals)}


def command(args: argparse.Namespace) -> str:
    parts = ["python -m bench.capacity"]
    if args.quick:
        parts.append("--quick")
    parts += ["--budget", f"{args.budget:g}"]
    if args.only:
        parts += ["--only", *(f'"{o}"' for o in args.only)]
    return " ".join(parts)


def _views(c: dict[str, Any]) -> str:
    """A cell's view mode and the encoders it ran for its N."""
    if c["codec"] == "audio":
        return "-"
    if c.get("basis_views") is None:
        return str(c["mode"])
    half = c.get("basis_views_half")
    smaller = f", {half} a size down" if half else ""
    return f"{c['mode']} ({c['basis_views']} for {c['basis_n']}{smaller})"


def markdown(result: dict[str, Any], plots: list[str]) -> str:
    m = result["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_avg_at_start"])
    lines = [
        HEADING,
        "",
        f"Run {result['date'][:16].replace('T', ' ')} UTC on {m['host']} ({m['cpus']} vCPU, {m['cpu_model']}), "
        f"Python {m['python']}, PyAV {m['av']}; {result['duration_s']:.0f} s "
        f"(the rooms' budget {result['budget_s']:g} s{'' if result['complete'] else ', cut short'}).",
        "",
        f"Command: `{result['command']}`",
        "",
        "What it measures: a `vdx serve` process per view mode (`VDX_MEDIA_VIEWS`: `distinct`, the default, a view "
        "per distinct picture, nobody sees themselves, everyone off stage shares one; `shared`: one picture "
        "for all, people see themselves; `personal`: "
        "a view and an encoder per participant; and `distinct` with *layers*: every other caller asks "
        "by TMMBR for no more than the half size needs, so its view is encoded a size down, as for a "
        "receiver on a thin link, and the floor has those views at the half size) host rooms booked "
        "through the booking API. "
        "`bench/sip_load.py`, one asyncio process, places N SIP calls (UDP, RTP/AVP, PIN by RFC 4733) "
        f"into rooms of the given size (layouts of 4, 9 and 16 tiles, or *in 1+7* Pexip's default of a speaker and "
        f"seven pips, where everyone past the eighth is off stage; the last room may be partly filled), each "
        f"replaying a camera-like clip encoded once ({result['fps']} fps, the node's own encoder settings) "
        "with Opus (one caller per room talks), and counts what comes back without decoding it: "
        "complete pictures by RTP marker and sequence, loss by sequence numbers; the first three pictures "
        "of every call are decoded to check their size. A load point **passes** when in each of "
        f"{result['windows']} windows of {result['window_s']:g} s every participant receives at least "
        f"{result['fps_ok']:g} pictures a second with under {result['loss_ok_pct']:g} % loss (video and audio). "
        "Node CPU: the node process, all threads (/proc). HD units per core: participants per core times "
        "Pexip's units (HD 720p = 1, SD 360p = 0.5, audio-only = 1/16).",
        "",
        "How N is found within the budget: a **probe** at one room (two rooms of 4) gives CPU per "
        "participant of node and load generator together (they share the machine); the largest N that "
        f"{int(UTILISATION * 100)} % of all cores carry is extrapolated from it and **confirmed** by a run at that "
        "N; then bisection between the largest N that passed and the smallest that failed (a quarter "
        "up or down while one side is unknown), at most three runs after the probe, while the budget lasts. *Largest N* is the largest that passed (the smallest that "
        "failed above it in brackets); CPU per participant and participants per core are taken at that N "
        "(min-max over its windows). Cells marked *probe* were measured at one N only and their "
        "capacity is extrapolated from CPU. **Floor**: the pure PyAV cost, measured in the same process "
        "right before each cell's rooms (this machine's speed drifts over minutes), of decoding every stream, composing and encoding the views they need and "
        "Opus both ways, twice: *tight*, each operation in a loop back to back, and *paced*, one "
        "room's work as a call brings it (every frame interval each picture decoded and each view "
        "composed on a canvas of its own and encoded, then idle until the next; a processor idle "
        "between frames comes back to cold caches, which a tight loop never does and a real-time "
        "MCU always does); "
        "**MCU / floor**: the node's CPU over the floor of the work it did in the windows (its own "
        "counters), paced; tight (full / codec only). The tight floor's participants per core (in "
        "brackets) bound what any MCU doing this work with these codecs could reach on this CPU.",
        "",
        f"Noise: {m['cpus']} vCPU shared with the load generator (its CPU is the *driver* column) and, during "
        f"development runs, other jobs (load average {load} at the start). An idle node used "
        f"{report.fmt_range(result['idle_node_cpu_pct'], 1)} % of a core (included below).",
        "",
        "| cell | views (encoders for N) | largest N (failed) | node CPU per participant % | at full rate % | participants per core "
        "| HD units per core | floor per participant % (per core) | MCU / floor: paced; tight (full / codec) | driver % per participant | method |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        name = "audio-only" if c["codec"] == "audio" else f"{c['codec']} {c['size']}"
        if c.get("leg") == "webrtc":
            name += ", WebRTC legs"
        name += " in 1+7" if c.get("layout") == ONE_PLUS_SEVEN else ""
        views = _views(c)
        largest = "-" if c["largest_n"] is None else str(c["largest_n"])
        if c["first_failing_n"] is not None:
            largest += f" ({c['first_failing_n']})"
        if "per_participant_pct" not in c:
            lines.append(
                f"| {name}, rooms of {c['room']} | {views} | {largest} | - | - | - | - | - | - | - | failed |"
            )
            continue
        method = "searched" if c["searched"] else "probe"
        if not c["basis_passed"]:
            method += f"; no N passed (N={c['basis_n']}): per core estimated from the full-rate CPU"
        approx = "~" if c.get("estimated") else ""
        ratio = "-" if c["ratio_full"] is None else f"{c['ratio_full']:.2f} / {c['ratio_codec']:.2f}"
        if c.get("ratio_paced") is not None:
            ratio = f"{c['ratio_paced']:.2f}; {ratio}"
        lines.append(
            f"| {name}, rooms of {c['room']} | {views} | {largest} | {report.fmt_range(c['per_participant_pct'], 2)} "
            f"| {c['full_rate_per_participant_pct']:.2f} | {approx}{report.fmt_range(c['participants_per_core'], 1)} "
            f"| {approx}{report.fmt_range(c['hd_units_per_core'], 1)} "
            f"| {c['floor_per_participant_pct']:.2f} ({100 / c['floor_per_participant_pct']:.1f}) | {ratio} | {c['driver_per_participant_pct']:.2f} | {method} |"
        )
    lines += target_lines(result["targets"])
    lines += operations_table(result["cells"])
    lines += [
        "",
        "Every load point (node CPU % and worst participant's fps: median over windows; loss: worst):",
        "",
    ]
    lines += [
        "| cell | N | rooms | phase | node CPU % | driver CPU % | worst fps | loss % | passed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        for p in c["points"]:
            s = p.get("summary")
            if s is None:
                lines.append(
                    f"| {p['cell']} | {p['n']} | - | {p['phase']} | - | - | - | - | no: {p.get('reason', '')} |"
                )
                continue
            lines.append(
                f"| {p['cell']} | {p['n']} | {p['rooms']} | {p['phase']} | {s['node_cpu_pct']['median']:.0f} "
                f"| {s['driver_cpu_pct']['median']:.0f} | {s['fps_min']['median']:.1f} | {s['loss_max_pct']['max']:.2f} "
                f"| {'yes' if p['passed'] else 'no: ' + p['reason']} |"
            )
    lines.append("")
    return report.section_end(lines, "Not measured", result["failures"], "MCU capacity", plots)


def publish(result: dict[str, Any], md: Path | None, pngs: list[Path]) -> None:
    report.render(result, HEADING, markdown, plot, md, pngs, drawable=bool(result["cells"]))


OPERATION_NAMES = (
    ("video_decode", "decode"),
    ("video_scale", "scale"),
    ("video_compose", "compose"),
    ("video_encode", "encode"),
    ("audio_decode", "audio dec"),
    ("audio_encode", "audio enc"),
)


def target_lines(t: dict[str, Any]) -> list[str]:
    """The run against issue 7's targets, one line each."""
    lines = ["", "**Against issue 7's targets** (this run):", ""]
    for mode, label in (("shared", "shared views at 360p"), ("own", "a view per participant at 360p")):
        x = t[f"{mode}_360p_per_core"]
        best = "none passed" if x["best"] is None else f"{x['best']:.1f}"
        lines.append(
            f"- {label}: at least {x['target']:g} participants per core; best {best}: **{'met' if x['met'] else 'missed'}**."
        )
    for key, label in (("mcu_over_paced_floor", "paced"), ("mcu_over_floor", "tight")):
        r = t.get(key)
        if r is not None and r["worst"] is not None:
            lines.append(
                f"- MCU at most {r['target']:g} x the floor ({label}): median {r['median']:.2f}, "
                f"worst {r['worst']:.2f}: **{'met' if r['met'] else 'missed'}**."
            )
    return lines


def operations_table(cells: list[dict[str, Any]]) -> list[str]:
    """Where the node's CPU goes at each cell's largest N: each media operation's CPU per call in
    the node against the paced and the tight floor's (ms), and the CPU outside them."""
    rows = [c for c in cells if c.get("by_operation") and c["codec"] != "audio" and c["mode"] != LAYERS]
    if not rows:
        return []
    head = " | ".join(f"{label} node / paced / tight ms" for _, label in OPERATION_NAMES)
    lines = [
        "",
        "Where the node's CPU goes at each cell's largest N (`vdx_media_cpu_seconds_total` by operation, "
        "each call timed on its own thread's CPU clock; *outside*: the node's CPU in none of them: RTP and "
        "RTCP, mixing, scheduling, control):",
        "",
        f"| cell | {head} | in these operations % of node CPU | outside, % of a core per participant |",
        "|---|" + "---|" * (len(OPERATION_NAMES) + 2),
    ]
    for c in rows:
        ops = c["by_operation"]["operations"]
        cols = []
        for op, _ in OPERATION_NAMES:
            o = ops[op]
            paced = "-" if o.get("paced_ms") is None else f"{o['paced_ms']:.3f}"
            cols.append(
                "-" if o["node_ms"] is None else f"{o['node_ms']:.3f} / {paced} / {o['floor_ms']:.3f}"
            )
        inside = 100 * sum(o["share"] for o in ops.values())
        name = c["codec"] + " " + c["size"] + (" in 1+7" if c.get("layout") == ONE_PLUS_SEVEN else "")
        name += ", WebRTC legs" if c.get("leg") == "webrtc" else ""
        lines.append(
            f"| {name}, rooms of {c['room']}, {c['mode']} (N={c['basis_n']}) | {' | '.join(cols)} "
            f"| {inside:.0f} | {c['by_operation']['other_pct'] / c['basis_n']:.2f} |"
        )
    return lines
