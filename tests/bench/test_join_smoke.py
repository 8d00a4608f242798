"""`python -m bench.join --quick` runs to the end and writes well-formed results (no figure is judged:
join times are measured by the benchmark, never asserted in tests)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.bench import run_quick

pytestmark = pytest.mark.media

CHROMIUM = os.environ.get("VDX_TEST_CHROMIUM", "/usr/bin/chromium")


def test_join_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    cells = ["sip-vp8", "sip-h264", "webrtc", "dial-out"]
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        cells.append("browser")
    result, stdout = run_quick("join", tmp_path, "--cells", *cells, keep_env=("VDX_TEST_CHROMIUM",))
    assert "## Join time (`bench/join.py`)" in stdout  # the section is printed, not written
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
