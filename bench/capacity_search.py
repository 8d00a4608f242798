"""The capacity benchmark's search for the largest N a cell carries within the time budget, and
the cell's figures from the load points it ran."""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

from bench.capacity_plan import MAX_CALLS, UTILISATION, Cell
from bench.clips import HD_UNITS


class Budget:
    """The soft time budget: what is left, and what a load point of N calls is likely to take
    (the measuring time plus a set-up cost per call, learnt from the points so far)."""

    def __init__(self, seconds: float, measuring_s: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.fixed = measuring_s + 2.0
        self.per_call = 0.15

    def pause(self, seconds: float) -> None:
        """Time spent on something other than rooms (a floor) does not count."""
        self.start += seconds

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def estimate(self, n: int) -> float:
        return self.fixed + self.per_call * n

    def learn(self, point: dict[str, Any]) -> None:
        if "duration_s" in point:
            seen = max(0.02, (point["duration_s"] - self.fixed) / max(point["n"], 1))
            self.per_call = 0.5 * self.per_call + 0.5 * seen

    def allows(self, n: int, reserve: float) -> bool:
        return self.left() - reserve > self.estimate(n)


async def search(
    run_point: Any, cell: Cell, budget: Budget, reserve: float, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Probe, extrapolate, confirm, then bisect between the largest N that passed and the
    smallest that failed (a quarter up or down while one side is unknown); at most
    ``args.steps`` runs after the probe, and none the budget cannot fit."""
    n0 = min(cell.probe_n, MAX_CALLS)
    points = [await run_point(cell, n0, "probe")]
    probe = points[0]
    if not cell.search or "summary" not in probe:
        return points
    cores = os.cpu_count() or 1
    per = (probe["summary"]["node_cpu_pct"]["median"] + probe["summary"]["driver_cpu_pct"]["median"]) / n0
    target = int(UTILISATION * cores * 100 / per) if per > 0 else MAX_CALLS
    n = max(n0 + 1, min(target, MAX_CALLS)) if probe["passed"] else max(1, n0 // 2)
    passed = {n0} if probe["passed"] else set()
    failed = set() if probe["passed"] else {n0}
    for _ in range(args.steps):
        if n in passed or n in failed or not budget.allows(n, reserve):
            break
        p = await run_point(cell, n, "confirm" if len(points) == 1 else "step")
        points.append(p)
        (passed if p["passed"] else failed).add(n)
        if p["passed"]:
            higher = [f for f in failed if f > n]
            up = min(MAX_CALLS, math.ceil(n * 1.25))
            n = (n + min(higher)) // 2 if higher else up
        else:
            # Bisect down to the largest N that passed (the extrapolation assumes every core
            # works; a node bound by one thread fails well below it), or a quarter down.
            lower = [q for q in passed if q < n]
            n = (n + max(lower)) // 2 if lower else max(1, int(n * 0.75))
    return points


def cell_result(cell: Cell, points: list[dict[str, Any]]) -> dict[str, Any]:
    """The cell's figures from its points: the largest N that passed (and the smallest above
    it that failed), CPU per participant at that N (or at the probe, when only probed)."""
    measured = [p for p in points if "summary" in p]
    passing = [p for p in measured if p["passed"]]
    best = max(passing, key=lambda p: p["n"]) if passing else None
    failing_above = sorted(p["n"] for p in points if not p["passed"] and (best is None or p["n"] > best["n"]))
    basis = best or (measured[0] if measured else None)
    out: dict[str, Any] = {
        "codec": cell.codec,
        "size": cell.size,
        "room": cell.room,
        "mode": cell.mode,
        "searched": cell.search,
        "leg": cell.leg,
        "layout": cell.layout,
        "largest_n": best["n"] if best else None,
        "first_failing_n": failing_above[0] if failing_above else None,
        "points": points,
    }
    if basis is None:
        return out
    n = basis["n"]
    node = basis["summary"]["node_cpu_pct"]
    per = {k: node[k] / n for k in ("min", "median", "max")}
    units = HD_UNITS["audio" if cell.audio_only else cell.size]
    full = (basis["full_rate_cpu_pct"] or 0.0) / n
    if basis["passed"]:
        # fewer participants per core at the highest CPU: min comes from max and back
        per_core = {
            k: 100 / per[j] if per[j] else 0.0
            for k, j in (("min", "max"), ("median", "median"), ("max", "min"))
        }
    else:
        # No point passed: a starved node's CPU says little, so the estimate is the CPU the
        # work at the full frame rate would take (its cost per unit of work times that work).
        per_core = {k: 100 / full if full else 0.0 for k in ("min", "median", "max")}
    out.update(
        {
            "basis_n": n,
            "basis_views": basis.get("views"),
            "basis_views_half": basis.get("views_half"),
            "basis_passed": basis["passed"],
            "per_participant_pct": per,
            "participants_per_core": per_core,
            "estimated": not basis["passed"],
            "hd_units_per_participant": units,
            "floor_per_participant_pct": basis["floor_full_pct"] / n,
            "ratio_full": basis["ratio_full"],
            "ratio_codec": basis["ratio_codec"],
            "ratio_paced": basis.get("ratio_paced"),
            "by_operation": basis.get("by_operation"),
            "driver_per_participant_pct": basis["summary"]["driver_cpu_pct"]["median"] / n,
            "full_rate_per_participant_pct": full,
        }
    )
    out["hd_units_per_core"] = {k: v * units for k, v in out["participants_per_core"].items()}
    return out
