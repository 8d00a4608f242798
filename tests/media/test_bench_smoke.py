"""`bench/mcu.py --quick` runs to the end and writes well-formed results (no figure is judged:
figures are measured as ratios by the benchmark, never asserted in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.media

ROOT = Path(__file__).resolve().parents[2]


def test_mcu_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    out = tmp_path / "mcu.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mcu.py"), "--quick", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "## MCU (`bench/mcu.py`)" in proc.stdout  # the markdown section is printed
    result = json.loads(out.read_text())
    assert {"machine", "date", "command", "cells", "idle_node_cpu_pct"} <= result.keys()
    modes = {c["mode"] for c in result["cells"]}
    assert modes == {"shared", "own"}
    for cell in result["cells"]:
        n = cell["participants"]
        windows = cell["repeats"] + cell["invalid_repeats"]  # invalid: a starved node (timing)
        assert len(windows) == result["repeats"] >= 1 and cell["repeats"]
        for rep in windows:
            assert isinstance(rep["valid"], bool)
        for rep in cell["repeats"]:
            # The room really ran: one shared encoder, or one per participant with the knob off.
            assert rep["views"] == (1 if cell["mode"] == "shared" else n)
            assert rep["received_fps"] > 0 and rep["view_fps"] > 0 and rep["input_fps"] > 0
            # What the bots received decodes to pictures of the room's size.
            assert rep["sample_sizes_ok"]  # (a lost packet on a loaded machine may spoil one sample)
            assert rep["node_cpu_pct"] >= 0 and rep["ratio_full"] is not None
            assert set(rep["costs_ms"]) == {"decode", "compose", "encode", "opus_decode", "opus_encode"}
        for stats in cell["summary"].values():
            assert stats["min"] <= stats["median"] <= stats["max"]
