"""`bench/memory.py --quick` runs to the end and writes well-formed results (no figure judged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.media

ROOT = Path(__file__).resolve().parents[2]


def test_memory_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "memory.py"), "--quick", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "## Memory (`bench/memory.py`)" in proc.stdout
    result = json.loads(out.read_text())
    # The row bench/run_all.py puts in BENCHMARKS.md's summary.
    assert result["headline"] and all(
        {"figure", "value", "unit", "min", "max", "target", "met"} <= row.keys() for row in result["headline"]
    )
    assert {"machine", "date", "command", "idle", "after", "runs", "summary"} <= result.keys()
    assert len(result["idle"]) == 1 and result["idle"][0]["rss"] > 0 and result["idle"][0]["uss"] > 0
    assert {r["kind"] for r in result["runs"]} == {"audio", "video"}, result["failures"]
    for r in result["runs"]:
        assert [p["participants"] for p in r["points"]] == result["steps"]
        # Every participant really was in the meeting: the node sent it media.
        assert all(p["receiving"] == p["participants"] for p in r["points"])
        assert "all_in_mb" in r["fit"]["rss"]
    for stats in result["summary"].values():
        assert stats["min"] <= stats["median"] <= stats["max"]
