"""`python -m bench.latency --quick` runs to the end and writes well-formed results: onsets were found
through the node and peer to peer (no latency is judged; it is measured, never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import run_quick

pytestmark = pytest.mark.media


def test_latency_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    result, stdout = run_quick("latency", tmp_path)
    assert "## Added latency (`bench/latency.py`)" in stdout
    assert {"machine", "date", "command", "runs", "summary", "failures"} <= result.keys()
    assert len(result["runs"]) == 1, result["failures"]
    run = result["runs"][0]
    # The sender's bursts and flashes were found in what came back: decoded sound and pictures.
    for path in ("baseline", "mcu"):
        assert run[path]["audio_ms"], f"{path}: no tone burst found"
        assert run[path]["video_ms"], f"{path}: no flash found"
        assert all(x >= 0 for x in run[path]["audio_ms"] + run[path]["video_ms"])
    assert [640, 360] in run["mcu"]["picture_sizes"]  # the node's composed view (vmrQuality sd)
    assert [320, 180] in run["baseline"]["picture_sizes"]  # the sender's own picture
    for kind in ("audio", "video"):
        s = result["summary"][kind]
        assert s["added_ms"] is not None
        for stats in (s["through_node_ms"], s["baseline_ms"]):
            assert stats["min"] <= stats["median"] <= stats["max"]
