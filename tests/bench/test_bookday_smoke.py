"""Smoke run of the booking-day benchmark (bench/bookday.py --quick): a small day booked through a
real ``vdx api`` on SQLite, verified, its JSON well-formed. No figure is judged (issue 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_bookday_quick_books_and_verifies_a_small_day(tmp_path: Path) -> None:
    out = tmp_path / "bookday.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench/bookday.py"), "--quick", "--json", str(out), "--budget", "120"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["benchmark"] == "bookday" and result["quick"] is True
    (run,) = result["runs"]
    assert run["backend"] == "sqlite" and run["complete"]
    assert run["bookings"]["done"] == run["meetings"] == 50
    assert run["invitations"]["done"] == run["participants"] == 143
    assert run["bookings"]["errors"] == run["invitations"]["errors"] == 0
    v = run["verify"]
    assert v["ok"] and v["listed_meetings"] == v["listed_scheduling_infos"] == 50
    assert v["duplicate_uris"] == v["duplicate_short_ids"] == 0
    assert run["timeline"][-1][1] == 50
    for row in result["headline"]:
        assert set(row) == {"figure", "value", "unit", "min", "max", "target", "met"}
        assert isinstance(row["figure"], str) and row["met"] in (True, False, None)
    # --quick writes nothing but the JSON it was given
    assert not (tmp_path / "BENCHMARKS.md").exists()
