"""`python -m bench.memory --quick` runs to the end and writes well-formed results (no figure judged)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import run_quick

pytestmark = pytest.mark.media


def test_memory_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    result, stdout = run_quick("memory", tmp_path)
    assert "## Memory (`bench/memory.py`)" in stdout
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
