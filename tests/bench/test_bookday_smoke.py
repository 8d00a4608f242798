"""Smoke run of the booking-day benchmark (python -m bench.bookday --quick): a small day booked through a
real ``vdx api`` on SQLite, verified, its JSON well-formed. No figure is judged (issue 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import run_quick

pytestmark = pytest.mark.slow


def test_bookday_quick_books_and_verifies_a_small_day(tmp_path: Path) -> None:
    result, _ = run_quick("bookday", tmp_path, "--budget", "120", timeout=240)
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
    # --quick writes nothing but the JSON it was given
    assert not (tmp_path / "BENCHMARKS.md").exists()
