"""`python -m bench.adapt --quick` runs to the end and writes well-formed results (no figure is
judged: adaptation times are measured by the benchmark, never asserted in tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import run_quick

pytestmark = pytest.mark.media


def test_adapt_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    result, stdout = run_quick("adapt", tmp_path)
    assert "## Link adaptation (`bench/adapt.py`)" in stdout  # printed, not written
    assert not result["failures"], result["failures"]
    (sample,) = result["samples"]
    assert sample["adapt_s"] > 0 and sample["recover_s"] > 0
    assert sample["fps_limited"] > 0  # pictures went on arriving on the thin link
    widths = {w for _, w in result["timelines"][0]}
    assert 640 in widths and min(widths) < 640  # the full size, a smaller layer, the full size again
    for stats in result["summary"].values():
        assert stats["min"] <= stats["median"] <= stats["max"]
