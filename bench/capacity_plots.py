"""The capacity benchmark's two plots: CPU per participant by cell, and what the node delivered
(frame rates and MCU / floor) at each cell's largest passing N."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report
from bench.capacity_plan import MODES, ONE_PLUS_SEVEN


def plot(result: dict[str, Any], cpu_png: Path, media_png: Path) -> None:
    plt = report.pyplot()

    cores = result["machine"]["cpus"] or 1
    fig, axes = plt.subplots(1, len(MODES), figsize=(18, 4.8), squeeze=False)
    for ax, mode in zip(axes[0], MODES, strict=True):
        for c in result["cells"]:
            if c["mode"] != mode:
                continue
            pts = sorted((p for p in c["points"] if "summary" in p), key=lambda p: p["n"])
            if not pts:
                continue
            n = [p["n"] for p in pts]
            med = [p["summary"]["node_cpu_pct"]["median"] for p in pts]
            lo = [p["summary"]["node_cpu_pct"]["median"] - p["summary"]["node_cpu_pct"]["min"] for p in pts]
            hi = [p["summary"]["node_cpu_pct"]["max"] - p["summary"]["node_cpu_pct"]["median"] for p in pts]
            label = (
                "audio-only" if c["codec"] == "audio" else f"{c['codec']} {c['size']} rooms of {c['room']}"
            ) + (" in 1+7" if c.get("layout") == ONE_PLUS_SEVEN else "")
            line = ax.errorbar(n, med, yerr=[lo, hi], marker="o", capsize=3, label=label)
            ax.plot(n, [p["floor_full_pct"] for p in pts], linestyle=":", color=line[0].get_color())
            for p in pts:
                if not p["passed"]:
                    ax.plot(p["n"], p["summary"]["node_cpu_pct"]["median"], "x", color="red", markersize=9)
        ax.axhline(100 * cores, color="grey", lw=0.8)
        ax.set_xlabel("participants N")
        ax.set_ylabel("node CPU, % of one core")
        ax.set_title(
            f"{MODES[mode]} (dotted: PyAV floor; x: failed)",
            fontsize=9,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"vdx MCU capacity, {result['date'][:10]}, {cores} vCPU; median, bars min-max over windows",
        fontsize=10,
    )
    report.save_figure(fig, cpu_png, dpi=100)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), squeeze=False)
    for c in result["cells"]:
        pts = sorted((p for p in c["points"] if "summary" in p), key=lambda p: p["n"])
        if not pts or c["codec"] == "audio":
            continue
        label = f"{c['codec']} {c['size']} {c['room']} {c['mode']}" + (
            " 1+7" if c.get("layout") == ONE_PLUS_SEVEN else ""
        )
        n = [p["n"] for p in pts]
        axes[0][0].plot(n, [p["summary"]["fps_min"]["min"] for p in pts], marker="o", label=label)
        axes[0][1].plot(n, [p["summary"]["loss_max_pct"]["max"] for p in pts], marker="o", label=label)
    axes[0][0].axhline(result["fps_ok"], color="red", lw=0.8)
    axes[0][1].axhline(result["loss_ok_pct"], color="red", lw=0.8)
    axes[0][0].set_ylabel("worst participant's received fps (min over windows)")
    axes[0][1].set_ylabel("worst participant's loss % (max over windows)")
    for ax in axes[0]:
        ax.set_xlabel("participants N")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    report.save_figure(fig, media_png, dpi=100)
