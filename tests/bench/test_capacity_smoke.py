"""`python -m bench.capacity --quick` runs to the end and writes well-formed results (no figure is
judged: figures are measured by the benchmark on a quiet machine, never asserted in tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import run_quick

pytestmark = pytest.mark.media


def test_capacity_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    result, stdout = run_quick("capacity", tmp_path)
    assert "## MCU capacity (`bench/capacity.py`)" in stdout  # the section is printed
    assert {
        "machine",
        "date",
        "command",
        "cells",
        "targets",
        "idle_node_cpu_pct",
        "failures",
        "headline",
    } <= result.keys()
    cells = {(c["codec"], c["mode"], c["leg"]) for c in result["cells"]}
    assert cells == {
        ("VP8", "shared", "sip"),
        ("VP8", "own", "sip"),
        ("VP8", "distinct", "sip"),
        ("VP8", "layers", "sip"),
        ("audio", "shared", "sip"),
        ("VP8", "shared", "webrtc"),
    }
    for cell in result["cells"]:
        assert cell["points"], cell
        for point in cell["points"]:
            assert isinstance(point["passed"], bool)
            # Every call was answered and got media back: a load point measured, not failed.
            assert "summary" in point, point.get("reason")
            n = point["n"]
            assert point["present"] == n
            for window in point["windows"]:
                assert window["node_cpu_pct"] >= 0 and window["driver_cpu_pct"] >= 0
                assert 0 <= window["loss_max_pct"] <= 100
            for stats in point["summary"].values():
                assert stats["min"] <= stats["median"] <= stats["max"]
            if cell["codec"] == "audio":
                assert point["views"] == 0 and point["summary"]["audio_pps_min"]["median"] > 0
                continue
            # The room really ran: one shared encoder per room, or (everyone on stage in a room of
            # two) one per participant.
            assert point["views"] == (point["rooms"] if cell["mode"] == "shared" else n)
            # Audio came back on every leg kind: the loss figures are read from real counters.
            assert point["summary"]["audio_pps_min"]["median"] > 0
            assert point["summary"]["fps_median"]["median"] > 0
            # What the calls received decodes to pictures of the room's (capped) size.
            assert point["samples_ok"]
            assert point["ratio_full"] is not None and point["ratio_full"] > 0
            # Against the paced floor too, and each operation's paced cost beside its tight one.
            assert point["ratio_paced"] is not None and point["ratio_paced"] > 0
            ops = point["by_operation"]["operations"]
            assert all(o["paced_ms"] > 0 for o in ops.values()), ops
            # With layers, the second caller's TMMBR had the node encode its view a size down.
            assert point["views_half"] == (1 if cell["mode"] == "layers" else 0)
        assert cell["per_participant_pct"]["median"] > 0
        assert cell["hd_units_per_core"]["median"] > 0
