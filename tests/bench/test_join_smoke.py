"""`bench/join.py --quick` runs to the end and writes well-formed results (no figure is judged:
join times are measured by the benchmark, never asserted in tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.media

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("VDX_TEST_CHROMIUM", "/usr/bin/chromium")


def test_join_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    out = tmp_path / "join.json"
    cells = ["sip-vp8", "sip-h264", "webrtc"]
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        cells.append("browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_") or k == "VDX_TEST_CHROMIUM"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "join.py"), "--quick", "--json", str(out), "--cells", *cells],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "## Join time (`bench/join.py`)" in proc.stdout  # the section is printed, not written
    result = json.loads(out.read_text())
    # The row bench/run_all.py puts in BENCHMARKS.md's summary.
    assert result["headline"] and all(
        {"figure", "value", "unit", "min", "max", "target", "met"} <= row.keys() for row in result["headline"]
    )
    assert {"machine", "date", "command", "cells", "failures", "node_startup_s"} <= result.keys()
    assert [c["cell"] for c in result["cells"]] == cells
    for cell in result["cells"]:
        assert cell["repeats"], f"{cell['cell']}: no join measured ({result['failures']})"
        for rep in cell["repeats"]:
            assert rep[cell["main"]] > 0
            assert rep["picture_width"] > 0  # a real picture came back, not just packets
        for stats in cell["summary"].values():
            assert stats["min"] <= stats["median"] <= stats["max"]
    sip = next(c for c in result["cells"] if c["cell"] == "sip-vp8")["repeats"][0]
    assert sip["to_answer_ms"] <= sip["to_first_video_packet_ms"] <= sip["to_first_picture_ms"]
